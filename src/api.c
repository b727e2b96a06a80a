/*
 * api.c — the C allocation API (malloc, free, calloc, realloc, the aligned
 * forms, malloc_usable_size, C23's free_sized...) and numaheap.h's own.
 *
 * See malloc.c for the overview. This is the top layer: each function
 * checks its arguments, sends the call to hardened.c when hardened mode is
 * on, and otherwise to the core: the fast paths (fastpath.h), small
 * objects (malloc.c) and large ones (large.c). The core never calls back
 * up, into this file or hardened.c.
 *
 * The functions are written under their own names, nh_malloc, nh_free...,
 * and exported under the C names by NH_EXPORT (api.h); mallinfo2,
 * malloc_stats and malloc_info are stats.c's, the C++ operators cxx.c's.
 *
 * malloc's and free's fast paths (fastpath.h) are the same in per-CPU and
 * per-thread mode; each opens with one compare against nh_fast that also
 * turns it off where it must not run (hardened mode, heap profiling for
 * malloc, before initialisation). Everything else goes through
 * malloc_other and free_slow.
 *
 * No locks of its own; errno as glibc leaves it (docs/migration.md).
 */

#include "os/os.h"

#include "numa.h"

#include "mspan.h"
#include "arena.h"
#include "stats.h"
#include "mheap.h"
#include "mcache.h"
#include "proc.h"
#include "alloc.h"
#include "fastpath.h"
#include "scavenger.h"
#include "hardened.h"
#include "sizeclass.h"
#include "api.h"
#include "prof.h"

#include <errno.h>
#include <string.h>

#include "numaheap.h"

/* ---- malloc and free ---------------------------------------------------- */

/* The class of n <= NH_SMALL_SIZE_MAX bytes: one table load. */
#define CLASS8(n) nh_size_to_class8[((n) + NH_SMALL_SIZE_DIV - 1) / NH_SMALL_SIZE_DIV]

/* malloc of a block that is not sampled, past the fast path's sizes. */
NH_NOINLINE static void *malloc_unsampled(size_t n)
{
	if (n <= NH_MAX_SMALL_SIZE)
		return alloc_small(nh_size_to_class(n));
	return alloc_large(n, 0, false);
}

/*
 * malloc with heap profiling on, of more than the classes' sizes, when this
 * thread's countdown crossed zero (prof_count has subtracted n): this
 * block may be the sample (prof.h). Reached by tail jumps (nh_malloc to
 * malloc_other, malloc_special, to here), so its return address is the
 * program's call of malloc; malloc_other cannot pass its own without a
 * stack frame (gcc aligns the stack for __builtin_return_address). Should
 * a compiler make one of the jumps a call, the address is numaheap's own,
 * and the stack walk skips numaheap's frames anyway (prof.c, walk_stack).
 */
NH_NOINLINE static void *malloc_profiled(size_t n)
{
	if (prof_should_sample(n))
		return prof_alloc(n, n, 0, false, (uintptr_t)__builtin_return_address(0));
	return malloc_unsampled(n);
}

/* malloc(n)'s pop missed (n within the fast path's sizes). */
NH_NOINLINE static void *malloc_small_slow(size_t n) { return alloc_small_slow(CLASS8(n)); }

/*
 * A block of class cls with heap profiling on, whatever the call (ret: the
 * program's return address; n bytes asked, aligned to align, zeroed if
 * zero): popped on the class header's clock (mcache.h, the counted pops),
 * or the sample when the pop crosses it. A refill's direct object never
 * was on the header: it counts on the thread's countdown. A crossing that
 * is not this thread's sample (prof_clock_crossed), or no P, leaves for
 * the uncounted pop: the clock, still due, samples the P's next one.
 */
NH_NOINLINE static void *prof_small(unsigned cls, size_t n, size_t align, bool zero, uintptr_t ret)
{
	size_t size = nh_class_to_size[cls];
	void *p;
	for (int tries = 0; tries < 4; tries++) {
		uintptr_t e;
		int r = mcache_pop_class_counted(cls, &e);
		if (r == POP_OK) {
			p = entry_to_object(e);
			goto done;
		}
		if (r == POP_CROSSED) {
			if (prof_clock_crossed(cls))
				return prof_alloc(n, size, align, zero, ret);
			break;
		}
		r = alloc_small_refill(cls, &e);
		if (r == 0)
			return NULL;
		if (r == 2) {
			p = entry_to_object(e);
			if (NH_UNLIKELY(prof_tick(size))) {
				nh_free(p);
				return prof_alloc(n, size, align, zero, ret);
			}
			goto done;
		}
		if (r < 0)
			break;
	}
	if (!(p = alloc_small(cls)))
		return NULL;
done:
	if (zero)
		memset(p, 0, size);
	return p;
}

/* malloc(n) of a class's size with heap profiling on, when its counted pop
 * (malloc_other's, or malloc_special's past 1 KiB) crossed the clock or
 * missed. Reached by tail jumps, as malloc_profiled is. */
NH_NOINLINE static void *malloc_counted_slow(size_t n)
{
	return prof_small(nh_size_to_class(n), n, 0, false, (uintptr_t)__builtin_return_address(0));
}

NH_NOINLINE static void *malloc_other(size_t n);

/* malloc before initialisation: initialise, then start over. Out of line,
 * so that malloc_other needs no stack frame. */
NH_NOINLINE static void *malloc_first(size_t n)
{
	nh_init_slow();
	return malloc_other(n);
}

/* malloc in hardened mode, or of more than 1 KiB with heap profiling on:
 * the classes' blocks on their clocks, larger ones on the thread's. */
NH_NOINLINE static void *malloc_special(size_t n)
{
	if (nh_hardened)
		return hardened_alloc(n, 0, false);
	if (n <= NH_MAX_SMALL_SIZE) {
		uintptr_t e;
		if (NH_LIKELY(mcache_pop_class_counted(nh_size_to_class(n), &e) == POP_OK))
			return entry_to_object(e);
		return malloc_counted_slow(n);
	}
	if (NH_UNLIKELY(prof_count(n)))
		return malloc_profiled(n);
	return malloc_unsampled(n);
}

/*
 * malloc beyond the fast path: more than 1 KiB, or in hardened mode, with
 * heap profiling, before initialisation (malloc_limit 0).
 *
 * With heap profiling on, malloc_limit is 0 and every malloc comes here;
 * one compare with prof_limit (0 with profiling off) takes those of up to
 * 1 KiB to the profiling path: the fast path's pop on the class header's
 * clock (mcache_pop_size_counted), whose end leads to the sample
 * (malloc_counted_slow, prof_small). 4 instructions more than the fast
 * path (docs/performance.md): nh_malloc's compare branches to a jump here
 * (gcc makes no conditional sibling call), this compare and its branch,
 * and the clock's branch on the pop's own add. With profiling off, larger
 * blocks pay that compare, then one test of plain tells hardened mode and
 * profiling (malloc_special) from the plain modes: as many instructions as
 * before profiling existed (a test of nh_hardened was there).
 */
NH_NOINLINE static void *malloc_other(size_t n)
{
	if (n < nh_fast.prof_limit) {
		uintptr_t e;
		if (NH_UNLIKELY(mcache_pop_size_counted(n, &e) != POP_OK))
			return malloc_counted_slow(n);
		return entry_to_object(e);
	}
	if (NH_UNLIKELY(atomic_load_explicit(&nh_initialized, memory_order_acquire) != 2))
		return malloc_first(n);
	if (NH_UNLIKELY(nh_fast.plain > PLAIN_PER_THREAD))
		return malloc_special(n);
	return malloc_unsampled(n);
}

/* Heap profiling's malloc entry, which the program's PLT slots may name
 * instead of malloc's (prof.c, os/plt.c): malloc_other is all of malloc,
 * and with profiling on, the first thing malloc does is jump to it. */
void *api_malloc_prof_entry(void) { return (void *)malloc_other; }

void *nh_malloc(size_t n)
{
	/*
	 * One compare says both "up to 1 KiB" and "a mode with a fast path"
	 * (mcache.h, nh_fast); the sequence finds the class's header from
	 * the slab's own table for n.
	 */
	if (NH_LIKELY(n < nh_fast.malloc_limit)) {
		uintptr_t e;
		if (NH_UNLIKELY(!mcache_pop_size(n, &e)))
			return malloc_small_slow(n);
		return entry_to_object(e);
	}
	return malloc_other(n);
}
NH_EXPORT(malloc, nh_malloc);

/* free that its fast path did not take: NULL, hardened mode, before
 * initialisation, large objects, bad pointers, no page table. */
NH_NOINLINE static void free_slow(uintptr_t p)
{
	if (NH_UNLIKELY(!p))
		return;
	if (NH_UNLIKELY(nh_hardened)) {
		hardened_free(p);
		return;
	}
	free_general(p);
}

void nh_free(void *ptr)
{
	if (NH_UNLIKELY(!free_fast((uintptr_t)ptr)))
		free_slow((uintptr_t)ptr);
}
NH_EXPORT(free, nh_free);

void nh_free_sized(void *ptr, size_t size)
{
	(void)size;
	nh_free(ptr);
}
NH_EXPORT(free_sized, nh_free_sized);

void nh_free_aligned_sized(void *ptr, size_t align, size_t size)
{
	(void)align;
	(void)size;
	nh_free(ptr);
}
NH_EXPORT(free_aligned_sized, nh_free_aligned_sized);

void *nh_calloc(size_t nmemb, size_t size)
{
	size_t n;
	if (NH_UNLIKELY(__builtin_mul_overflow(nmemb, size, &n))) {
		errno = ENOMEM;
		return NULL;
	}
	nh_ensure_init();
	if (NH_UNLIKELY(nh_hardened))
		return hardened_alloc(n, 0, true);
	if (NH_UNLIKELY(nh_prof_on)) {
		if (n <= NH_MAX_SMALL_SIZE)
			return prof_small(nh_size_to_class(n), n, 0, true, (uintptr_t)__builtin_return_address(0));
		if (prof_tick(n))
			return prof_alloc(n, n, 0, true, (uintptr_t)__builtin_return_address(0));
	}
	/* The whole usable size is zeroed, not just the n bytes asked for, as
	 * glibc does: malloc_usable_size tells the program the rest is its to
	 * use (bionic's calloc_usable_size test). */
	if (n <= NH_MAX_SMALL_SIZE) {
		unsigned cls = nh_size_to_class(n);
		void *p = alloc_small(cls);
		if (p)
			memset(p, 0, nh_class_to_size[cls]);
		return p;
	}
	return alloc_large(n, 0, true);
}
NH_EXPORT(calloc, nh_calloc);

/* ---- realloc -------------------------------------------------------------- */

static size_t usable_size(struct mspan *s, uintptr_t p)
{
	if (NH_UNLIKELY(s->ordered))
		return ordered_size("malloc_usable_size", s, p);
	return s->sizeclass ? s->elemsize : (size_t)s->npages << NH_PAGE_SHIFT;
}

static void *realloc_move(void *ptr, size_t old, size_t n)
{
	void *q = nh_malloc(n);
	if (!q)
		return NULL;
	memcpy(q, ptr, NH_MIN(old, n));
	nh_free(ptr);
	return q;
}

void *nh_realloc(void *ptr, size_t n)
{
	/* A small object: its page entry says its size and checks the
	 * pointer, as for free; the span is not touched (Redis grows and
	 * shrinks its strings in place this way all the time). */
	uintptr_t i = ((uintptr_t)ptr >> NH_PT_SHIFT) - nh_fast.page_lo;
	if (NH_LIKELY(i < nh_fast.page_count) && NH_LIKELY(n != 0)) {
		const uint16_t *table = nh_fast.page_table;
		unsigned e = page_entry(table, i);
		if (NH_LIKELY(page_entry_is_object(table, e, (uintptr_t)ptr))) {
			size_t old = page_entry_size(table, e);
			if (NH_UNLIKELY(has_free_mark((uintptr_t)ptr)))
				free_double("realloc", (uintptr_t)ptr);
			if (n <= NH_MAX_SMALL_SIZE && nh_class_to_size[nh_size_to_class(n)] == old)
				return ptr;
			return realloc_move(ptr, old, n);
		}
	}
	if (!ptr)
		return nh_malloc(n);
	if (n == 0) {
		nh_free(ptr); /* glibc's behaviour, which programs rely on */
		return NULL;
	}
	uintptr_t p = (uintptr_t)ptr;
	if (NH_UNLIKELY(nh_hardened))
		return hardened_realloc(p, n);
	struct mspan *s = checked_span("realloc", p);
	size_t old = usable_size(s, p);
	if (s->sizeclass || s->ordered) {
		if (NH_UNLIKELY(has_free_mark(p)))
			free_double("realloc", p);
		if (n <= NH_MAX_SMALL_SIZE && nh_class_to_size[nh_size_to_class(n)] == old)
			return ptr;
	} else if (n <= NH_MAX_SMALL_SIZE ? s->prof && n <= old : large_resize(s, n)) {
		/* (A sampled block, prof.c, has a large span of its own even when
		 * small: it stays there while it fits, as it would in its class.) */
		return ptr;
	}
	return realloc_move(ptr, old, n);
}
NH_EXPORT(realloc, nh_realloc);

void *nh_reallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return nh_realloc(ptr, n);
}
NH_EXPORT(reallocarray, nh_reallocarray);

/* ---- aligned memory ------------------------------------------------------ */

/* The first class at least n bytes whose every object is aligned to
 * align (spans are page-aligned: a size that is a multiple of align), or
 * 0 if none. */
static unsigned aligned_class(size_t n, size_t align)
{
	if (n <= NH_MAX_SMALL_SIZE && align <= NH_PAGE_SIZE)
		for (unsigned cls = nh_size_to_class(n); cls < NH_NUM_CLASSES; cls++)
			if (nh_class_to_size[cls] % align == 0)
				return cls;
	return 0;
}

/* Memory aligned to align (a power of two). */
static void *alloc_aligned(size_t align, size_t n)
{
	nh_ensure_init();
	if (NH_UNLIKELY(nh_hardened))
		return hardened_alloc(n, align, false);
	if (align <= 16) {
		if (align > 8 && n < 16)
			n = 16; /* the 8-byte class (NUMAHEAP_MIN_ALIGN=8) is only 8-aligned */
		return nh_malloc(n);
	}
	/* Heap profiling: a cached block on its class's clock (prof_small),
	 * the others on the thread's countdown. */
	bool prof = NH_UNLIKELY(nh_fast.plain == PLAIN_PROF);
	unsigned cls = aligned_class(n, align);
	if (cls && !ordered_class(cls))
		return prof ? prof_small(cls, n, align, false, (uintptr_t)__builtin_return_address(0)) : alloc_small(cls);
	if (prof && prof_tick(n))
		return prof_alloc(n, n, align, false, (uintptr_t)__builtin_return_address(0));
	/* The caches may hold ordered objects, 16-aligned only: straight from
	 * the class's spans. */
	if (cls)
		return alloc_from_central(heap_of_node(proc_current_node()), cls, true);
	if (align > ((size_t)1 << (NH_NODE_SHIFT - 1))) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc_large(n ? n : 1, align, false);
}

static bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

int nh_posix_memalign(void **memptr, size_t align, size_t n)
{
	if (!is_pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	void *p = alloc_aligned(align, n);
	if (!p)
		return ENOMEM; /* errno stays ENOMEM too, as glibc leaves it */
	*memptr = p;
	return 0;
}
NH_EXPORT(posix_memalign, nh_posix_memalign);

void *nh_aligned_alloc(size_t align, size_t n)
{
	if (!is_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return alloc_aligned(align, n);
}
NH_EXPORT(aligned_alloc, nh_aligned_alloc);

void *nh_memalign(size_t align, size_t n)
{
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	/* glibc rounds an alignment that is not a power of two up. */
	if (!is_pow2(align))
		align = align < 2 ? 1 : (size_t)1 << (64 - __builtin_clzll(align - 1));
	return alloc_aligned(align, n);
}
NH_EXPORT(memalign, nh_memalign);

void *nh_valloc(size_t n) { return alloc_aligned(os_page_size(), n); }
NH_EXPORT(valloc, nh_valloc);

void *nh_pvalloc(size_t n)
{
	size_t ps = os_page_size();
	if (n > SIZE_MAX - ps) {
		errno = ENOMEM;
		return NULL;
	}
	n = n ? (n + ps - 1) & ~(ps - 1) : ps;
	return alloc_aligned(ps, n);
}
NH_EXPORT(pvalloc, nh_pvalloc);

/*
 * glibc's other names for the same functions, which programs and libraries
 * call to reach "the C library's malloc" (wrappers that interpose malloc
 * themselves, older code): a block from glibc's own heap would then meet
 * numaheap's free, and abort as an invalid free. jemalloc, tcmalloc and
 * mimalloc export them for the same reason. cfree is glibc's old name for
 * free (a compatibility symbol since 2.26).
 */
NH_EXPORT(__libc_malloc, nh_malloc);
NH_EXPORT(__libc_free, nh_free);
NH_EXPORT(__libc_calloc, nh_calloc);
NH_EXPORT(__libc_realloc, nh_realloc);
NH_EXPORT(__libc_memalign, nh_memalign);
NH_EXPORT(__libc_valloc, nh_valloc);
NH_EXPORT(__libc_pvalloc, nh_pvalloc);
NH_EXPORT(__posix_memalign, nh_posix_memalign);
NH_EXPORT(cfree, nh_free);

/* ---- the rest of glibc's API --------------------------------------------- */

/* malloc_usable_size but for a small object's: NULL, hardened mode, large
 * objects, bad pointers (reported), no page table. */
NH_NOINLINE static size_t usable_size_slow(uintptr_t p)
{
	if (!p)
		return 0;
	if (NH_UNLIKELY(nh_hardened))
		return hardened_usable_size(p);
	return usable_size(checked_span("malloc_usable_size", p), p);
}

size_t nh_malloc_usable_size(void *ptr)
{
	/*
	 * A fast path like free's (programs that count their memory, Redis
	 * among them, call it on every malloc and free): the page entry, the
	 * same interior-pointer check, the size from the entry's kinds; the
	 * span only for the rest.
	 */
	uintptr_t p = (uintptr_t)ptr;
	uintptr_t i = (p >> NH_PT_SHIFT) - nh_fast.page_lo;
	if (NH_LIKELY(i < nh_fast.page_count)) {
		const uint16_t *table = nh_fast.page_table;
		unsigned e = page_entry(table, i);
		if (NH_LIKELY(page_entry_is_object(table, e, p)))
			return page_entry_size(table, e);
	}
	return usable_size_slow(p);
}
NH_EXPORT(malloc_usable_size, nh_malloc_usable_size);

int nh_malloc_trim(size_t pad)
{
	(void)pad;
	uint64_t start = scavenger_trim_turn();
	if (!start)
		return 0; /* paced: a program trimming all the time (scavenger.c) */
	size_t released = numaheap_release();
	scavenger_trim_spent(start, released);
	return released > 0;
}
NH_EXPORT(malloc_trim, nh_malloc_trim);

int nh_mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1; /* accepted; numaheap is tuned with NUMAHEAP_* variables */
}
NH_EXPORT(mallopt, nh_mallopt);

/* ---- numaheap.h --------------------------------------------------------- */

NH_API const char *numaheap_version(void) { return NUMAHEAP_VERSION_STRING; }

NH_API size_t numaheap_release(void)
{
	nh_ensure_init();
	/* Cached objects first, so spans can empty: every CPU's (what other
	 * threads freed), else this thread's own (per-thread caches). */
	struct pctx x;
	if (!proc_drain_all() && proc_acquire_p(&x)) {
		if (mcache_drain(&x) == 0)
			mcache_release_slots(&x);
		proc_release_p(&x);
	}
	mheap_drain_caches(false);
	return scavenge_now(true);
}

NH_API void *numaheap_malloc_onnode(size_t n, int node)
{
	nh_ensure_init();
	if (NH_UNLIKELY(nh_hardened))
		return hardened_alloc_onnode(n, node);
	struct mheap *h = heap_for_node(node);
	if (!h)
		return NULL;
	if (n <= NH_MAX_SMALL_SIZE)
		return alloc_from_central(h, nh_size_to_class(n), false);
	return alloc_large_on(h, n);
}

NH_API int numaheap_prof_dump(const char *path)
{
	nh_ensure_init();
	return prof_dump(path);
}

NH_API int numaheap_node_of(const void *ptr)
{
	uintptr_t p = (uintptr_t)ptr;
	if (!span_of(p))
		return -1;
	return node_of_addr(p);
}

NH_API size_t numaheap_stats_json(char *buf, size_t cap)
{
	nh_ensure_init();
	return stats_json(buf, cap);
}

NH_API void numaheap_stats_print(int fd, int json)
{
	nh_ensure_init();
	stats_print(fd, json != 0);
}
