/*
 * scavenger.c — giving free memory back to the OS, in the background.
 *
 * See malloc.c for the overview; this is Go's mgcscavenge.go, carried over
 * to a C heap. Freed pages stay with the heap (a malloc that follows a free
 * reuses them without entering the kernel); the scavenger decides which of
 * them go back to the OS, and when:
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
 *   pacing   on average the thread works 1% of the time (NUMAHEAP_SCAVENGE_CPU;
 *            work is counted in wall time, which includes the kernel's
 *            io_uring workers), as a token bucket: credit accrues at that
 *            rate up to a burst of 250 ms, each pass spends what it took,
 *            and a thread in debt sleeps until it is paid back. So a
 *            program that frees a gigabyte after a quiet spell gets it
 *            released within the delay and a pass or two, while steady
 *            churn costs no more than the budget. When there is nothing
 *            to do it sleeps until the first busy chunk turns idle, or a
 *            second.
 *   limit    NUMAHEAP_MEMORY_LIMIT: a thread that takes a span while the
 *            heap's resident memory exceeds the limit scavenges at once,
 *            itself, ignoring idleness, and may break huge pages.
 *   regrowth when the program grows back into released memory, the same
 *            thread faults it in ahead of the program (NUMAHEAP_PREFAULT,
 *            "pre-faulting" below), so the kernel zeroes it on an idle CPU
 *            rather than on the program's.
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
 * io_uring is unavailable or NUMAHEAP_SCAVENGER=madvise.
 *
 * The same background thread drains the caches of CPUs that no thread has
 * used for a while (proc_drain_idle) and writes the periodic or signalled
 * statistics dumps (NUMAHEAP_STATS_INTERVAL, NUMAHEAP_STATS_SIGNAL). It
 * sleeps on a futex word, which the statistics signal's handler bumps and
 * wakes (both async-signal-safe). It starts on the first heap growth,
 * restarts lazily in a child after fork, runs with every signal blocked,
 * and never starts when both of its jobs are off.
 *
 * Locking: the heap lock around taking and returning runs, never across a
 * system call; scav_lock serialises synchronous scavenging (trim, limit).
 */
#define _GNU_SOURCE 1

#include "options.h"
#include "os/os.h"
#include "os/fault.h"
#include "numa.h"
#include "report.h"

#include "mheap.h"
#include "mcache.h"
#include "proc.h"

#include "scavenger.h"
#include "hardened.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { BG_OFF = 0, BG_STARTING = 1, BG_RUNNING = 2, BG_FAILED = 3 };
static _Atomic int bg_state;
static _Atomic int bg_wanted; /* the heap has grown: there is work to come */
/* The thread sleeps on this word; a statistics signal wakes it early. */
static _Atomic uint32_t bg_wake;
static _Atomic int dump_requested;

/*
 * The background thread's sleep: ns at most, less if woken since it read
 * bg_wake as seen. The main loop reads it before it looks for work, so a
 * wake that comes while a pass runs (a pre-faulting request, a statistics
 * signal) ends the sleep at once instead of waiting it out: read here, it
 * would already count that wake, and the thread would sleep a second, or
 * the seconds a CPU budget in debt asks for.
 */
static void sleep_ns(uint64_t ns, uint32_t seen)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	if (atomic_load(&dump_requested))
		return;
	syscall(SYS_futex, &bg_wake, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
}

/* Wake it. Async-signal-safe: an atomic add and a futex wake. */
static void bg_wake_up(void)
{
	atomic_fetch_add(&bg_wake, 1);
	syscall(SYS_futex, &bg_wake, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static struct os_batch bg_batch;
static struct os_batch sync_batch;
static struct mutex scav_lock;

struct nh_scav_stats nh_scav;

static uint64_t delay_ns(void) { return (uint64_t)NH_OPTION(SCAVENGE_DELAY); }

/* Pre-faulting: idle, asked for by an allocating thread, running, or
 * running and asked for again (the episode must not end on that ask). */
enum { PF_IDLE = 0, PF_WANTED = 1, PF_RUNNING = 2, PF_AGAIN = 3 };
static _Atomic int pf_state;
static bool pf_on;

void scavenger_init(void)
{
	mutex_init(&scav_lock, LOCK_RANK_SCAV);
	nh_scav.backend = NH_OPTION(SCAVENGER) == SCAV_OFF ? "off" : "pending";
	/* Without binding on a multi-node machine, the pages would land on
	 * the background thread's node rather than the program's. */
	pf_on = NH_OPTION(SCAVENGER) != SCAV_OFF && NH_OPTION(PREFAULT) && !nh_hardened &&
		!(NH_OPTION(NUMA) == NUMA_OFF && numa_topo.nnodes > 1);
	nh_scav.prefault = pf_on ? "on" : "off";
}

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
		atomic_store(&pf_state, PF_IDLE);
	if (sync_batch.backend != OS_BACKEND_MADVISE)
		sync_batch.backend = OS_BACKEND_MADVISE;
	for (int n = 0; n < NH_MAX_NODES; n++)
		if (nh_heaps[n])
			released += scavenge_node(nh_heaps[n], all, now, &sync_batch, NULL);
	nh_scav.sync_released_bytes += released;
	nh_scav.syscalls += sync_batch.syscalls;
	sync_batch.syscalls = 0;
	mutex_unlock(&scav_lock);
	return released;
}

static size_t resident_bytes(void)
{
	size_t r = 0;
	for (int n = 0; n < NH_MAX_NODES; n++) {
		struct mheap *h = nh_heaps[n];
		if (h) {
			size_t rel = h->pages.pages_scav << NH_PAGE_SHIFT;
			r += h->mapped_bytes > rel ? h->mapped_bytes - rel : 0;
		}
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

/* ---- pre-faulting: growing back into released memory ------------------------------------- */

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
 * An allocating thread that takes released pages calls
 * scavenger_regrowing(); its next slow path wakes the thread
 * (scavenger_poll), which keeps a window of free resident pages above
 * search_addr, looking every 250 us, until it has had nothing to fault in
 * for 20 ms, a huge page at a time, never below the second huge page past
 * the regrowth front (mheap.c, count_reused: where the program's spans
 * from released pages end). The pages' scavenged bits are
 * cleared under the heap lock before they are faulted in, so the
 * scavenger does not release them meanwhile; a span carved from them
 * before the fault is harmless (MADV_POPULATE_WRITE leaves what a page
 * holds alone), and calloc zeroes them, as any unscavenged page.
 * scav_lock is held throughout, so no synchronous scavenge releases them
 * either.
 */
void scavenger_regrowing(void)
{
	if (!pf_on)
		return;
	int s = atomic_load_explicit(&pf_state, memory_order_relaxed);
	if (s == PF_IDLE)
		atomic_store_explicit(&pf_state, PF_WANTED, memory_order_relaxed);
	else if (s == PF_RUNNING) /* an episode about to end would miss this */
		atomic_compare_exchange_strong(&pf_state, &s, PF_AGAIN);
}

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

/* The next episode's program starts from anywhere. */
static void prefault_forget_fronts(void)
{
	for (int n = 0; n < NH_MAX_NODES; n++)
		if (nh_heaps[n]) {
			mutex_lock(&nh_heaps[n]->lock);
			nh_heaps[n]->regrow_front = 0;
			mutex_unlock(&nh_heaps[n]->lock);
		}
}

/* Keep the windows full while the program eats into them; back once
 * nothing had to be faulted in for 20 ms (the heap stopped growing) and no
 * thread took released pages meanwhile, or when a release of everything
 * (malloc_trim, numaheap_release, the memory limit) set the state back to
 * idle. */
static void prefault_episode(void)
{
	mutex_lock(&scav_lock);
	if (atomic_load(&pf_state) == PF_IDLE) {
		mutex_unlock(&scav_lock); /* ended by a release before it began */
		return;
	}
	uint64_t start = os_nanotime(), last_work = start;
	nh_scav.prefault_episodes++;
	atomic_store(&pf_state, PF_RUNNING);
	for (;;) {
		if (atomic_load(&pf_state) == PF_IDLE) {
			prefault_forget_fronts(); /* ended by a release */
			break;
		}
		for (int n = 0; n < NH_MAX_NODES && pf_on; n++) {
			if (!nh_heaps[n])
				continue;
			ssize_t r = prefault_node(nh_heaps[n]);
			if (r < 0) {
				pf_on = false;
				nh_scav.prefault = "unsupported";
			} else if (r > 0) {
				last_work = os_nanotime();
			}
		}
		if (!pf_on) {
			atomic_store(&pf_state, PF_IDLE);
			break;
		}
		if (atomic_load(&dump_requested))
			break; /* still running: the thread comes back after the dump */
		if (os_nanotime() - last_work > 20000000u) {
			prefault_forget_fronts();
			int s = PF_RUNNING;
			if (atomic_compare_exchange_strong(&pf_state, &s, PF_IDLE))
				break;
			/* Asked again since the last pass: one more. */
			atomic_store(&pf_state, PF_RUNNING);
		}
		mutex_unlock(&scav_lock);
		sleep_ns(250000, atomic_load(&bg_wake));
		mutex_lock(&scav_lock);
	}
	mutex_unlock(&scav_lock);
	nh_scav.prefault_ns += os_nanotime() - start;
}

/* ---- the background thread ------------------------------------------------------------ */

/* Async-signal-safe: a store and a futex wake. */
static void stats_signal_handler(int sig)
{
	(void)sig;
	int saved = errno;
	atomic_store(&dump_requested, 1);
	bg_wake_up();
	errno = saved;
}

static bool bg_jobs_wanted(void);

void scavenger_install_signal(void)
{
	static const int sigs[] = {0, SIGUSR1, SIGUSR2, SIGURG};
	int which = (int)NH_OPTION(STATS_SIGNAL);
	if (which <= 0 || which > 3)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = stats_signal_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sigs[which], &sa, NULL) != 0)
		nh_warn("cannot install the NUMAHEAP_STATS_SIGNAL handler");
	/* The dump runs on the background thread: start it now. */
	atomic_store(&bg_wanted, 1);
	scavenger_poll();
}

/* Work the pacing lets a pass do at once after a quiet spell (see the top). */
#define SCAV_BURST_NS ((int64_t)250000000)

static void *bg_main(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "numaheap-bg", 0, 0, 0);
	bool scav_on = NH_OPTION(SCAVENGER) != SCAV_OFF;
	if (scav_on) {
		int be = os_batch_init(&bg_batch, NH_OPTION(SCAVENGER) == SCAV_IO_URING);
		if (be != OS_BACKEND_URING && NH_OPTION(SCAVENGER) == SCAV_IO_URING)
			nh_scav.uring_failed = 1;
	}
	uint64_t last_drain = os_nanotime(), last_dump = last_drain, last_pass = last_drain;
	uint64_t interval = (uint64_t)NH_OPTION(STATS_INTERVAL);
	uint64_t pct = (uint64_t)NH_OPTION(SCAVENGE_CPU);
	int64_t credit = SCAV_BURST_NS; /* the token bucket, in ns of work */
	for (;;) {
		uint32_t seen = atomic_load(&bg_wake); /* before looking for work */
		uint64_t now = os_nanotime();
		if (pct)
			credit = NH_MIN(credit + (int64_t)((now - last_pass) * pct / 100), SCAV_BURST_NS);
		last_pass = now;
		if (atomic_exchange(&dump_requested, 0) || (interval && now - last_dump >= interval)) {
			stats_dump(true);
			last_dump = now;
		}
		if (atomic_load(&pf_state) != PF_IDLE) {
			prefault_episode();
			now = os_nanotime();
		}
		/*
		 * Caches nobody used since the last look go back to their
		 * spans: transfer caches at every pass (nothing is hot in an
		 * untouched one), CPU caches every NUMAHEAP_CACHE_IDLE. What
		 * they free was idle already, so it does not wait another delay:
		 * this pass's scavenging, after them, may release it.
		 */
		uint64_t idle = (uint64_t)NH_OPTION(CACHE_IDLE);
		if (idle) {
			nh_free_keeps_idle = true;
			nh_scav.cache_drained_objects += mheap_drain_caches(true);
			if (now - last_drain >= idle) {
				nh_scav.cache_drained_objects += proc_drain_idle();
				last_drain = now;
			}
			nh_free_keeps_idle = false;
		}
		uint64_t next = 0;
		size_t released = 0;
		if (scav_on) {
			nh_scav.backend = bg_batch.backend == OS_BACKEND_URING ? "io_uring" : "madvise";
			for (int n = 0; n < NH_MAX_NODES; n++) {
				if (!nh_heaps[n])
					continue;
				uint64_t ni = 0;
				released += scavenge_node(nh_heaps[n], false, now, &bg_batch, &ni);
				if (ni && (!next || ni < next))
					next = ni;
			}
			nh_scav.bg_released_bytes += released;
			nh_scav.submissions = bg_batch.submissions;
			nh_scav.bg_syscalls = bg_batch.syscalls;
			nh_scav.passes++;
		}
		/*
		 * The work is measured in wall time: io_uring runs madvise in
		 * the kernel's io-wq workers, whose CPU time this thread's
		 * clock would not see (and the thread clock is a system call,
		 * the monotonic one is not).
		 */
		uint64_t work = os_nanotime() - now;
		nh_scav.cpu_ns += work;
		/* Sleep: until a busy chunk turns idle, else a second; longer
		 * if the passes have overspent the CPU budget. */
		uint64_t wait = 1000000000u;
		if (next) {
			uint64_t due = next + delay_ns();
			wait = due > now ? due - now : 0;
			wait = NH_MAX(wait, 50000000u); /* 50 ms granularity */
			wait = NH_MIN(wait, 1000000000u);
		}
		if (released && released >= NH_HUGE_BYTES)
			wait = NH_MIN(wait, 100000000u); /* more may be ready soon */
		if (interval) {
			uint64_t due = last_dump + interval;
			wait = NH_MIN(wait, due > now ? due - now : 0);
		}
		/* In debt: sleep until the budget has paid it back. */
		uint64_t budget_wait = 0;
		if (pct) {
			credit -= (int64_t)work;
			if (credit < 0)
				budget_wait = (uint64_t)-credit * 100 / pct;
		}
		sleep_ns(NH_MAX(wait, budget_wait), seen);
	}
	return NULL;
}

static pid_t bg_pid;

static void bg_start(void)
{
	int z = BG_OFF;
	if (!atomic_compare_exchange_strong(&bg_state, &z, BG_STARTING))
		return;
	if (nh_fault("thread")) {
		nh_warn("cannot start the background thread (injected); scavenging only on malloc_trim");
		atomic_store(&bg_state, BG_FAILED);
		return;
	}
	int r = os_thread_start(bg_main, NULL);
	if (r != 0) {
		nh_warn("cannot start the background thread (pthread_create: error %d); scavenging only on malloc_trim", r);
		atomic_store(&bg_state, BG_FAILED);
		return;
	}
	bg_pid = getpid();
	nh_scav.running = 1;
	atomic_store(&bg_state, BG_RUNNING);
}

void scavenger_heap_grew(void) { atomic_store_explicit(&bg_wanted, 1, memory_order_relaxed); }

/* Called with no allocator lock held: pthread_create allocates. */

void scavenger_poll(void)
{
	if (NH_UNLIKELY(atomic_load_explicit(&pf_state, memory_order_relaxed) == PF_WANTED)) {
		int w = PF_WANTED;
		if (atomic_load_explicit(&bg_state, memory_order_acquire) != BG_RUNNING)
			atomic_store(&pf_state, PF_IDLE);
		else if (atomic_compare_exchange_strong(&pf_state, &w, PF_RUNNING))
			bg_wake_up();
	}
	if (NH_LIKELY(atomic_load_explicit(&bg_state, memory_order_relaxed) != BG_OFF) ||
	    !atomic_load_explicit(&bg_wanted, memory_order_relaxed))
		return;
	if (!bg_jobs_wanted())
		return;
	bg_start();
}

/* Does the background thread have any job? */
static bool bg_jobs_wanted(void)
{
	return NH_OPTION(SCAVENGER) != SCAV_OFF || NH_OPTION(CACHE_IDLE) ||
	       NH_OPTION(STATS_INTERVAL) || NH_OPTION(STATS_SIGNAL);
}

void scavenger_fork_child(void)
{
	/* The thread did not come along; its ring belongs to the parent. */
	if (atomic_load(&bg_state) == BG_RUNNING || atomic_load(&bg_state) == BG_STARTING) {
		os_batch_forget(&bg_batch);
		atomic_store(&bg_state, BG_OFF);
		atomic_store(&pf_state, PF_IDLE);
		nh_scav.running = 0;
	}
	mutex_reset(&scav_lock);
}

void scavenger_fork_lock(bool lock)
{
	if (lock)
		mutex_lock(&scav_lock);
	else
		mutex_unlock(&scav_lock);
}
