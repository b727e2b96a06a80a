/*
 * malloc.c — numaheap: a malloc on the design of Go's runtime allocator.
 *
 * Overview (mirrored, with pictures, in docs/design.md).
 *
 * The main allocator works in runs of pages (8 KiB). Requests of up to
 * 32 KiB are rounded up to one of 66 size classes (sizeclasses.h), and each
 * class has its own set of spans: runs of pages cut into objects of exactly
 * that size, with a bitmap saying which are free. Larger requests take a run
 * of whole pages straight from the page heap.
 *
 * The data structures, after Go:
 *
 *   fixalloc   free lists of fixed-size off-heap objects, for metadata
 *   mheap      the page heap of one NUMA node: arenas, pageAlloc, spans
 *   pageAlloc  radix tree of free-page summaries over the node's arenas
 *   mspan      a run of in-use pages, holding one class or one large object
 *   mcentral   the spans of one size class on one node
 *   mcache     a P's per-class stacks of free objects
 *   P          an allocation context owning an mcache: one per CPU, whose
 *              fast paths are restartable sequences (rseq), or one per
 *              thread where rseq is unavailable (proc.c)
 *   M          a thread's allocator state: its P, its allocation counts
 *
 * Allocating a small object proceeds up a hierarchy of caches:
 *
 *   1. Round the size up to a class and pop the class's stack in the
 *      current P's mcache. No lock, no atomic read-modify-write: a
 *      restartable sequence of a dozen instructions on the CPU's slab.
 *   2. If the stack is empty, refill a batch from the class's mcentral
 *      (one lock round trip per batch), taking free objects from a partial
 *      span's bitmap with count-trailing-zeros.
 *   3. If mcentral has no partial span, it takes a fresh span from the
 *      node's mheap, which finds a run of free pages with pageAlloc.
 *   4. If pageAlloc has no such run, the mheap maps a new 64 MiB arena on
 *      the node (huge-page advised) and grows pageAlloc over it.
 *
 * Freeing a small object is the same in reverse: find its span from the
 * address (arena map -> heapArena -> page -> span: three loads, no search),
 * check that the pointer is the start of a live object, and push it on the
 * P's stack for its class. When the stack is full, its oldest batch goes
 * back to mcentral, which clears the objects' bits; a span left empty goes
 * back to the mheap, and free pages coalesce in pageAlloc. Large objects go
 * straight back to the mheap. Frees never unmap: pages stay with the heap
 * until the scavenger or malloc_trim gives their memory back to the OS.
 *
 * Detecting bad frees, cheaply enough to stay on:
 *   - a pointer outside the heap's address range, or on a page with no
 *     in-use span: "not allocated by numaheap" or already freed;
 *   - a pointer that is not the start of an object (one multiply and a
 *     compare against the span's size): "interior pointer";
 *   - a freed object's mark word (its first: mark_word()) is set to
 *     nh_cookie ^ address, a secret
 *     per-process value. malloc checks that it is there before it hands a
 *     cached object out, then zeroes it: missing, the object was freed
 *     twice (its other entry came out first) or written after free. An
 *     entry going back to its span is checked the same way, and the span's
 *     bit must be set (mspan_put). So a double free is caught before the
 *     object can be handed out twice; hardened mode also checks in free,
 *     to name the second free itself.
 *
 * Memory goes back to the OS in the background (scavenger.c): free pages
 * that stayed free for a while, beyond a goal of retained memory, whole
 * huge pages first, through io_uring madvise batches.
 *
 * Not built yet, and where it will go: one heap per node with binding
 * policy (numa/, mheap.c).
 */

#include "options.h"
#include "os/os.h"

#include "numa.h"

#include "mspan.h"
#include "arena.h"
#include "stats.h"

#include "mheap.h"
#include "mcache.h"
#include "proc.h"
#include "alloc.h"
#include "scavenger.h"
#include "hardened.h"
#include "sizeclass.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numaheap.h"

uintptr_t nh_cookie;
_Atomic int nh_initialized;
static __thread int nh_in_init;
_Atomic uint64_t nh_direct_allocs[NH_NUM_CLASSES];
bool nh_heaps_ok;

/* ---- initialisation ---------------------------------------------------- */

void persistent_init(void);

void nh_init_slow(void)
{
	int z = 0;
	if (!atomic_compare_exchange_strong(&nh_initialized, &z, 1)) {
		if (nh_in_init)
			nh_fatal("malloc called recursively during initialisation");
		while (atomic_load_explicit(&nh_initialized, memory_order_acquire) != 2)
			os_yield();
		return;
	}
	nh_in_init = 1;
	options_init();
	sizeclass_init();
	os_random(&nh_cookie, sizeof nh_cookie);
	nh_hardened = NH_OPTION(HARDENED) != 0;
	numa_init();
	if (numa_policy_init((int)NH_OPTION(NUMA), NH_OPTION(NUMA_BIND) == 1, (uint32_t)NH_OPTION(NODES)) < 0)
		nh_warn("NUMAHEAP_NODES names no node with memory; using all nodes");
	persistent_init();
	mcache_layout_init();
	/* A heap that cannot be set up (address space exhausted: ulimit -v)
	 * is left out; with none at all, every allocation fails with ENOMEM. */
	uint32_t ok = 0;
	for (int n = 0; n < NH_MAX_NODES; n++)
		if ((numa_pol.heap_mask >> n) & 1) {
			if (mheap_init(n) == 0)
				ok |= 1u << n;
			else
				nh_warn("cannot set up the heap of node %d (out of memory or address space)", n);
		}
	if (ok != numa_pol.heap_mask && ok)
		numa_policy_restrict(ok);
	nh_heaps_ok = ok != 0;
	proc_init();
	scavenger_init();
	stats_init();
	nh_in_init = 0;
	atomic_store_explicit(&nh_initialized, 2, memory_order_release);
	if (NH_OPTION(SHOW_CONFIG))
		options_print(2);
}

__attribute__((constructor)) static void nh_constructor(void)
{
	nh_ensure_init();
	proc_register_atfork();
	scavenger_install_signal();
}

__attribute__((destructor)) static void nh_destructor(void) { stats_at_exit(); }

#define size_to_class nh_size_to_class

/* ---- small objects: the fast paths --------------------------------------- */

NH_COLD NH_NORETURN static void report_cached_corruption(uintptr_t p)
{
	nh_report_bad_pointer("malloc", (void *)p,
			      "freed object was written after free, or freed twice (heap corruption)");
}

/*
 * NH_UNCHECKED builds (for measuring what the checks cost, perf/micro)
 * leave out the interior-pointer and cookie checks of the fast paths. The
 * cookie is still written, so the slow paths behave the same.
 */
#ifdef NH_UNCHECKED
#define NH_CHECKS 0
#else
#define NH_CHECKS 1
#endif

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

NH_NOINLINE static void *alloc_small_slow(unsigned cls);

/*
 * Work that must run with no allocator lock held (it may create a thread,
 * which allocates, or scavenge): after a slow path that may have grown the
 * heap.
 */
static void slow_path_hooks(void)
{
	scavenger_poll();
	if (NH_UNLIKELY(NH_OPTION(MEMORY_LIMIT)))
		scavenger_check_limit();
}

/* Pop an object of class cls; known as for mcache_pop_fast. */
NH_INLINE void *alloc_small_in(unsigned cls, int known)
{
	uintptr_t e;
	if (NH_UNLIKELY(!mcache_pop_fast(cls, &e, known)))
		return alloc_small_slow(cls);
	return entry_to_object(e);
}

NH_INLINE void *alloc_small(unsigned cls) { return alloc_small_in(cls, PLAIN_NO); }

/* One object of class cls straight from heap h's mcentral, with no cache. */
static void *alloc_from_central(struct mheap *h, unsigned cls)
{
	uintptr_t e;
	if (mcentral_refill(&h->central[cls], h, &e, 1) == 0) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_fetch_add_explicit(&nh_direct_allocs[cls], 1, memory_order_relaxed);
	return entry_to_object(e);
}

/* For threads without a P. */
static void *alloc_direct(unsigned cls) { return alloc_from_central(heap_of_node(proc_current_node()), cls); }

NH_NOINLINE static void *alloc_small_slow(unsigned cls)
{
	nh_ensure_init();
	if (NH_UNLIKELY(!nh_heaps_ok)) {
		errno = ENOMEM;
		return NULL;
	}
	for (int tries = 0; tries < 4; tries++) {
		uintptr_t e;
		/* The stack may have been refilled since the fast path missed
		 * (another thread on this CPU), or the P may be ours now. */
		if (mcache_pop_fast(cls, &e, PLAIN_NO))
			return entry_to_object(e);
		struct pctx x;
		if (!proc_acquire_p(&x))
			break;
		uintptr_t direct = 0;
		int r = mcache_refill(&x, cls, &direct);
		proc_release_p(&x);
		slow_path_hooks();
		if (r == 0) {
			errno = ENOMEM;
			return NULL;
		}
		if (r == 2) {
			/* The thread left the CPU before the batch was in: this one
			 * object is served straight away. */
			atomic_fetch_add_explicit(&nh_direct_allocs[cls], 1, memory_order_relaxed);
			return entry_to_object(direct);
		}
	}
	/* No P (a thread being set up or torn down, or a per-thread P that
	 * keeps missing because its thread could not register rseq). */
	return alloc_direct(cls);
}

/* ---- large objects ----------------------------------------------------- */

static struct mspan *alloc_large_span(size_t n, size_t align)
{
	if (n > ((size_t)1 << NH_NODE_SHIFT)) {
		errno = ENOMEM;
		return NULL;
	}
	size_t npages = (n + NH_PAGE_SIZE - 1) >> NH_PAGE_SHIFT;
	if (npages == 0)
		npages = 1;
	size_t align_pages = align > NH_PAGE_SIZE ? align >> NH_PAGE_SHIFT : 0;
	if (align_pages <= 1 && !nh_hardened)
		npages = large_round_pages(npages); /* hardened: guard pages at exact places */
	nh_ensure_init();
	if (NH_UNLIKELY(!nh_heaps_ok)) {
		errno = ENOMEM;
		return NULL;
	}
	struct mheap *h = heap_of_node(proc_current_node());
	struct mspan *s = NULL;
	if (align_pages <= 1 && !nh_hardened)
		s = mheap_large_cache_take(h, npages);
	if (!s)
		s = mheap_alloc_span(h, npages, 0, align_pages);
	slow_path_hooks();
	if (s)
		atomic_fetch_add_explicit(&nh_direct_allocs[0], 1, memory_order_relaxed);
	return s;
}

NH_NOINLINE static void *alloc_large(size_t n, size_t align, bool zero)
{
	struct mspan *s = alloc_large_span(n, align);
	if (!s)
		return NULL;
	if (zero && s->needzero)
		memset((void *)s->base, 0, n);
	return (void *)s->base;
}

/* ---- free -------------------------------------------------------------- */

NH_COLD NH_NORETURN static void free_bad(const char *api, uintptr_t p)
{
	if (!arena_of(p))
		nh_report_bad_pointer(api, (void *)p, "invalid pointer (not allocated by numaheap)");
	nh_report_bad_pointer(api, (void *)p, "pointer not in use (double free, or never allocated)");
}

NH_COLD NH_NORETURN static void free_interior(const char *api, uintptr_t p)
{
	nh_report_bad_pointer(api, (void *)p, "invalid pointer (inside an object, not its start)");
}

NH_COLD NH_NORETURN static void free_double(const char *api, uintptr_t p)
{
	nh_report_bad_pointer(api, (void *)p, "double free");
}

static void free_large(struct mspan *s, uintptr_t p)
{
	if (NH_UNLIKELY(p != s->base))
		free_interior("free", p);
	if (NH_UNLIKELY(s->guarded))
		nh_report_bad_pointer("free", (void *)p, "invalid pointer (inside an object, not its start)");
	if (NH_UNLIKELY(atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_INUSE))
		free_double("free", p); /* kept in the large-span cache: freed already */
	struct mheap *h = heap_of_node(s->node);
	atomic_fetch_add_explicit(&h->large_frees, 1, memory_order_relaxed);
	if (!mheap_large_cache_put(h, s))
		mheap_free_span(h, s);
}

/*
 * The object is valid and freed (cookie set); put it somewhere. The span is
 * looked up here, not passed in, so that free's fast path keeps no lookup
 * state alive across its push (fewer registers saved on every free).
 */
NH_NOINLINE static void free_small_slow(unsigned cls, uintptr_t p)
{
	struct mspan *s = span_of(p);
	for (;;) {
		struct pctx x;
		if (!proc_acquire_p(&x)) {
			/* No P (a thread being set up or torn down): straight home. */
			struct mheap *h = heap_of_node(s->node);
			mcentral_release(&h->central[cls], h, &p, 1);
			return;
		}
		if (x.c->node != s->node) {
			mcache_free_remote(x.c, p); /* frees go home */
			proc_release_p(&x);
			return;
		}
		int r = 1;
		if (!mcache_push_fast(cls, p, s->node, PLAIN_NO))
			r = mcache_overflow(&x, cls, p);
		proc_release_p(&x);
		if (r > 0)
			return;
	}
}

NH_INLINE struct mspan *checked_span(const char *api, uintptr_t p)
{
	struct mspan *s = span_of(p);
	if (NH_UNLIKELY(!s))
		free_bad(api, p);
	if (NH_LIKELY(s->sizeclass)) {
		uintptr_t off = p - s->base;
		if (NH_UNLIKELY(((off * s->divmul) >> 32) * s->elemsize != off))
			free_interior(api, p);
	} else if (NH_UNLIKELY(p != s->base + (s->guarded ? NH_PAGE_SIZE : 0))) {
		free_interior(api, p);
	} else if (NH_UNLIKELY(atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_INUSE)) {
		nh_report_bad_pointer(api, (void *)p, "pointer not in use (double free, or never allocated)");
	}
	return s;
}

/*
 * The reports, reached from free's fast path by a jump (they return in
 * theory, so the compiler can tail-call them), keeping that path free of a
 * stack frame. noipa: otherwise GCC works out that they never return,
 * calls them instead, and gives free a frame (sub/add rsp) for alignment.
 */
#if defined(__clang__)
#define NH_REPORT NH_COLD
#else
#define NH_REPORT NH_COLD __attribute__((noipa))
#endif
NH_REPORT static void free_report_bad(uintptr_t p)
{
	if (p) /* free(NULL) comes here from the per-CPU fast path: no arena at 0 */
		free_bad("free", p);
}
NH_REPORT static void free_report_interior(uintptr_t p) { free_interior("free", p); }
NH_REPORT static void free_report_double(uintptr_t p) { free_double("free", p); }

/* Not a small object: a large one, or a bad pointer. */
NH_NOINLINE static void free_not_small(uintptr_t p)
{
	struct mspan *s = span_of(p);
	if (NH_UNLIKELY(!s))
		free_bad("free", p);
	if (NH_UNLIKELY(s->sizeclass))
		free_interior("free", p); /* a small span's page with no info: cannot be */
	free_large(s, p);
}

NH_INLINE void free_object_in(uintptr_t p, bool hardened, int known)
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
	/* The mark; checked here only in hardened mode, which names the
	 * second free itself (the default mode catches it at reuse, above). */
	if (hardened && NH_UNLIKELY(has_free_mark(p))) {
		free_report_double(p);
		return;
	}
	*mark_word(p) = free_mark(p);
	if (NH_UNLIKELY(!mcache_push_fast(cls, p, (unsigned)node_of_addr(p), known)))
		free_small_slow(cls, p);
}

NH_INLINE void free_object_as(uintptr_t p, bool hardened) { free_object_in(p, hardened, PLAIN_NO); }

/* ---- entry points for hardened.c ----------------------------------------------- */

void *nh_alloc_class(unsigned cls) { return alloc_small(cls); }
void *nh_alloc_large(size_t n, size_t align, bool zero) { return alloc_large(n, align, zero); }
struct mspan *nh_alloc_large_span(size_t n, size_t align) { return alloc_large_span(n, align); }
struct mspan *nh_checked_span(const char *api, uintptr_t p) { return checked_span(api, p); }

void nh_free_unchecked(struct mspan *s, uintptr_t p)
{
	(void)s;
	free_object_as(p, true);
}

/* ---- the C API ---------------------------------------------------------- */

/* malloc beyond the 8-byte-step classes: hardened, medium or large. */
NH_NOINLINE static void *malloc_beyond_8_step(size_t n)
{
	if (NH_UNLIKELY(nh_hardened))
		return hardened_alloc(n, 0, false);
	if (n <= NH_MAX_SMALL_SIZE)
		return alloc_small(size_to_class(n));
	return alloc_large(n, 0, false);
}

/* The class of n <= NH_SMALL_SIZE_MAX bytes: one table load. */
#define CLASS8(n) nh_size_to_class8[((n) + NH_SMALL_SIZE_DIV - 1) / NH_SMALL_SIZE_DIV]

/* malloc with per-thread caches, in hardened mode, before initialisation,
 * or beyond 1 KiB. */
NH_NOINLINE static void *malloc_other(size_t n)
{
	if (NH_LIKELY(n <= NH_SMALL_SIZE_MAX)) {
		if (NH_LIKELY(nh_fast.plain == PLAIN_PER_THREAD))
			return alloc_small_in(CLASS8(n), PLAIN_PER_THREAD);
		if (!nh_hardened)
			return alloc_small(CLASS8(n));
	}
	return malloc_beyond_8_step(n);
}

NH_API void *NH_NAME(malloc)(size_t n)
{
	/*
	 * Sizes up to 1 KiB on a per-CPU P, hardened mode off: one compare,
	 * one flag (it says both), one table load to the class. The flag
	 * costs the per-thread mode a call (malloc_other); the per-CPU mode
	 * is the one that runs wherever the kernel has rseq.
	 */
	if (NH_LIKELY(n <= NH_SMALL_SIZE_MAX) && NH_LIKELY(nh_fast.plain == PLAIN_RSEQ))
		return alloc_small_in(CLASS8(n), PLAIN_RSEQ);
	return malloc_other(n);
}

/* free with per-thread caches, in hardened mode, or before initialisation. */
NH_NOINLINE static void free_other(uintptr_t p)
{
	if (NH_LIKELY(nh_fast.plain == PLAIN_PER_THREAD)) {
		free_object_in(p, false, PLAIN_PER_THREAD);
		return;
	}
	if (NH_UNLIKELY(!p))
		return;
	if (NH_UNLIKELY(nh_hardened)) {
		hardened_free(p);
		return;
	}
	free_object_as(p, false);
}

NH_API void NH_NAME(free)(void *ptr)
{
	/* NULL has no arena: the fast path's lookup sends it to
	 * free_report_bad, which returns. */
	if (NH_LIKELY(nh_fast.plain == PLAIN_RSEQ))
		free_object_in((uintptr_t)ptr, false, PLAIN_RSEQ);
	else
		free_other((uintptr_t)ptr);
}

NH_API void *NH_NAME(calloc)(size_t nmemb, size_t size)
{
	size_t n;
	if (NH_UNLIKELY(__builtin_mul_overflow(nmemb, size, &n))) {
		errno = ENOMEM;
		return NULL;
	}
	if (NH_UNLIKELY(nh_hardened))
		return hardened_alloc(n, 0, true);
	if (n <= NH_MAX_SMALL_SIZE) {
		void *p = alloc_small(size_to_class(n));
		if (p)
			memset(p, 0, n);
		return p;
	}
	return alloc_large(n, 0, true);
}

static size_t usable_size(struct mspan *s)
{
	return s->sizeclass ? s->elemsize : (size_t)s->npages << NH_PAGE_SHIFT;
}

static void *realloc_move(void *ptr, size_t old, size_t n)
{
	void *q = NH_NAME(malloc)(n);
	if (!q)
		return NULL;
	memcpy(q, ptr, NH_MIN(old, n));
	NH_NAME(free)(ptr);
	return q;
}

NH_API void *NH_NAME(realloc)(void *ptr, size_t n)
{
	if (!ptr)
		return NH_NAME(malloc)(n);
	if (n == 0) {
		NH_NAME(free)(ptr); /* glibc's behaviour, which programs rely on */
		return NULL;
	}
	uintptr_t p = (uintptr_t)ptr;
	if (NH_UNLIKELY(nh_hardened))
		return hardened_realloc(p, n);
	struct mspan *s = checked_span("realloc", p);
	if (s->sizeclass) {
		if (NH_UNLIKELY(has_free_mark(p)))
			free_double("realloc", p);
		if (n <= NH_MAX_SMALL_SIZE && size_to_class(n) == s->sizeclass)
			return ptr;
		return realloc_move(ptr, s->elemsize, n);
	}
	size_t old = usable_size(s);
	if (n <= NH_MAX_SMALL_SIZE || n > ((size_t)1 << NH_NODE_SHIFT))
		return realloc_move(ptr, old, n);
	size_t npages = large_round_pages((n + NH_PAGE_SIZE - 1) >> NH_PAGE_SHIFT);
	struct mheap *h = heap_of_node(s->node);
	if (npages == s->npages)
		return ptr;
	if (npages < s->npages) {
		mheap_shrink_span(h, s, npages);
		return ptr;
	}
	if (mheap_grow_span(h, s, npages))
		return ptr;
	return realloc_move(ptr, old, n);
}

NH_API void *NH_NAME(reallocarray)(void *ptr, size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return NH_NAME(realloc)(ptr, n);
}

/* Memory aligned to align (a power of two). */
static void *alloc_aligned(size_t align, size_t n)
{
	if (NH_UNLIKELY(nh_hardened))
		return hardened_alloc(n, align, false);
	if (align <= 16) {
		if (align > 8 && n < 16)
			n = 16; /* the 8-byte class (NUMAHEAP_MIN_ALIGN=8) is only 8-aligned */
		return NH_NAME(malloc)(n);
	}
	if (n <= NH_MAX_SMALL_SIZE && align <= NH_PAGE_SIZE) {
		/* Spans are page-aligned, so a class whose size is a multiple of
		 * align has every object aligned. */
		for (unsigned cls = size_to_class(n); cls < NH_NUM_CLASSES; cls++)
			if (nh_class_to_size[cls] % align == 0)
				return alloc_small(cls);
	}
	if (align > ((size_t)1 << (NH_NODE_SHIFT - 1))) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc_large(n ? n : 1, align, false);
}

static bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

NH_API int NH_NAME(posix_memalign)(void **memptr, size_t align, size_t n)
{
	if (!is_pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	void *p = alloc_aligned(align, n);
	if (!p)
		return ENOMEM; /* errno stays ENOMEM too, as glibc leaves it */
	*memptr = p;
	return 0;
}

NH_API void *NH_NAME(aligned_alloc)(size_t align, size_t n)
{
	if (!is_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return alloc_aligned(align, n);
}

NH_API void *NH_NAME(memalign)(size_t align, size_t n)
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

NH_API void *NH_NAME(valloc)(size_t n) { return alloc_aligned(os_page_size(), n); }

NH_API void *NH_NAME(pvalloc)(size_t n)
{
	size_t ps = os_page_size();
	if (n > SIZE_MAX - ps) {
		errno = ENOMEM;
		return NULL;
	}
	n = n ? (n + ps - 1) & ~(ps - 1) : ps;
	return alloc_aligned(ps, n);
}

NH_API size_t NH_NAME(malloc_usable_size)(void *ptr)
{
	if (!ptr)
		return 0;
	if (NH_UNLIKELY(nh_hardened))
		return hardened_usable_size((uintptr_t)ptr);
	return usable_size(checked_span("malloc_usable_size", (uintptr_t)ptr));
}

NH_API void NH_NAME(free_sized)(void *ptr, size_t size)
{
	(void)size;
	NH_NAME(free)(ptr);
}

NH_API void NH_NAME(free_aligned_sized)(void *ptr, size_t align, size_t size)
{
	(void)align;
	(void)size;
	NH_NAME(free)(ptr);
}

NH_API int NH_NAME(malloc_trim)(size_t pad)
{
	(void)pad;
	return numaheap_release() > 0;
}

NH_API int NH_NAME(mallopt)(int param, int value)
{
	(void)param;
	(void)value;
	return 1; /* accepted; numaheap is tuned with NUMAHEAP_* variables */
}

/* ---- numaheap.h --------------------------------------------------------- */

NH_API const char *numaheap_version(void) { return NUMAHEAP_VERSION_STRING; }

NH_API size_t numaheap_release(void)
{
	nh_ensure_init();
	/* This thread's (or CPU's) cached objects first, so spans can empty. */
	struct pctx x;
	if (proc_acquire_p(&x)) {
		mcache_drain(&x);
		proc_release_p(&x);
	}
	mheap_drain_caches(false);
	return scavenge_now(true);
}

NH_API void *numaheap_malloc_onnode(size_t n, int node)
{
	nh_ensure_init();
	if (!nh_heaps_ok) {
		errno = ENOMEM;
		return NULL;
	}
	if (node < 0 || node >= NUMA_MAX_NODES || !(numa_topo.node_mask >> node & 1)) {
		errno = EINVAL;
		return NULL;
	}
	if (!nh_heaps[node]) {
		/* Served by the heap its CPUs use. */
		for (int c = 0; c < NUMA_MAX_CPUS; c++)
			if (numa_topo.cpu_node[c] == node) {
				node = numa_heap_node_of_cpu(c);
				break;
			}
		if (!nh_heaps[node])
			node = numa_heap_node_of_cpu(-1);
	}
	struct mheap *h = nh_heaps[node];
	size_t extra = nh_hardened ? 8 : 0; /* room for the canary */
	if (n <= NH_MAX_SMALL_SIZE - extra) {
		unsigned cls = size_to_class(n + extra);
		void *p = alloc_from_central(h, cls);
		if (p && nh_hardened)
			hardened_set_canary((uintptr_t)p, cls);
		return p;
	}
	if (n > ((size_t)1 << NH_NODE_SHIFT)) {
		errno = ENOMEM;
		return NULL;
	}
	struct mspan *s = mheap_alloc_span(h, (n + NH_PAGE_SIZE - 1) >> NH_PAGE_SHIFT, 0, 0);
	slow_path_hooks();
	if (!s)
		return NULL;
	atomic_fetch_add_explicit(&nh_direct_allocs[0], 1, memory_order_relaxed);
	return (void *)s->base;
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
