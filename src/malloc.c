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
 * Freeing a small object is the same in reverse: one load from the page
 * table (arena.h) gives the page's class, node and phase (the span struct
 * is not touched), a multiply checks that the pointer is the start of an
 * object, and the object is pushed on the P's stack for its class and
 * node. (realloc and the general paths find the span itself: arena map ->
 * heapArena -> page -> span, three loads, no search.) When the stack is full, its oldest batch goes
 * back to mcentral, which clears the objects' bits; a span left empty goes
 * back to the mheap, and free pages coalesce in pageAlloc. Large objects go
 * straight back to the mheap. Frees never unmap: pages stay with the heap
 * until the scavenger or malloc_trim gives their memory back to the OS.
 *
 * Detecting bad frees, cheaply enough to stay on:
 *   - a pointer outside the heap's address range, or on a page with no
 *     in-use span: "not allocated by numaheap" or already freed;
 *   - a pointer that is not the start of an object (one multiply and a
 *     compare: Lemire's divisibility test, arena.h), or in a span's tail
 *     waste, which comes first (mspan.h): "interior pointer";
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
 * Where the code is:
 *
 *   api.c       the C API and numaheap.h's: checks arguments, dispatches to
 *               hardened.c in hardened mode, else to the core below
 *   hardened.c  NUMAHEAP_HARDENED: canaries, guard pages; above the core,
 *               which it calls like api.c does
 *   fastpath.h  malloc's and free's fast paths (inline), on mcache.h's
 *               pop and push
 *   malloc.c    this file: start-up, the slow paths of small objects, the
 *               bad-free reports
 *   large.c     large objects
 *   ordered.c   NUMAHEAP_ORDERED: small objects placed in allocation order
 *               instead of by class (off by default); orelease.c, the
 *               scavenger's and the statistics' side of it
 *
 * Not built yet: Go's per-P pageCache and mspancache (a small span's pages
 * and struct come from the node's heap, under its lock); restartable
 * sequences on AArch64 (per-thread P's there: arch/aarch64/rseq.h).
 *
 * Locking: none here; the slow paths take a per-CPU P's lock
 * (proc_acquire_p), mcentral's and the heap's inside those components.
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
#include "prof.h"
#include "alloc.h"
#include "fastpath.h"
#include "scavenger.h"
#include "hardened.h"
#include "sizeclass.h"
#include "ordered.h"
#include "ospan.h"

#include <errno.h>

uintptr_t nh_cookie;
_Atomic int nh_initialized;
static __thread int nh_in_init;
_Atomic uint64_t nh_direct_allocs[NH_NUM_CLASSES];
_Atomic uint64_t nh_direct_cycles[NH_NUM_CLASSES];
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
	/* Before any call a seccomp filter might refuse (os.h). */
	os_seccomp_at_start = os_seccomp_mode();
	os_basic_syscalls = NH_OPTION(SYSCALLS) == OS_SYSCALLS_BASIC ||
			    (NH_OPTION(SYSCALLS) == OS_SYSCALLS_AUTO && os_seccomp_at_start == 2);
	sizeclass_init();
	large_init();
	os_random(&nh_cookie, sizeof nh_cookie);
	nh_hardened = NH_OPTION(HARDENED) != 0;
	numa_init();
	if (numa_policy_init((int)NH_OPTION(NUMA), NH_OPTION(NUMA_BIND) == 1, (uint32_t)NH_OPTION(NODES)) < 0)
		nh_warn("NUMAHEAP_NODES names no node with memory; using all nodes");
	persistent_init();
	mcache_layout_init();
	bool mapped = arena_init(numa_pol.heap_mask ? 31 - __builtin_clz(numa_pol.heap_mask) : 0);
	ordered_init(); /* after arena_init: the page table's chunks */
	/* A heap that cannot be set up (address space exhausted: ulimit -v)
	 * is left out; with none at all, every allocation fails with ENOMEM. */
	uint32_t ok = 0;
	for (int n = 0; n < NH_MAX_NODES; n++)
		if ((numa_pol.heap_mask >> n) & 1) {
			if (mapped && mheap_init(n) == 0)
				ok |= 1u << n;
			else
				nh_warn("cannot set up the heap of node %d (out of memory or address space)", n);
		}
	if (ok != numa_pol.heap_mask && ok)
		numa_policy_restrict(ok);
	nh_heaps_ok = ok != 0;
	proc_init();
	prof_init();
	scavenger_init();
	stats_init();
	nh_fast_publish(); /* malloc_limit stays 0 with profiling on */
	nh_in_init = 0;
	atomic_store_explicit(&nh_initialized, 2, memory_order_release);
	/* Last: malloc_other's profiling path counts on initialisation done. */
	if (nh_prof_on) {
		nh_fast.plain = PLAIN_PROF;
		nh_fast.prof_limit = NH_SMALL_SIZE_MAX + 1;
	}
	if (NH_OPTION(SHOW_CONFIG))
		options_print(2);
}

__attribute__((constructor)) static void nh_constructor(void)
{
	nh_ensure_init();
	fork_register_handlers();
	scavenger_install_signal();
}

__attribute__((destructor)) static void nh_destructor(void)
{
	stats_at_exit();
	if (nh_prof_on && prof_dump(NULL) != 0)
		nh_warn("cannot write the heap profile to %s", nh_opt.prof_file);
}

/* ---- bad frees ---------------------------------------------------------- */

NH_COLD NH_NORETURN void free_bad(const char *api, uintptr_t p)
{
	if (!arena_of(p))
		nh_report_bad_pointer(api, (void *)p, "invalid pointer (not allocated by numaheap)");
	nh_report_bad_pointer(api, (void *)p, "pointer not in use (double free, or never allocated)");
}

NH_COLD NH_NORETURN void free_interior(const char *api, uintptr_t p)
{
	nh_report_bad_pointer(api, (void *)p, "invalid pointer (inside an object, not its start)");
}

NH_COLD NH_NORETURN void free_double(const char *api, uintptr_t p)
{
	nh_report_bad_pointer(api, (void *)p, "double free");
}

NH_COLD NH_NORETURN void report_cached_corruption(uintptr_t p)
{
	nh_report_bad_pointer("malloc", (void *)p,
			      "freed object was written after free, or freed twice (heap corruption)");
}

void free_general(uintptr_t p)
{
	struct mspan *s = span_of(p);
	if (s && s->ordered) {
		/* NUMAHEAP_ORDERED: the page table has no class for these pages,
		 * so every such free comes here; the path is kept short. */
		unsigned cls = ordered_object_class(s, p);
		if (NH_UNLIKELY(!cls))
			ordered_bad_free(s, p);
		*mark_word(p) = free_mark(p);
		if (NH_UNLIKELY(__atomic_load_n(&s->list, __ATOMIC_RELAXED) == SPAN_LIST_EVAC))
			ordered_free_evac(s, p, cls);
		else if (NH_UNLIKELY(!mcache_push(NH_HOFF(s->node, cls), p)))
			free_to_cache(p, s->node, cls);
		return;
	}
	if (!s || !s->sizeclass) {
		free_not_small(p); /* large (large.c), or not in use: reported there */
		return;
	}
	free_small_checked(checked_span("free", p), p, false);
}

void *fresh_object(uintptr_t e)
{
	uintptr_t p = e & ~NH_ENTRY_FRESH;
	*mark_word(p) = 0; /* a mark from the object's last life: not freed now */
	return (void *)p;
}

/* ---- small objects: the slow paths ---------------------------------------- */

void slow_path_hooks(void)
{
	scavenger_poll();
	if (NH_UNLIKELY(NH_OPTION(MEMORY_LIMIT)))
		scavenger_check_limit();
}

void *alloc_from_central(struct mheap *h, unsigned cls, bool spans_only)
{
	uintptr_t e;
	struct mcentral *c = &h->central[cls];
	if ((spans_only || !mcentral_refill(c, h, &e, 1)) && !mcentral_refill_spans(c, h, &e, 1)) {
		errno = ENOMEM;
		return NULL;
	}
	proc_count_direct(cls);
	return entry_to_object(e);
}

/* For threads without a P. */
static void *alloc_direct(unsigned cls) { return alloc_from_central(heap_of_node(proc_current_node()), cls, false); }

/*
 * mcache_refill for a class placed in allocation order (ordered.c): the
 * freed objects other caches passed on first (mcentral_refill takes only
 * the transfer cache for these classes; a racy look skips it when empty),
 * else a fresh object, cut after the P's last, served straight away (2)
 * as a fresh entry (its mark cleared on the way out); a streak of one
 * class gets more of them at a time, through the stack (ordered_alloc_n).
 */
static int refill_ordered(struct pctx *x, unsigned cls, uintptr_t *direct)
{
	struct mheap *h = heap_of_node((int)x->c->node);
	int r = mcentral_transfer_objects(&h->central[cls]) ? mcache_refill(x, cls, direct) : 0;
	if (r)
		return r;
	uintptr_t v[16], buf[16];
	unsigned n = ordered_alloc_n(x->c, cls, v, 16);
	if (n <= 1) {
		*direct = n ? v[0] | NH_ENTRY_FRESH : 0;
		return n ? 2 : 0;
	}
	for (unsigned i = 0; i < n; i++) /* popped in address order (spread over lines under one: mcache_fill) */
		buf[i] = v[n - 1 - i] | NH_ENTRY_FRESH;
	return mcache_fill(x, cls, buf, n, direct);
}

int alloc_small_refill(unsigned cls, uintptr_t *direct)
{
	nh_ensure_init();
	if (NH_UNLIKELY(!nh_heaps_ok)) {
		errno = ENOMEM;
		return 0;
	}
	struct pctx x;
	if (!proc_acquire_p(&x))
		return -1;
	int r = NH_UNLIKELY(ordered_class(cls)) ? refill_ordered(&x, cls, direct) : mcache_refill(&x, cls, direct);
	proc_release_p(&x);
	slow_path_hooks();
	if (r == 0)
		errno = ENOMEM;
	else if (r == 2)
		/* The thread left the CPU before the batch was in, or a fresh
		 * ordered object: this one is served straight away. */
		proc_count_direct(cls);
	return r;
}

NH_NOINLINE void *alloc_small_slow(unsigned cls)
{
	for (int tries = 0; tries < 4; tries++) {
		uintptr_t e;
		/* The stack may have been refilled since the fast path missed
		 * (another thread on this CPU), or the P may be ours now. */
		if (mcache_pop_class(cls, &e))
			return entry_to_object(e);
		int r = alloc_small_refill(cls, &e);
		if (r == 0)
			return NULL;
		if (r == 2)
			return entry_to_object(e);
		if (r < 0)
			break;
	}
	/* No P (a thread being set up or torn down, or a per-thread P that
	 * keeps missing because its thread could not register rseq). */
	return alloc_direct(cls);
}

/*
 * The object is valid and freed (mark set); put it somewhere. The span is
 * looked up here, not passed in, so that free's fast path keeps no lookup
 * state alive across its push (fewer registers saved on every free).
 */
NH_NOINLINE void free_small_slow(uintptr_t p)
{
	struct mspan *s = span_of(p);
	/* A chunk's object (ordered.c) has its class in its page entry, not
	 * in its span. */
	free_to_cache(p, s->node, NH_UNLIKELY(s->ordered) ? ordered_object_class(s, p) : s->sizeclass);
}

void free_to_cache(uintptr_t p, unsigned node, unsigned cls)
{
	for (;;) {
		struct pctx x;
		if (!proc_acquire_p(&x)) {
			/* No P (a thread being set up or torn down): straight home. */
			struct mheap *h = heap_of_node((int)node);
			mcentral_release(&h->central[cls], h, &p, 1);
			return;
		}
		if (x.c->node != node) {
			mcache_free_remote(x.c, p); /* frees go home */
			proc_release_p(&x);
			return;
		}
		int r = 1;
		if (!mcache_push(NH_HOFF(node, cls), p))
			r = mcache_overflow(&x, cls, p);
		proc_release_p(&x);
		if (r > 0)
			return;
	}
}

struct mheap *heap_for_node(int node)
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
	return nh_heaps[node];
}

/* ---- out-of-line copies for hardened.c ------------------------------------ */

void *nh_alloc_class(unsigned cls) { return alloc_small(cls); }
struct mspan *nh_checked_span(const char *api, uintptr_t p) { return checked_span(api, p); }

void nh_free_unchecked(struct mspan *s, uintptr_t p)
{
	if (!s->sizeclass)
		free_not_small(p);
	else
		free_small_checked(s, p, true);
}
