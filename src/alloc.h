/*
 * alloc.h — the allocator's own entry points and global state (malloc.c).
 */
#ifndef NUMAHEAP_ALLOC_H
#define NUMAHEAP_ALLOC_H

#include "internal.h"

struct mspan;

/* ------------------------------------------------------------------------
 * Global state (malloc.c).
 * ------------------------------------------------------------------------ */
extern uintptr_t nh_cookie; /* secret; a freed object's mark word is cookie ^ address */

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


/* Entry points for hardened.c. */
void *nh_alloc_class(unsigned cls);
void *nh_alloc_large(size_t n, size_t align, bool zero);
struct mspan *nh_alloc_large_span(size_t n, size_t align);
/* A valid object's span; reports and aborts on a bad pointer. */
struct mspan *nh_checked_span(const char *api, uintptr_t p);
/* Free an object whose span the caller has checked (hardened mode: the
 * free mark goes in the first word). */
void nh_free_unchecked(struct mspan *s, uintptr_t p);

#endif /* NUMAHEAP_ALLOC_H */
