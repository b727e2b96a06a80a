/*
 * mcentral.h — the spans of one size class on one node (mcentral.c).
 */
#ifndef NUMAHEAP_MCENTRAL_H
#define NUMAHEAP_MCENTRAL_H

#include "lock.h"
#include "mspan.h"

struct mspan;
struct mheap;

/* ------------------------------------------------------------------------
 * mcentral (mcentral.c): the spans of one size class on one node.
 *
 * partial holds spans with at least one free object, full those without.
 * Caches take objects in batches (refill) and give them back in batches
 * (release); both take the central lock once per batch.
 * ------------------------------------------------------------------------ */
struct span_list_head {
	struct mspan *first;
	size_t count;
};

/*
 * Empty spans an mcentral keeps (per class and node) instead of giving them
 * back to the heap at once: a program that frees thousands of objects and
 * allocates them again takes its spans back without a pageAlloc round trip
 * for each. The background thread gives them back once the class has been
 * idle for a pass (mcentral_drain), so they do not stay while idle.
 */
#define NH_CENTRAL_KEEP_BYTES ((size_t)1 << 20)

struct mcentral {
	/*
	 * The transfer cache (tcmalloc's): cache entries (tags kept) passed
	 * from P caches that overflow to P caches that refill, whole batches
	 * at a time, without touching span bitmaps. Under tc_lock.
	 */
	struct mutex tc_lock;
	uint32_t tc_count;
	uint32_t tc_cap;
	uintptr_t *tc_slots;	  /* tc_cap entries, allocated on first use */
	uint64_t tc_gen;	  /* bumped on use: idle detection */
	uint64_t tc_idle_gen;

	struct mutex lock NH_ALIGNED(NH_CACHE_LINE);
	uint8_t sizeclass;
	uint8_t node;
	struct span_list_head partial; /* under lock */
	struct span_list_head full;    /* under lock */
	struct span_list_head evac;    /* spans being emptied (evacuation); under lock */
	struct mspan *evac_cursor;     /* where the next stall check resumes (NULL: the front); under lock */
	/* Under lock. */
	uint64_t nspans;	  /* spans of this class on this node */
	uint64_t objects_out;	  /* sum of nalloc over the spans */
	uint32_t nempty;	  /* empty spans kept on the partial list */
	uint32_t empty_max;	  /* how many may be kept: NH_CENTRAL_KEEP_BYTES worth */
	uint64_t gen;		  /* bumped by refills: idle detection for the kept spans */
	uint64_t idle_gen;
	/* The in-span release (mcentral_take_free_pages). Under lock. */
	uint64_t puts;		  /* bumped when objects go back to the spans' bitmaps */
	uint64_t scanned_puts;	  /* puts when a scan last found nothing more to release */
	uint64_t rescan_at;	  /* ... but left spans in busy chunks, which turn idle then */
	size_t released_bytes;	  /* OS pages released inside this class's spans now */
	uint64_t reclaimed_bytes; /* in total: of those, taken back by refills */
	/* The background thread's alone (no lock): the class's mallocs (all
	 * caches) when it last saw them change, and when. */
	uint64_t sub_allocs;
	uint64_t sub_since;
	/* Evacuation's last look (under lock): the class's mallocs, and
	 * objects_out. */
	uint64_t evac_allocs;
	uint64_t evac_out;	  /* live objects (objects_out less the cached) ... */
	uint64_t evac_since;	  /* ... since then (os_nanotime), within 1/16 */
	uint64_t evac_objects;	  /* objects out of the spans on the evac list */
} NH_ALIGNED(NH_CACHE_LINE);

/* At initialisation (no lock). */
void mcentral_init(struct mcentral *c, unsigned sizeclass, int node);
/* Fill out[] with up to n cache entries; returns how many, 0 on ENOMEM
 * (ordered classes: from the transfer cache only, 0 when it is empty).
 * Takes c->tc_lock, then c->lock (one at a time), and the heap's lock for a
 * new span. A P's lock may be held (rank PCACHE is lowest). */
unsigned mcentral_refill(struct mcentral *c, struct mheap *h, uintptr_t *out, unsigned n);
/* The same from the class's spans only, not its transfer cache (which may
 * hold objects of ordered spans, ordered.c). Takes c->lock. */
unsigned mcentral_refill_spans(struct mcentral *c, struct mheap *h, uintptr_t *out, unsigned n);
/* Give back n cache entries (objects, tagged or not) of this class and node.
 * Takes c->tc_lock, then c->lock, and the heap's lock for an empty span. */
void mcentral_release(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n);
/* Return the transfer caches' objects to their spans and the kept empty
 * spans to the heap: all of them, or only those of classes unused since the
 * last call (idle). Objects moved. Takes each class's tc_lock and lock, and
 * h->lock, one at a time. */
size_t mcentral_drain(struct mheap *h, bool idle_only);
/* A span list's front insert and removal (mcentral.c, evacuate.c); the
 * list's central lock held. */
NH_INLINE void list_push(struct span_list_head *l, struct mspan *s)
{
	s->prev = NULL;
	s->next = l->first;
	if (l->first)
		l->first->prev = s;
	l->first = s;
	l->count++;
}

NH_INLINE void list_remove(struct span_list_head *l, struct mspan *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	l->count--;
}

/* An evacuated span, now empty, leaves c's evac list for the heap (as an
 * empty partial span does; the caller gives it to the heap once c->lock
 * is dropped). c->lock held. */
void evac_unlink_empty(struct mcentral *c, struct mspan *s);

/* Evacuation (evacuate.c; the background thread, each round): in each class of h
 * that is busy, not growing and sparse, the spans at most a quarter full
 * stop taking new objects until they empty and go back to the heap.
 * allocs: the classes' mallocs so far; cached: the objects h's P caches
 * hold. Takes each class's transfer and central locks, one at a time,
 * then the ordered spans' band locks (ordered_evacuate). */
void mcentral_evacuate(struct mheap *h, const uint64_t allocs[NH_NUM_CLASSES], const uint64_t cached[NH_NUM_CLASSES],
		       uint64_t now);
/* Free p, an object of s, straight into s if s is being evacuated: true;
 * false (nothing done) if it no longer is. Takes s's central lock, and
 * the heap lock when s empties. */
bool mcentral_free_evac(struct mspan *s, uintptr_t p);
/* fork (fork.c): every class's tc_lock and lock of every heap, taken or
 * dropped; reset in the child. */
void mcentral_fork_lock(bool lock);
void mcentral_fork_child(void);
/* A racy read (statistics): no lock. */
size_t mcentral_transfer_objects(struct mcentral *c);

/*
 * The in-span release: a span's OS pages that only free slots cover go
 * back to the OS while the span stays in use. A piece is a run of such
 * pages in one span; its slots are marked allocated while the kernel
 * releases it, so no refill hands them out meanwhile.
 */
struct span_piece {
	struct mspan *s;
	uint32_t units;		/* the OS pages (bits of s->released) */
	uint16_t own_lo, own_hi; /* the slots marked allocated for it: [own_lo, own_hi) */
};
/* The OS pages that in-span releases work in: 0 if they cannot (OS pages
 * larger than a span's). */
size_t mcentral_unit_bytes(void);
/* Up to max pieces of c's spans into out[] (their slots taken); how many.
 * Only from spans in chunks of h's pageAlloc unused since idle_before (0:
 * any); *busy gets the earliest last use of a chunk skipped as busy (left
 * alone if none). */
unsigned mcentral_take_free_pages(struct mcentral *c, struct mheap *h, uint64_t idle_before, uint64_t *busy,
				  struct span_piece *out, unsigned max);
/* (The time a skipped chunk turns idle is *busy + delay: the caller sets
 * c->rescan_at to it, and the class is not scanned again before then
 * unless objects go back to its spans.) */
/* Give the pieces' slots back; res[i] == 0: piece i was released. Spans
 * that end up empty go back to the heap. */
void mcentral_put_free_pages(struct mcentral *c, struct mheap *h, const struct span_piece *p, unsigned n,
			     const int *res);
/* Racy reads for the scavenger's hints and sums: objects went back to
 * the spans since the last full scan; when a skipped busy chunk turns
 * idle; OS pages released now; of those, taken back in total. */
bool mcentral_release_pending(const struct mcentral *c);
uint64_t mcentral_rescan_at(const struct mcentral *c);
size_t mcentral_released_bytes(const struct mcentral *c);
uint64_t mcentral_reclaimed_bytes(const struct mcentral *c);
/* The address and length of a piece. */
void span_piece_range(const struct span_piece *p, uintptr_t *addr, size_t *len);
/* The spans of heap h over [lo, hi) (a huge page about to be collapsed):
 * if at most max_bytes of their OS pages there are released, those count
 * as the program's again (the collapse fills them in) and their bytes are
 * returned; else nothing changes and SIZE_MAX is returned. */
size_t mcentral_reclaim_range(struct mheap *h, uintptr_t lo, uintptr_t hi, size_t max_bytes);
/* Bytes the objects of heap h over [lo, hi) take, in use or cached (small
 * spans by their share of the range, large ones whole): how dense a huge
 * page is (hugepages.c). Takes the class locks one at a time. */
size_t mcentral_used_in_range(struct mheap *h, uintptr_t lo, uintptr_t hi);

#endif /* NUMAHEAP_MCENTRAL_H */
