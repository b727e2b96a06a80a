/*
 * ospan.h — an ordered span and its band, shared by ordered.c (placement,
 * free, evacuation) and orelease.c (the in-span release, the collapse's
 * view, statistics): the two bitmaps that say where its objects start and
 * end, the holes between them, and the band's central state (ocentral).
 *
 * An ordered span has 512 granules (16 bytes in band 0, 128 in band 1).
 * Its struct's alloc_bits hold start[] (words 0-7: an object starts at
 * granule g) and end[] (words 8-15: an object ends at g). Bits are set and
 * cleared with atomic read-modify-writes and read with atomic loads: a P
 * sets bits in its hole while frees clear others in the same words.
 */
#ifndef NUMAHEAP_OSPAN_H
#define NUMAHEAP_OSPAN_H

#include "lock.h"
#include "mcentral.h"
#include "mspan.h"
#include "os/os.h"
#include "ordered.h"
#include "arena.h"

#define OGRANS 512
#define OWORDS (OGRANS / 64)
_Static_assert(2 * OWORDS <= NH_SPAN_BITMAP_WORDS, "an ordered span's two maps fit in alloc_bits");

NH_INLINE uint64_t *start_map(const struct mspan *s) { return (uint64_t *)&s->alloc_bits[0]; }
NH_INLINE uint64_t *end_map(const struct mspan *s) { return (uint64_t *)&s->alloc_bits[OWORDS]; }

NH_INLINE bool bit_test(const uint64_t *m, unsigned g)
{
	return (__atomic_load_n(&m[g / 64], __ATOMIC_ACQUIRE) >> (g % 64)) & 1;
}

NH_INLINE void bit_set(uint64_t *m, unsigned g) { __atomic_fetch_or(&m[g / 64], (uint64_t)1 << (g % 64), __ATOMIC_RELEASE); }
NH_INLINE void bit_clear(uint64_t *m, unsigned g) { __atomic_fetch_and(&m[g / 64], ~((uint64_t)1 << (g % 64)), __ATOMIC_RELEASE); }
/* The bits of mask in word w of m (none if w is past the map). */
NH_INLINE void bit_set_mask(uint64_t *m, unsigned w, uint64_t mask)
{
	if (w < OWORDS && mask)
		__atomic_fetch_or(&m[w], mask, __ATOMIC_RELEASE);
}
/* bit_clear with the band's lock held: an atomic and where the span's
 * owner may set bits in the same word (shared), else a load and a store. */
NH_INLINE void bit_clear_locked(uint64_t *m, unsigned g, bool shared)
{
	if (shared)
		bit_clear(m, g);
	else
		__atomic_store_n(&m[g / 64], __atomic_load_n(&m[g / 64], __ATOMIC_RELAXED) & ~((uint64_t)1 << (g % 64)),
				 __ATOMIC_RELEASE);
}

/* The first set bit of m at or after g; OGRANS if none. */
NH_INLINE unsigned next_bit(const uint64_t *m, unsigned g)
{
	while (g < OGRANS) {
		uint64_t w = __atomic_load_n(&m[g / 64], __ATOMIC_ACQUIRE) >> (g % 64);
		if (w)
			return g + (unsigned)nh_ctz64(w);
		g = (g | 63) + 1;
	}
	return OGRANS;
}

/* The first hole of at least need granules at or after b, a boundary:
 * [*lo, *hi). Lock held. */
NH_INLINE bool find_hole(const struct mspan *s, unsigned b, unsigned need, unsigned *lo, unsigned *hi)
{
	while (b < OGRANS) {
		if (bit_test(start_map(s), b)) {
			b = next_bit(end_map(s), b) + 1;
			continue;
		}
		unsigned e = next_bit(start_map(s), b);
		if (e - b >= need) {
			*lo = b;
			*hi = e;
			return true;
		}
		b = e;
	}
	return false;
}

/* The last set bit of m at or before g; OGRANS if none. */
NH_INLINE unsigned prev_bit(const uint64_t *m, unsigned g)
{
	for (;;) {
		uint64_t w = __atomic_load_n(&m[g / 64], __ATOMIC_ACQUIRE) & (((uint64_t)2 << (g % 64)) - 1);
		if (w)
			return (g & ~63u) + 63 - (unsigned)__builtin_clzll(w);
		if (g < 64)
			return OGRANS;
		g = (g & ~63u) - 1;
	}
}

/* ---- the band's central state (ordered.c) ------------------------------- */

/*
 * Two bands: objects up to 1 KiB in 16-byte granules on one-page spans,
 * larger ones up to 8 KiB in 128-byte granules on 8-page spans (every
 * class size is a multiple of its band's granule). Both have 512 granules
 * a span, so the maps are the same size.
 */
#define OMAX_GRANS 64 /* an object's granules, at most: 1 KiB / 16, 8 KiB / 128 */
static const unsigned band_shift[OBANDS] = {4, 7};

/* A page table with slots finer than a page (arena.h, NH_PT_SHIFT) gives
 * free the class of an object cut in order if each slot holds one class:
 * objects are cut in chunks of whole slots (ordered.c, chunk_alloc). */
#define OCHUNKS NH_PT_FINE
#define OSLOT_GRANS(b) ((unsigned)(NH_PT_SIZE >> band_shift[b])) /* a slot's granules */
#define BAND_PAGES(b) ((OGRANS << band_shift[b]) >> NH_PAGE_SHIFT)
_Static_assert((OGRANS << 4) == NH_PAGE_SIZE, "band 0's span is one page");
_Static_assert(OGRANS <= 65535, "holes are 16-bit granule numbers");

struct ocentral {
	struct mutex lock;
	struct span_list_head partial;
	size_t nspans;
	size_t released_bytes; /* OS pages released inside its spans */
	struct span_list_head evac; /* sparse spans being emptied: never a P's again */
	int64_t live;		    /* granules of objects out (owners' cuts counted late) */
	uint64_t out[NH_NUM_CLASSES]; /* objects handed out, by class (with users or in caches); atomic */
} NH_ALIGNED(64);

extern struct ocentral ocentral[NH_MAX_NODES][OBANDS];
extern uint8_t nh_ogran_class[OBANDS][OMAX_GRANS + 1]; /* granules -> class; 0: no class of that size */
extern uint8_t nh_oclass_band[NH_NUM_CLASSES]; /* an ordered class's band */
extern unsigned nh_ounit_shift; /* log2 of mcentral_unit_bytes(); 0: no in-span release */

NH_INLINE unsigned span_band(const struct mspan *s) { return s->ordered - 1u; }
NH_INLINE unsigned class_band(unsigned cls) { return nh_oclass_band[cls]; }

/*
 * The class of the object starting at p on ordered span s, p inside s (0:
 * no object starts there). free's path (malloc.c), so it is short: an
 * object spans at most 64 granules, so its end bit is in the word of its
 * start bit or the next. Reads the maps without a lock: only the object's
 * own free clears its bits.
 */
NH_INLINE unsigned ordered_object_class(const struct mspan *s, uintptr_t p)
{
	unsigned b = span_band(s), sh = band_shift[b];
	uintptr_t off = p - s->base;
	if (off & ((1u << sh) - 1))
		return 0;
	unsigned g = (unsigned)(off >> sh), w = g / 64, k = g % 64;
	if (!((__atomic_load_n(&start_map(s)[w], __ATOMIC_ACQUIRE) >> k) & 1))
		return 0;
	uint64_t e = __atomic_load_n(&end_map(s)[w], __ATOMIC_ACQUIRE) >> k;
	unsigned n;
	if (NH_LIKELY(e)) {
		n = (unsigned)nh_ctz64(e) + 1;
	} else {
		if (w + 1 >= OWORDS || !(e = __atomic_load_n(&end_map(s)[w + 1], __ATOMIC_ACQUIRE)))
			return 0;
		n = 64 - k + (unsigned)nh_ctz64(e) + 1;
	}
	return n <= OMAX_GRANS ? nh_ogran_class[b][n] : 0;
}

/* mspan.list of an ordered span: written under the lock, read by free
 * without it (free_general's look for an evacuating span, malloc.c). */
NH_INLINE void set_list(struct mspan *s, unsigned l) { __atomic_store_n(&s->list, (uint8_t)l, __ATOMIC_RELAXED); }

/* A span's clock for the in-span release (mspan.otick): about a millisecond
 * a tick, wrapping after 73 minutes (compared by difference). */
NH_INLINE uint32_t otick_of(uint64_t ns) { return (uint32_t)(ns >> 20); }
NH_INLINE uint32_t otick_now(void) { return otick_of(os_nanotime()); }

/* The OS pages of granules [lo, hi) of s, as bits of s->released. */
NH_INLINE uint32_t units_of(const struct mspan *s, unsigned lo, unsigned hi)
{
	unsigned sh = band_shift[span_band(s)];
	unsigned j0 = (lo << sh) >> nh_ounit_shift, j1 = ((hi << sh) - 1) >> nh_ounit_shift;
	return (uint32_t)((((uint64_t)2 << j1) - 1) & ~(((uint64_t)1 << j0) - 1));
}

/* s, not a P's and not empty, had objects back: on the partial list, or
 * the evac list if sparse (ordered.c). The band's lock held. */
void relist(struct ocentral *oc, struct mspan *s);
/* s, empty and not a P's, leaves its list for the heap. Lock held. */
void unlink_span(struct ocentral *oc, struct mspan *s);

#endif
