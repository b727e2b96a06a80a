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
 * nh_arena_map[(p - NH_HEAP_BASE) >> 26] is the metadata of the 64 MiB
 * arena holding p, or NULL. It covers the heap's whole range (2^19 entries,
 * 4 MiB of address space), reserved readable at start-up (arena_init) so
 * that it reads as zeros and costs nothing under strict overcommit; a page
 * of it is made writable when its first entry is published. So a lookup is
 * a subtraction, a compare and two loads, and any pointer that numaheap did
 * not hand out finds NULL (before start-up too: the map is then NULL).
 * Entries go from NULL to an arena once, under the owning node's heap
 * lock, and never change back, so free() reads them without a lock.
 * ------------------------------------------------------------------------ */
#define NH_ARENA_MAP_ENTRIES (NH_HEAP_RANGE >> NH_ARENA_SHIFT)
/* NUMAHEAP_COMMIT's values. */
enum { COMMIT_AUTO = 0, COMMIT_RESERVE = 1, COMMIT_READY = 2 };
/* Reserved arenas are made ready this much at a time, as the pages handed
 * out reach them (arena_commit): under strict overcommit a process is
 * charged for what its heap reached, not for whole arenas. */
#define NH_COMMIT_SHIFT 22
#define NH_COMMIT_STEP ((uintptr_t)1 << NH_COMMIT_SHIFT)
#define NH_COMMIT_STEPS (1u << (NH_ARENA_SHIFT - NH_COMMIT_SHIFT)) /* steps in an arena */
#define NH_COMMIT_ALL ((uint32_t)((1ull << NH_COMMIT_STEPS) - 1))
_Static_assert(NH_COMMIT_STEPS <= 32, "heapArena.ready has a bit per step");
struct heap_arena {
	/* spans[i]: the in-use span holding page i, NULL if the page is free.
	 * Written under the heap lock; read locklessly by free/realloc. */
	struct mspan *_Atomic spans[NH_PAGES_PER_ARENA];
	uintptr_t base;
	/* Pages from here up have never been handed out since the arena was
	 * mapped: they are known to be zero. Under the heap lock. */
	uintptr_t zeroed_base;
	/* Bit i: [base + i * NH_COMMIT_STEP, + NH_COMMIT_STEP) is ready
	 * (arena_commit); the rest is reserved. Heap lock. */
	uint32_t ready;
	struct heap_arena *next; /* the node's arenas; under the heap lock */
	int node;
};

extern struct heap_arena *_Atomic *nh_arena_map;

NH_INLINE struct heap_arena *arena_of(uintptr_t p)
{
	uintptr_t i = (p - NH_HEAP_BASE) >> NH_ARENA_SHIFT;
	struct heap_arena *_Atomic *map = nh_arena_map;
	if (NH_UNLIKELY(i >= NH_ARENA_MAP_ENTRIES || !map))
		return NULL;
	return atomic_load_explicit(&map[i], memory_order_acquire);
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

/* Make [base, base + bytes) of the heap ready (writable), in whole commit
 * steps; 0 or -ENOMEM (the commit limit). Heap lock held. */
int arena_commit(uintptr_t base, size_t bytes);
/* The steps of [a, aend) (one arena's) as heapArena.ready bits. */
NH_INLINE uint32_t arena_steps(const struct heap_arena *ha, uintptr_t a, uintptr_t aend)
{
	unsigned lo = (unsigned)((a - ha->base) >> NH_COMMIT_SHIFT), hi = (unsigned)((aend - 1 - ha->base) >> NH_COMMIT_SHIFT);
	return (uint32_t)(((2ull << hi) - 1) & ~((1ull << lo) - 1));
}

/* Map spans[] and the page table for [base, base + npages pages) to s
 * (NULL to clear). Heap lock. */
void arena_set_spans(uintptr_t base, size_t npages, struct mspan *s);
/* Point the page-table entries of s, a small span in use, at its class's
 * P header (cached) or at no class (0: free's fast path refuses its
 * objects, which take the general way). s's central lock held. */
void arena_set_page_entries(const struct mspan *s, bool cached);

/* ------------------------------------------------------------------------
 * The page table (arena.c): what free needs about a page, in 2 bytes, one
 * load from the pointer.
 *
 * One uint16_t per page (per slot: NH_PT_SHIFT) of the heap's address
 * range, nodes 0 to the highest with a heap: 512 MiB of address space per
 * node (2 TiB / 8 KiB pages * 2 bytes; 32 times that with 256-byte slots),
 * reserved at start-up, of which only the entries of pages in use are ever
 * written (16 KiB per 64 MiB arena). free computes
 * i = (p >> NH_PT_SHIFT) - nh_fast.page_lo (a slot is a page, below, unless
 * built finer): one compare with
 * nh_fast.page_count rejects NULL, the stack, globals, every pointer not in
 * the heap's range, and in hardened mode or before initialisation (count
 * 0) everything; then entry = page_table[i]:
 *
 *   bits 4-15  NH_HOFF(node, class) >> 4: the P header the object goes
 *              on (its node's, so no node compare: mcache.h)
 *   bits 0-3   the slot's kind: the page's index in its span (spans have
 *              at most 10 pages); with finer slots, one per distinct phase
 *              (arena.c, arena_pt_ids)
 *   0          a free page, or a large object's
 *
 * The entry indexes the page kinds (page_kinds), which give the
 * interior-pointer check:
 * with mul = ceil(2^32 / size) for the class and off the pointer's offset
 * from the page plus the page's phase (page start - first object, mod
 * size; the first object is tail bytes into the span: mspan.h), off is a
 * multiple of size iff (uint32_t)(off * mul) < mul (Lemire's divisibility
 * test, exact for every off < 2^16, checked by tests/unit for every class
 * and offset). kind.phase_mul holds phase * mul, so the test is
 * (uint32_t)((p % page) * mul + phase_mul) < mul. An address in the tail
 * waste gives off in [size - tail, size): never a multiple. Entry 0 and
 * class 0 have mul 0: the test fails, and free takes the general path
 * (large objects, free pages, bad pointers). Spans have at most 10 pages,
 * so kinds NH_HOFF(node, class) | 15 are no page's: the one of each class
 * holds the class's object size in mul (page_entry_size), for
 * malloc_usable_size.
 *
 * Entries are written with the span's map under the heap lock, read by
 * free without a lock (as spans[]): a pointer the program got from malloc
 * was mapped before malloc returned it.
 * ------------------------------------------------------------------------ */
/* The table's slot: a page (the default), or finer (a build with
 * -DNH_PT_SHIFT=8 has one entry per 256 bytes; free's instructions are the
 * same, its shift and mask another). */
#ifndef NH_PT_SHIFT
#define NH_PT_SHIFT NH_PAGE_SHIFT
#endif
#define NH_PT_SIZE ((uintptr_t)1 << NH_PT_SHIFT)
#define NH_PT_FINE (NH_PT_SHIFT < NH_PAGE_SHIFT) /* slots finer than a page: ordered.c cuts chunks */
#define NH_PT_MAX_SPAN_PAGES 15 /* small spans have at most 10 pages; kind 15 is no page's */
/* Slot q's phase in a span of class c, for slots of 2^shift bytes; the
 * kind ids of the slots of such a span into ids[] (false: more than 15).
 * arena.c builds its table from these at NH_PT_SHIFT; the unit tests check
 * them at every shift. */
uint32_t arena_pt_phase(unsigned c, unsigned q, unsigned shift);
bool arena_pt_ids(unsigned c, unsigned shift, uint8_t *ids);
/* The table entry of slot q of a span of class c on node (0: none). */
uint16_t arena_pt_entry(unsigned node, unsigned c, uintptr_t q);
/* Chunks of class c (ordered.c): the most slots a chunk has (0: no chunks;
 * always 0 with slots of a page), and the entry of a chunk's slot j.
 * arena_set_chunk names c in the entries of a chunk of `slots` slots from
 * base, a slot boundary, on node; arena_clear_slots sets n entries from
 * base to 0 (free's general path). The caller owns the slots (its P's
 * hole, or its band's lock). */
unsigned arena_chunk_slots(unsigned c);
uint16_t arena_chunk_entry(unsigned node, unsigned c, unsigned j);
void arena_set_chunk(uintptr_t base, unsigned slots, unsigned node, unsigned c);
void arena_clear_slots(uintptr_t base, unsigned n);
/* [base, base + bytes) of the heap is free and held by the caller (the
 * scavenger, releasing it): with slots finer than a page, the page-table
 * pages wholly under it (their entries all 0) go back to the OS too. */
void arena_release_table(uintptr_t base, size_t bytes);
#define NH_PAGE_KINDS (NH_MAX_NODES * NH_NUM_CLASSES * 16)
struct nh_pagekind {
	uint32_t mul;	    /* ceil(2^32 / size); 0: not a small object's page */
	uint32_t phase_mul; /* the page's phase * mul (mod 2^32) */
};
/* The kinds sit right below the page table, in the same mapping, so that
 * free reaches both from the one pointer it loads (nh_fast.page_table). */
NH_INLINE const struct nh_pagekind *page_kinds(const uint16_t *table)
{
	return (const struct nh_pagekind *)((const char *)table - NH_PAGE_KINDS * sizeof(struct nh_pagekind));
}
/* The object size of a small object's page entry e (a valid one). */
NH_INLINE uint32_t page_entry_size(const uint16_t *table, unsigned e) { return page_kinds(table)[e | 15].mul; }
/* Start-up: reserve the arena map (false: no room, so no heap), and the
 * page table for nodes 0..max_node with its kinds filled in (without room
 * for it every free takes the general path). */
bool arena_init(int max_node);
/* Let free use the table (nh_fast.page_count), if there is one. */
void arena_publish_page_table(void);

/* Entry i of the page table. A relaxed atomic load (a plain 16-bit load on
 * x86): the entries of a live span change while other threads free its
 * objects (evacuate.c), and either value sends the free a correct way. */
NH_INLINE unsigned page_entry(const uint16_t *table, uintptr_t i)
{
	return atomic_load_explicit((const _Atomic uint16_t *)&table[i], memory_order_relaxed);
}

/* The interior-pointer check of free's fast path: p is an object's start
 * on a page whose entry is e in table (false also for a page with no small
 * span). */
NH_INLINE bool page_entry_is_object(const uint16_t *table, unsigned e, uintptr_t p)
{
	const struct nh_pagekind *k = &page_kinds(table)[e];
	return nh_mul_below((uint32_t)(p & (NH_PT_SIZE - 1)), &k->mul, &k->phase_mul);
}

#endif /* NUMAHEAP_ARENA_H */
