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

bool hugepages_collapse(struct mheap *h, uint64_t now, uint64_t deadline)
{
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
	/* The first NH_SMALL_HEAP_BYTES of the slice stay on base pages (arena.c). */
	uintptr_t cursor = UINTPTR_MAX, floor = h->pages.base + NH_SMALL_HEAP_BYTES;
	uint64_t hold = now;
	for (;;) {
		uint64_t t = os_nanotime();
		if (t >= deadline)
			return true; /* cut: work may be left */
		if (scavenger_trims_paced(t))
			return false; /* the program keeps trimming (scavenger.c) */
		unsigned nscav = 0;
		scavenger_lock();
		mutex_lock(&h->lock);
		uintptr_t hp = page_alloc_next_collapse(&h->pages, &cursor, floor, COLLAPSE_MAX_RELEASED,
							NH_PAGES_PER_HUGE / 2, &nscav);
		mutex_unlock(&h->lock);
		if (!hp) {
			scavenger_unlock();
			break;
		}
		/* Released OS pages inside its spans count too. */
		size_t left = (size_t)(COLLAPSE_MAX_RELEASED - nscav) << NH_PAGE_SHIFT;
		if (mcentral_reclaim_range(h, hp, hp + NH_HUGE_BYTES, left) == SIZE_MAX) {
			scavenger_unlock();
			continue;
		}
		mutex_lock(&h->lock);
		page_alloc_collapse_begin(&h->pages, hp, hold);
		mutex_unlock(&h->lock);
		/* Huge pages allowed again (harmless if it never lost them). */
		if (os_hugepage((void *)hp, NH_HUGE_BYTES, true) == 0 &&
		    atomic_load_explicit(&nohuge_count, memory_order_relaxed))
			atomic_fetch_sub_explicit(&nohuge_count, 1, memory_order_relaxed);
		int r2 = collapse_by_khugepaged ? 0 : os_collapse((void *)hp, NH_HUGE_BYTES);
		scavenger_unlock();
		if (r2 == -EINVAL) {
			/* No MADV_COLLAPSE (before 6.1): the range is allowed
			 * huge pages again, and khugepaged will collapse it. */
			collapse_by_khugepaged = true;
			nh_scav.collapse = "khugepaged";
		}
		if (r2 == 0 || r2 == -EINVAL)
			nh_scav.collapses++;
		else
			nh_scav.collapse_failures++;
	}
	return false;
}
