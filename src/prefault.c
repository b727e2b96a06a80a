/*
 * prefault.c — pre-faulting: which memory the background thread faults in
 * ahead of a program that grows back into released memory, or keeps
 * growing into fresh memory once its heap is large (mheap.c, PF_FRESH_MIN).
 *
 * The policy half of NUMAHEAP_PREFAULT; bgthread.c runs the episodes
 * (when one starts and ends, its pacing), scavenger.c is what released
 * the memory in the first place.
 *
 * Locking: the heap lock around each look at the pageAlloc, never across
 * a fault; bgthread.c holds scav_lock (scavenger_lock) through each look,
 * so no synchronous scavenge releases what is being faulted in.
 */

#include "options.h"
#include "os/os.h"
#include "numa.h"

#include "arena.h"
#include "mheap.h"
#include "scavenger.h"

#include <errno.h>

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
 * larger than what the program has regrown into since the episode began
 * (a huge page to start with, then doubling as the program keeps eating:
 * TCP's slow start), nor than NUMAHEAP_PREFAULT; so a small heap that
 * grows back a few MiB is not given 16 MiB it never touches (mimalloc-bench's
 * rptest: peak RSS 42 MiB against 18-24 without pre-faulting, and slower).
 * Never below the second huge page past the regrowth front (mheap.c,
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
/* a rounded up to a huge page boundary. */
static inline uintptr_t huge_up(uintptr_t a) { return (a + NH_HUGE_BYTES - 1) & ~(uintptr_t)(NH_HUGE_BYTES - 1); }
/*
 * The window of an episode that follows fresh growth. The thread faults
 * in a huge page at a time and looks again every 250 us, so all a window
 * needs is what the program eats while one huge page is faulted in (jq:
 * 1.5 MiB in the 7 ms a fresh huge page takes on this VM); a program that
 * eats faster overtakes the thread whatever the window. What it holds
 * when the growth stops is faulted in for nothing (python's peak RSS: +14
 * MiB with the 16 MiB window).
 */
#define PF_FRESH_WINDOW ((size_t)4 * NH_HUGE_BYTES)

/*
 * Is fresh memory slow to fault in here? Pre-faulting fresh growth pays
 * where a fresh huge page is expensive (on a VM whose host backs guest
 * memory lazily, 3-5 ms of CPU per 2 MiB: the host faults in 512 pages
 * behind the guest's back), not where the kernel zeroes 2 MiB in a
 * quarter of a millisecond (bare metal, or memory the host still backs):
 * there the thread only takes a CPU from a program that would fault the
 * page in about as fast itself (perf/run's frag, two threads filling 256
 * MiB on 2 CPUs: 10-15% slower). So the thread times its own faults (its
 * CPU time, so that a loaded machine's waits do not count) and keeps a
 * moving average per huge page; once it is below PF_CHEAP_NS, fresh
 * growth is left to the program for PF_REPROBE_NS or PF_REPROBE_BYTES of
 * fresh growth, whichever comes first, then tried again (the host's state
 * changes: memory it backs now it may take back later, and a program
 * often starts on memory another just freed, still backed, and goes on
 * into memory that is not: stress-ng's first two huge pages took 0.2 ms,
 * the next gigabytes 5 ms each).
 * Released memory is pre-faulted either way: that was the program's
 * before, and its regrowth is known to come.
 */
#define PF_CHEAP_NS ((uint64_t)1000000)
#define PF_REPROBE_NS ((uint64_t)10000000000)
#define PF_REPROBE_BYTES ((uint64_t)256 << 20)
#define PF_MIN_SAMPLES 2
static _Atomic uint64_t fresh_off_until; /* 0: fresh growth is pre-faulted */
static _Atomic uint64_t fresh_off_mark;	 /* ... or again once fresh_total passes this */
static _Atomic uint64_t fresh_total;	 /* fresh bytes handed out, every heap */

void prefault_note_fresh(size_t bytes)
{
	atomic_fetch_add_explicit(&fresh_total, bytes, memory_order_relaxed);
}

/* Fresh growth left to the program, and not yet time to try again. */
static bool fresh_off(uint64_t until)
{
	return until && os_nanotime() < until &&
	       atomic_load_explicit(&fresh_total, memory_order_relaxed) < atomic_load_explicit(&fresh_off_mark, memory_order_relaxed);
}
static uint64_t cost_avg;		 /* the background thread's */
static unsigned cost_samples;

/*
 * Is a CPU idle for the thread? Pre-faulting moves the kernel's work off
 * the program's threads; it saves time only if it runs where no thread
 * of the program would. When the program's threads keep every CPU it may
 * use busy (perf/run's frag: two threads filling 256 MiB on 2 CPUs), the
 * thread would only take turns with them, and what it faults in beyond
 * where the program stops (the window) is work for nothing: 10-20% of
 * that run. So fresh growth is pre-faulted only while the program, less
 * this thread, used less than all its CPUs but a quarter over the last
 * look (at least PF_BUSY_SPAN_NS apart; other processes' load is not
 * seen). The background thread's.
 */
#define PF_BUSY_SPAN_NS ((uint64_t)5000000)
static bool cpu_to_spare(void)
{
	static uint64_t wall0, proc0, self0;
	static bool spare = true;
	uint64_t wall = os_nanotime();
	if (wall - wall0 < PF_BUSY_SPAN_NS)
		return spare;
	uint64_t proc = os_process_cputime(), self = os_thread_cputime();
	if (wall0 && wall - wall0 < 50 * PF_BUSY_SPAN_NS) {
		uint64_t cpus = (uint64_t)NH_MAX(numa_pol.allowed_cpus, 1);
		if (numa_pol.cgroup_cpus_x100)
			cpus = NH_MIN(cpus, NH_MAX((uint64_t)numa_pol.cgroup_cpus_x100 / 100, 1));
		uint64_t busy = (proc - proc0) - NH_MIN(proc - proc0, self - self0);
		spare = busy * 4 < (wall - wall0) * (4 * cpus - 1);
	}
	wall0 = wall, proc0 = proc, self0 = self;
	return spare;
}

/*
 * Fresh memory on base pages. Where a fresh huge page is slow to fault in
 * and the program keeps its CPUs busy, nothing hides the cost: each huge
 * page costs a program thread 3-7 ms (on this VM, 2.5 times the same
 * memory in base pages, which come from the guest's never-reported small
 * free blocks), and a program that writes a word here and there of large
 * blocks has every 2 MiB around each word zeroed and resident (stress-ng's
 * malloc stressor with 4 threads: 0.28 M operations in 8 s and 4.6 GB of
 * RSS on huge pages; 9.4 M and 3.5 GB on base pages; jemalloc, which asks
 * for no huge pages, 5.5 M and 1.9 GB). So while the thread's timing says
 * slow and the program leaves no CPU to spare, the arenas mapped from then
 * on, and the rest of the arena the heap is growing in, are advised
 * MADV_NOHUGEPAGE (arena.c); new arenas get huge pages again once the
 * timing says fast (not when a CPU turns idle for a moment: under 4
 * threads on 2 CPUs that happened some 150 times in 8 s). Memory so
 * placed is on base pages while the heap grows; once it has stopped, the
 * background thread makes its wholly resident huge pages huge
 * (hugepages.c, collapse_base), at its own pace and cost.
 * NUMAHEAP_THP_ADAPT=base puts every new arena on base pages first.
 */
static _Atomic bool fresh_base;

bool prefault_fresh_on_base(void)
{
	return NH_OPTION(THP_ADAPT) == THP_ADAPT_BASE || atomic_load_explicit(&fresh_base, memory_order_relaxed);
}

/* After a look (the background thread): decide, and move the rest of
 * each heap's growing arena if base pages it is. */
static void decide_base(bool spare)
{
	if (cost_samples < PF_MIN_SAMPLES)
		return; /* no verdict yet */
	bool was = atomic_load_explicit(&fresh_base, memory_order_relaxed);
	bool base = cost_avg >= PF_CHEAP_NS && (was || !spare) && NH_OPTION(THP) && NH_OPTION(THP_ADAPT) == THP_ADAPT_ON &&
		    !NH_OPTION(HUGETLB);
	if (base == was)
		return;
	atomic_store_explicit(&fresh_base, base, memory_order_relaxed);
	if (!base)
		return;
	nh_scav.fresh_base_switches++;
	for_each_heap(h) {
		mutex_lock(&h->lock);
		uintptr_t top = huge_up(h->fresh_top);
		struct heap_arena *ha = h->fresh_top ? arena_of(h->fresh_top - 1) : NULL;
		uintptr_t end = ha ? ha->base + NH_ARENA_BYTES : 0;
		mutex_unlock(&h->lock);
		if (!ha || top >= end)
			continue;
		os_hugepage((void *)top, end - top, false);
		mutex_lock(&h->lock);
		page_alloc_note_base(&h->pages, top, end - top); /* made huge once growth stops */
		mutex_unlock(&h->lock);
	}
}

bool prefault_fresh_wanted(void)
{
	return !fresh_off(atomic_load_explicit(&fresh_off_until, memory_order_relaxed));
}

/* Time to try fresh growth again: time it anew (the background thread). */
static void reprobe_if_due(void)
{
	uint64_t until = atomic_load_explicit(&fresh_off_until, memory_order_relaxed);
	if (until && !fresh_off(until)) {
		atomic_store_explicit(&fresh_off_until, 0, memory_order_relaxed);
		cost_samples = 0;
	}
}

/* ns of CPU for bytes just faulted in (the background thread). */
static void note_cost(uint64_t ns, size_t bytes)
{
	if (bytes < NH_HUGE_BYTES)
		return; /* a sliver's fault says little */
	uint64_t until = atomic_load_explicit(&fresh_off_until, memory_order_relaxed);
	uint64_t per_huge = ns / (bytes / NH_HUGE_BYTES);
	cost_avg = cost_samples ? (cost_avg * 3 + per_huge) / 4 : per_huge;
	nh_scav.prefault_huge_ns = cost_avg;
	if (++cost_samples >= PF_MIN_SAMPLES && cost_avg < PF_CHEAP_NS && !until) {
		atomic_store_explicit(&fresh_off_mark, atomic_load(&fresh_total) + PF_REPROBE_BYTES, memory_order_relaxed);
		atomic_store_explicit(&fresh_off_until, os_nanotime() + PF_REPROBE_NS, memory_order_relaxed);
		nh_scav.prefault_fresh_offs++;
	}
}

/*
 * Of n runs just taken, those whose pages are ready (arena_commit; an
 * arena's pages are reserved only until the heap reaches them): a run that
 * cannot be made ready ends the list, and it and those after it stay as
 * a failed fault-in leaves them (fault_in). Heap lock held.
 */
static unsigned ready_runs(const struct page_run *run, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (arena_commit(run[i].base, run[i].bytes) != 0)
			return i;
	return n;
}

/*
 * Fault in n runs whose scavenged bits were just cleared, timing each
 * (note_cost); the bytes faulted in, or -1 if the kernel cannot (no
 * MADV_POPULATE_WRITE). A run that fails otherwise (no memory) stays free
 * and marked resident though it is not: the program faults it in itself
 * (and calloc clears it, needlessly), or the scavenger releases it again.
 */
static ssize_t fault_in(const struct page_run *run, unsigned n)
{
	size_t done = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = os_thread_cputime();
		int r = os_populate((void *)run[i].base, run[i].bytes);
		if (r == -EINVAL)
			return -1;
		if (r == 0) {
			note_cost(os_thread_cputime() - t0, run[i].bytes);
			done += run[i].bytes;
		}
	}
	return (ssize_t)done;
}

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
	/* What this look has seen (prefault_forget_fronts). */
	mutex_lock(&h->lock);
	h->regrow_looked = h->regrowth_bytes;
	mutex_unlock(&h->lock);
	for (;;) {
		size_t window = (size_t)NH_OPTION(PREFAULT) >> NH_PAGE_SHIFT;
		if (limit) {
			/* Never fault in what the limit would make a thread release. */
			size_t res = scavenger_resident_bytes();
			if (res >= limit)
				break;
			window = NH_MIN(window, (limit - res) >> NH_PAGE_SHIFT);
		}
		/* Fresh pages while they are slow to fault in and a CPU is to
		 * spare (above), or to time them (the first PF_MIN_SAMPLES). */
		bool fresh = prefault_fresh_wanted() && (cpu_to_spare() || cost_samples < PF_MIN_SAMPLES);
		mutex_lock(&h->lock);
		if (!fresh && !h->regrow_released) {
			mutex_unlock(&h->lock);
			break; /* an episode of fresh growth left to the program */
		}
		size_t regrown = (size_t)(h->regrowth_bytes - h->regrow_base);
		window = NH_MIN(window, NH_MAX((size_t)NH_HUGE_BYTES, regrown) >> NH_PAGE_SHIFT);
		if (h->regrow_fresh)
			window = NH_MIN(window, PF_FRESH_WINDOW >> NH_PAGE_SHIFT);
		uintptr_t from = h->regrow_front ? (h->regrow_front & ~(NH_HUGE_BYTES - 1)) + PF_LEAD : 0;
		/* Not fresh: the released pages below the top (the rest of the
		 * huge page the program grows in is resident already under THP,
		 * by its own first touch). */
		uintptr_t to = fresh ? UINTPTR_MAX : h->fresh_top;
		unsigned n = ready_runs(run, page_alloc_unscavenge_low(&h->pages, from, to, window, PF_STEP, run, PF_RUNS));
		mutex_unlock(&h->lock);
		if (n == 0)
			break;
		ssize_t r = fault_in(run, n);
		if (r < 0)
			return -1;
		done += (size_t)r;
	}
	mutex_lock(&h->lock);
	h->prefault_bytes += done;
	mutex_unlock(&h->lock);
	return (ssize_t)done;
}

void prefault_probe(void)
{
	reprobe_if_due();
	if (cost_samples < PF_MIN_SAMPLES && prefault_fresh_wanted()) {
		for_each_heap(h) {
			struct page_run run[PF_RUNS];
			mutex_lock(&h->lock);
			/* Only a heap past PF_FRESH_MIN (regrow_fresh); the huge
			 * page after the next: the program's own next one may be
			 * under its fault already. */
			uintptr_t at = huge_up(h->fresh_top) + NH_HUGE_BYTES;
			unsigned n = h->regrow_fresh ? ready_runs(run, page_alloc_unscavenge_low(&h->pages, at, at + NH_HUGE_BYTES,
												 SIZE_MAX / 2, PF_STEP, run, PF_RUNS))
						  : 0;
			mutex_unlock(&h->lock);
			ssize_t done = fault_in(run, n);
			mutex_lock(&h->lock);
			h->prefault_bytes += done > 0 ? (size_t)done : 0;
			mutex_unlock(&h->lock);
		}
	}
	decide_base(cpu_to_spare());
}

int prefault_pass(uint64_t *last_work)
{
	reprobe_if_due();
	decide_base(cpu_to_spare());
	for_each_heap(h) {
		ssize_t r = prefault_node(h);
		if (r < 0)
			return -1;
		if (r > 0)
			*last_work = os_nanotime();
	}
	return 0;
}

/*
 * The huge page where the program's fresh growth stopped: its pages past
 * the program's last span were faulted in with it (by the program's own
 * first touch under THP, or by pre-faulting), but were never handed out.
 * Marked released again, as fresh memory is, so that the subrelease does
 * not split the huge page of a heap that has stopped growing for the sake
 * of the pages just above its top (SteadyHeapIsNotSplit). The whole huge
 * pages pre-faulted above it stay resident until the scavenger returns
 * them whole, after its delay. Heap lock held.
 */
static void forget_fresh_top(struct mheap *h)
{
	if (!h->regrow_front || !NH_OPTION(THP))
		return;
	struct heap_arena *ha = arena_of(h->regrow_front - 1);
	uintptr_t top = ha->zeroed_base;
	uintptr_t end = huge_up(top);
	if (top < end && top >= ha->base)
		page_alloc_mark_scavenged(&h->pages, top, (end - top) >> NH_PAGE_SHIFT);
}

bool prefault_forget_fronts(bool quiet)
{
	bool all = true;
	for_each_heap(h) {
		mutex_lock(&h->lock);
		/* Grown back after the last look: its mark would be lost (the
		 * program said so once, and may say nothing more). */
		if (quiet && h->regrowth_bytes != h->regrow_looked) {
			mutex_unlock(&h->lock);
			all = false;
			continue;
		}
		forget_fresh_top(h);
		h->regrow_front = 0;
		h->regrow_fresh = false;
		/* After a release the program's regrowth may have begun already
		 * (and said so) before this: its pages must stay wanted. */
		if (quiet)
			h->regrow_released = false;
		mutex_unlock(&h->lock);
	}
	return all;
}
