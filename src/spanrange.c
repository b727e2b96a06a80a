/*
 * spanrange.c — the spans over an address range, for the collapse step
 * (hugepages.c): the OS pages released inside them (counted, or taken back
 * as the program's when a collapse fills them in), and how many of the
 * range's bytes their objects take (is a huge page dense enough to be
 * worth a collapse).
 *
 * The range is walked through spans[] (span_of), without the heap lock: a
 * span's class and extent are peeked before its class's lock and
 * rechecked under it, since the span may have left its class, and its
 * struct been reused, meanwhile (the reads tsan.supp names). Large spans
 * are read by their state alone. The in-span release itself, and what
 * s->released means, are mcentral.c's.
 *
 * Locking: each small span's class lock (rank CENTRAL), or an ordered
 * span's band lock (ORDERED), one at a time;
 * callers hold scav_lock and no heap lock.
 */

#include "mspan.h"
#include "arena.h"
#include "mheap.h"
#include "ordered.h"

static unsigned unit_shift; /* log2 of mcentral_unit_bytes() once known; 0: nothing released */

/* A peek at a span's released OS pages, and its class, before taking the
 * class's lock; rechecked under it (range_walk). */
static uint32_t span_peek_released(const struct mspan *s, unsigned *k)
{
	*k = s->sizeclass;
	return s->released;
}

/* The released OS pages of span s inside [lo, hi), as bits of s->released. */
static uint32_t released_in(const struct mspan *s, uintptr_t lo, uintptr_t hi)
{
	return mspan_released_in(s, lo, hi, unit_shift);
}

/* What range_walk does with each span over [lo, hi). */
enum range_op {
	RANGE_RELEASED, /* count the released OS pages of the small spans */
	RANGE_RECLAIM,	/* and take them back: the program's again */
	RANGE_USED,	/* count the bytes objects take (in use or cached) */
};

/* Bytes of [base, end) inside [lo, hi). */
static size_t overlap(uintptr_t base, uintptr_t end, uintptr_t lo, uintptr_t hi)
{
	uintptr_t a = NH_MAX(base, lo), b = NH_MIN(end, hi);
	return b > a ? (size_t)(b - a) : 0;
}

/* One small span's share of range_walk; its class's lock held. */
static size_t range_span(struct mcentral *c, struct mspan *s, uintptr_t lo, uintptr_t hi, enum range_op op)
{
	uintptr_t end = s->base + ((uintptr_t)s->npages << NH_PAGE_SHIFT);
	if (op == RANGE_USED) /* the objects' share of the span, by its overlap */
		return (size_t)((uint64_t)s->nalloc * s->elemsize * overlap(s->base, end, lo, hi) / (end - s->base));
	uint32_t m = released_in(s, lo, hi);
	size_t b = (size_t)nh_popcount64(m) << unit_shift;
	if (op == RANGE_RECLAIM && m) {
		s->released &= ~m;
		c->released_bytes -= b;
	}
	return b;
}

/* The spans over [lo, hi), for op. A small span is looked at under its
 * class's lock (one that left its class meanwhile is skipped); a large
 * one, for RANGE_USED, by its state alone. */
static size_t range_walk(struct mheap *h, uintptr_t lo, uintptr_t hi, enum range_op op)
{
	size_t bytes = 0;
	for (uintptr_t a = lo; a < hi;) {
		struct mspan *s = span_of(a);
		if (!s) {
			a += NH_PAGE_SIZE;
			continue;
		}
		uintptr_t end = s->base + ((uintptr_t)s->npages << NH_PAGE_SHIFT); /* a hint */
		unsigned k;
		uint32_t released = span_peek_released(s, &k);
		if (k && (released || op == RANGE_USED)) {
			struct mcentral *c = &h->central[k];
			mutex_lock(&c->lock);
			if (s->sizeclass == k && s->list != SPAN_LIST_NONE && s->base < hi && end > lo)
				bytes += range_span(c, s, lo, hi, op);
			mutex_unlock(&c->lock);
		} else if (!k && s->ordered) {
			/* Ordered spans (ordered.c): their objects, and their
			 * released OS pages, as small spans'. */
			bytes += op == RANGE_USED ? ordered_range_used(h, s, lo, hi)
						  : ordered_range_released(h, s, lo, hi, op == RANGE_RECLAIM);
		} else if (!k && op == RANGE_USED &&
			   atomic_load_explicit(&s->state, memory_order_acquire) == SPAN_INUSE) {
			bytes += overlap(s->base, end, lo, hi);
		}
		a = end > a ? end : a + NH_PAGE_SIZE;
	}
	return bytes;
}

size_t mcentral_reclaim_range(struct mheap *h, uintptr_t lo, uintptr_t hi, size_t max_bytes)
{
	if (!unit_shift) {
		size_t u = mcentral_unit_bytes();
		if (!u)
			return 0; /* the in-span release is off: nothing was released */
		unit_shift = (unsigned)nh_ctz64(u);
	}
	if (range_walk(h, lo, hi, RANGE_RELEASED) > max_bytes)
		return SIZE_MAX;
	return range_walk(h, lo, hi, RANGE_RECLAIM);
}

size_t mcentral_used_in_range(struct mheap *h, uintptr_t lo, uintptr_t hi)
{
	return range_walk(h, lo, hi, RANGE_USED);
}
