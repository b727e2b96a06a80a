/*
 * prefault.c — pre-faulting: which released memory the background thread
 * faults in ahead of a program that grows back into it.
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
			size_t res = scavenger_resident_bytes();
			if (res >= limit)
				break;
			window = NH_MIN(window, (limit - res) >> NH_PAGE_SHIFT);
		}
		mutex_lock(&h->lock);
		size_t regrown = (size_t)(h->released_reused_bytes - h->regrow_base);
		window = NH_MIN(window, NH_MAX((size_t)NH_HUGE_BYTES, regrown) >> NH_PAGE_SHIFT);
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
