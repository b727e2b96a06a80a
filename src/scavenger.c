/*
 * scavenger.c — which free memory goes back to the OS, when, and how much.
 *
 * See malloc.c for the overview; this is the policy half of Go's
 * mgcscavenge.go, carried over to a C heap (the searches of the pageAlloc
 * it runs are pagescav.c's; the thread that runs it, its pacing and its
 * other jobs are bgthread.c's). Freed pages stay with the heap (a malloc
 * that follows a free reuses them without entering the kernel); the
 * scavenger decides which of them go back to the OS, and when:
 *
 *   goal     free memory a node keeps resident: NUMAHEAP_SCAVENGE_RETAIN
 *            percent of its in-use pages. Beyond it the excess is released.
 *   idle     a chunk (4 MiB) whose pages were freed less than
 *            NUMAHEAP_SCAVENGE_DELAY ago is left alone: memory that a
 *            program frees and takes again (phases, request bursts) is not
 *            released and faulted back in.
 *   order    whole free 2 MiB huge pages first (one madvise returns a whole
 *            huge page and breaks none), highest addresses first (the heap
 *            packs low, so the top stays free longest). Then, if the node
 *            is still above its goal, the free runs of sparse huge pages
 *            (at most 1/8 of their pages allocated: what a freed region
 *            leaves behind, a span or two per size class). Dense huge
 *            pages are broken only when everything is asked for
 *            (malloc_trim, numaheap_release, the memory limit): a broken
 *            huge page costs TLB misses while it lives, and 4 KiB faults
 *            when the program grows into it again (perf/rss measured 1.3x
 *            the CPU of the allocating phases when the background passes
 *            broke them all; docs/performance.md).
 *   limit    NUMAHEAP_MEMORY_LIMIT: a thread that takes a span while the
 *            heap's resident memory exceeds the limit scavenges at once,
 *            itself, ignoring idleness, and may break huge pages.
 *   regrowth when the program grows back into released memory, the
 *            background thread faults it in ahead of the program
 *            (NUMAHEAP_PREFAULT, "pre-faulting" below), so the kernel
 *            zeroes it on an idle CPU rather than on the program's. This
 *            file says what to fault in; bgthread.c runs the episodes.
 *
 * Correct by construction, as in Go: a run being released is first
 * allocated in the pageAlloc (page_alloc_take_idle), so no span can be
 * carved from it; after the release it is freed back with its scavenged
 * bits set. Scavenged pages released with MADV_DONTNEED read as zero, so
 * calloc of a span made only of them skips the memset; with MADV_FREE
 * (NUMAHEAP_RELEASE=free) they may not, and it does not skip.
 *
 * The releases of one pass go out in batches (os/uring.c): io_uring
 * madvise submissions, one system call per batch, or plain madvise when
 * io_uring is unavailable or NUMAHEAP_SCAVENGER=madvise. The background
 * passes use the thread's batch (its ring); synchronous scavenging uses
 * sync_batch, always plain madvise.
 *
 * Locking: the heap lock around taking and returning runs, never across a
 * system call. scav_lock (rank LOCK_RANK_SCAV, below the heap locks)
 * serialises synchronous scavenging (trim, limit) and pre-faulting, which
 * holds it while it looks and faults in; the background passes do not take
 * it (what they release is allocated in the pageAlloc meanwhile, so a
 * synchronous scavenge cannot take it too). nh_scav's counters are written
 * by the background thread, or under scav_lock, and read racily by stats.
 */

#include "options.h"
#include "os/os.h"
#include "numa.h"

#include "mheap.h"
#include "mcache.h"

#include "scavenger.h"
#include "hardened.h"

#include <errno.h>

static struct os_batch sync_batch; /* under scav_lock */
static struct mutex scav_lock;

struct nh_scav_stats nh_scav;

static uint64_t delay_ns(void) { return (uint64_t)NH_OPTION(SCAVENGE_DELAY); }

void scavenger_init(void)
{
	mutex_init(&scav_lock, LOCK_RANK_SCAV);
	nh_scav.backend = NH_OPTION(SCAVENGER) == SCAV_OFF ? "off" : "pending";
	/* Without binding on a multi-node machine, the pages would land on
	 * the background thread's node rather than the program's. */
	bool prefault = NH_OPTION(SCAVENGER) != SCAV_OFF && NH_OPTION(PREFAULT) && !nh_hardened &&
			!(NH_OPTION(NUMA) == NUMA_OFF && numa_topo.nnodes > 1);
	nh_scav.prefault = prefault ? "on" : "off";
	bg_init(prefault);
}

void scavenger_lock(void) { mutex_lock(&scav_lock); }
void scavenger_unlock(void) { mutex_unlock(&scav_lock); }

/* ---- one node --------------------------------------------------------------------- */

/* Free resident bytes of h beyond its goal; heap lock held. */
static size_t excess_bytes(struct mheap *h)
{
	size_t released = h->pages.pages_scav << NH_PAGE_SHIFT;
	size_t free_resident = h->mapped_bytes - h->inuse_bytes - NH_MIN(released, h->mapped_bytes - h->inuse_bytes);
	size_t goal = h->inuse_bytes / 100 * (size_t)NH_OPTION(SCAVENGE_RETAIN);
	return free_resident > goal ? free_resident - goal : 0;
}

/*
 * Release up to want bytes of h matching q, through batch b. Returns bytes
 * released. The heap lock is taken per batch and dropped for the system call.
 */
static size_t release_runs(struct mheap *h, struct scav_query *q, size_t want, struct os_batch *b)
{
	size_t released = 0;
	enum os_release_mode mode = (enum os_release_mode)NH_OPTION(RELEASE);
	while (want > released) {
		b->n = 0;
		mutex_lock(&h->lock);
		while (b->n < OS_BATCH_MAX && want > released) {
			size_t left = (want - released + NH_PAGE_SIZE - 1) >> NH_PAGE_SHIFT;
			q->max_pages = NH_MAX(left, q->align_pages);
			size_t n;
			uintptr_t a = page_alloc_take_idle(&h->pages, q, &n);
			if (!a)
				break;
			b->op[b->n].p = (void *)a;
			b->op[b->n].len = n << NH_PAGE_SHIFT;
			b->n++;
			released += n << NH_PAGE_SHIFT; /* provisional */
		}
		mutex_unlock(&h->lock);
		if (b->n == 0)
			break;
		os_batch_submit(b, mode);
		mutex_lock(&h->lock);
		for (unsigned i = 0; i < b->n; i++) {
			size_t np = b->op[i].len >> NH_PAGE_SHIFT;
			if (b->op[i].res == 0) {
				page_alloc_free_scavenged(&h->pages, (uintptr_t)b->op[i].p, np);
				h->scav_released_bytes += b->op[i].len;
			} else {
				page_alloc_free(&h->pages, (uintptr_t)b->op[i].p, np);
				released -= b->op[i].len;
			}
		}
		mutex_unlock(&h->lock);
		if (q->limit <= h->pages.base)
			break;
	}
	return released;
}

/*
 * Scavenge node h towards its goal (or everything free, if all). Returns
 * the bytes released; *next_idle gets the tick at which a busy chunk turns
 * idle (0 if none).
 */
static size_t scavenge_node(struct mheap *h, bool all, uint64_t now, struct os_batch *b, uint64_t *next_idle)
{
	mutex_lock(&h->lock);
	size_t want = all ? (size_t)-1 : excess_bytes(h);
	uintptr_t top = h->pages.grown_end;
	mutex_unlock(&h->lock);
	if (want == 0)
		return 0;
	uint64_t idle_before = all || now < delay_ns() ? 0 : now - delay_ns();
	/* Pass 1: whole huge pages. */
	struct scav_query q = {.limit = top, .min_pages = NH_PAGES_PER_HUGE, .align_pages = NH_PAGES_PER_HUGE,
			       .idle_before = idle_before};
	size_t released = release_runs(h, &q, want, b);
	uint64_t busy = q.next_idle;
	if (released < want) {
		/*
		 * Pass 2: smaller runs, breaking huge pages. When asked for
		 * everything (trim, release, the memory limit), from any huge
		 * page; in the background, still above the goal, only from
		 * sparse ones (at most 1/8 allocated): a span or two left
		 * behind in an otherwise free huge page when a whole region of
		 * the heap was freed. Dense huge pages stay whole (Go's rule):
		 * the program is using them, and breaking them costs TLB misses
		 * and 4 KiB faults when it grows into them again.
		 */
		struct scav_query q2 = {.limit = top, .min_pages = 1, .align_pages = 1, .idle_before = idle_before,
					.max_used = all ? 0 : NH_PAGES_PER_HUGE / 8};
		released += release_runs(h, &q2, want - released, b);
		if (q2.next_idle && (!busy || q2.next_idle < busy))
			busy = q2.next_idle;
	}
	if (next_idle)
		*next_idle = busy;
	return released;
}

/* ---- the background thread's passes ------------------------------------------------- */

size_t scavenge_background(uint64_t now, struct os_batch *b, uint64_t *due)
{
	uint64_t next = 0;
	size_t released = 0;
	nh_scav.backend = b->backend == OS_BACKEND_URING ? "io_uring" : "madvise";
	for_each_heap(h) {
		uint64_t ni = 0;
		released += scavenge_node(h, false, now, b, &ni);
		if (ni && (!next || ni < next))
			next = ni;
	}
	nh_scav.bg_released_bytes += released;
	nh_scav.submissions = b->submissions;
	nh_scav.bg_syscalls = b->syscalls;
	nh_scav.passes++;
	*due = next ? next + delay_ns() : 0;
	return released;
}

/* ---- synchronous scavenging: malloc_trim, the memory limit -------------------------- */

size_t scavenge_now(bool all)
{
	size_t released = 0;
	uint64_t now = os_nanotime();
	mutex_lock(&scav_lock);
	/* A release of everything ends pre-faulting (the episode holds
	 * scav_lock while it faults in, so it is between two looks now): it
	 * would fault straight back in what the program asked to give back. */
	if (all)
		bg_prefault_cancel();
	if (sync_batch.backend != OS_BACKEND_MADVISE)
		sync_batch.backend = OS_BACKEND_MADVISE;
	for_each_heap(h)
		released += scavenge_node(h, all, now, &sync_batch, NULL);
	nh_scav.sync_released_bytes += released;
	nh_scav.syscalls += sync_batch.syscalls;
	sync_batch.syscalls = 0;
	mutex_unlock(&scav_lock);
	return released;
}

/* Memory of every heap that is mapped and not released: what the limit limits. */
static size_t resident_bytes(void)
{
	size_t r = 0;
	for_each_heap(h) {
		size_t rel = h->pages.pages_scav << NH_PAGE_SHIFT;
		r += h->mapped_bytes > rel ? h->mapped_bytes - rel : 0;
	}
	return r;
}

void scavenger_check_limit(void)
{
	size_t limit = (size_t)NH_OPTION(MEMORY_LIMIT);
	if (!limit || resident_bytes() <= limit)
		return;
	nh_scav.limit_hits++;
	/* What the central caches keep (transfer caches, empty spans, large
	 * spans) goes back to the pages first, so that it can be released. */
	mheap_drain_caches(false);
	scavenge_now(true);
}

/* ---- pre-faulting: what to fault in when the program grows back ---------------------- */

/*
 * When the program grows back into memory the scavenger released (a phase
 * ends, the next one builds the same heap again), each of its page faults
 * has the kernel zero a page (or a 2 MiB huge page) on the program's own
 * thread: perf/rss measured the growth phase at twice its time with the
 * scavenger off. Knowing where the next spans come from (first fit packs
 * low), the background thread faults that memory in ahead of the program,
 * NUMAHEAP_PREFAULT bytes at a time, on another CPU; the program then
 * finds it resident. The kernel's work is the same; it is moved off the
 * program's path, which is worth it when a CPU is idle (a loaded machine
 * gains nothing and loses little: at most the window is faulted in for
 * nothing, and the scavenger releases it again after its delay).
 *
 * Each look (prefault_pass, in an episode of bgthread.c) keeps a window of
 * free resident pages above search_addr, a huge page at a time, never
 * below the second huge page past the regrowth front (mheap.c,
 * count_reused: where the program's spans from released pages end). The
 * pages' scavenged bits are cleared under the heap lock before they are
 * faulted in, so the scavenger does not release them meanwhile; a span
 * carved from them before the fault is harmless (MADV_POPULATE_WRITE
 * leaves what a page holds alone), and calloc zeroes them, as any
 * unscavenged page. scav_lock is held throughout, so no synchronous
 * scavenge releases them either.
 */

#define PF_RUNS 32
/* Pages faulted in per look at the window: a huge page. */
#define PF_STEP NH_PAGES_PER_HUGE
#define PF_LEAD (2 * NH_HUGE_BYTES)

/*
 * Fault in the window of node h, a huge page at a time, the nearest
 * first; returns the bytes faulted in, or -1 if the kernel cannot (no
 * MADV_POPULATE_WRITE). Each step looks at the window again: when the
 * program has overtaken the thread (it can consume memory about as fast as
 * the kernel zeroes it), the thread goes on ahead of it rather than
 * faulting in, behind it, pages the program already faulted itself (or is
 * faulting: the same huge page zeroed twice, once for nothing).
 */
static ssize_t prefault_node(struct mheap *h)
{
	struct page_run run[PF_RUNS];
	size_t limit = (size_t)NH_OPTION(MEMORY_LIMIT);
	size_t done = 0;
	for (;;) {
		size_t window = (size_t)NH_OPTION(PREFAULT) >> NH_PAGE_SHIFT;
		if (limit) {
			/* Never fault in what the limit would make a thread release. */
			size_t res = resident_bytes();
			if (res >= limit)
				break;
			window = NH_MIN(window, (limit - res) >> NH_PAGE_SHIFT);
		}
		mutex_lock(&h->lock);
		uintptr_t from = h->regrow_front ? (h->regrow_front & ~(NH_HUGE_BYTES - 1)) + PF_LEAD : 0;
		unsigned n = page_alloc_unscavenge_low(&h->pages, from, window, PF_STEP, run, PF_RUNS);
		mutex_unlock(&h->lock);
		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			int r = os_populate((void *)run[i].base, run[i].bytes);
			if (r == -EINVAL)
				return -1;
			if (r == 0)
				done += run[i].bytes;
			/* Otherwise (no memory; or, with -EINVAL, this run and the
			 * rest) the pages stay free and marked resident though they
			 * are not: the program faults them itself (and calloc clears
			 * them, needlessly), or the scavenger releases them again. */
		}
	}
	mutex_lock(&h->lock);
	h->prefault_bytes += done;
	mutex_unlock(&h->lock);
	return (ssize_t)done;
}

int prefault_pass(uint64_t *last_work)
{
	for_each_heap(h) {
		ssize_t r = prefault_node(h);
		if (r < 0)
			return -1;
		if (r > 0)
			*last_work = os_nanotime();
	}
	return 0;
}

void prefault_forget_fronts(void)
{
	for_each_heap(h) {
		mutex_lock(&h->lock);
		h->regrow_front = 0;
		mutex_unlock(&h->lock);
	}
}

/* ---- fork ------------------------------------------------------------------------------ */

void scavenger_fork_child(void)
{
	bg_fork_child();
	mutex_reset(&scav_lock);
}

void scavenger_fork_lock(bool lock)
{
	if (lock)
		mutex_lock(&scav_lock);
	else
		mutex_unlock(&scav_lock);
}
