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
 *            The margin decays: what stays idle for
 *            NUMAHEAP_SCAVENGE_RETAIN_TIME goes back too (an idle server
 *            returns all its free memory, as jemalloc's decay does).
 *   idle     a chunk (4 MiB) whose pages were freed less than
 *            NUMAHEAP_SCAVENGE_DELAY ago is left alone: memory that a
 *            program frees and takes again (phases, request bursts) is not
 *            released and faulted back in.
 *   order    whole free 2 MiB huge pages first (one madvise returns a whole
 *            huge page and breaks none), highest addresses first (the heap
 *            packs low, so the top stays free longest). Then, if the node
 *            is still above its goal, the free runs of sparse huge pages
 *            (at most 1/8 of their pages allocated: what a freed region
 *            leaves behind, a span or two per size class).
 *   subrelease  denser huge pages are broken later: after
 *            NUMAHEAP_SUBRELEASE_DELAY with neither a free nor a span taken
 *            in their chunk, the free runs of huge pages still in use,
 *            sparsest first, down to the goal (Temeraire's subrelease). A
 *            broken huge page costs TLB misses while it lives, and base-page
 *            faults when the program grows into it again (perf/rss measured
 *            1.3x the CPU of the allocating phases when every background
 *            pass broke them all; docs/performance.md), hence the longer
 *            delay, and the collapse below.
 *   in spans the OS pages that only free slots cover, inside spans still in
 *            use, of size classes nobody has allocated for the same delay
 *            (mcentral.c has the mechanism): what a server keeps after it
 *            deleted most of its data at random, where nearly every span
 *            keeps an object or two.
 *   collapse after the program grew back into broken huge pages, they are
 *            made huge again (MADV_COLLAPSE), so a heap in steady use keeps
 *            its huge pages. Broken huge pages are marked MADV_NOHUGEPAGE
 *            meanwhile, or khugepaged would fill them in again (both in
 *            hugepages.c).
 *            malloc_trim, numaheap_release and the memory limit break any
 *            huge page, and release inside every span, at once.
 *   limit    NUMAHEAP_MEMORY_LIMIT: a thread that takes a span while the
 *            heap's resident memory exceeds the limit scavenges at once,
 *            itself, ignoring idleness, and may break huge pages.
 *   regrowth when the program grows back into released memory, the
 *            background thread faults it in ahead of the program
 *            (NUMAHEAP_PREFAULT, "pre-faulting" below), so the kernel
 *            zeroes it on an idle CPU rather than on the program's.
 *            prefault.c says what to fault in; bgthread.c runs the episodes.
 *   churn    when the program grows back into what the background thread
 *            released soon after, the delays above back off (doubled, up
 *            to 8x; bgthread.c), so phases of a few seconds do not release
 *            and refault the same memory over and over.
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
#include "arena.h"
#include "ordered.h"
#include "hardened.h"

#include <errno.h>

static struct os_batch sync_batch; /* under scav_lock */
static struct mutex scav_lock;

struct nh_scav_stats nh_scav;

/* The background delays, backed off while releases churn (bgthread.c). */
static uint64_t delay_ns(void) { return (uint64_t)NH_OPTION(SCAVENGE_DELAY) << nh_scav.delay_shift; }
static uint64_t sub_delay_ns(void) { return (uint64_t)NH_OPTION(SUBRELEASE_DELAY) << nh_scav.delay_shift; }
static uint64_t retain_ns(void) { return (uint64_t)NH_OPTION(SCAVENGE_RETAIN_TIME) << nh_scav.delay_shift; }
/* Collapse split huge pages when the heap is on transparent huge pages. */
static bool collapse_wanted;

/*
 * malloc_trim's pacing. A trim costs the call (a walk of the heap, a
 * madvise per free run, a TLB shootdown per call once a second thread has
 * run) and, after it, the faults that bring back what the program reuses
 * (2 MiB at a time on huge pages). A program that trims after every few
 * operations (stress-ng's malloc stressor: one call in eight; jemalloc,
 * tcmalloc and mimalloc do not implement the call) spent most of its time
 * there: 0.3 M operations a second against jemalloc's 2.3 M. So the calls
 * may take TRIM_SHARE of the time, counting the faults that bring back what
 * they released, with a burst of TRIM_BURST_NS: a call
 * whose turn has not come releases nothing and returns 0 (glibc's
 * contract: it "attempts" to release). A program that trims now and then
 * gets every call; numaheap_release is not paced.
 * trim_tat: the time from which the calls' spending is paid for (GCRA's
 * theoretical arrival time); races between trimming threads only blur it.
 */
#define TRIM_SHARE 20				/* 1/20: 5% of the time */
/* What a call is charged besides its own time: the faults that bring back
 * what it released, if the program reuses it (a 4 KiB page faulted in and
 * zeroed: about 1 us here). Without it, perf/'s trim workload still spent
 * a quarter of its time zeroing pages the calls had released. */
#define TRIM_REFAULT_NS 1000
#define TRIM_BURST_NS ((uint64_t)1000000000)	/* 1 s: 50 ms of trimming at once */
static _Atomic uint64_t trim_tat;
/*
 * While calls are being paced, and for TRIM_QUIET_NS after the last paced
 * one, the background thread neither pre-faults nor collapses huge pages:
 * the program keeps asking for its memory to go back, and the thread would
 * fault in and copy back, on another CPU, what each call releases (under
 * stress-ng, 35% of the process's CPU time, as much as the program's own
 * page faults).
 */
#define TRIM_QUIET_NS ((uint64_t)1000000000)
static _Atomic uint64_t trim_paced_at; /* the last paced call (os_nanotime; 0: none) */

uint64_t scavenger_trim_turn(void)
{
	uint64_t now = os_nanotime(), tat = atomic_load_explicit(&trim_tat, memory_order_relaxed);
	if (tat <= now + TRIM_BURST_NS)
		return now;
	atomic_store_explicit(&trim_paced_at, now, memory_order_relaxed);
	atomic_fetch_add_explicit(&nh_scav.trims_paced, 1, memory_order_relaxed);
	return 0;
}

bool scavenger_trims_paced(uint64_t now)
{
	uint64_t t = atomic_load_explicit(&trim_paced_at, memory_order_relaxed);
	return t && (t >= now || now - t < TRIM_QUIET_NS); /* now may predate t */
}

void scavenger_trim_spent(uint64_t start, size_t released)
{
	uint64_t now = os_nanotime(), tat = atomic_load_explicit(&trim_tat, memory_order_relaxed);
	uint64_t cost = now - start + (released >> 12) * TRIM_REFAULT_NS; /* per 4 KiB */
	atomic_store_explicit(&trim_tat, NH_MAX(tat, start) + cost * TRIM_SHARE, memory_order_relaxed);
}

void scavenger_init(void)
{
	mutex_init(&scav_lock, LOCK_RANK_SCAV);
	nh_scav.backend = NH_OPTION(SCAVENGER) == SCAV_OFF ? "off" : "pending";
	/* Without binding on a multi-node machine (NUMAHEAP_NUMA=off, or the
	 * basic system calls: no mbind), the pages would land on the
	 * background thread's node rather than the program's. */
	bool prefault = NH_OPTION(SCAVENGER) != SCAV_OFF && NH_OPTION(PREFAULT) && !nh_hardened &&
			!((NH_OPTION(NUMA) == NUMA_OFF || os_basic_syscalls) && numa_topo.nnodes > 1);
	nh_scav.prefault = prefault ? "on" : "off";
	collapse_wanted = NH_OPTION(SCAVENGER) != SCAV_OFF && NH_OPTION(THP) && !NH_OPTION(HUGETLB);
	nh_scav.collapse = collapse_wanted ? "on" : "off";
	bg_init(prefault);
}

void scavenger_lock(void) { mutex_lock(&scav_lock); }
void scavenger_unlock(void) { mutex_unlock(&scav_lock); }

/* ---- one node --------------------------------------------------------------------- */

/* One pass over the nodes: what it may do, and what it found pending. */
struct scav_pass {
	bool all;	   /* trim, release, the memory limit: everything, now */
	uint64_t now;
	uint64_t deadline; /* the subrelease, in-span and collapse steps stop here (the CPU budget) */
	struct os_batch *b;
	uint64_t due;	   /* out: when memory left alone as busy turns idle (0: none) */
	bool cut;	   /* out: the deadline stopped a step with work left */
	const struct alloc_counts *n; /* mallocs so far by class, all caches, and when (background only) */
	uint64_t quiet_ns; /* how long the program has made no malloc (background only) */
};

static void pass_due(struct scav_pass *ps, uint64_t t)
{
	if (t && (!ps->due || t < ps->due))
		ps->due = t;
}

static bool pass_late(struct scav_pass *ps)
{
	if (ps->all || os_nanotime() < ps->deadline)
		return false;
	ps->cut = true;
	return true;
}

/* OS pages released inside the spans of h, now (a racy sum). */
static size_t span_released_bytes(struct mheap *h)
{
	size_t r = 0;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
		r += mcentral_released_bytes(&h->central[k]);
	return r;
}

/* Free resident bytes of h; heap lock held. */
static size_t free_resident_bytes(struct mheap *h)
{
	size_t released = h->pages.pages_scav << NH_PAGE_SHIFT;
	return h->mapped_bytes - h->inuse_bytes - NH_MIN(released, h->mapped_bytes - h->inuse_bytes);
}

/* Free resident bytes of h beyond its goal; heap lock held. */
static size_t excess_bytes(struct mheap *h)
{
	size_t free_resident = free_resident_bytes(h);
	size_t goal = h->inuse_bytes / 100 * (size_t)NH_OPTION(SCAVENGE_RETAIN);
	return free_resident > goal ? free_resident - goal : 0;
}

/* The runs of batch b are about to be released: note the huge pages they
 * split, and keep khugepaged away from the newly split ones. */
static void break_huge_pages(struct mheap *h, struct os_batch *b)
{
	uintptr_t hps[2 * OS_BATCH_MAX];
	unsigned n = 0;
	mutex_lock(&h->lock);
	for (unsigned i = 0; i < b->n && n + 2 <= 2 * OS_BATCH_MAX; i++)
		n += page_alloc_note_broken(&h->pages, (uintptr_t)b->op[i].p, b->op[i].len, hps + n, 2);
	mutex_unlock(&h->lock);
	if (collapse_wanted)
		hugepages_mark_split(hps, n);
}

/*
 * Release up to want bytes of h matching q, through batch b. Returns bytes
 * released. The heap lock is taken per batch and dropped for the system
 * call. A pass with a deadline (ps) stops after the batch that passes it.
 */
static size_t release_runs(struct mheap *h, struct scav_query *q, size_t want, struct os_batch *b,
			   struct scav_pass *ps)
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
		break_huge_pages(h, b);
		os_batch_submit(b, mode);
		for (unsigned i = 0; i < b->n; i++) /* while no span can be there */
			arena_release_table((uintptr_t)b->op[i].p, b->op[i].len);
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
		if (q->limit <= h->pages.base || (ps && pass_late(ps)))
			break;
	}
	return released;
}

/* Up to want bytes of the free runs of huge pages in use whose chunks have
 * been idle for delay, sparsest huge pages first (rounds of growing
 * occupancy): the subrelease's walk, and the retained margin's decay's. */
static size_t release_in_use(struct mheap *h, uintptr_t top, size_t want, uint64_t delay, struct scav_pass *ps)
{
	static const unsigned rounds[] = {NH_PAGES_PER_HUGE / 4, NH_PAGES_PER_HUGE / 2, NH_PAGES_PER_HUGE * 3 / 4,
					  NH_PAGES_PER_HUGE - 1};
	size_t released = 0;
	for (unsigned r = 0; r < sizeof rounds / sizeof rounds[0] && released < want; r++) {
		struct scav_query q = {.limit = top, .min_pages = 1, .align_pages = 1, .max_used = rounds[r],
				       .idle_before = ps->now > delay ? ps->now - delay : 1, .allocs_too = true};
		released += release_runs(h, &q, want - released, ps->b, ps);
		if (r == 0)
			pass_due(ps, q.next_idle ? q.next_idle + delay : 0);
		if (ps->cut)
			break;
	}
	return released;
}

/*
 * The subrelease (tcmalloc's Temeraire subreleases, Go's scavenger breaks
 * huge pages below 96% use): the free runs of huge pages the program still
 * uses, once their chunks have seen neither a free nor a span taken for
 * NUMAHEAP_SUBRELEASE_DELAY, sparsest huge pages first (rounds of growing
 * occupancy), until the node is at its goal. A heap that grows and shrinks
 * takes and frees spans in its chunks all the time, so it is not split; one
 * in steady use within its spans (caches serving the same classes, no span
 * taken or freed) is split only where it keeps more free pages than its
 * goal, unused for the delay. Memory a program stopped using comes back, at
 * the price of base pages where it picks up again (faulted in a page at a
 * time; made huge again by the collapse step once it is all in use).
 */
static size_t subrelease(struct mheap *h, uintptr_t top, size_t want, struct scav_pass *ps)
{
	size_t released = release_in_use(h, top, want, sub_delay_ns(), ps);
	nh_scav.subreleased_bytes += released;
	return released;
}

/*
 * The goal's margin decays (background passes): free runs idle for
 * NUMAHEAP_SCAVENGE_RETAIN_TIME go back whatever the goal, whole free huge
 * pages first, then the free runs of huge pages in use, sparsest first (the
 * collapse makes them huge again if the program grows back into them). The
 * margin is for a program that grows back soon; one that has not touched
 * that memory for this long is not about to. Nor is one that has made no
 * malloc for the subrelease's delay (a server after its deletes): it gets
 * the margin back then; a busy one, even one whose caches serve it
 * without taking a span, keeps it for the retain time.
 */
static size_t release_retained(struct mheap *h, uintptr_t top, struct scav_pass *ps)
{
	uint64_t t = retain_ns(), sd = sub_delay_ns();
	if (sd && sd < t && ps->quiet_ns >= sd)
		t = sd;
	else if (sd && sd < t && !ps->all)
		pass_due(ps, ps->now + (sd - ps->quiet_ns)); /* quiet for sd by then */
	if (!t || ps->now <= t || ps->cut)
		return 0;
	const size_t all = SIZE_MAX / 2;
	struct scav_query q = {.limit = top, .min_pages = NH_PAGES_PER_HUGE, .align_pages = NH_PAGES_PER_HUGE,
			       .idle_before = ps->now - t};
	size_t released = release_runs(h, &q, all, ps->b, ps);
	pass_due(ps, q.next_idle ? q.next_idle + t : 0);
	/* Then the free runs of huge pages in use, as the subrelease takes
	 * them, but with the longer delay and no goal. */
	if (!ps->cut)
		released += release_in_use(h, top, all, t, ps);
	nh_scav.retained_released_bytes += released;
	return released;
}

/*
 * Scavenge node h towards its goal (or everything free, if ps->all).
 * Returns the bytes released; ps->due notes when a busy chunk turns idle.
 */
static size_t scavenge_node(struct mheap *h, struct scav_pass *ps)
{
	mutex_lock(&h->lock);
	size_t want = ps->all ? (size_t)-1 : excess_bytes(h);
	bool any_free = free_resident_bytes(h) != 0; /* else no walk for the decay */
	uintptr_t top = h->pages.grown_end;
	mutex_unlock(&h->lock);
	if (want == 0)
		return any_free ? release_retained(h, top, ps) : 0;
	uint64_t idle_before = ps->all || ps->now < delay_ns() ? 0 : ps->now - delay_ns();
	/* Pass 1: whole huge pages. */
	struct scav_query q = {.limit = top, .min_pages = NH_PAGES_PER_HUGE, .align_pages = NH_PAGES_PER_HUGE,
			       .idle_before = idle_before};
	size_t released = release_runs(h, &q, want, ps->b, NULL);
	pass_due(ps, q.next_idle ? q.next_idle + delay_ns() : 0);
	if (released < want) {
		/*
		 * Pass 2: smaller runs, breaking huge pages. When asked for
		 * everything (trim, release, the memory limit), from any huge
		 * page; in the background, still above the goal, only from
		 * sparse ones (at most 1/8 allocated): a span or two left
		 * behind in an otherwise free huge page when a whole region of
		 * the heap was freed. Denser huge pages wait for the subrelease.
		 */
		struct scav_query q2 = {.limit = top, .min_pages = 1, .align_pages = 1, .idle_before = idle_before,
					.max_used = ps->all ? 0 : NH_PAGES_PER_HUGE / 8};
		released += release_runs(h, &q2, want - released, ps->b, NULL);
		pass_due(ps, q2.next_idle ? q2.next_idle + delay_ns() : 0);
	}
	/* Pass 3, in the background: the subrelease. */
	if (released < want && !ps->all && sub_delay_ns())
		released += subrelease(h, top, want - released, ps);
	if (!ps->all && any_free)
		released += release_retained(h, top, ps);
	return released;
}

/* The pieces of class c (NULL: the ordered spans of band, ordered.c), a
 * batch at a time, until none is left or the pass is late. */
static size_t release_class_pieces(struct mheap *h, struct mcentral *c, unsigned band, struct scav_pass *ps)
{
	struct span_piece pc[OS_BATCH_MAX];
	int res[OS_BATCH_MAX];
	struct os_batch *b = ps->b;
	enum os_release_mode mode = (enum os_release_mode)NH_OPTION(RELEASE);
	uint64_t delay = sub_delay_ns(), busy = 0;
	uint64_t idle_before = ps->all ? 0 : ps->now > delay ? ps->now - delay : 1;
	size_t released = 0;
	for (;;) {
		unsigned n = c ? mcentral_take_free_pages(c, h, idle_before, &busy, pc, OS_BATCH_MAX)
			       : ordered_take_free_pages(h, band, idle_before, &busy, pc, OS_BATCH_MAX);
		if (busy)
			pass_due(ps, busy + delay);
		if (!n)
			break;
		for (unsigned i = 0; i < n; i++) {
			uintptr_t a;
			span_piece_range(&pc[i], &a, &b->op[i].len);
			b->op[i].p = (void *)a;
		}
		b->n = n;
		break_huge_pages(h, b);
		os_batch_submit(b, mode);
		for (unsigned i = 0; i < n; i++) {
			res[i] = b->op[i].res;
			if (res[i] == 0)
				released += b->op[i].len;
		}
		/* Spans that empty go back to the heap as idle memory: their
		 * chunk's free tick stays, no second delay. */
		bool keeps = nh_free_keeps_idle;
		nh_free_keeps_idle = true;
		if (c)
			mcentral_put_free_pages(c, h, pc, n, res);
		else
			ordered_put_free_pages(h, band, pc, n, res);
		nh_free_keeps_idle = keeps;
		if (n < OS_BATCH_MAX || pass_late(ps))
			break;
	}
	if (released) {
		mutex_lock(&h->lock);
		h->scav_released_bytes += released;
		mutex_unlock(&h->lock);
	}
	return released;
}

/*
 * The in-span release of node h (mcentral.c has the mechanism): the OS
 * pages that only free slots cover, in the spans of classes nobody has
 * allocated from (any cache, any CPU) for NUMAHEAP_SUBRELEASE_DELAY, in
 * chunks that have been idle as long (every class and chunk, when
 * everything is asked for). Idleness is the rule here, not the node's
 * goal: the free slots of a class nobody allocates stay free, and a heap
 * in steady use, whose caches serve the same classes all the time, is
 * left alone (a refill count would not do: a cache that frees as much as
 * it allocates does not refill). Returns the bytes released.
 */
static size_t release_in_spans(struct mheap *h, struct scav_pass *ps)
{
	size_t released = 0;
	uint64_t delay = sub_delay_ns();
	for (unsigned k = 1; k < NH_NUM_CLASSES && !ps->cut; k++) {
		struct mcentral *c = &h->central[k];
		if (!ps->all) {
			if (ps->n->allocs[k] != c->sub_allocs || !c->sub_since) {
				c->sub_allocs = ps->n->allocs[k];
				c->sub_since = NH_MAX(ps->n->since[k], 1);
			}
			if (ps->now - c->sub_since < delay) {
				if (mcentral_release_pending(c))
					pass_due(ps, c->sub_since + delay);
				continue;
			}
		}
		released += release_class_pieces(h, c, 0, ps);
	}
	for (unsigned b = 0; b < OBANDS && nh_ordered_hi && !ps->cut; b++)
		released += release_class_pieces(h, NULL, b, ps);
	/* The background thread and a synchronous scavenge (under scav_lock,
	 * which the thread does not take) may both be here. */
	__atomic_fetch_add(&nh_scav.span_released_bytes, released, __ATOMIC_RELAXED);
	return released;
}

/* ---- the background thread's passes ------------------------------------------------- */

size_t scavenge_background(uint64_t now, struct os_batch *b, uint64_t *due, uint64_t budget_ns,
			   const struct alloc_counts *n, uint64_t quiet_ns)
{
	struct scav_pass ps = {.now = now, .deadline = now + budget_ns, .b = b, .n = n, .quiet_ns = quiet_ns};
	size_t released = 0;
	nh_scav.backend = b->backend == OS_BACKEND_URING ? "io_uring" : "madvise";
	for_each_heap(h) {
		released += scavenge_node(h, &ps);
		if (sub_delay_ns() && !ps.cut)
			released += release_in_spans(h, &ps);
		if (collapse_wanted && !ps.cut) /* it stops while trims are paced */
			ps.cut = hugepages_collapse(h, now, ps.deadline);
	}
	nh_scav.bg_released_bytes += released;
	nh_scav.submissions = b->submissions;
	nh_scav.bg_syscalls = b->syscalls;
	nh_scav.passes++;
	if (ps.cut)
		nh_scav.budget_cuts++;
	/* Cut short by the budget: back as soon as it allows. */
	*due = ps.cut ? now : ps.due;
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
	 * would fault straight back in what the program asked to give back.
	 * Its fronts go now, not at its next look: by then the program may
	 * have begun growing back and asked for an episode, and the old one,
	 * finding the state running again, would go on from fronts above
	 * everything released, fault in nothing, and end as quiet, taking
	 * the regrowth's episode with it. */
	if (all) {
		bg_prefault_cancel();
		prefault_forget_fronts(false);
		nh_scav.sync_releases++;
	}
	if (sync_batch.backend != OS_BACKEND_MADVISE)
		sync_batch.backend = OS_BACKEND_MADVISE;
	struct scav_pass ps = {.all = all, .now = now, .deadline = UINT64_MAX, .b = &sync_batch};
	for_each_heap(h) {
		released += scavenge_node(h, &ps);
		if (all)
			released += release_in_spans(h, &ps);
	}
	nh_scav.sync_released_bytes += released;
	nh_scav.syscalls += sync_batch.syscalls;
	sync_batch.syscalls = 0;
	mutex_unlock(&scav_lock);
	return released;
}

size_t scavenger_resident_bytes(void)
{
	size_t r = 0;
	for_each_heap(h) {
		size_t rel = (h->pages.pages_scav << NH_PAGE_SHIFT) + span_released_bytes(h);
		r += h->mapped_bytes > rel ? h->mapped_bytes - rel : 0;
	}
	return r;
}

void scavenger_check_limit(void)
{
	size_t limit = (size_t)NH_OPTION(MEMORY_LIMIT);
	if (!limit || scavenger_resident_bytes() <= limit)
		return;
	nh_scav.limit_hits++;
	/* What the central caches keep (transfer caches, empty spans, large
	 * spans) goes back to the pages first, so that it can be released. */
	mheap_drain_caches(false);
	scavenge_now(true);
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
