/*
 * arena.h — heapArena and the arena map: from an address to its span (arena.c).
 */
#ifndef NUMAHEAP_ARENA_H
#define NUMAHEAP_ARENA_H

#include "internal.h"

struct mspan;

/* ------------------------------------------------------------------------
 * heapArena and the arena map (arena.c).
 *
 * nh_arena_map[p >> 26] is the metadata of the 64 MiB arena holding p, or
 * NULL. It spans the whole 47-bit user address space (2^21 entries, 16 MiB
 * of BSS, of which only the pages around the heap's slices are ever
 * touched), so a lookup is one shift and one load, and any pointer below
 * 2^47 that numaheap did not hand out finds NULL. Entries go from NULL to an
 * arena once, under the owning node's heap lock, and never change back, so
 * free() reads them without a lock.
 * ------------------------------------------------------------------------ */
#define NH_ADDR_BITS 47
struct heap_arena {
	/*
	 * pageinfo[i], what free needs about page i without touching its span:
	 * the size class (bits 0-7; 0 for a large object or a free page) and
	 * the phase (bits 16-31): (page start - first object) mod object size
	 * (the first object is tail bytes into the span: mspan.h), so a
	 * pointer is an object's start iff ((p % page) + phase) % size == 0;
	 * an address in the tail waste gives an offset of size - tail and up,
	 * below size: never a multiple.
	 * Same writers and readers as spans[]. First in the struct: free's
	 * load needs no offset added to its index.
	 */
	_Atomic uint32_t pageinfo[NH_PAGES_PER_ARENA];
	/* spans[i]: the in-use span holding page i, NULL if the page is free.
	 * Written under the heap lock; read locklessly by free/realloc. */
	struct mspan *_Atomic spans[NH_PAGES_PER_ARENA];
	uintptr_t base;
	/* Pages from here up have never been handed out since the arena was
	 * mapped: they are known to be zero. Under the heap lock. */
	uintptr_t zeroed_base;
	struct heap_arena *next; /* the node's arenas; under the heap lock */
	int node;
};

extern struct heap_arena *_Atomic nh_arena_map[(uintptr_t)1 << (NH_ADDR_BITS - NH_ARENA_SHIFT)];

NH_INLINE struct heap_arena *arena_of(uintptr_t p)
{
	if (NH_UNLIKELY(p >> NH_ADDR_BITS))
		return NULL;
	return atomic_load_explicit(&nh_arena_map[p >> NH_ARENA_SHIFT], memory_order_acquire);
}

NH_INLINE struct mspan *span_of(uintptr_t p)
{
	struct heap_arena *ha = arena_of(p);
	if (NH_UNLIKELY(!ha))
		return NULL;
	return atomic_load_explicit(&ha->spans[(p >> NH_PAGE_SHIFT) & (NH_PAGES_PER_ARENA - 1)],
				    memory_order_acquire);
}

NH_INLINE int node_of_addr(uintptr_t p) { return (int)((p - NH_HEAP_BASE) >> NH_NODE_SHIFT); }

/* Map spans[] and pageinfo[] for [base, base + npages pages) to s (NULL to
 * clear). Heap lock. */
void arena_set_spans(uintptr_t base, size_t npages, struct mspan *s);

NH_INLINE uint32_t pageinfo_of(const struct heap_arena *ha, uintptr_t p)
{
	return atomic_load_explicit(&ha->pageinfo[(p >> NH_PAGE_SHIFT) & (NH_PAGES_PER_ARENA - 1)],
				    memory_order_relaxed);
}

#endif /* NUMAHEAP_ARENA_H */
