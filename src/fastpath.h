/*
 * fastpath.h — malloc's and free's fast paths for small objects, inlined
 * into the C API (api.c) and into the core's entry points (malloc.c).
 *
 * malloc(n), n <= 1 KiB: one compare with nh_fast.malloc_limit (which is 0
 * in every mode that must go the general way), then a restartable sequence
 * that finds the slab from the rseq area's cpu_id, the header from the
 * slab's table for n, and pops an entry (mcache_pop_size); the entry
 * becomes the object (entry_to_object: its free mark must be there, then it
 * is cleared). free(p): one compare of p's page number with the page
 * table's range (NULL, the stack, foreign pointers, hardened mode: the
 * general way), one load of p's page entry, which gives the P header and
 * the interior-pointer check (arena.h: a multiply and a compare), the free
 * mark, and a push on that header (mcache_push). The span struct and the
 * arena map are not touched.
 *
 * Everything else leaves by a jump: a miss to the slow paths (malloc.c:
 * alloc_small_slow, free_small_slow), anything free's checks do not pass
 * (large objects, bad pointers, hardened mode) to free_slow (api.c), a
 * corrupted cache entry to a report (malloc.c). So the fast paths need no
 * stack frame. malloc.c's overview says what each check catches;
 * perf/micro counts the instructions of a malloc/free pair, the ctest test
 * perf.budget holds them to the budget in perf/micro/fastpath.snapshot.
 *
 * No locks: the caches' rules are mcache.h's.
 */
#ifndef NUMAHEAP_FASTPATH_H
#define NUMAHEAP_FASTPATH_H

#include "internal.h"
#include "alloc.h"
#include "arena.h"
#include "mcache.h"
#include "mcentral.h"
#include "mspan.h"
#include "ordered.h"

/*
 * NH_UNCHECKED builds (for measuring what the checks cost, perf/micro)
 * leave out malloc's check of the mark. The mark is still written, so the
 * slow paths behave the same; free's page check stays, as it also sends
 * large objects the general way.
 */
#ifdef NH_UNCHECKED
#define NH_CHECKS 0
#else
#define NH_CHECKS 1
#endif

/* The slow paths (malloc.c). An object of class cls: the P missed. */
NH_NOINLINE void *alloc_small_slow(unsigned cls);
/* Its refill of class cls: 1 refilled (pop again), 2 *direct is an entry
 * to serve (the batch could not go in), 0 ENOMEM (errno set), -1 no P
 * (alloc_from_central serves). Takes the P and central locks. */
int alloc_small_refill(unsigned cls, uintptr_t *direct);
/* Put p somewhere: a valid small object, its free mark written, whose
 * push missed (full, another node's object, no P). */
NH_NOINLINE void free_small_slow(uintptr_t p);
/* Its body: p, of class cls on node, onto a cache (or home). */
void free_to_cache(uintptr_t p, unsigned node, unsigned cls);
/* free of p, not in hardened mode, when the fast path's checks did not
 * pass: a large object, a bad pointer (reported), or a small object while
 * free has no page table. p is not NULL. */
NH_NOINLINE void free_general(uintptr_t p);
/* free of a pointer on a page with no class: a large object, or a bad
 * pointer (large.c). */
NH_NOINLINE void free_not_small(uintptr_t p);
/* A fresh entry (never freed since it left its span) made an object. */
NH_NOINLINE void *fresh_object(uintptr_t e);

/* Bad-pointer reports (malloc.c); they print and abort. */
NH_COLD NH_NORETURN void free_bad(const char *api, uintptr_t p);
NH_COLD NH_NORETURN void free_interior(const char *api, uintptr_t p);
NH_COLD NH_NORETURN void free_double(const char *api, uintptr_t p);
NH_COLD NH_NORETURN void report_cached_corruption(uintptr_t p);

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
 * objects resident while they wait there: pareto's peak RSS +2 MiB), and
 * are tested for first, their path out of line (fresh_object); entries
 * that go back to their spans instead are checked there (mcentral.c,
 * release_to_spans), so every duplicate is caught before the object can be
 * handed out twice.
 */
NH_INLINE void *entry_to_object(uintptr_t e)
{
	if (NH_UNLIKELY(e & NH_ENTRY_FRESH))
		return fresh_object(e);
	if (!NH_CHECKS) {
		*mark_word(e) = 0;
		return (void *)e;
	}
	/* Check and clear in one: mark ^ mark is 0 (x86: one xor to memory
	 * that sets the flags). Anything else: the report aborts. */
	if (NH_UNLIKELY(!nh_xor_is_zero(mark_word(e), free_mark(e))))
		report_cached_corruption(e);
	return (void *)e;
}

/* An object of class cls. Initialisation must be done. */
NH_INLINE void *alloc_small(unsigned cls)
{
	uintptr_t e;
	if (NH_UNLIKELY(!mcache_pop_class(cls, &e)))
		return alloc_small_slow(cls);
	return entry_to_object(e);
}

/*
 * free's fast path: true when p was freed here; false sends it the general
 * way (the caller's free_slow), with nothing done. A small object's free
 * mark is written, then it is pushed on the P header its page entry names,
 * or (a miss) handed to free_small_slow. The default mode does not read
 * the object (a double free is caught when it comes out of a cache again:
 * entry_to_object); hardened mode, which checks in free, never comes here
 * (its page_count is 0).
 */
NH_INLINE bool free_fast(uintptr_t p)
{
	uintptr_t i = (p >> NH_PT_SHIFT) - nh_fast.page_lo;
	if (NH_UNLIKELY(i >= nh_fast.page_count))
		return false;
	const uint16_t *table = nh_fast.page_table;
	unsigned e = page_entry(table, i);
	if (NH_UNLIKELY(!page_entry_is_object(table, e, p)))
		return false;
	*mark_word(p) = free_mark(p);
	/* The slow path looks the span up again: free keeps no lookup state
	 * alive across its push (fewer registers saved). */
	if (NH_UNLIKELY(!mcache_push(e, p)))
		free_small_slow(p);
	return true;
}

/* free of p, a small object of span s whose checks the caller made, with
 * hardened mode's check of the mark when hardened (which names the second
 * free itself). */
NH_INLINE void free_small_checked(struct mspan *s, uintptr_t p, bool hardened)
{
	if (hardened && NH_UNLIKELY(has_free_mark(p)))
		free_double("free", p);
	/* A span being evacuated takes its objects back itself (mcentral.c). */
	if (NH_UNLIKELY(atomic_load_explicit(&s->evac, memory_order_relaxed)) && mcentral_free_evac(s, p))
		return;
	*mark_word(p) = free_mark(p);
	if (NH_UNLIKELY(!mcache_push(NH_HOFF(s->node, s->sizeclass), p)))
		free_small_slow(p);
}

/* The span of p, which must be the start of a live object; reports and
 * aborts otherwise (realloc, malloc_usable_size, free's general path). */
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
	} else if (NH_UNLIKELY(s->ordered)) {
		ordered_size(api, s, p); /* checks p */
	} else if (NH_UNLIKELY(p != s->base + (s->guarded ? NH_PAGE_SIZE : 0))) {
		free_interior(api, p);
	} else if (NH_UNLIKELY(atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_INUSE)) {
		nh_report_bad_pointer(api, (void *)p, "pointer not in use (double free, or never allocated)");
	}
	return s;
}

#endif /* NUMAHEAP_FASTPATH_H */
