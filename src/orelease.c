/*
 * orelease.c — what the scavenger and the statistics see of ordered spans
 * (ordered.c has the placement): the in-span release of their free OS
 * pages, in pieces, as mcentral.c's of class spans; the collapse step's
 * view of them (spanrange.c); fork; statistics.
 *
 * A piece is a run of OS pages no object covers, in a span on the partial
 * or evac list (never a P's: a P's hole is its own): it is held as an
 * object of the span while it goes (start and end bits set, nalloc
 * counted), so no P cuts into it and the span cannot empty, then let go.
 *
 * Locking: the band's lock (rank ORDERED), one at a time; the heap's lock
 * after it is dropped.
 */

#include "mspan.h"
#include "arena.h"
#include "mheap.h"
#include "mcentral.h"
#include "pagealloc.h"
#include "ordered.h"
#include "ospan.h"

/* ---- the in-span release (the scavenger's, as mcentral.c's) ------------------ */

/* Bit j of the result: OS page j of s holds no object. Lock held. */
static uint32_t free_units(const struct mspan *s)
{
	uint32_t used = 0;
	unsigned b = 0;
	while (b < OGRANS) {
		if (bit_test(start_map(s), b)) {
			unsigned e = next_bit(end_map(s), b);
			used |= units_of(s, b, e + 1);
			b = e + 1;
		} else {
			b = next_bit(start_map(s), b);
		}
	}
	return ~used & (uint32_t)(((uint64_t)1 << (((size_t)OGRANS << band_shift[span_band(s)]) >> nh_ounit_shift)) - 1);
}

/* The pieces of s, up to max of them into out[]: runs of OS pages no
 * object covers, not released yet, once s is idle (below); how many.
 * Granule shift sh; the band's lock held. */
static unsigned take_pieces(struct mheap *h, struct mspan *s, unsigned sh, uint64_t idle_before, uint64_t *busy,
			    struct span_piece *out, unsigned max)
{
	uint32_t units = free_units(s) & ~s->released;
	if (!units)
		return 0;
	/* Idle: its chunk's pages (mcentral.c's rule), or the span itself:
	 * nothing went back to it, and no P gave it up, since idle_before.
	 * The span's own clock too, as in a busy heap spans come and go in
	 * every chunk all the time, and the free pages of the spans nobody
	 * cuts from would stay. */
	int32_t ahead = (int32_t)(s->otick - otick_of(idle_before));
	uint64_t t;
	if (idle_before && ahead > 0 && !page_alloc_chunk_idle(&h->pages, s->base, idle_before, &t)) {
		uint64_t ts = idle_before + ((uint64_t)ahead << 20); /* the span's, as the chunk's t */
		t = NH_MIN(t, ts);
		if (!*busy || t < *busy)
			*busy = t;
		return 0;
	}
	unsigned n = 0;
	while (units && n < max) {
		/* One run of free OS pages: a piece, held as an object of the
		 * span's while it goes (no P can cut into it). */
		unsigned j0 = (unsigned)nh_ctz64(units), j1 = j0;
		while (j1 < 32 && (units >> j1 & 1))
			j1++;
		uint32_t run = (uint32_t)((((uint64_t)1 << (j1 - j0)) - 1) << j0);
		units &= ~run;
		unsigned lo = (j0 << nh_ounit_shift) >> sh, hi = (j1 << nh_ounit_shift) >> sh;
		bit_set(start_map(s), lo);
		bit_set(end_map(s), hi - 1);
		s->nalloc++;
		out[n++] = (struct span_piece){s, run, (uint16_t)lo, (uint16_t)hi};
	}
	return n;
}

unsigned ordered_take_free_pages(struct mheap *h, unsigned band, uint64_t idle_before, uint64_t *busy,
				 struct span_piece *out, unsigned max)
{
	struct ocentral *oc = &ocentral[h->node][band];
	if (!nh_ordered_hi || !nh_ounit_shift)
		return 0;
	unsigned n = 0;
	mutex_lock(&oc->lock);
	struct span_list_head *lists[2] = {&oc->partial, &oc->evac}; /* never a P's own */
	for (unsigned l = 0; l < 2; l++)
		for (struct mspan *s = lists[l]->first; s && n < max; s = s->next)
			n += take_pieces(h, s, band_shift[band], idle_before, busy, out + n, max - n);
	mutex_unlock(&oc->lock);
	return n;
}

void ordered_put_free_pages(struct mheap *h, unsigned band, const struct span_piece *p, unsigned n, const int *res)
{
	struct ocentral *oc = &ocentral[h->node][band];
	struct mspan *empty[64];
	unsigned nempty = 0;
	mutex_lock(&oc->lock);
	for (unsigned i = 0; i < n; i++) {
		struct mspan *s = p[i].s;
		if (res[i] == 0) {
			s->released |= p[i].units;
			oc->released_bytes += (size_t)nh_popcount64(p[i].units) << nh_ounit_shift;
		}
		bit_clear(end_map(s), p[i].own_hi - 1u);
		bit_clear(start_map(s), p[i].own_lo);
		if (--s->nalloc == 0 && s->list != SPAN_LIST_OWNED) {
			unlink_span(oc, s);
			empty[nempty++] = s; /* n <= OS_BATCH_MAX <= 64 */
		}
	}
	mutex_unlock(&oc->lock);
	for (unsigned j = 0; j < nempty; j++)
		mheap_free_span(h, empty[j]);
}

/* s is still an ordered span of h's, in use, over [lo, hi); the band's
 * lock taken if so (returned), else nothing held (NULL). */
static struct ocentral *lock_span(struct mheap *h, struct mspan *s, uintptr_t lo, uintptr_t hi)
{
	unsigned o = __atomic_load_n(&s->ordered, __ATOMIC_RELAXED);
	if (!o || o > OBANDS)
		return NULL;
	struct ocentral *oc = &ocentral[h->node][o - 1];
	mutex_lock(&oc->lock);
	uintptr_t end = s->base + ((uintptr_t)s->npages << NH_PAGE_SHIFT);
	if (s->ordered == o && atomic_load_explicit(&s->state, memory_order_acquire) == SPAN_INUSE && s->node == h->node &&
	    s->base < hi && end > lo)
		return oc;
	mutex_unlock(&oc->lock);
	return NULL;
}

size_t ordered_range_released(struct mheap *h, struct mspan *s, uintptr_t lo, uintptr_t hi, bool reclaim)
{
	if (!nh_ounit_shift)
		return 0;
	struct ocentral *oc = lock_span(h, s, lo, hi);
	if (!oc)
		return 0;
	uint32_t m = mspan_released_in(s, lo, hi, nh_ounit_shift);
	size_t b = (size_t)nh_popcount64(m) << nh_ounit_shift;
	if (reclaim && m) {
		s->released &= ~m;
		oc->released_bytes -= b;
	}
	mutex_unlock(&oc->lock);
	return b;
}

size_t ordered_range_used(struct mheap *h, struct mspan *s, uintptr_t lo, uintptr_t hi)
{
	struct ocentral *oc = lock_span(h, s, lo, hi);
	if (!oc)
		return 0;
	uintptr_t end = s->base + ((uintptr_t)s->npages << NH_PAGE_SHIFT);
	uintptr_t a = NH_MAX(s->base, lo), b = NH_MIN(end, hi);
	/* (ogran leaves out what a P cut since it took the span: a P's span
	 * counts less than it holds, which errs against a collapse.) */
	uint64_t used = (uint64_t)s->ogran << band_shift[span_band(s)];
	mutex_unlock(&oc->lock);
	return (size_t)(used * (b - a) / (end - s->base));
}


/* ---- fork and statistics ---------------------------------------------------- */

void ordered_fork_lock(bool lock)
{
	for (int n = 0; n < NH_MAX_NODES; n++)
		for (unsigned b = 0; b < OBANDS; b++) {
			if (lock)
				mutex_lock(&ocentral[n][b].lock);
			else
				mutex_unlock(&ocentral[n][b].lock);
		}
}

void ordered_fork_child(void)
{
	for (int n = 0; n < NH_MAX_NODES; n++)
		for (unsigned b = 0; b < OBANDS; b++)
			mutex_reset(&ocentral[n][b].lock);
}

uint64_t ordered_objects_out(int node, unsigned cls)
{
	if (!ordered_class(cls))
		return 0;
	struct ocentral *oc = &ocentral[node][class_band(cls)];
	return __atomic_load_n(&oc->out[cls], __ATOMIC_RELAXED);
}

void ordered_stats(int node, size_t *spans, size_t *bytes, size_t *released)
{
	*spans = *bytes = *released = 0;
	for (unsigned b = 0; b < OBANDS; b++) {
		*spans += ocentral[node][b].nspans;
		*bytes += ocentral[node][b].nspans * BAND_PAGES(b) * NH_PAGE_SIZE;
		*released += ocentral[node][b].released_bytes;
	}
}
