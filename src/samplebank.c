/*
 * samplebank.c — heap profiling's sample banks: counting every allocation
 * of a size class to its next sample without an instruction on malloc's
 * fast path (prof.h says how sampling works; mcache.h the slab's layout,
 * where the banks are the row of headers after the nodes').
 *
 * Sample banks (heap profiling on). Sampling must not add an instruction
 * to malloc's fast path, yet count every allocation: a P's class stack
 * cannot, as a free pushes back what a malloc popped. So every pop of a
 * class (malloc's, calloc's, memalign's: the slab's tables point there)
 * takes from the class's bank instead, which frees never touch (no page
 * entry names it) and only mcache_bank_fill changes, under the P's lock.
 * The bank's floor (its header's begin) keeps it from showing more objects
 * than the class's mallocs still to serve before the next sample
 * (bank_left, beyond those shown); so the bank runs dry exactly at the
 * sample, and the malloc that finds it dry with bank_left 0 is the one
 * sampled (prof_alloc_bank). Then the floor goes down by the next
 * interval. A bank with nothing left even below its floor swaps regions
 * with the class stack: the stack is closed (end = cur: its pushes miss
 * and go to the slow path, which waits for the lock), moved to the bank's
 * empty region, and the bank opened on the stack's old one (bank_settle;
 * if the thread leaves the CPU between those stores, the next fill or
 * drain opens it). No object is copied, so a program that mallocs and
 * frees in a loop pays one slow path per round of the objects it cycles
 * through. An empty stack too: a batch from mcentral. bank_left is drawn
 * per P and class as Go draws its byte countdown, in objects of the
 * class's size: the same chance for each block (prof.h). Each class's
 * stack room is split in two halves; the two regions change hands at each
 * swap (bank_base says where the bank is).
 *
 * Locking: every function here runs with the P's lock (per-CPU slabs; a
 * per-thread P has one owner) and takes the class's central locks when it
 * goes to mcentral; the fast paths take none.
 */

#include "mheap.h"
#include "mcache.h"
#include "mcache_ops.h"
#include "proc.h"
#include "prof.h"

/* Set up a P's bank of class cls, drawing its first interval: 0, or -1 if
 * the thread left the CPU. One 16-byte store, as mcache_init_pcpu's. */
static int store_header(struct pctx *x, struct mcache_class *dst, struct mcache_class h)
{
	if (x->rseq)
		return nh_rseq_store16(nh_fast.rseq_off, x->cpu, dst, &h);
	*dst = h;
	return 0;
}

/* Set up a P's bank of class cls, drawing its first interval: 0, or -1 if
 * the thread left the CPU. One 16-byte store, as mcache_init_pcpu's. */
static int bank_init(struct pctx *x, unsigned cls)
{
	struct mcache *c = x->c;
	struct mcache_class h = {mcache_bank_begin(cls), (uint16_t)(mcache_bank_begin(cls) + mcache_max(cls)), mcache_bank_begin(cls), 0};
	if (store_header(x, &c->bank[cls], h) < 0)
		return -1;
	c->bank_left[cls] = prof_bank_interval(nh_class_to_size[cls]);
	c->bank_base[cls] = mcache_bank_begin(cls);
	return 0;
}

/* Open the bank on the region a swap moved the class stack off (its
 * objects [bank_pend_begin, bank_pend_cur)), the floor where the next
 * sample falls: 0, or -1 if the thread left the CPU (then it stays
 * pending, and the next fill or drain opens it). */
static int bank_settle(struct pctx *x, unsigned cls)
{
	struct mcache *c = x->c;
	unsigned pb = c->bank_pend_begin[cls], pc = c->bank_pend_cur[cls];
	if (!pb)
		return 0;
	uint64_t left = c->bank_left[cls];
	unsigned vis = (unsigned)NH_MIN(left, (uint64_t)(pc - pb));
	struct mcache_class *b = &c->bank[cls];
	struct mcache_class h = {(b->word & ~(uint64_t)0xffff) | pc, (uint16_t)(pb + mcache_max(cls)), (uint16_t)(pc - vis), 0};
	if (store_header(x, b, h) < 0)
		return -1;
	c->bank_base[cls] = (uint16_t)pb;
	c->bank_pend_begin[cls] = 0;
	c->bank_left[cls] = left - vis;
	return 0;
}

/*
 * The bank of class cls is empty at its floor: show more of its objects,
 * or swap it with the class stack, or fill it from mcentral (see "Sample
 * banks" above). The bank cannot change meanwhile: its pops miss at the
 * floor, and only this path (the P's lock held) pushes or stores there.
 */
int mcache_bank_fill(struct pctx *x, unsigned cls, uintptr_t *direct)
{
	struct mcache *c = x->c;
	if (!x->rseq) {
		int node = proc_current_node();
		if ((uint32_t)node != c->node) {
			if (mcache_drain(x) < 0)
				return 1;
			mcache_set_node(c, node);
		}
	}
	struct mcache_class *b = &c->bank[cls];
	if (b->begin == 0 && bank_init(x, cls) < 0)
		return 1;
	if (bank_settle(x, cls) < 0)
		return 1;
	if (mc_cur(b) != b->begin)
		return 1; /* another thread on this CPU filled it */
	uint64_t left = c->bank_left[cls];
	if (left == 0) {
		left = c->bank_left[cls] = prof_bank_interval(nh_class_to_size[cls]);
		if (!prof_walking_now())
			return 3;
		left = NH_MAX(left, 1u); /* the stack walker's own malloc: never sampled */
	}
	unsigned base = c->bank_base[cls], bcur = mc_cur(b);
	if (bcur > base) {
		/* Objects below the floor (a sample was due): the next
		 * interval's worth show. */
		unsigned vis = (unsigned)NH_MIN(left, (uint64_t)(bcur - base));
		struct mcache_class h = *b;
		h.begin = (uint16_t)(bcur - vis);
		if (store_header(x, b, h) < 0)
			return 1;
		c->bank_left[cls] = left - vis;
		return 1;
	}
	/* Empty: the bank takes the class stack's region and objects, the
	 * stack the bank's empty region. The stack is closed first (end =
	 * cur: its pushes miss, and nothing else pops it without the P's
	 * lock), then moved, then the bank opened. Should the thread leave
	 * the CPU after the stack moved, the bank is opened later
	 * (bank_settle); the objects wait, unseen, in between. */
	struct mcache_class *m = mc_class(c, cls);
	for (;;) {
		struct mcache_class f = *m;
		unsigned fcur = mc_cur(&f), fbeg = f.begin;
		if (fcur == fbeg)
			break;
		int r = mc_op_set_end(x, cls, fcur);
		if (r < 0)
			return 1;
		if (r > 0)
			continue; /* a free came in: look again */
		unsigned fcap = (unsigned)(f.end - fbeg);
		struct mcache_class nf = {(m->word & ~(uint64_t)0xffff) | base, (uint16_t)(base + fcap), (uint16_t)base, 0};
		if (store_header(x, m, nf) < 0)
			return 1; /* still closed where it was: its next push overflows and reopens it */
		c->bank_pend_begin[cls] = (uint16_t)fbeg;
		c->bank_pend_cur[cls] = (uint16_t)fcur;
		(void)bank_settle(x, cls);
		return 1;
	}
	uintptr_t buf[128];
	struct mheap *h = heap_of_node((int)c->node);
	unsigned want = (unsigned)NH_MIN(NH_MIN(left, (uint64_t)mcache_max(cls)), (uint64_t)mcache_batch(cls));
	unsigned got = mcentral_refill(&h->central[cls], h, buf, want);
	c->stats[cls].refills++;
	c->stats[cls].misses++;
	mc_age_misses(c);
	if (got == 0)
		return 0;
	if (nh_class_to_size[cls] < NH_CACHE_LINE && got > 2)
		mcache_spread_lines(buf, got);
	int k = mc_op_push_batch_at(x, mc_boff(cls), buf, got);
	if (k < (int)got) {
		/* Left the CPU: one object for the caller, the rest back. */
		k = NH_MAX(k, 0);
		*direct = buf[got - 1];
		mc_release_to_central(c, cls, buf + k, got - 1 - (unsigned)k);
		c->bank_left[cls] = left - NH_MIN(left, (uint64_t)k + 1);
		return 2;
	}
	c->bank_left[cls] = left - got;
	return 1;
}

/* Give a bank's objects back, those below its floor too: 0, or -1 if the
 * thread left the CPU. */
int mcache_bank_drain(struct pctx *x, unsigned cls)
{
	struct mcache *c = x->c;
	struct mcache_class *b = &c->bank[cls];
	if (b->begin == 0)
		return 0; /* never set up */
	if (bank_settle(x, cls) < 0)
		return -1;
	/* The objects above the floor were counted as mallocs to come: they
	 * are not, so the sample moves that much further off. */
	unsigned base = c->bank_base[cls], cur = mc_cur(b), floor = b->begin;
	uintptr_t buf[128];
	int n;
	while ((n = mc_op_pop_batch_at(x, mc_boff(cls), buf, 128)) > 0)
		mc_release_to_central(c, cls, buf, (unsigned)n);
	if (n < 0)
		return -1;
	c->bank_left[cls] += cur - floor;
	if (floor > base) {
		/* Then the floor down to the region's start, and the rest. */
		struct mcache_class h = *b;
		h.begin = (uint16_t)base;
		if (store_header(x, b, h) < 0)
			return -1;
		while ((n = mc_op_pop_batch_at(x, mc_boff(cls), buf, 128)) > 0)
			mc_release_to_central(c, cls, buf, (unsigned)n);
		if (n < 0)
			return -1;
	}
	return 0;
}
