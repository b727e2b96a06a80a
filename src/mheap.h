/*
 * mheap.h — the page heap of one node (mheap.c).
 */
#ifndef NUMAHEAP_MHEAP_H
#define NUMAHEAP_MHEAP_H

#include "fixalloc.h"
#include "lock.h"
#include "mcentral.h"
#include "pagealloc.h"

struct heap_arena;
struct mspan;

/* ------------------------------------------------------------------------
 * mheap (mheap.c): the page heap of one node.
 * ------------------------------------------------------------------------ */
struct mheap {
	struct mutex lock;
	int node;
	struct page_alloc pages;       /* under lock */
	uintptr_t arena_hint;	       /* next address to try for an arena; lock */
	struct heap_arena *arenas;     /* list of this node's arenas; lock */
	/* mspan structs, by bitmap size: large objects (none), classes of up to
	 * 256 objects (2 x 4 words), ordered spans (16), the 8 and 16 B classes
	 * (2 x 16); lock. */
	struct fixalloc spanalloc[4];
	/* Byte counts, under lock (read racily by stats). */
	size_t mapped_bytes;
	size_t inuse_bytes;	/* pages in in-use spans */
	size_t peak_inuse_bytes;	/* the highest inuse_bytes has been */
	size_t large_inuse_bytes;	/* pages of large spans, cached ones included */
	_Atomic uint64_t large_frees;	/* large objects freed by the program */
	uint64_t released_reused_bytes;	/* scavenged pages handed out again */
	uint64_t grow_calls;
	uint64_t scav_released_bytes;	/* released to the OS by scavenging, in total */
	uint64_t fresh_bytes;	/* pages handed out for the first time */
	uintptr_t fresh_top;	/* end of the highest span that took fresh pages */
	/* What pre-faulting follows (prefault.c): released pages handed out
	 * again, and fresh ones once the heap is past PF_FRESH_MIN. */
	uint64_t regrowth_bytes;
	uint64_t prefault_bytes;	/* pages faulted in ahead of the program */
	uintptr_t regrow_front;	/* end of the highest span taken from released or fresh pages this pre-faulting episode; lock */
	uint64_t regrow_base;	/* regrowth_bytes when the episode began; lock */
	uint64_t regrow_looked;	/* regrowth_bytes at the episode's last look at this heap; lock */
	bool regrow_fresh;	/* the episode follows fresh growth; lock */
	bool regrow_released;	/* and released memory taken back; lock */
	/* The collapse step's (hugepages.c; the background thread's alone):
	 * released memory taken back so far when it last looked, and when
	 * that last changed. */
	uint64_t collapse_seen_regrown;
	uint64_t regrown_at;
	/* And for the huge pages grown on base pages: fresh bytes when it
	 * last looked and when that was, when they last grew fast, and when
	 * it last walked them all (and the fresh bytes then). */
	uint64_t base_seen_fresh;
	uint64_t base_seen_at;
	uint64_t fresh_grown_at;
	uint64_t base_walked_at;
	uint64_t base_walked_fresh;
	_Atomic uint64_t remote_frees;	/* objects freed by other nodes' threads, sent home */
	struct mcentral central[NH_NUM_CLASSES];
	/*
	 * Freed large spans of up to NH_LARGE_CACHE_PAGES pages, kept whole
	 * (pages allocated, spans[] mapped, state SPAN_CACHED) so the next
	 * large malloc of the same size takes one without the heap lock or a
	 * pageAlloc search. At most NH_LARGE_CACHE_BYTES in all; the
	 * background thread empties it when unused. Under lcache_lock.
	 */
	struct mutex lcache_lock;
	struct mspan *lcache[NH_LARGE_CACHE_PAGES + 1][NH_LARGE_CACHE_DEPTH];
	uint8_t lcache_n[NH_LARGE_CACHE_PAGES + 1];
	size_t lcache_bytes;
	uint64_t lcache_gen, lcache_idle_gen;
	uint64_t lcache_hits;
};

extern struct mheap *nh_heaps[NH_MAX_NODES];
NH_INLINE struct mheap *heap_of_node(int node) { return nh_heaps[node]; }

/* Every heap that was set up, lowest node first: for_each_heap(h) { ... }. */
#define for_each_heap(h)                                                  \
	for (int for_each_heap_n_ = 0; for_each_heap_n_ < NH_MAX_NODES; for_each_heap_n_++) \
		for (struct mheap *h = nh_heaps[for_each_heap_n_]; h; h = NULL)

/* Take a cached large span of exactly npages, or NULL. Takes h->lcache_lock. */
struct mspan *mheap_large_cache_take(struct mheap *h, size_t npages);
/* Keep a freed large span for reuse; false if the cache has no room.
 * Takes h->lcache_lock. */
bool mheap_large_cache_put(struct mheap *h, struct mspan *s);
/* Give the cached spans back to the heap: all, or only if unused since the
 * last call. Bytes given back. Takes h->lcache_lock, then h->lock for
 * the spans it frees. */
size_t mheap_large_cache_drain(struct mheap *h, bool idle_only);
/* What every heap keeps in front of its pages (mcentral's transfer caches
 * and kept empty spans, the large-span cache) goes back: all of it, or only
 * what sat unused since the last call. Objects moved out of transfer caches.
 * No lock held; takes each heap's central, large-span cache and heap locks
 * in turn (never two of them at once). */
size_t mheap_drain_caches(bool idle_only);

/* fork (fork.c): every heap's lcache_lock and lock, taken or dropped;
 * reset in the child. */
void mheap_fork_lock(bool lock);
void mheap_fork_child(void);
/* At initialisation (one thread, no lock). */
int mheap_init(int node);
#define NH_ORDERED_SPAN 254u /* mheap_alloc_span's class for an ordered span of band 0; 255: band 1 (ordered.c) */
/* A span of npages for sizeclass (0: large), or NULL with errno ENOMEM.
 * Takes h->lock (a central lock may be held: rank CENTRAL < HEAP). */
struct mspan *mheap_alloc_span(struct mheap *h, size_t npages, unsigned sizeclass, size_t align_pages);
/* Takes h->lock. */
void mheap_free_span(struct mheap *h, struct mspan *s);
/* Grow a large span in place to npages if the pages after it are free.
 * Takes h->lock. */
bool mheap_grow_span(struct mheap *h, struct mspan *s, size_t npages);
/* Shrink a large span in place, freeing its tail pages. Takes h->lock. */
void mheap_shrink_span(struct mheap *h, struct mspan *s, size_t npages);

#endif /* NUMAHEAP_MHEAP_H */
