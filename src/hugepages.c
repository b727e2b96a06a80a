/*
 * hugepages.c — the huge pages the scavenger splits: kept away from
 * khugepaged while split, made whole again when the program grows back.
 *
 * The scavenger (scavenger.c) releases runs inside huge pages still in
 * use (sparse huge pages, the subrelease, the in-span release, and
 * everything on malloc_trim); each such huge page is noted
 * broken in the pageAlloc (page_alloc_note_broken) and, here, marked
 * MADV_NOHUGEPAGE. When the program has grown back into it, the
 * background thread collapses it (MADV_COLLAPSE) and marks it
 * MADV_HUGEPAGE again.
 *
 * Locking: the heap lock around each look at the pageAlloc; scav_lock
 * (scavenger_lock) around each collapse, never the heap lock across a
 * system call. nohuge_count is atomic (the background thread and a
 * synchronous scavenge both mark); collapse_by_khugepaged and the
 * per-heap collapse fields are the background thread's.
 */

#include "os/os.h"

#include "mheap.h"
#include "numa.h"
#include "scavenger.h"

#include <errno.h>

/*
 * Khugepaged and split huge pages. A run released inside a huge page
 * splits it; with the default max_ptes_none (511), khugepaged would later
 * collapse it again, faulting in everything that was released (it did in
 * redis-frag: RSS back up by 12 MiB within seconds; scanning a few MiB
 * every ten seconds, it would refill the whole heap in minutes). So a huge
 * page the scavenger splits is also marked MADV_NOHUGEPAGE, which
 * khugepaged respects, and marked back MADV_HUGEPAGE when it is made whole
 * again (hugepages_collapse). Go went the other way (1.21.1 stopped changing
 * the flags: its heap grew too many VMAs, and the calls contended on the
 * address space's lock); here a flag changes only for a huge page the
 * background thread splits on purpose, and at most NOHUGE_MAX huge pages
 * are so marked at once (each may cost two VMAs of the 65530 the kernel
 * allows by default); past that, khugepaged may have them back.
 */
#define NOHUGE_MAX 8192
static _Atomic size_t nohuge_count; /* huge pages marked MADV_NOHUGEPAGE now */

/* Mark the n huge pages at hps, just split, MADV_NOHUGEPAGE (at most
 * NOHUGE_MAX at once). No lock needed. */
void hugepages_mark_split(const uintptr_t *hps, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (atomic_load_explicit(&nohuge_count, memory_order_relaxed) >= NOHUGE_MAX)
			break;
		if (os_hugepage((void *)hps[i], NH_HUGE_BYTES, false) == 0)
			atomic_fetch_add_explicit(&nohuge_count, 1, memory_order_relaxed);
	}
}

/*
 * Huge pages come back. A huge page the scavenger split stays on base
 * pages after the program has grown back into it, each of its pages a TLB
 * entry (and marked MADV_NOHUGEPAGE, so khugepaged leaves it too). After
 * the program took released memory back (pages of the pageAlloc, or OS
 * pages inside spans), for COLLAPSE_WINDOW_NS, the background thread makes
 * such huge pages whole again: those at least half allocated, with at most
 * COLLAPSE_MAX_RELEASED pages still released (in the pageAlloc and inside
 * their spans together; they are filled in and count as resident again).
 * It marks the range MADV_HUGEPAGE and asks for MADV_COLLAPSE (the kernel
 * copies the 2 MiB into a huge page: 0.3-1 ms here); without MADV_COLLAPSE
 * (before Linux 6.1) the flag alone lets khugepaged collapse it, later.
 * Not in a round in which the program grew back by a huge page or more:
 * the copy holds the address space's lock, and the program's own faults
 * would wait for it (perf/rss measured that when pre-faulting collapsed).
 * A collapse counts as a use of its chunk (page_alloc_collapse_begin), so
 * that neither the subrelease nor the in-span release splits the huge
 * page again before a delay has passed: at most one back and forth per
 * delay, and only while the window is open. (A longer hold kept a
 * program that grew back and then freed most of it again, perf/rss's
 * second phase, from getting its memory back in its 3 s idle.) Paced by
 * the CPU budget; scav_lock is held around each, so that a synchronous
 * scavenge does not release pages of a huge page being collapsed (the
 * kernel would fill them in again).
 */
static bool collapse_by_khugepaged; /* the background thread's: no MADV_COLLAPSE */
/* A split huge page is made whole once at most this many of its pages are
 * still released (they are faulted in by the collapse): 64 KiB. */
#define COLLAPSE_MAX_RELEASED (NH_PAGES_PER_HUGE / 32)
/* Collapses follow a regrowth for this long (after it, the heap is either
 * whole again or idle, and an idle heap's split huge pages are what the
 * scavenger released on purpose). */
#define COLLAPSE_WINDOW_NS ((uint64_t)30000000000)

/* Bytes of released memory node h has taken back so far: pages of the
 * pageAlloc and OS pages inside spans (racy sums). */
static uint64_t regrown_bytes(struct mheap *h)
{
	uint64_t r = h->released_reused_bytes;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
		r += mcentral_reclaimed_bytes(&h->central[k]);
	return r;
}

/* For the churn back-off (bgthread.c): pre-faulted pages count too. */
uint64_t scavenger_regrown_bytes(void)
{
	uint64_t r = 0;
	for_each_heap(h) r += regrown_bytes(h) + h->prefault_bytes;
	return r;
}

/*
 * Huge pages for what grew on base pages. Where fresh huge pages were
 * slow to get and the program kept its CPUs busy, arenas were advised
 * MADV_NOHUGEPAGE (prefault.c, fresh_base) and their huge pages noted
 * (page_alloc_note_base). Once the program has grown by less than a huge
 * page a second for BASE_SETTLE_NS, the background thread collapses them,
 * top down, one at a time, where base_worth_collapsing says so (nearly
 * all resident, at least half objects). The copy is the thread's time,
 * paced by its CPU budget, while the program faults in little memory of
 * its own (a collapse holds the address space's lock); khugepaged would
 * not do it (the ranges are marked NOHUGEPAGE, and it fills in pages).
 * Those left out, or refused by the kernel, are asked again after
 * BASE_REWALK_NS or the next huge page of growth.
 */
#define BASE_SETTLE_NS ((uint64_t)2000000000)
#define BASE_RATE_NS ((uint64_t)1000000000)
#define BASE_MAX_ABSENT (NH_HUGE_BYTES / 32)
#define BASE_REWALK_NS ((uint64_t)30000000000)

/*
 * Interleave mode: the kernel puts a collapsed huge page on the node that
 * held most of its base pages, the first of them on a tie, and base pages
 * faulted under MPOL_INTERLEAVE alternate page by page: a tie in every
 * huge page. Left alone, every collapse moved a huge page to the first
 * node (a VM with 2 nodes: 98% of a 96 MiB heap there after the
 * collapses of NUMAHEAP_THP_ADAPT=base), where a huge page faulted in
 * takes its turn in the interleave. So the collapsed page is moved to the
 * node whose turn it is (one more 2 MiB copy; split and moved page by page
 * if that node has no free huge page; left where it is if the move fails).
 */
static void place_interleaved(uintptr_t hp)
{
	int node = numa_interleave_node(hp);
	if (node >= 0 && numa_move_page((void *)hp, node) == 0)
		nh_scav.collapse_moves++;
}

/* Make huge page hp whole: allowed huge pages again, collapsed. Counts
 * the result; false if the kernel refused. scav_lock held (so that no
 * release meets the copy); the pageAlloc already says it is not broken
 * (page_alloc_collapse_begin). */
static bool collapse_one(uintptr_t hp, bool was_nohuge)
{
	if (os_hugepage((void *)hp, NH_HUGE_BYTES, true) == 0 && was_nohuge &&
	    atomic_load_explicit(&nohuge_count, memory_order_relaxed))
		atomic_fetch_sub_explicit(&nohuge_count, 1, memory_order_relaxed);
	int r = collapse_by_khugepaged ? 0 : os_collapse((void *)hp, NH_HUGE_BYTES);
	if (r == -EINVAL) {
		/* No MADV_COLLAPSE (before 6.1): the range is allowed huge
		 * pages again, and khugepaged will collapse it. */
		collapse_by_khugepaged = true;
		nh_scav.collapse = "khugepaged";
	}
	if (r == 0 || r == -EINVAL) {
		nh_scav.collapses++;
		if (r == 0)
			place_interleaved(hp);
		return true;
	}
	nh_scav.collapse_failures++;
	return false;
}

/*
 * A huge page grown on base pages is collapsed when at most
 * BASE_MAX_ABSENT of it is not resident (mincore: a collapse fills in
 * every page, so RSS grows by 3% at most; all resident would leave out
 * most huge pages, where a large block's last page or a span's free tail
 * was never written) and at least half of it holds objects: a sparse one
 * (a heap that stopped growing because it freed most of what it had) is
 * the scavenger's to release, and a collapse would only hold that back
 * for a delay (page_alloc_collapse_begin) and be split again after it.
 */
static bool base_worth_collapsing(struct mheap *h, uintptr_t hp)
{
	return os_absent_pages((void *)hp, NH_HUGE_BYTES) <= BASE_MAX_ABSENT / 4096 &&
	       mcentral_used_in_range(h, hp, hp + NH_HUGE_BYTES) >= NH_HUGE_BYTES / 2;
}

/*
 * Walk node h's huge pages grown on base pages (base) or split by the
 * scavenger, top down, and collapse those the program (nearly) fills.
 * Returns true if cut by the deadline (work may be left), false when the
 * walk is done or malloc_trim calls are paced (scavenger.c).
 */
static bool collapse_walk(struct mheap *h, bool base, uint64_t now, uint64_t deadline)
{
	/* The first NH_SMALL_HEAP_BYTES of the slice stay on base pages (arena.c). */
	uintptr_t cursor = UINTPTR_MAX, floor = h->pages.base + NH_SMALL_HEAP_BYTES;
	for (;;) {
		uint64_t t = os_nanotime();
		if (t >= deadline)
			return true;
		if (scavenger_trims_paced(t))
			return false;
		unsigned nscav = 0;
		scavenger_lock();
		mutex_lock(&h->lock);
		uintptr_t hp = base ? page_alloc_next_base(&h->pages, &cursor, floor, BASE_MAX_ABSENT >> NH_PAGE_SHIFT)
				    : page_alloc_next_collapse(&h->pages, &cursor, floor, COLLAPSE_MAX_RELEASED,
							       NH_PAGES_PER_HUGE / 2, &nscav);
		mutex_unlock(&h->lock);
		if (!hp) {
			scavenger_unlock();
			return false;
		}
		/* Released OS pages inside its spans count too (MADV_FREE'd
		 * ones read as resident to mincore). */
		size_t left = base ? BASE_MAX_ABSENT : (size_t)(COLLAPSE_MAX_RELEASED - nscav) << NH_PAGE_SHIFT;
		if ((base && !base_worth_collapsing(h, hp)) ||
		    mcentral_reclaim_range(h, hp, hp + NH_HUGE_BYTES, left) == SIZE_MAX) {
			scavenger_unlock();
			continue;
		}
		mutex_lock(&h->lock);
		bool broken = page_alloc_collapse_begin(&h->pages, hp, now);
		mutex_unlock(&h->lock);
		if (collapse_one(hp, broken)) {
			nh_scav.base_collapses += base;
		} else if (base) {
			/* Refused (no huge page to be had, or pages shared with a
			 * forked child): asked again at the next walk. */
			mutex_lock(&h->lock);
			page_alloc_note_base(&h->pages, hp, NH_HUGE_BYTES);
			mutex_unlock(&h->lock);
		}
		scavenger_unlock();
	}
}

/* The base-page step; returns true if cut by the deadline. */
static bool collapse_base(struct mheap *h, uint64_t now, uint64_t deadline)
{
	mutex_lock(&h->lock);
	uint64_t fresh = h->fresh_bytes;
	size_t base_huge = h->pages.base_huge;
	mutex_unlock(&h->lock);
	/* Growing: a huge page of fresh pages a second or more, over a second
	 * at least (rounds come closer together, and growth in bursts). A
	 * heap that keeps growing slowly is collapsed as it goes: its program
	 * faults little, and the copies are paced. */
	if (!h->fresh_grown_at) {
		h->fresh_grown_at = h->base_seen_at = now;
		h->base_seen_fresh = fresh;
	} else if (now - h->base_seen_at >= BASE_RATE_NS) {
		if ((double)(fresh - h->base_seen_fresh) * 1e9 >= (double)NH_HUGE_BYTES * (double)(now - h->base_seen_at))
			h->fresh_grown_at = now;
		h->base_seen_fresh = fresh;
		h->base_seen_at = now;
	}
	if (!base_huge || now - h->fresh_grown_at < BASE_SETTLE_NS)
		return false;
	if (fresh - h->base_walked_fresh < NH_HUGE_BYTES && h->base_walked_at && now - h->base_walked_at < BASE_REWALK_NS)
		return false;
	if (collapse_walk(h, true, now, deadline))
		return true; /* cut: the walk goes on next round, from the top */
	h->base_walked_at = now;
	h->base_walked_fresh = fresh;
	return false;
}

bool hugepages_collapse(struct mheap *h, uint64_t now, uint64_t deadline)
{
	if (collapse_base(h, now, deadline))
		return true;

	uint64_t r = regrown_bytes(h);
	bool growing = r - h->collapse_seen_regrown >= NH_HUGE_BYTES;
	if (r != h->collapse_seen_regrown) {
		h->collapse_seen_regrown = r;
		h->regrown_at = now;
	}
	if (growing || !h->regrown_at || now - h->regrown_at > COLLAPSE_WINDOW_NS)
		return false;
	mutex_lock(&h->lock);
	bool any = h->pages.broken != 0;
	mutex_unlock(&h->lock);
	if (!any)
		return false;
	return collapse_walk(h, false, now, deadline);
}
