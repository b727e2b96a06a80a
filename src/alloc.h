/*
 * alloc.h — the allocator core's global state and entry points (malloc.c,
 * large.c). The fast paths are fastpath.h's.
 */
#ifndef NUMAHEAP_ALLOC_H
#define NUMAHEAP_ALLOC_H

#include "internal.h"

struct mspan;

/* ------------------------------------------------------------------------
 * Global state (malloc.c).
 * ------------------------------------------------------------------------ */
extern uintptr_t nh_cookie NH_HIDDEN; /* secret; a freed object's mark word is cookie ^ address */

/*
 * The word of a small object that holds its free mark (cookie ^ address)
 * while it is free: its first. Only malloc and a flush to the spans read it
 * (and free in hardened mode); free writes it with one 8-byte store, so
 * malloc's load takes the value from that store even when the program has
 * just written narrower data there. (The mark sat in the second word while
 * free read it in every mode: free's 8-byte load right after the program's
 * 1-byte store missed store-to-load forwarding. Once the check moved to
 * malloc, the first word was the faster: no class test, and 64 B
 * malloc/free pairs 1.4-2.8 ns quicker in perf/micro.)
 */
NH_INLINE uintptr_t *mark_word(uintptr_t p) { return (uintptr_t *)p; }

/* The free mark of the object at p, and whether its mark word holds it. */
NH_INLINE uintptr_t free_mark(uintptr_t p) { return nh_cookie ^ p; }
NH_INLINE bool has_free_mark(uintptr_t p) { return *mark_word(p) == free_mark(p); }
extern bool nh_heaps_ok;    /* at least one heap could be set up */
extern _Atomic int nh_initialized;
void nh_init_slow(void);

NH_INLINE void nh_ensure_init(void)
{
	if (NH_UNLIKELY(atomic_load_explicit(&nh_initialized, memory_order_acquire) != 2))
		nh_init_slow();
}


/* ------------------------------------------------------------------------
 * The core's entry points for the layers above it: the C API (api.c) and
 * hardened mode (hardened.c). The core's paths never call back up (but for
 * randomness in hardened mode: hardened.c's header says where).
 * ------------------------------------------------------------------------ */
struct mheap;

/* Small objects (malloc.c). An object of class cls, through the P's cache. */
void *nh_alloc_class(unsigned cls);
/* One object of class cls straight from heap h's mcentral, with no cache
 * (spans_only: not from its transfer cache either). */
void *alloc_from_central(struct mheap *h, unsigned cls, bool spans_only);
/* A valid object's span; reports and aborts on a bad pointer. */
struct mspan *nh_checked_span(const char *api, uintptr_t p);
/* Free an object whose span the caller has checked (hardened mode: the
 * free mark goes in the first word). */
void nh_free_unchecked(struct mspan *s, uintptr_t p);
/* The heap serving node (numaheap_malloc_onnode): its own, or the one its
 * CPUs use; NULL with errno ENOMEM (no heap at all) or EINVAL (no such node). */
struct mheap *heap_for_node(int node);
/* Work that must run with no allocator lock held, after a slow path that
 * may have grown the heap: start the scavenger, enforce the memory limit. */
void slow_path_hooks(void);

/*
 * Large objects (large.c). A span for n bytes aligned to align, from heap
 * h or the calling thread's node's heap: its pages rounded and taken from
 * the large-span cache when it can, or (exact) exactly as many pages as n
 * needs, from the page heap. NULL with errno ENOMEM.
 */
struct mspan *alloc_large_span_on(struct mheap *h, size_t n, size_t align, bool exact);
/* At start-up: read the largest single mapping the kernel grants (large.c). */
void large_init(void);
struct mspan *alloc_large_span(size_t n, size_t align, bool exact);
/* A large object of n bytes (zeroed if zero); NULL with errno ENOMEM. */
void *alloc_large(size_t n, size_t align, bool zero);
/* n bytes exactly from heap h (numaheap_malloc_onnode beyond the classes). */
void *alloc_large_on(struct mheap *h, size_t n);
/* Resize the large object of span s to n bytes in place: true, or false
 * when it must move (n small, or the pages after it taken). */
bool large_resize(struct mspan *s, size_t n);

#endif /* NUMAHEAP_ALLOC_H */
