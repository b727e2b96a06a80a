/*
 * evacuate.c — emptying the sparse spans of a busy class (mcentral's
 * evac list), so that a program that deleted most of its objects and
 * keeps working gets its memory back.
 *
 * Owns: the choice of the spans to evacuate and to give up on (the
 * background thread, mcentral_evacuate), and the frees that go straight
 * back to an evacuated span (mcentral_free_evac, from free_small_checked).
 * mcentral.c's release paths empty evacuated spans too (evac_unlink_empty).
 *
 * Invariants: a span is on the evac list iff its evac flag is set and its
 * page-table entries say "no class" (so free's fast path refuses its
 * objects); no refill takes from it; it leaves the list empty (to the
 * heap) or stalled (back to the partial list, entries restored, never
 * again while it serves the class). evac_cursor, where the next stall
 * check resumes, is NULL or a span on the evac list (both ways off the
 * list move it on).
 *
 * Locking: the class's central lock (c->lock) around every change of the
 * list, the flag and the entries; the transfer cache's lock alone, briefly,
 * to count its objects; the heap lock (mheap_free_span) only with neither
 * held.
 */

#include "os/os.h"

#include "mspan.h"
#include "arena.h"

#include "mheap.h"
#include "mcentral.h"

#include "alloc.h"
#include "scavenger.h"
#include "ordered.h"

/*
 * After a mass delete, a class's spans are sparse, and while
 * the program keeps allocating and freeing, the P caches hand out the
 * slots freed last, which lie in every sparse span in proportion to the
 * objects still there: the spans refill as fast as they empty, and none
 * ever goes back (perf/rss/churn.py: RSS stayed 4.4 times the live heap).
 * So when a class is busy (its mallocs moved since the last look), not
 * growing (its live objects within 1/16 of where they were EVAC_STEADY_NS
 * ago) and sparse (its partial
 * spans at most half full, EVAC_MIN_PARTIAL of them or more), the spans
 * at most a quarter full are evacuated: off the partial list (no refill
 * takes from them) and their page entries set to no class, so that free's
 * fast path refuses their objects, which go straight back to the span
 * (mcentral_free_evac) instead of a cache. Once empty, a span goes back
 * to the heap, which reuses its pages for the spans refills now take, or
 * the scavenger releases them. A span that stops emptying (long-lived
 * objects) for EVAC_STALL_TICKS (about 5 s) is put back to use for good.
 * A growing class is never evacuated: it would take fresh memory instead
 * of the holes it can fill.
 */
#define EVAC_MIN_PARTIAL 16
/* The stall clock: 2^28 ns (268 ms) a tick, in 8 bits (it wraps after
 * 68 s; a span looked at less often than that only waits longer). Time,
 * not a count of looks: a list longer than EVAC_SCAN is looked at a part
 * at a time, and a span must not wait longer for that. */
#define EVAC_TICK_SHIFT 28
#define EVAC_STALL_TICKS 19 /* 5.1 s without a fall */
#define EVAC_LIVE_SHARE 16
#define EVAC_SCAN 512
#define EVAC_STEADY_NS ((uint64_t)2000000000)

static uint8_t evac_tick(uint64_t now) { return (uint8_t)(now >> EVAC_TICK_SHIFT); }

static void evac_begin(struct mcentral *c, struct mspan *s, uint64_t now)
{
	list_remove(&c->partial, s);
	s->list = SPAN_LIST_EVAC;
	list_push(&c->evac, s);
	s->evac_seen = s->nalloc;
	s->evac_fell = evac_tick(now);
	c->evac_objects += s->nalloc;
	atomic_store_explicit(&s->evac, 1, memory_order_relaxed);
	arena_set_page_entries(s, false);
	__atomic_fetch_add(&nh_scav.evacuations, 1, __ATOMIC_RELAXED);
}

/* s stopped emptying: back on the partial list, its frees to the caches. */
static void evac_end(struct mcentral *c, struct mspan *s)
{
	if (c->evac_cursor == s)
		c->evac_cursor = s->next;
	list_remove(&c->evac, s);
	c->evac_objects -= NH_MIN(c->evac_objects, (uint64_t)s->nalloc);
	arena_set_page_entries(s, true);
	atomic_store_explicit(&s->evac, 0, memory_order_relaxed);
	s->list = SPAN_LIST_PARTIAL;
	list_push(&c->partial, s);
	s->evac_rest = 1; /* not again while it serves this class */
	__atomic_fetch_add(&nh_scav.evac_stalls, 1, __ATOMIC_RELAXED);
}

static void evacuate_class(struct mcentral *c, uint64_t allocs, uint64_t held, uint64_t now)
{
	/* The spans being emptied: those that stopped emptying go back. At
	 * most EVAC_SCAN are looked at, from where the last look stopped
	 * (evac_cursor), so that every span of a long list is looked at in
	 * turn; a span counts as stalled when EVAC_STALL_TICKS have passed
	 * since a look last found it emptier. */
	unsigned looked = 0;
	uint8_t tick = evac_tick(now);
	struct mspan *s = c->evac_cursor ? c->evac_cursor : c->evac.first;
	for (struct mspan *next; s && looked < EVAC_SCAN; s = next, looked++) {
		next = s->next;
		if (s->nalloc < s->evac_seen) {
			s->evac_seen = s->nalloc;
			s->evac_fell = tick;
		} else if ((uint8_t)(tick - s->evac_fell) >= EVAC_STALL_TICKS) {
			evac_end(c, s);
		}
	}
	c->evac_cursor = s;
	/* Live objects: out of the spans, less those the caches hold (a
	 * program growing back first takes what its caches hold, which
	 * objects_out counts already). */
	uint64_t live = c->objects_out > held ? c->objects_out - held : 0;
	bool busy = allocs != c->evac_allocs;
	c->evac_allocs = allocs;
	/* Steady: live within 1/16 above what it was EVAC_STEADY_NS ago or
	 * more (a growth past that, or a fall by half, starts the count
	 * again). */
	if (live > c->evac_out + c->evac_out / 16 || live < c->evac_out / 2 || !c->evac_since) {
		c->evac_out = live;
		c->evac_since = now;
	}
	bool steady = now - c->evac_since >= EVAC_STEADY_NS;
	uint64_t cap = c->nspans * (((uint64_t)nh_class_to_npages[c->sizeclass] << NH_PAGE_SHIFT) /
				    nh_class_to_size[c->sizeclass]);
	if (!busy || !steady || c->partial.count < EVAC_MIN_PARTIAL || c->objects_out * 2 > cap)
		return;
	/* Each object of an evacuated span takes free's slow path once, so
	 * at most 1/EVAC_LIVE_SHARE of the class's objects are in such spans
	 * at a time, taken from the first EVAC_SCAN partial spans at a look:
	 * the work is spread over the looks, and the program keeps most of
	 * its speed. (Spans that stalled beyond the stall check's window
	 * hold part of that share until they empty: the waste is bounded.) */
	uint64_t budget = live / EVAC_LIVE_SHARE;
	looked = 0;
	for (struct mspan *s = c->partial.first, *next; s && c->evac_objects < budget && looked < EVAC_SCAN;
	     s = next, looked++) {
		next = s->next;
		if (!s->kept && !s->evac_rest && s->nalloc && s->nalloc * 4u <= s->nelems)
			evac_begin(c, s, now);
	}
}

void mcentral_evacuate(struct mheap *h, const uint64_t allocs[NH_NUM_CLASSES], const uint64_t cached[NH_NUM_CLASSES],
		       uint64_t now)
{
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		struct mcentral *c = &h->central[k];
		mutex_lock(&c->tc_lock);
		uint64_t held = cached[k] + c->tc_count;
		mutex_unlock(&c->tc_lock);
		mutex_lock(&c->lock);
		if (c->nspans)
			evacuate_class(c, allocs[k], held, now);
		mutex_unlock(&c->lock);
	}
	ordered_evacuate(h); /* the ordered spans' own (ordered.c) */
}

bool mcentral_free_evac(struct mspan *s, uintptr_t p)
{
	struct mheap *h = heap_of_node(s->node);
	struct mcentral *c = &h->central[s->sizeclass];
	mutex_lock(&c->lock);
	if (s->list != SPAN_LIST_EVAC) {
		mutex_unlock(&c->lock);
		return false;
	}
	/* A live object carries no free mark (malloc cleared it): one that
	 * does sits in a cache already. */
	if (NH_UNLIKELY(has_free_mark(p)))
		nh_report_bad_pointer("free", (void *)p, "double free (the object is in a cache already)");
	c->puts++;
	/* Marked, as a cache would have it: the slot is checked when it is
	 * handed out again (mspan.c). */
	*mark_word(p) = free_mark(p);
	mspan_put(s, p, false);
	c->objects_out--;
	c->evac_objects -= c->evac_objects != 0;
	if (s->nalloc) {
		mutex_unlock(&c->lock);
		return true;
	}
	evac_unlink_empty(c, s);
	mutex_unlock(&c->lock);
	mheap_free_span(h, s);
	return true;
}

