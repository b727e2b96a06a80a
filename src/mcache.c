/*
 * mcache.c — a P's cache of free objects: the slow paths.
 *
 * See malloc.c for the overview and mcache.h for the slab layout. The fast
 * paths (pop on malloc, push on free) are mcache.h's inline functions, used
 * by fastpath.h; this file refills an
 * empty class from mcentral, flushes a full one back, sizes the stacks, and
 * sends objects of other nodes home. It is written once for both kinds of
 * P through struct pctx: plain code for a per-thread P, restartable
 * sequences for a per-CPU one (every operation may then report that the
 * thread left the CPU, and the caller starts over).
 *
 * Sizing. Each class moves objects in batches of batch[c] (32 KiB worth,
 * 2 to 128 objects): one central lock round trip per batch. Its stack has
 * room for max[c] = 8 batches (at most 1024 objects), fixed at start-up;
 * its capacity (end - begin) starts at one batch. On overflow a class grows
 * by a batch while the P's capacity in bytes stays within the budget
 * (NUMAHEAP_CACHE_BYTES); past the budget it takes a batch of capacity from
 * a class that leaves it unused or has not missed lately (flushing that
 * class's excess), and failing that it flushes a batch of its own. So
 * classes that miss grow, cold ones shrink, and the P holds at most the
 * budget plus one batch per class.
 *
 * Objects of another node never enter a cache: free sends them to the
 * P's remote buffer, which goes back to the owners' mcentrals in class
 * batches (frees go home).
 *
 * Locking: per-thread P's need none (one owner). Per-CPU P's: the slab's
 * lock (rank PCACHE) for every function here; the fast paths take none.
 */

#include "options.h"
#include "os/os.h"

#include "numa.h"

#include "mspan.h"
#include "arena.h"

#include "mheap.h"
#include "mcache.h"
#include "proc.h"

#include "hardened.h"
#include "ordered.h"
#include "ospan.h"
#include "prof.h"

#include <string.h>

static uint16_t batch[NH_NUM_CLASSES];
static uint16_t maxcap[NH_NUM_CLASSES];
static uint16_t slot_begin[NH_NUM_CLASSES];

struct mcache nh_empty_mcache; /* no thread's: compared with, never used */

/*
 * Words left unused after each class's stack. The stacks of the classes up
 * to 256 B are 1024 slots (8 KiB) each, so without a gap their first lines,
 * where a stack's top spends its time, all fall in the same sets of a
 * 4 KiB-periodic L1 (64 sets of 64 B) and evict one another: cachegrind
 * counted 0.12 L1 misses per pair on the slots alone in perf/micro's random
 * working set of 1000 objects, 0.03 with this gap of 4 lines, which moves
 * each next stack to other sets.
 */
#define NH_MCACHE_SKEW 32

void mcache_layout_init(void)
{
	unsigned next = (unsigned)NH_MCACHE_HDR_WORDS;
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		unsigned b = 32768 / nh_class_to_size[c];
		b = NH_MAX(2u, NH_MIN(128u, b));
		batch[c] = (uint16_t)b;
		maxcap[c] = (uint16_t)NH_MIN(8 * b, 1024u);
		slot_begin[c] = (uint16_t)next;
		next += maxcap[c] + NH_MCACHE_SKEW;
	}
	if (next > NH_MCACHE_BYTES / 8)
		nh_fatal("mcache layout needs %u slots, have %zu", next, NH_MCACHE_BYTES / 8);
}

unsigned mcache_batch(unsigned cls) { return batch[cls]; }

unsigned mcache_max(unsigned cls) { return maxcap[cls]; }

/* Class k's first header on c. With heap profiling on, its allocs start
 * the clock's first interval (mcache_clock_rearm). */
static struct mcache_class initial_header(struct mcache *c, unsigned k)
{
	uint64_t start = nh_prof_on ? NH_RSEQ_CLOCK_DUE - prof_clock_draw(k) : 0;
	c->clock_base[k] = start;
	c->clock_acc[k] = 0;
	struct mcache_class h = {slot_begin[k] | start << 16, (uint16_t)(slot_begin[k] + batch[k]), slot_begin[k], 0};
	return h;
}

/* Point the slab's tables at node's headers (the owner, or the slow path
 * that sets a per-CPU slab up, under its lock: 16-bit stores, which a
 * sequence on the slab's CPU sees old or new, both safe). */
static void set_tables(struct mcache *c, int node)
{
	for (unsigned k = 0; k < NH_NUM_CLASSES; k++)
		c->class_hdr[k] = (uint16_t)(k ? mc_hoff((unsigned)node, k) : 0);
	for (unsigned n = 0; n <= NH_SMALL_SIZE_MAX; n++)
		c->size_hdr[n] = c->class_hdr[nh_size_to_class8[(n + NH_SMALL_SIZE_DIV - 1) / NH_SMALL_SIZE_DIV]];
}

static size_t initial_cap_bytes(void)
{
	size_t b = 0;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
		b += (size_t)batch[k] * nh_class_to_size[k];
	return b;
}

void mcache_init(struct mcache *c, int node, uint32_t id)
{
	/* Fresh from the OS: the headers of other nodes are zero and stay so,
	 * untouched (RSS). */
	c->node = (uint32_t)node;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
		*mc_class(c, k) = initial_header(c, k);
	set_tables(c, node);
	c->id = id;
	memset(c->ohole, 0, sizeof c->ohole);
	mutex_init(&c->lock, LOCK_RANK_PCACHE);
	c->budget = numa_cpu_budget((size_t)NH_OPTION(CACHE_BYTES));
	c->cap_bytes = initial_cap_bytes();
	c->ready = 1;
}

void mcache_set_node(struct mcache *c, int node)
{
	if (c->node == (uint32_t)node)
		return;
	/* Empty (drained): each header moves to the new node's place, its
	 * allocation count with it; the old node's become zero again. */
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		struct mcache_class *o = mc_class(c, k), h = *o;
		h.word = (h.word & ~(uint64_t)0xffff) | h.begin;
		*o = (struct mcache_class){0};
		c->hdr[(unsigned)node * NH_NUM_CLASSES + k] = h;
	}
	c->node = (uint32_t)node;
	set_tables(c, node);
}

int mcache_init_pcpu(struct pctx *x, int node)
{
	struct mcache *c = x->c;
	c->node = (uint32_t)node;
	c->id = x->cpu;
	set_tables(c, node); /* before the headers: until they are, they miss */
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		/* One 16-byte store: a pop or push on this CPU sees the header
		 * all zero (a miss) or whole. */
		struct mcache_class h = initial_header(c, k);
		if (nh_rseq_store16(nh_fast.rseq_off, x->cpu, mc_class(c, k), &h) < 0)
			return -1;
	}
	c->budget = numa_cpu_budget((size_t)NH_OPTION(CACHE_BYTES));
	c->cap_bytes = initial_cap_bytes();
	c->ready = 1;
	return 0;
}

/* ---- the cache operations, plain or restartable ---------------------------- */

static int op_pop_batch(struct pctx *x, unsigned cls, uintptr_t *out, unsigned n)
{
	if (x->rseq)
		return nh_rseq_pop_batch(nh_fast.rseq_off, nh_fast.pcpu_base, x->cpu, mc_hoff(x->c->node, cls), out, n);
	struct mcache_class *m = mc_class(x->c, cls);
	uintptr_t *slots = mcache_slots(x->c);
	unsigned cur = mc_cur(m), k = NH_MIN(n, cur - m->begin);
	for (unsigned i = 0; i < k; i++)
		out[i] = slots[cur - 1 - i];
	m->word -= k;
	return (int)k;
}

static int op_push_batch(struct pctx *x, unsigned cls, const uintptr_t *in, unsigned n)
{
	if (x->rseq)
		return nh_rseq_push_batch(nh_fast.rseq_off, nh_fast.pcpu_base, x->cpu, mc_hoff(x->c->node, cls), in, n);
	struct mcache_class *m = mc_class(x->c, cls);
	uintptr_t *slots = mcache_slots(x->c);
	unsigned cur = mc_cur(m), k = NH_MIN(n, (unsigned)m->end - cur);
	for (unsigned i = 0; i < k; i++)
		slots[cur + i] = in[i];
	m->word += k;
	return (int)k;
}

/* 0 done, 1 cur above end (pop first), -1 left the CPU. */
static int op_set_end(struct pctx *x, unsigned cls, unsigned end)
{
	if (x->rseq)
		return nh_rseq_set_end(nh_fast.rseq_off, nh_fast.pcpu_base, x->cpu, mc_hoff(x->c->node, cls), end);
	struct mcache_class *m = mc_class(x->c, cls);
	if (mc_cur(m) > end)
		return 1;
	m->end = (uint16_t)end;
	return 0;
}

/* Hand n entries (tags kept) back to the class's mcentral. */
static void release_to_central(struct mcache *c, unsigned cls, uintptr_t *objs, unsigned n)
{
	if (!n)
		return;
	struct mheap *h = heap_of_node((int)c->node);
	mcentral_release(&h->central[cls], h, objs, n);
}

/*
 * A class's last slow-path stamp on this P: its allocs, and the cycle
 * counter read after them. While the allocs have not moved, the P has
 * served no malloc of the class since (proc.c, proc_count_allocs, reads
 * them racily: the cycles are stored first, then the allocs with release).
 * A slow path stamps its class, and every class of the P at most once in
 * QUIET_ALL_CYCLES: a class the P serves rarely (a size a program asks for
 * once in a thousand) takes no slow path after its last malloc, and would
 * stay undated.
 */
#define QUIET_ALL_CYCLES ((uint64_t)1 << 22) /* about a millisecond */

static void quiet_store(struct mcache *c, unsigned k, uint64_t allocs, uint64_t cycles)
{
	atomic_store_explicit(&c->quiet[k].cycles, cycles, memory_order_relaxed);
	atomic_store_explicit(&c->quiet[k].allocs, allocs, memory_order_release);
}

static void quiet_stamp(struct mcache *c, unsigned cls)
{
	uint64_t a = mcache_allocs(c, cls), t = nh_cycles();
	if (t - c->quiet_at < QUIET_ALL_CYCLES) {
		quiet_store(c, cls, a, t);
		return;
	}
	uint64_t all[NH_NUM_CLASSES];
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
		all[k] = mcache_allocs(c, k);
	t = nh_cycles(); /* after every class's allocs */
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
		quiet_store(c, k, all[k], t);
	c->quiet_at = t;
}

/* Every 64 slow paths, halve the miss counts: "no misses" means recently cold. */
static void age_misses(struct mcache *c)
{
	if ((++c->gen & 63) == 0)
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
			c->stats[k].misses /= 2;
}

/*
 * A refill of objects smaller than a cache line arrives in address order,
 * and the stack pops from its end. Two threads that start on one CPU would
 * then take neighbours on one line; once the scheduler moves one of them
 * away, each keeps reusing its own object (the stacks are LIFO) from its own
 * CPU, and the line bounces between the two for as long as they run (active
 * false sharing: perf/'s cache-thrash, where it doubled the time). Putting
 * even and odd lines alternately makes consecutive pops land on different
 * lines, while a run of pops still walks two neighbouring lines, not one.
 */
void mcache_spread_lines(uintptr_t *v, unsigned n)
{
	uintptr_t even[128], odd[128];
	for (unsigned base = 0; base < n; base += 128) {
		unsigned m = NH_MIN(n - base, 128u), ne = 0, no = 0;
		for (unsigned i = 0; i < m; i++) {
			uintptr_t e = v[base + i];
			if ((e / NH_CACHE_LINE) & 1)
				odd[no++] = e;
			else
				even[ne++] = e;
		}
		unsigned k = base, i = 0, j = 0;
		while (i < ne || j < no) {
			if (i < ne)
				v[k++] = even[i++];
			if (j < no)
				v[k++] = odd[j++];
		}
	}
}

/* ---- heap profiling's clock ----------------------------------------------------- */

/*
 * Each class header's allocs is its sample clock on this P (mcache.h): an
 * interval of k pops ends when allocs would reach NH_RSEQ_CLOCK_DUE, and
 * the counted pop that would reach it leaves for the sample (api.c). k is
 * drawn by prof.c: the intervals, in the class's bytes, are exponential
 * with a mean of the profiling rate, so every pop is the sample with the
 * same chance (1 - e^(-size/rate)), whichever clock and P count it.
 * allocs keeps counting mallocs for the statistics: clock_base is where
 * the interval began, clock_acc what the intervals before counted.
 */
int mcache_clock_rearm(struct pctx *x, unsigned cls, uint64_t k)
{
	struct mcache *c = x->c;
	uint64_t start = NH_RSEQ_CLOCK_DUE - k, was;
	if (x->rseq) {
		int r = nh_rseq_clock_rearm(nh_fast.rseq_off, nh_fast.pcpu_base, x->cpu, mc_hoff(c->node, cls), start, &was);
		if (r <= 0)
			return r;
	} else {
		struct mcache_class *m = mc_class(c, cls);
		was = mc_allocs(m);
		if (was < NH_RSEQ_CLOCK_DUE - 1)
			return 0;
		m->word = (m->word & 0xffff) | start << 16;
	}
	c->clock_acc[cls] += was - c->clock_base[cls];
	c->clock_base[cls] = start;
	return 1;
}

/* ---- refill and overflow ------------------------------------------------------ */

int mcache_refill(struct pctx *x, unsigned cls, uintptr_t *direct)
{
	struct mcache *c = x->c;
	if (!x->rseq) {
		/* A per-thread P follows its thread to another node: it gives
		 * back what it holds and takes its objects from there. */
		int node = proc_current_node();
		if ((uint32_t)node != c->node) {
			mcache_drain(x);
			mcache_set_node(c, node);
		}
	}
	struct mcache_class *m = mc_class(c, cls);
	struct mheap *h = heap_of_node((int)c->node);
	uintptr_t buf[128];
	unsigned room = (unsigned)m->end - mc_cur(m);
	unsigned want = NH_MIN((unsigned)batch[cls], room);
	unsigned got = mcentral_refill(&h->central[cls], h, buf, want ? want : 1);
	c->stats[cls].refills++;
	c->stats[cls].misses++;
	age_misses(c);
	quiet_stamp(c, cls);
	if (got == 0)
		return 0;
	return mcache_fill(x, cls, buf, got, direct);
}

int mcache_fill(struct pctx *x, unsigned cls, uintptr_t *buf, unsigned got, uintptr_t *direct)
{
	struct mcache *c = x->c;
	if (NH_UNLIKELY(nh_hardened))
		hardened_shuffle(buf, got);
	else if (nh_class_to_size[cls] < NH_CACHE_LINE && got > 2)
		mcache_spread_lines(buf, got);
	int k = op_push_batch(x, cls, buf, got);
	if (k == (int)got)
		return 1;
	/* Left the CPU (or no room): one object for the caller, the rest back. */
	if (k < 0)
		k = 0;
	*direct = buf[got - 1];
	release_to_central(c, cls, buf + k, got - 1 - (unsigned)k);
	return 2;
}

/*
 * Take a batch of capacity from another class: preferably one with that much
 * capacity unused (nothing to flush), else one that has not missed since
 * the last aging (cold). Hot, full classes are never robbed: taking from
 * them would only move the overflow around.
 */
static int steal_capacity(struct pctx *x, unsigned cls)
{
	struct mcache *c = x->c;
	unsigned victim = 0;
	size_t best = 0;
	bool best_unused = false;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		struct mcache_class *m = mc_class(c, k);
		if (k == cls || (unsigned)(m->end - m->begin) <= batch[k])
			continue;
		bool unused = (unsigned)m->end - mc_cur(m) >= batch[k];
		if (!unused && c->stats[k].misses != 0)
			continue;
		size_t bytes = (size_t)(m->end - m->begin) * nh_class_to_size[k];
		if ((unused && !best_unused) || (unused == best_unused && bytes > best)) {
			victim = k;
			best = bytes;
			best_unused = unused;
		}
	}
	if (!victim)
		return 0;
	struct mcache_class *v = mc_class(c, victim);
	unsigned newend = (unsigned)(v->end - batch[victim]);
	for (;;) {
		int r = op_set_end(x, victim, newend);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		unsigned excess = mc_cur(v) > newend ? mc_cur(v) - newend : 1;
		uintptr_t buf[128];
		int k = op_pop_batch(x, victim, buf, NH_MIN(128u, excess));
		if (k < 0)
			return -1;
		release_to_central(c, victim, buf, (unsigned)k);
		c->stats[victim].flushes++;
	}
	c->cap_bytes -= (size_t)batch[victim] * nh_class_to_size[victim];
	return 1;
}

int mcache_overflow(struct pctx *x, unsigned cls, uintptr_t p)
{
	struct mcache *c = x->c;
	struct mcache_class *m = mc_class(c, cls);
	size_t step = (size_t)batch[cls] * nh_class_to_size[cls];
	c->stats[cls].misses++;
	age_misses(c);
	quiet_stamp(c, cls);
	bool room = (unsigned)(m->end - m->begin) + batch[cls] <= maxcap[cls];
	if (room && c->cap_bytes + step > c->budget) {
		/* Looking for capacity scans every class: after a fruitless
		 * look, wait a while before the next. */
		room = false;
		if (c->steal_backoff) {
			c->steal_backoff--;
		} else {
			int r = steal_capacity(x, cls);
			if (r < 0)
				return -1;
			room = r > 0;
			if (!room)
				c->steal_backoff = 64;
		}
	}
	if (room) {
		int r = op_set_end(x, cls, (unsigned)(m->end + batch[cls]));
		if (r < 0)
			return -1;
		c->cap_bytes += step;
	} else {
		uintptr_t buf[128];
		int k = op_pop_batch(x, cls, buf, batch[cls]);
		if (k < 0)
			return -1;
		release_to_central(c, cls, buf, (unsigned)k);
		c->stats[cls].flushes++;
	}
	int k = op_push_batch(x, cls, &p, 1);
	if (k < 0)
		return -1;
	if (k == 0)
		release_to_central(c, cls, &p, 1); /* a racing thread filled it again */
	return 1;
}

/* ---- frees that go home -------------------------------------------------------- */

/* The class of p, a cached object of span s: the span's, or for an ordered
 * span (ordered.c) the object's own. */
static unsigned object_class(const struct mspan *s, uintptr_t p)
{
	return NH_UNLIKELY(s->ordered) ? ordered_object_class(s, p) : s->sizeclass;
}

static int cmp_remote(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	struct mspan *sx = span_of(x), *sy = span_of(y);
	unsigned kx = ((unsigned)sx->node << 8) | object_class(sx, x), ky = ((unsigned)sy->node << 8) | object_class(sy, y);
	return kx < ky ? -1 : kx > ky;
}

void mcache_flush_remote(struct mcache *c)
{
	unsigned n = c->nremote;
	if (!n)
		return;
	/* Taken out of the cache before any is released, as a flush does: a
	 * fork that catches this thread half-way leaves the child nothing to
	 * release twice (proc.c, fork_child, drains the dead threads' caches). */
	uintptr_t v[sizeof c->remote / sizeof c->remote[0]];
	memcpy(v, c->remote, n * sizeof *v);
	c->nremote = 0;
	/* Group by (node, class): insertion sort, n <= 64. */
	for (unsigned i = 1; i < n; i++) {
		uintptr_t e = v[i];
		unsigned j = i;
		while (j > 0 && cmp_remote(&v[j - 1], &e) > 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = e;
	}
	unsigned i = 0;
	while (i < n) {
		struct mspan *s = span_of(v[i]);
		unsigned j = i + 1;
		while (j < n && cmp_remote(&v[i], &v[j]) == 0)
			j++;
		struct mheap *h = heap_of_node(s->node);
		mcentral_release(&h->central[object_class(s, v[i])], h, &v[i], j - i);
		atomic_fetch_add_explicit(&h->remote_frees, j - i, memory_order_relaxed);
		i = j;
	}
}

void mcache_free_remote(struct mcache *c, uintptr_t p)
{
	c->remote[c->nremote++] = p;
	if (c->nremote == sizeof c->remote / sizeof c->remote[0])
		mcache_flush_remote(c);
}

/* ---- draining -------------------------------------------------------------------- */

int mcache_drain(struct pctx *x)
{
	struct mcache *c = x->c;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		uintptr_t buf[128];
		int n;
		while ((n = op_pop_batch(x, k, buf, 128)) > 0)
			release_to_central(c, k, buf, (unsigned)n);
		if (n < 0)
			return -1;
	}
	mcache_flush_remote(c);
	ordered_retire(c);
	return 0;
}

/*
 * The slots of an emptied slab hold nothing, but stay resident once
 * written (up to 256 KiB a P, each of a machine's CPUs). Their OS pages go
 * back here, after a drain. A push may write a slot at any time, so every
 * class's end is first brought down to its begin (a push then misses and
 * waits for the lock this caller holds, and one that was preempted
 * half-way restarts and sees the new end), then the pages are released,
 * then the ends put back: the next pushes fault in zero pages. If an
 * object came in meanwhile (another thread on the CPU, between the drain
 * and here), nothing is released.
 */
int mcache_release_slots(struct pctx *x)
{
	struct mcache *c = x->c;
	uint16_t end[NH_NUM_CLASSES];
	unsigned k;
	int r = 0; /* op_set_end's: 0 done, 1 an object came in, -1 left the CPU */
	for (k = 1; k < NH_NUM_CLASSES && r == 0; k++) {
		end[k] = mc_class(c, k)->end;
		r = op_set_end(x, k, mc_class(c, k)->begin);
	}
	if (r == 0) {
		size_t ps = os_page_size();
		uintptr_t lo = ((uintptr_t)c + NH_MCACHE_HDR_WORDS * 8 + ps - 1) & ~(ps - 1);
		os_release((void *)lo, (uintptr_t)c + NH_MCACHE_BYTES - lo, RELEASE_DONTNEED);
	}
	for (unsigned j = 1; j < k; j++) {
		if (op_set_end(x, j, end[j]) < 0) { /* left the CPU (hot-unplugged): capacity lost */
			c->cap_bytes -= (size_t)(end[j] - mc_class(c, j)->begin) * nh_class_to_size[j];
			r = -1;
		}
	}
	return r < 0 ? -1 : 0;
}

size_t mcache_cached_objects(const struct mcache *c, unsigned cls)
{
	const struct mcache_class *m = mc_class_c(c, cls);
	return (size_t)(uint16_t)(mc_cur(m) - m->begin);
}

uint64_t mcache_allocs(const struct mcache *c, unsigned cls)
{
	/* Heap profiling's clock moves allocs at each sample (mcache_clock_rearm).
	 * An interval is at most NH_RSEQ_CLOCK_DUE / 2 pops: a difference past
	 * that is a read that raced with a re-arm (per-CPU), taken as 0. */
	uint64_t a = (mc_allocs(mc_class_c(c, cls)) - c->clock_base[cls]) & (NH_RSEQ_CLOCK_DUE * 2 - 1);
	return c->clock_acc[cls] + (a < NH_RSEQ_CLOCK_DUE ? a : 0);
}
