/*
 * bgthread.c — the background thread: when it runs, for which jobs, and
 * how much of the machine it may take.
 *
 * See malloc.c for the overview. numaheap has one background thread per
 * process (Go has the background scavenger goroutine, and sysmon). It runs
 * rounds; each round does, in this order:
 *
 *   dumps     the periodic or signalled statistics (NUMAHEAP_STATS_INTERVAL,
 *             NUMAHEAP_STATS_SIGNAL), written by stats_dump, and the heap
 *             profile (the same signal, NUMAHEAP_PROF_INTERVAL; prof.c).
 *   regrowth  a pre-faulting episode, if a thread asked for one (below).
 *   caches    the caches nobody used since the last look go back to their
 *             spans: transfer caches at every round, the cache of a CPU
 *             once no slow path has used it for NUMAHEAP_CACHE_IDLE
 *             (proc_drain_idle).
 *   scavenge  a scavenger pass (scavenger.c decides what to release);
 *             its slower steps (subrelease, in-span release, making huge
 *             pages whole again) get the CPU budget's credit left.
 *   sleep     until the next job is due (a chunk, class or CPU cache
 *             turning idle), or a thread wakes it.
 *
 * Pacing: on average the thread works 1% of the time (NUMAHEAP_SCAVENGE_CPU;
 * work is counted in wall time, which includes the kernel's io_uring
 * workers), as a token bucket: credit accrues at that rate up to a burst of
 * 1 s, each round spends what it took, and a thread in debt sleeps until
 * it is paid back. So a program that frees a gigabyte after a quiet spell
 * gets it released within the scavenger's delay and a round or two, while
 * steady churn costs no more than the budget. While the program itself is
 * idle (SCAV_IDLE_PCT), credit accrues at 20%: a fragmented release that
 * needs more than the burst is done in seconds, not minutes. When there is
 * nothing to do it sleeps until the first busy chunk turns idle, or a
 * second.
 *
 * Life: the thread starts on the first heap growth (scavenger_heap_grew,
 * then scavenger_poll from a slow path with no allocator lock held:
 * pthread_create allocates), or at start-up when a statistics signal is
 * wanted; it never starts when all of its jobs are off. It runs with every
 * signal blocked (os_thread_start) and restarts lazily in a child after
 * fork, where it did not come along. Once every thread of the program has
 * ended (main called pthread_exit, then the others), it calls exit(0), as
 * glibc does from the last thread: glibc counts this one too, and the
 * process would live on, deaf to every signal but SIGKILL.
 *
 * Requests and wakes: other threads ask through atomics (bg_wanted,
 * dump_requested, pf_state) and wake the thread through the futex word
 * bg_wake, which it sleeps on; so does the statistics signal's handler.
 *
 * Invariants: at most one thread runs: bg_state goes from OFF to STARTING
 * by one compare-and-swap, then to RUNNING or FAILED, and back to OFF only
 * in a child after fork. pf_state leaves PF_IDLE only while pf_on; it goes
 * back when an episode ends, when a release of everything cancels it, when
 * scavenger_poll finds no running thread to run it, and in a fork child.
 * bg_wake only grows, so a wake between the thread's read of it and its
 * sleep makes the sleep return at once.
 *
 * Locking: the thread takes allocator locks only inside the jobs it calls
 * (stats, cache drains, scavenger passes), and none while it sleeps.
 * Pre-faulting holds scav_lock (scavenger.c) through each look of an
 * episode and drops it between looks, so a release of everything can end
 * the episode there. The thread's pacing state is its own (on its stack);
 * bg_batch is the thread's, touched by others only in a child after fork.
 */
#include "options.h"
#include "os/os.h"
#include "os/fault.h"
#include "report.h"
#include "mheap.h"
#include "proc.h"
#include "stats.h"
#include "prof.h"
#include "scavenger.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

enum { BG_OFF = 0, BG_STARTING = 1, BG_RUNNING = 2, BG_FAILED = 3 };
static _Atomic int bg_state;
static _Atomic int bg_wanted; /* the heap has grown: there is work to come */
static unsigned long bg_thread; /* joinable: scavenger_thread_stop waits for it to be gone */
static _Atomic int bg_stop_asked;
static _Atomic int bg_tid; /* its kernel id, for scavenger_thread_stop */
/* The thread sleeps on this word; a statistics signal wakes it early. */
static _Atomic uint32_t bg_wake;
static _Atomic int dump_requested;

static struct os_batch bg_batch; /* the thread's release batch (its io_uring ring, if any) */

/* Pre-faulting: idle, asked for by an allocating thread, running, or
 * running and asked for again (the episode must not end on that ask). */
enum { PF_IDLE = 0, PF_WANTED = 1, PF_RUNNING = 2, PF_AGAIN = 3 };
static _Atomic int pf_state;
static bool pf_on; /* set at start-up; cleared by the thread if the kernel cannot */

void bg_init(bool prefault) { pf_on = prefault; }

/*
 * The background thread's sleep: ns at most, less if woken since it read
 * bg_wake as seen (before it looked for work: a wake that comes while a
 * round runs, a pre-faulting request or a statistics signal, ends the sleep
 * at once, where a read here would count it and sleep a second or more).
 */
static void sleep_ns(uint64_t ns, uint32_t seen)
{
	if (atomic_load(&dump_requested))
		return;
	os_futex_wait(&bg_wake, seen, ns);
}

/* Wake it (async-signal-safe). */
static void bg_wake_up(void)
{
	atomic_fetch_add(&bg_wake, 1);
	os_futex_wake(&bg_wake, 1);
}

/* ---- pre-faulting episodes -------------------------------------------------------------- */

/*
 * An allocating thread that takes released pages calls
 * scavenger_regrowing() (heap lock held); its next slow path wakes the
 * thread (scavenger_poll), which runs an episode: it looks at the windows
 * of free resident pages (prefault_pass, prefault.c: what to fault in)
 * every 250 us, until it has had nothing to fault in for 20 ms.
 */
#define PF_LOOK_NS 250000u
#define PF_QUIET_NS 20000000u

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

/* A release of everything ends the episode (scav_lock held). */
void bg_prefault_cancel(void) { atomic_store(&pf_state, PF_IDLE); }

/*
 * One look of an episode, scav_lock held: false when the episode ends.
 * It ends once nothing had to be faulted in for PF_QUIET_NS (the heap
 * stopped growing) and no thread took released pages meanwhile, or when a
 * release of everything (malloc_trim, numaheap_release, the memory limit)
 * set the state back to idle, or when the kernel cannot pre-fault.
 */
static bool prefault_look(uint64_t *last_work)
{
	if (atomic_load(&pf_state) == PF_IDLE) {
		prefault_forget_fronts(false); /* ended by a release */
		return false;
	}
	if (prefault_pass(last_work) < 0) {
		pf_on = false;
		nh_scav.prefault = "unsupported";
		atomic_store(&pf_state, PF_IDLE);
		return false;
	}
	if (atomic_load(&dump_requested))
		return false; /* still running: the thread comes back after the dump */
	if (os_nanotime() - *last_work > PF_QUIET_NS) {
		if (!prefault_forget_fronts(true))
			return true; /* grown back since this look began: look again */
		int s = PF_RUNNING;
		if (atomic_compare_exchange_strong(&pf_state, &s, PF_IDLE))
			return false;
		/* Asked again since the last look: one more. */
		atomic_store(&pf_state, PF_RUNNING);
	}
	return true;
}

/* Keep the windows full while the program eats into them. */
static void prefault_episode(void)
{
	scavenger_lock();
	if (atomic_load(&pf_state) == PF_IDLE) {
		scavenger_unlock(); /* ended by a release before it began */
		return;
	}
	uint64_t start = os_nanotime(), last_work = start;
	nh_scav.prefault_episodes++;
	atomic_store(&pf_state, PF_RUNNING);
	while (prefault_look(&last_work)) {
		scavenger_unlock();
		sleep_ns(PF_LOOK_NS, atomic_load(&bg_wake));
		scavenger_lock();
	}
	scavenger_unlock();
	nh_scav.prefault_ns += os_nanotime() - start;
}

/* ---- the statistics signal ---------------------------------------------------------------- */

/* Async-signal-safe: a store and a futex wake. */
static void stats_signal_handler(int sig)
{
	(void)sig;
	int saved = errno;
	atomic_store(&dump_requested, 1);
	bg_wake_up();
	errno = saved;
}

void scavenger_install_signal(void)
{
	static const int sigs[] = {0, SIGUSR1, SIGUSR2, SIGURG};
	int which = (int)NH_OPTION(STATS_SIGNAL);
	if (which <= 0 || which > 3)
		return;
	if (os_signal_install(sigs[which], stats_signal_handler) != 0)
		nh_warn("cannot install the NUMAHEAP_STATS_SIGNAL handler");
	/* The dump runs on the background thread: start it now. */
	atomic_store(&bg_wanted, 1);
	scavenger_poll();
}

/* ---- the thread's rounds ------------------------------------------------------------------- */

/* Work the pacing lets a round do at once after a quiet spell (see the top). */
/* 1 s: releasing a fragmented heap costs the kernel about 1 ms of CPU per
 * MiB here (splitting huge pages, many small runs), and making its huge
 * pages whole again when it grows back about 0.4 ms per huge page; a
 * quarter of a second, as before the subrelease, left a freed gigabyte
 * half released and the regrown heap on base pages for minutes. */
#define SCAV_BURST_NS ((int64_t)1000000000)

/*
 * The budget while the program is idle: its own threads used under 1/20 of
 * a CPU over the last second (the process's CPU time less this thread's
 * and its io_uring workers', which the rounds' wall time bounds). Nothing
 * of the program's is then waiting for a CPU, and memory it freed before
 * going quiet is what the release is for; at 1% a fragmented release
 * took minutes (Redis after its keys expired: 52 of some 400 MiB of free
 * pages released in 30 s, budget_cuts rising). NUMAHEAP_SCAVENGE_CPU, if
 * higher, still applies.
 */
#define SCAV_IDLE_PCT 20
#define SCAV_IDLE_WINDOW_NS 1000000000u

/*
 * Churn back-off. Memory released and taken back soon after costs a
 * release and a refault for nothing: the kernel zeroes it again, on the
 * program's CPU or on this thread's (pre-faulting), CPU time of the process
 * either way. redis-server under perf/run's redis-mix, whose phases of a
 * second or two free what the next phase takes again, spent about 5% more
 * CPU per request than with NUMAHEAP_SCAVENGER=off. So when the program
 * grows back into a huge page or more of released memory within
 * CHURN_WINDOW_NS of a background release made while it kept allocating,
 * the background delays (NUMAHEAP_SCAVENGE_DELAY,
 * NUMAHEAP_SUBRELEASE_DELAY) double, at most CHURN_MAX_SHIFT times and
 * once per delay; after a window with no such regrowth they halve again.
 * A program that stopped allocating for the delay or longer (a server
 * after its deletes; perf/rss's compute phases) gets its memory back and
 * may grow back into it without backing off: it was idle, which is what
 * the delay is for. malloc_trim, numaheap_release and the memory limit
 * have no delay.
 */
#define CHURN_WINDOW_NS ((uint64_t)30000000000)
#define CHURN_MAX_SHIFT 3

struct bg_churn {
	uint64_t last_release; /* the last round that released something (0: none) */
	uint64_t last_churn;   /* the last regrowth that counted */
	uint64_t changed_at;   /* the last change of nh_scav.delay_shift */
	uint64_t regrown_seen; /* scavenger_regrown_bytes() at the last round */
	uint64_t regrown;      /* bytes grown back since the last counted regrowth */
	struct alloc_counts last; /* mallocs counted at the last round, by class, and when */
	uint64_t active_at;    /* the latest time the last malloc seen can have been made */
	uint64_t resumed_at;   /* the last round that saw them resume after a quiet spell */
};

static void churn_update(struct bg_churn *c, uint64_t now, const struct alloc_counts *n)
{
	uint64_t r = scavenger_regrown_bytes(), grew = r - c->regrown_seen;
	uint64_t since_change = now - c->changed_at;
	uint64_t delay = (uint64_t)NH_OPTION(SCAVENGE_DELAY) << nh_scav.delay_shift;
	c->regrown_seen = r;
	uint64_t at = 0;
	for (unsigned k = 0; k < NH_NUM_CLASSES; k++)
		if (n->allocs[k] != c->last.allocs[k])
			at = NH_MAX(at, n->since[k]);
	c->last = *n;
	if (at) {
		if (now - c->active_at >= (uint64_t)NH_OPTION(SCAVENGE_DELAY))
			c->resumed_at = now; /* after a quiet spell */
		c->active_at = NH_MAX(c->active_at, at);
	}
	bool soon = c->last_release > c->resumed_at && now - c->last_release < CHURN_WINDOW_NS;
	c->regrown = soon ? c->regrown + grew : 0;
	if (c->regrown >= NH_HUGE_BYTES) {
		c->regrown = 0;
		c->last_churn = now;
		nh_scav.churn_events++;
		if (nh_scav.delay_shift < CHURN_MAX_SHIFT && since_change >= delay) {
			nh_scav.delay_shift++;
			c->changed_at = now;
		}
	} else if (nh_scav.delay_shift && now - c->last_churn >= CHURN_WINDOW_NS && since_change >= CHURN_WINDOW_NS) {
		nh_scav.delay_shift--;
		c->changed_at = now;
	}
}

/* The thread's own state: its jobs' clocks and its CPU budget. */
struct bg_pacing {
	bool scav_on;	   /* NUMAHEAP_SCAVENGER is not off */
	uint64_t interval; /* NUMAHEAP_STATS_INTERVAL (ns); 0: no periodic dumps */
	uint64_t pct;	   /* NUMAHEAP_SCAVENGE_CPU: the budget, percent of the time */
	int64_t credit;	   /* the token bucket, in ns of work */
	enum { PROGRAM_UNKNOWN, PROGRAM_IDLE, PROGRAM_BUSY } program; /* over the last window (SCAV_IDLE_PCT) */
	uint64_t win_at, win_proc, win_self, win_work; /* that window's start (win_at 0: none) */
	uint64_t last_round, last_dump;
	struct bg_churn churn;
};

static void bg_setup(struct bg_pacing *p)
{
	os_set_thread_name("numaheap-bg");
	p->scav_on = NH_OPTION(SCAVENGER) != SCAV_OFF;
	if (p->scav_on) {
		int be = os_batch_init(&bg_batch, NH_OPTION(SCAVENGER) == SCAV_IO_URING && !os_basic_syscalls);
		if (be != OS_BACKEND_URING && NH_OPTION(SCAVENGER) == SCAV_IO_URING)
			nh_scav.uring_failed = 1;
	}
	p->last_dump = p->last_round = os_nanotime();
	p->interval = (uint64_t)NH_OPTION(STATS_INTERVAL);
	p->pct = (uint64_t)NH_OPTION(SCAVENGE_CPU);
	p->credit = SCAV_BURST_NS;
}

/* The budget's rate now, percent of a CPU: NUMAHEAP_SCAVENGE_CPU, or
 * SCAV_IDLE_PCT while the program is idle (0 stays unpaced). With the
 * credit full the rate does not matter, and no clock is read: a quiet
 * thread makes no system calls for this (perf/kbypass counts them). */
static uint64_t bg_rate(struct bg_pacing *p, uint64_t now)
{
	if (!p->pct)
		return 0;
	if (p->credit >= SCAV_BURST_NS) {
		p->win_at = 0;
		p->program = PROGRAM_UNKNOWN;
		return p->pct;
	}
	if (!p->win_at || now - p->win_at >= SCAV_IDLE_WINDOW_NS) {
		uint64_t proc = os_process_cputime(), self = os_thread_cputime(), work = nh_scav.cpu_ns;
		if (p->win_at) {
			uint64_t own = (self - p->win_self) + (work - p->win_work), used = proc - p->win_proc;
			uint64_t program = used > own ? used - own : 0;
			p->program = program * 20 < now - p->win_at ? PROGRAM_IDLE : PROGRAM_BUSY;
		}
		p->win_at = now;
		p->win_proc = proc;
		p->win_self = self;
		p->win_work = work;
	}
	return p->program == PROGRAM_IDLE ? NH_MAX(p->pct, (uint64_t)SCAV_IDLE_PCT) : p->pct;
}

/*
 * Caches nobody used since the last look go back to their spans:
 * transfer caches at every round (nothing is hot in an untouched one), CPU
 * caches idle for NUMAHEAP_CACHE_IDLE. What they free was idle already, so
 * it does not wait another delay: this round's scavenging, after them, may
 * release it. Returns when the next CPU cache turns idle (0: none).
 */
static uint64_t drain_idle_caches(uint64_t now, const struct alloc_counts *last)
{
	uint64_t idle = (uint64_t)NH_OPTION(CACHE_IDLE), due = 0;
	if (!idle)
		return 0;
	nh_free_keeps_idle = true;
	nh_scav.cache_drained_objects += mheap_drain_caches(true);
	nh_scav.cache_drained_objects += proc_drain_idle(now, idle, &due, last);
	nh_free_keeps_idle = false;
	return due;
}

/*
 * How long to sleep after a round that started at now and worked for
 * work ns, releasing released bytes; due is when the next busy chunk turns
 * idle (0: none). Until then, else a second; sooner if a dump is due;
 * longer if the rounds have overspent the CPU budget, which pays for this
 * one's work here.
 */
static uint64_t bg_sleep_time(struct bg_pacing *p, uint64_t now, uint64_t due, size_t released, uint64_t work)
{
	uint64_t wait = 1000000000u;
	if (due) {
		wait = due > now ? due - now : 0;
		wait = NH_MAX(wait, 50000000u); /* 50 ms granularity */
		wait = NH_MIN(wait, 1000000000u);
	}
	if (released && released >= NH_HUGE_BYTES)
		wait = NH_MIN(wait, 100000000u); /* more may be ready soon */
	if (p->interval) {
		uint64_t dump = p->last_dump + p->interval;
		wait = NH_MIN(wait, dump > now ? dump - now : 0);
	}
	/* In debt: sleep until the budget has paid it back. */
	uint64_t budget_wait = 0;
	if (p->pct) {
		p->credit -= (int64_t)work;
		uint64_t rate = bg_rate(p, now + work);
		if (p->credit < 0) {
			budget_wait = (uint64_t)-p->credit * 100 / rate;
			/* Not known yet whether the program is idle: look again
			 * once a window has passed. */
			if (p->program == PROGRAM_UNKNOWN)
				budget_wait = NH_MIN(budget_wait, (uint64_t)SCAV_IDLE_WINDOW_NS);
		}
	}
	return NH_MAX(wait, budget_wait);
}

static void *bg_main(void *arg)
{
	(void)arg;
	struct bg_pacing p = {0};
	atomic_store(&bg_tid, os_gettid());
	bg_setup(&p);
	for (uint64_t alone_seen = 0;;) {
		uint32_t seen = atomic_load(&bg_wake); /* before looking for work */
		if (atomic_load(&bg_stop_asked))
			break; /* scavenger_thread_stop: between rounds, no lock held */
		uint64_t now = os_nanotime();
		if (now - alone_seen >= 2000000000u && (alone_seen = now, os_last_thread()))
			exit(0); /* the program's threads are all gone (see the top) */
		if (p.pct)
			p.credit = NH_MIN(p.credit + (int64_t)((now - p.last_round) * bg_rate(&p, now) / 100), SCAV_BURST_NS);
		p.last_round = now;
		bool signalled = atomic_exchange(&dump_requested, 0);
		if (signalled || (p.interval && now - p.last_dump >= p.interval)) {
			stats_dump(true);
			p.last_dump = now;
		}
		/* The heap profile too, on the signal or every NUMAHEAP_PROF_INTERVAL. */
		if ((signalled && nh_prof_on) || prof_interval_due(now))
			prof_dump(NULL);
		if (atomic_load(&pf_state) != PF_IDLE) {
			if (scavenger_trims_paced(now)) {
				/* The program keeps giving it back: no episode, but
				 * where fresh huge pages are slow and the CPUs busy,
				 * base pages all the same (prefault.c). */
				scavenger_lock();
				prefault_probe();
				scavenger_unlock();
				atomic_store(&pf_state, PF_IDLE);
			} else {
				prefault_episode();
				now = os_nanotime();
			}
		}
		uint64_t cache_due = drain_idle_caches(now, &p.churn.last);
		uint64_t due = 0;
		/* What the pass may spend on its paced steps: the credit left. */
		uint64_t budget = !p.pct ? UINT64_MAX / 4 : p.credit > 0 ? (uint64_t)p.credit : 0;
		size_t released = 0;
		if (p.scav_on) {
			struct alloc_counts n;
			uint64_t seen = proc_count_allocs(&n, &p.churn.last);
			churn_update(&p.churn, seen, &n);
			if (NH_OPTION(EVACUATE))
				for_each_heap(h) {
					uint64_t cached[NH_NUM_CLASSES];
					proc_sum_cached(cached, h->node);
					mcentral_evacuate(h, n.allocs, cached, now);
				}
			released = scavenge_background(seen, &bg_batch, &due, budget, &n, seen - p.churn.active_at);
			if (released)
				p.churn.last_release = now;
		}
		if (cache_due && (!due || cache_due < due))
			due = cache_due;
		/*
		 * The work is measured in wall time: io_uring runs madvise in
		 * the kernel's io-wq workers, whose CPU time this thread's
		 * clock would not see (and the thread clock is a system call,
		 * the monotonic one is not).
		 */
		uint64_t work = os_nanotime() - now;
		nh_scav.cpu_ns += work;
		sleep_ns(bg_sleep_time(&p, now, due, released, work), seen);
	}
	os_batch_fini(&bg_batch);
	return NULL;
}

/* ---- starting, and fork ---------------------------------------------------------------------- */

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
	/*
	 * A seccomp filter put on since start-up (OpenSSH's privilege-separated
	 * child, a program that confines itself before it allocates much) may
	 * kill the thread's creation or its calls, and what it allows cannot be
	 * asked. Seen as a change of the mode, or as a status start-up could
	 * read and this thread cannot (OpenSSH refuses openat): no thread in
	 * this process, and only the basic calls from now on (os.h), with no
	 * message (a sandbox's stderr may be closed or forbidden). The
	 * scavenger still runs on malloc_trim and numaheap_release. Unless
	 * NUMAHEAP_SYSCALLS=all.
	 */
	if (NH_OPTION(SYSCALLS) == OS_SYSCALLS_AUTO && os_seccomp_mode() != os_seccomp_at_start) {
		os_basic_syscalls = true;
		atomic_store(&bg_state, BG_FAILED);
		return;
	}
	int r = os_thread_start(bg_main, NULL, &bg_thread);
	if (r != 0) {
		nh_warn("cannot start the background thread (pthread_create: error %d); scavenging only on malloc_trim", r);
		atomic_store(&bg_state, BG_FAILED);
		return;
	}
	nh_scav.running = 1;
	atomic_store(&bg_state, BG_RUNNING);
}

/* Does the background thread have any job? */
static bool bg_jobs_wanted(void)
{
	return NH_OPTION(SCAVENGER) != SCAV_OFF || NH_OPTION(CACHE_IDLE) ||
	       NH_OPTION(STATS_INTERVAL) || NH_OPTION(STATS_SIGNAL) || NH_OPTION(PROF_INTERVAL);
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

/*
 * unshare(CLONE_NEWUSER) and setns into a user or mount namespace need a
 * process of one thread. Their wrappers (namespaces.c) stop the thread
 * first (the credential calls' do not: setxid.c): it leaves its loop
 * between two rounds, holding no lock, and is joined, so the process has
 * one thread fewer when this returns. The next slow path starts it again
 * (scavenger_poll). Caller: no allocator lock held.
 */
void scavenger_thread_stop(void)
{
	if (atomic_load(&bg_state) != BG_RUNNING)
		return;
	atomic_store(&bg_stop_asked, 1);
	bg_wake_up();
	os_thread_join(bg_thread);
	/* Joined, but still counted in the thread group for a moment. */
	int tid = atomic_load(&bg_tid);
	for (int i = 0; tid > 0 && i < 100000 && os_thread_alive(tid); i++)
		os_yield();
	atomic_store(&pf_state, PF_IDLE);
	nh_scav.running = 0;
	atomic_store(&bg_stop_asked, 0);
	atomic_store(&bg_state, BG_OFF);
}

void bg_fork_child(void)
{
	/* The thread did not come along; its ring belongs to the parent. */
	if (atomic_load(&bg_state) == BG_RUNNING || atomic_load(&bg_state) == BG_STARTING) {
		os_batch_forget(&bg_batch);
		atomic_store(&bg_state, BG_OFF);
		atomic_store(&pf_state, PF_IDLE);
		nh_scav.running = 0;
	}
}
