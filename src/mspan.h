/*
 * mspan.h — a run of pages holding objects of one class, or one large object (mspan.c).
 */
#ifndef NUMAHEAP_MSPAN_H
#define NUMAHEAP_MSPAN_H

#include "internal.h"
#include "report.h"

/* ------------------------------------------------------------------------
 * mspan (mspan.c): a run of pages, holding objects of one size class or one
 * large object. Allocated from the heap's fixalloc under the heap lock.
 * ------------------------------------------------------------------------ */
enum span_state {
	SPAN_DEAD = 0,	 /* not in use; its pages are free */
	SPAN_INUSE = 1,	 /* holds objects; spans[] maps its pages to it */
	SPAN_CACHED = 2, /* a freed large span kept whole for reuse (mheap.c) */
};

enum span_list { SPAN_LIST_NONE, SPAN_LIST_PARTIAL, SPAN_LIST_FULL, SPAN_LIST_EVAC, SPAN_LIST_OWNED /* ordered.c */ };

#define NH_MAX_SPAN_OBJECTS 1024 /* proven by mksizeclasses */
#define NH_SPAN_BITMAP_WORDS (NH_MAX_SPAN_OBJECTS / 64)

struct mspan {
	/* mcentral list links; under the central lock. */
	struct mspan *next;
	struct mspan *prev;
	/* Set at span creation under the heap lock; immutable while in use. */
	uintptr_t base;
	uint32_t npages;
	uint32_t elemsize;  /* object size; npages * NH_PAGE_SIZE for large */
	uint32_t divmul;    /* (off * divmul) >> 32 == off / elemsize */
	uint16_t nelems;    /* objects in the span (1 for large) */
	uint8_t sizeclass;  /* 0: one large object */
	uint8_t node;
	_Atomic uint8_t state; /* enum span_state; read without locks by free */
	uint8_t list;	       /* enum span_list; under the central lock */
	uint8_t needzero;      /* memory may hold old data (large spans) */
	uint8_t guarded;       /* hardened large object between guard pages */
	uint8_t ordered;       /* class 0, small objects in allocation order (ordered.c): band + 1 */
	/* Object accounting; under the central lock (small spans). */
	uint16_t nalloc;    /* objects out of the bitmap: with users or in caches */
	uint16_t freeindex; /* first bitmap word that may have a free object */
	uint8_t kept;	    /* empty, kept on mcentral's partial list; under its lock */
	/* Being emptied (evacuate.c): on the class's evac list,
	 * no refill takes from it, and its frees go straight back to it
	 * (free_small_checked), not to a cache. Written under the central
	 * lock, read without. */
	_Atomic uint8_t evac;
	/* Small spans: the tail waste (npages pages - nelems * elemsize), at
	 * the span's start: object i is at base + tail + i * elemsize, so the
	 * last object ends at the span's end and every address that is a
	 * whole number of objects from the first is an object (free's check,
	 * fastpath.h). Set with sizeclass; immutable while in use. */
	uint16_t tail;
	/* Ordered spans (ordered.c), under the band's lock: when objects last
	 * went back to it or a P last gave it up (os_nanotime() >> 20), and
	 * the granules its objects cover (its owner's cuts counted when it
	 * gives the span up). */
	uint32_t otick;
	uint16_t ogran;
	/* A large span holding one sampled block: its profile bucket (prof.c);
	 * set by the allocating thread before the block is handed out, cleared
	 * by the freeing thread. NULL otherwise. */
	void *prof;
	size_t prof_size;   /* the sampled block's requested size */
	double prof_weight; /* 1 / its chance of being sampled, counted again at its free */
	/* Small spans: bit j set when the span's j-th OS page (base +
	 * j * os_page_size()) went back to the OS while only free slots
	 * covered it (mcentral.c, the in-span release). Under the central
	 * lock; 0 when the span comes from the heap. */
	uint32_t released;
	/* Evacuation (evacuate.c), under the central lock: nalloc when the
	 * background thread last looked, when a look last found it lower (a
	 * coarse clock, evacuate.c's evac_tick), and 1 once it stalled (never
	 * evacuated again while it serves its class). */
	uint16_t evac_seen;
	uint8_t evac_fell;
	uint8_t evac_rest;
	/* Small spans: two bitmaps of mspan_words() words each. First the
	 * allocation bits (1: object allocated), then the unmarked bits (1:
	 * the slot, while free, carries no free mark: never handed out since
	 * the span was set up, back unused as a fresh entry, or its mark
	 * word's OS page went back to the OS; mspan_take hands such slots out
	 * fresh and the others checked). Ordered spans keep their two maps in
	 * the first NH_SPAN_BITMAP_WORDS (ospan.h). Declared for the largest
	 * span; a span struct is allocated only as long as its class needs
	 * (mspan_struct_size). */
	uint64_t alloc_bits[2 * NH_SPAN_BITMAP_WORDS];
};

/* Bytes of span struct with this many bitmap words (both maps together). */
NH_INLINE size_t mspan_struct_size(unsigned bitmap_words)
{
	return offsetof(struct mspan, alloc_bits) + (size_t)bitmap_words * 8;
}

/* Words of one bitmap of a small span, and its unmarked bits. */
NH_INLINE unsigned mspan_words(const struct mspan *s) { return ((unsigned)s->nelems + 63) / 64; }
NH_INLINE uint64_t *mspan_unmarked(struct mspan *s) { return s->alloc_bits + mspan_words(s); }

/* A cache entry's low bit: the object carries no free mark (an unmarked
 * slot of its span's bitmap, mspan_take). Entries without it are checked:
 * the mark must be there when the object is handed out (fastpath.h,
 * entry_to_object) or goes back to its span (mcentral.c). */
#define NH_ENTRY_FRESH ((uintptr_t)1)

void mspan_init_small(struct mspan *s, unsigned sizeclass);
/* Take up to n free objects into out[], unmarked slots tagged
 * NH_ENTRY_FRESH (their marks count from now: each goes back marked, by a
 * free, or unmarked, as a fresh entry). */
unsigned mspan_take(struct mspan *s, uintptr_t *out, unsigned n);
/* The first object of a small span. */
NH_INLINE uintptr_t mspan_first(const struct mspan *s) { return s->base + s->tail; }
NH_INLINE unsigned mspan_obj_index(const struct mspan *s, uintptr_t p)
{
	return (unsigned)(((uint64_t)(p - mspan_first(s)) * s->divmul) >> 32);
}

/* The bits of s->released (OS pages of 1 << shift bytes) inside [lo, hi). */
NH_INLINE uint32_t mspan_released_in(const struct mspan *s, uintptr_t lo, uintptr_t hi, unsigned shift)
{
	uint32_t m = 0;
	for (uint32_t bits = s->released; bits; bits &= bits - 1) {
		unsigned j = (unsigned)nh_ctz64(bits);
		uintptr_t a = s->base + ((uintptr_t)j << shift);
		if (a >= lo && a < hi)
			m |= (uint32_t)1 << j;
	}
	return m;
}

/* Return one object to the span's bitmap, unmarked (a fresh entry that
 * was never handed out) or with its free mark; aborts on a double free.
 * Inline: every object a flush sends back to its span comes through here. */
NH_INLINE void mspan_put(struct mspan *s, uintptr_t p, bool unmarked)
{
	unsigned idx = mspan_obj_index(s, p);
	uint64_t m = (uint64_t)1 << (idx % 64);
	if (NH_UNLIKELY(!(s->alloc_bits[idx / 64] & m)))
		nh_report_bad_pointer("free", (void *)p, "double free (object already free in its span)");
	s->alloc_bits[idx / 64] &= ~m;
	if (unmarked)
		mspan_unmarked(s)[idx / 64] |= m;
	s->nalloc--;
	if (idx / 64 < s->freeindex)
		s->freeindex = (uint16_t)(idx / 64);
}

#endif /* NUMAHEAP_MSPAN_H */
