/*
 * fastpath.h — malloc's and free's fast paths for small objects, inlined
 * into the C API (api.c) and into the core's entry points (malloc.c).
 *
 * malloc: pop an entry of the class from the P's cache (mcache_pop_fast)
 * and turn it into the object (entry_to_object: its free mark must be
 * there, then it is cleared). free: find the class from the page's info
 * word (arena map -> heapArena -> pageinfo; the span struct is not
 * touched), check that the pointer is the start of an object, write the
 * free mark and push the object on the P (mcache_push_fast).
 *
 * Everything else leaves by a jump: a miss to the slow paths (malloc.c:
 * alloc_small_slow, free_small_slow), a large object or a bad pointer to
 * free_not_small (large.c), a bad free to a report (malloc.c). So the fast
 * paths need no stack frame. malloc.c's overview says what each check
 * catches; perf/micro counts the instructions of a malloc/free pair
 * against fastpath.snapshot.
 *
 * No locks: the caches' rules are mcache.h's.
 */
#ifndef NUMAHEAP_FASTPATH_H
#define NUMAHEAP_FASTPATH_H

#include "internal.h"
#include "alloc.h"
#include "arena.h"
#include "mcache.h"
#include "mspan.h"

/*
 * NH_UNCHECKED builds (for measuring what the checks cost, perf/micro)
 * leave out the interior-pointer and mark checks of the fast paths. The
 * mark is still written, so the slow paths behave the same.
 */
#ifdef NH_UNCHECKED
#define NH_CHECKS 0
#else
#define NH_CHECKS 1
#endif

/* The slow paths (malloc.c, large.c). */
NH_NOINLINE void *alloc_small_slow(unsigned cls);
/* Put p, a valid freed object of class cls, somewhere: the P missed. */
NH_NOINLINE void free_small_slow(unsigned cls, uintptr_t p);
/* free of a pointer on a page with no class: a large object, or a bad pointer. */
NH_NOINLINE void free_not_small(uintptr_t p);

/* Bad-pointer reports (malloc.c); they print and abort. */
NH_COLD NH_NORETURN void free_bad(const char *api, uintptr_t p);
NH_COLD NH_NORETURN void free_interior(const char *api, uintptr_t p);
NH_COLD NH_NORETURN void free_double(const char *api, uintptr_t p);
NH_COLD NH_NORETURN void report_cached_corruption(uintptr_t p);
/*
 * The same, for free's fast path, which reaches them by a jump: declared
 * as returning, so the compiler tail-calls them and free keeps no frame.
 * free_report_bad returns for p == NULL (free(NULL) on the per-CPU path
 * comes there: no arena at 0).
 */
NH_COLD void free_report_bad(uintptr_t p);
NH_COLD void free_report_interior(uintptr_t p);
NH_COLD void free_report_double(uintptr_t p);

/*
 * Turn a cache entry into the object handed to the program. A freed
 * object's mark must still be there: gone, the object was freed twice (the
 * first of its two entries came out before, and cleared it) or written
 * after free, and it is not handed out again. Then clear the mark (a later
 * free must not mistake the object for a freed one). This is where a
 * double free is caught in the default mode, not in free: free would have
 * to read the object, which is often cold (freed long after its last use)
 * and stalls free on the miss (random N=100000 in perf/micro ran 1.7x
 * slower so), while the entry malloc takes is the one last freed on this
 * CPU, whose line free's mark store just brought in. Entries fresh from a
 * span carry no mark (writing one when they enter a cache made the
 * objects resident while they wait there: pareto's peak RSS +2 MiB, for
 * 4 instructions less here); entries that go back to their spans instead
 * are checked there (mcentral.c, release_to_spans), so every duplicate is
 * caught before the object can be handed out twice.
 */
NH_INLINE void *entry_to_object(uintptr_t e)
{
	uintptr_t p = e & ~NH_ENTRY_FRESH;
	if (NH_CHECKS && !(e & NH_ENTRY_FRESH) && NH_UNLIKELY(!has_free_mark(p)))
		report_cached_corruption(p);
	*mark_word(p) = 0;
	return (void *)p;
}

/* An object of class cls; known as for mcache_pop_fast. */
NH_INLINE void *alloc_small_fast(unsigned cls, int known)
{
	uintptr_t e;
	if (NH_UNLIKELY(!mcache_pop_fast(cls, &e, known)))
		return alloc_small_slow(cls);
	return entry_to_object(e);
}

NH_INLINE void *alloc_small(unsigned cls) { return alloc_small_fast(cls, PLAIN_NO); }

/*
 * free of p, with hardened mode's check of the mark when hardened (which
 * names the second free itself; the default mode catches it at reuse, in
 * entry_to_object); known as for mcache_push_fast.
 */
NH_INLINE void free_object_fast(uintptr_t p, bool hardened, int known)
{
	/*
	 * The page's info word gives the class and the phase, so the span
	 * struct is not touched: one load after the arena map.
	 */
	struct heap_arena *ha = arena_of(p);
	if (NH_UNLIKELY(!ha)) {
		free_report_bad(p);
		return;
	}
	uint32_t info = pageinfo_of(ha, p);
	unsigned cls = info & 0xff;
	if (NH_UNLIKELY(cls == 0)) {
		free_not_small(p);
		return;
	}
	uintptr_t off = (p & (NH_PAGE_SIZE - 1)) + (info >> 16);
	if (NH_CHECKS &&
	    NH_UNLIKELY(off * nh_class_to_divisible[cls] >= nh_class_to_divisible[cls])) {
		free_report_interior(p);
		return;
	}
	if (hardened && NH_UNLIKELY(has_free_mark(p))) {
		free_report_double(p);
		return;
	}
	*mark_word(p) = free_mark(p);
	/* The span is looked up again on a miss, not passed on: free keeps
	 * no lookup state alive across its push (fewer registers saved). */
	if (NH_UNLIKELY(!mcache_push_fast(cls, p, (unsigned)node_of_addr(p), known)))
		free_small_slow(cls, p);
}

/* The span of p, which must be the start of a live object; reports and
 * aborts otherwise (realloc, malloc_usable_size). */
NH_INLINE struct mspan *checked_span(const char *api, uintptr_t p)
{
	struct mspan *s = span_of(p);
	if (NH_UNLIKELY(!s))
		free_bad(api, p);
	if (NH_LIKELY(s->sizeclass)) {
		uintptr_t off = p - mspan_first(s); /* wraps below the first: too big */
		if (NH_UNLIKELY(off >= (uintptr_t)s->nelems * s->elemsize ||
				((off * s->divmul) >> 32) * s->elemsize != off))
			free_interior(api, p);
	} else if (NH_UNLIKELY(p != s->base + (s->guarded ? NH_PAGE_SIZE : 0))) {
		free_interior(api, p);
	} else if (NH_UNLIKELY(atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_INUSE)) {
		nh_report_bad_pointer(api, (void *)p, "pointer not in use (double free, or never allocated)");
	}
	return s;
}

#endif /* NUMAHEAP_FASTPATH_H */
