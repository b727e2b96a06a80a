/*
 * ordered.c — small objects placed in allocation order (NUMAHEAP_ORDERED).
 *
 * Size classes put each object next to others of its size, far from the
 * objects allocated just before and after it. Objects allocated together
 * tend to be freed together (a request's, a transaction's), and when one
 * run of them in ten survives, every page of every small class keeps a
 * survivor: a fragmented heap stays resident (docs/performance.md, the
 * mixed heap's runs). With NUMAHEAP_ORDERED=N, fresh objects of the
 * classes from 16 bytes to N bytes are instead cut from a bump hole that
 * each P holds, one after the other whatever their class, as glibc and
 * Immix place them: a run that survives sits on a page or two of its own.
 *
 * Only placement changes. A freed object goes on its P's stack for its
 * class, as any other (so malloc reuses it for the same class), and
 * through the transfer cache to other P's; what overflows those goes back
 * to its span (ordered_release, from mcentral_release), and the span's
 * holes grow.
 *
 * Two bands (ospan.h): objects up to 1 KiB in 16-byte granules on
 * one-page spans, up to 8 KiB in 128-byte granules on 8-page spans. An
 * object is a run of granules; two bitmaps in the span's alloc_bits say
 * where objects start and where they end, so an object's size is the
 * distance from its start to the next end bit, which only the object's
 * own free clears: free reads it without a lock. Granules outside every
 * [start, end] are free, and a hole is a run of them; walking from a
 * boundary (0, or the granule after an end) finds the holes without a
 * third map.
 *
 * With a page table of page slots (the default build), an ordered page
 * has no class (entry 0), so free and realloc take the general path for
 * these objects (malloc.c, free_general; api.c): the cost of this mode.
 * With finer slots (NH_PT_SHIFT, OCHUNKS), objects are cut in chunks of
 * whole slots of one class each (chunk_alloc), whose entries name it: free
 * takes the fast path. Aligned requests above 16 bytes take class spans
 * (api.c), as the caches may hold ordered objects.
 *
 * Spans: a P owns one per band (list OWNED: struct ohole, in its mcache);
 * the others are on the band's partial list (objects went back to them
 * since a P last looked), on its evac list (sparse, being emptied: below),
 * or on no list (no hole a P could use when it last looked). A span whose
 * last object comes back goes to the heap, unless a P owns it.
 *
 * Locking: ocentral.lock (rank ORDERED), one per band and node, guards the
 * lists, nalloc and the other counts, and every bitmap write but a P's
 * cuts in its own hole (carve: atomic ors, no lock). The heap lock is
 * taken after it is dropped. Readers of the maps outside it (free,
 * realloc, malloc_usable_size) use atomic loads.
 */

#include "options.h"
#include "os/os.h"

#include "mspan.h"
#include "arena.h"
#include "mheap.h"
#include "pagealloc.h"
#include "mcache.h"
#include "proc.h"
#include "mcentral.h"
#include "fastpath.h"
#include "ordered.h"
#include "ospan.h"
#include "sizeclass.h"
#include "hardened.h"

#include <string.h>

static const unsigned band_max[OBANDS] = {1024, 8192}; /* the bands' largest objects */
unsigned nh_ordered_lo, nh_ordered_hi;
struct ocentral ocentral[NH_MAX_NODES][OBANDS];
unsigned nh_ounit_shift; /* log2 of mcentral_unit_bytes(); 0: no in-span release */
uint8_t nh_ogran_class[OBANDS][OMAX_GRANS + 1];
uint8_t nh_oclass_band[NH_NUM_CLASSES];

void ordered_init(void)
{
	size_t max = NH_OPTION(ORDERED);
	for (int n = 0; n < NH_MAX_NODES; n++)
		for (unsigned b = 0; b < OBANDS; b++)
			mutex_init(&ocentral[n][b].lock, LOCK_RANK_ORDERED);
	if (!max || nh_hardened)
		return;
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		uint32_t size = nh_class_to_size[c];
		if (size < 16 || size > max || size > band_max[OBANDS - 1])
			continue;
		unsigned b = size > band_max[0];
		/* A class whose chunks the table cannot name ends the range
		 * (none at 256-byte slots: unit.pt256.*). */
		if (OCHUNKS && !arena_chunk_slots(c))
			break;
		if (!nh_ordered_lo)
			nh_ordered_lo = c;
		nh_ordered_hi = c;
		nh_oclass_band[c] = (uint8_t)b;
		nh_ogran_class[b][size >> band_shift[b]] = (uint8_t)c;
	}
	size_t u = mcentral_unit_bytes();
	nh_ounit_shift = u && u < NH_PAGE_SIZE ? (unsigned)nh_ctz64(u) : 0;
}

/* ---- allocation ---------------------------------------------------------- */

/* Granules [lo, hi) of s are handed out: the released OS pages under them
 * are the program's again (they fault in as zeros). Lock held. */
static void reclaim(struct ocentral *oc, struct mspan *s, unsigned lo, unsigned hi)
{
	uint32_t m = s->released & units_of(s, lo, hi);
	s->released &= ~m;
	oc->released_bytes -= (size_t)nh_popcount64(m) << nh_ounit_shift;
}

/* The first hole of s (of band) at or after b, a boundary, with need
 * granules; with chunks from a slot boundary, lo rounded up to it. Lock
 * held. */
static bool find_room(const struct mspan *s, unsigned band, unsigned b, unsigned need, unsigned *lo, unsigned *hi)
{
	while (find_hole(s, b, need, lo, hi)) {
		unsigned a = (*lo + OSLOT_GRANS(band) - 1) & ~(OSLOT_GRANS(band) - 1);
		if (!OCHUNKS || a + need <= *hi) {
			*lo = OCHUNKS ? a : *lo;
			return true;
		}
		b = *hi;
	}
	return false;
}

/* Does an object start in granule g's slot? (OCHUNKS: a slot is at most
 * 16 granules, in one word of the map.) */
static bool slot_starts(const struct mspan *s, unsigned g)
{
	unsigned k = OSLOT_GRANS(span_band(s)), a = g & ~(k - 1);
	uint64_t w = __atomic_load_n(&start_map(s)[a / 64], __ATOMIC_ACQUIRE) >> (a % 64);
	return k >= 64 ? w != 0 : (w & (((uint64_t)1 << (k % 64)) - 1)) != 0;
}

/* o's span leaves it: to the heap if empty (returned, for the caller to
 * free once the lock is dropped), else on the partial list. The objects o
 * cut from it count now. Lock held. */
static struct mspan *disown(struct ocentral *oc, struct ohole *o)
{
	struct mspan *s = o->span;
	s->nalloc = (uint16_t)(s->nalloc + o->carved);
	s->ogran = (uint16_t)(s->ogran + o->carvedg);
	oc->live += o->carvedg;
	*o = (struct ohole){0};
	s->otick = otick_now();
	if (s->nalloc) { /* what room is left: for the next P that needs it */
		set_list(s, SPAN_LIST_PARTIAL);
		list_push(&oc->partial, s);
		return NULL;
	}
	unlink_span(oc, s);
	return s;
}

/* o is [lo, hi) of s now: its released OS pages are the program's again
 * (they fault in as zeros as objects are cut there). Lock held. */
static void set_hole(struct ocentral *oc, struct ohole *o, struct mspan *s, unsigned lo, unsigned hi)
{
	o->span = s;
	o->next = (uint16_t)lo;
	o->end = (uint16_t)hi;
	if (NH_UNLIKELY(s->released))
		reclaim(oc, s, lo, hi);
}

/* o, empty, takes a span with a hole of need granules of band b: from the
 * partial list, or a fresh one from node's heap. Lock held; dropped and
 * taken again for the heap (gone, a span to free, is freed then). */
static bool own_span(struct ocentral *oc, struct ohole *o, int node, unsigned b, unsigned need, struct mspan **gone)
{
	struct mspan *s;
	while ((s = oc->partial.first)) {
		list_remove(&oc->partial, s);
		unsigned lo, hi;
		if (find_room(s, b, 0, need, &lo, &hi)) {
			set_hole(oc, o, s, lo, hi);
			set_list(s, SPAN_LIST_OWNED);
			return true;
		}
		set_list(s, SPAN_LIST_NONE); /* only small holes: back when more is freed */
	}
	mutex_unlock(&oc->lock);
	if (*gone) {
		mheap_free_span(heap_of_node(node), *gone);
		*gone = NULL;
	}
	s = mheap_alloc_span(heap_of_node(node), BAND_PAGES(b), NH_ORDERED_SPAN + b, 0);
	mutex_lock(&oc->lock);
	if (!s)
		return false;
	oc->nspans++;
	set_list(s, SPAN_LIST_OWNED);
	set_hole(oc, o, s, 0, OGRANS);
	return true;
}

/*
 * Cut n objects of class cls (need granules of band b) one after the
 * other from o, which has room for them, into out[]. No lock: the hole's
 * granules are its P's alone (no object there, no free can touch them, no
 * in-span release looks at an owned span), and the bits are set with
 * atomic ors, a word of each map at a time, as frees clear others in the
 * same words; one count for all (its line is shared with the other P's).
 * The span's nalloc counts o's objects when o lets go (disown). An object
 * may hold a mark from its granules' last life: the caller hands it out
 * as a fresh entry, whose mark fresh_object clears.
 */
static void carve(struct ohole *o, int node, unsigned b, unsigned cls, unsigned need, unsigned n, uintptr_t *out)
{
	struct mspan *s = o->span;
	unsigned g = o->next, ws = OWORDS, we = OWORDS;
	uint64_t sm = 0, em = 0;
	for (unsigned i = 0; i < n; i++, g += need) {
		unsigned e = g + need - 1;
		if (g / 64 != ws) {
			bit_set_mask(start_map(s), ws, sm);
			ws = g / 64;
			sm = 0;
		}
		sm |= (uint64_t)1 << (g % 64);
		if (e / 64 != we) {
			bit_set_mask(end_map(s), we, em);
			we = e / 64;
			em = 0;
		}
		em |= (uint64_t)1 << (e % 64);
		out[i] = s->base + ((uintptr_t)g << band_shift[b]);
	}
	bit_set_mask(start_map(s), ws, sm);
	bit_set_mask(end_map(s), we, em);
	o->next = (uint16_t)g;
	o->carved = (uint16_t)(o->carved + n);
	o->carvedg = (uint16_t)(o->carvedg + n * need);
	__atomic_fetch_add(&ocentral[node][b].out[cls], n, __ATOMIC_RELAXED);
}

/*
 * An object that does not fit what is left of the hole moves the hole on:
 * to the next one of its span, or to another span, and the rest stays
 * untouched until the span comes back from the partial list. (Immix's
 * overflow hole, a second one for such objects, kept the rest in use but
 * split the runs: perf/rss/mixed.py's runs pattern went from 1.22 to 1.34
 * after 3 s idle.)
 */
static bool room(struct mcache *c, unsigned b, unsigned need)
{
	int node = (int)c->node;
	struct ohole *o = &c->ohole[b];
	if (NH_LIKELY((unsigned)(o->end - o->next) >= need))
		return true;
	struct ocentral *oc = &ocentral[node][b];
	struct mspan *gone = NULL;
	unsigned lo, hi;
	bool ok = true;
	mutex_lock(&oc->lock);
	if (o->span && find_room(o->span, b, o->end, need, &lo, &hi)) {
		set_hole(oc, o, o->span, lo, hi);
	} else {
		if (o->span)
			gone = disown(oc, o);
		ok = own_span(oc, o, node, b, need, &gone);
	}
	mutex_unlock(&oc->lock);
	if (gone)
		mheap_free_span(heap_of_node(node), gone);
	return ok;
}

void *ordered_alloc(struct mcache *c, unsigned cls)
{
	unsigned b = class_band(cls), need = nh_class_to_size[cls] >> band_shift[b];
	uintptr_t p = 0;
	if (room(c, b, need))
		carve(&c->ohole[b], (int)c->node, b, cls, need, 1, &p);
	return (void *)p;
}

/*
 * With a page table of slots finer than a page (OCHUNKS), objects are cut
 * in chunks: whole slots from a slot boundary, each holding objects of one
 * class, as many as fill the slots the request asks for (want, the
 * streak's; at most the class's period, arena.c: 16 objects). The rest of
 * the last slot stays unused until the chunk's slots are all free again.
 * The chunk's entries name the class, so free's fast path takes these
 * objects as it takes a class span's. A slot's entry changes only when it
 * is cut again, whole, or goes to 0 when its last object start goes
 * (ordered_release) or its span is being emptied (relist): an entry 0 is
 * always correct, its frees take the general path.
 */
static unsigned chunk_alloc(struct mcache *c, unsigned b, unsigned cls, uintptr_t *out, unsigned want)
{
	unsigned size = nh_class_to_size[cls], sh = band_shift[b];
	unsigned slots = NH_MIN(arena_chunk_slots(cls), (want * size + NH_PT_SIZE - 1) >> NH_PT_SHIFT);
	unsigned n = (unsigned)((slots << NH_PT_SHIFT) / size);
	struct ohole *o = &c->ohole[b];
	if (!room(c, b, (slots << NH_PT_SHIFT) >> sh))
		return 0;
	uintptr_t base = o->span->base + ((uintptr_t)o->next << sh);
	carve(o, (int)c->node, b, cls, size >> sh, n, out);
	o->next = (uint16_t)NH_MIN((o->next + OSLOT_GRANS(b) - 1) & ~(OSLOT_GRANS(b) - 1), o->end);
	arena_set_chunk(base, slots, c->node, cls);
	return n;
}

/*
 * A P that asks for fresh objects of one class again and again (a loop
 * filling a table) would take the slow path for each. From its OSTREAK-th
 * visit in a row for one class on, it gets 2, 4, ... 16 objects a visit,
 * cut one after the other from the same hole, so their placement is the
 * one they would have had one by one, as long as the streak lasts; what a
 * broken streak leaves in the cache is used later, out of order (rare
 * with mixed sizes: three visits in a row for one class of 25 happen once
 * in 625). A streak never takes a new span: only the first object may
 * move the hole.
 */
#define OSTREAK 3

unsigned ordered_alloc_n(struct mcache *c, unsigned cls, uintptr_t *out, unsigned max)
{
	unsigned b = class_band(cls), need = nh_class_to_size[cls] >> band_shift[b];
	struct ohole *o = &c->ohole[b];
	unsigned visits = o->last == cls ? o->streak + 1u : 1u, want = 1;
	if (visits >= OSTREAK)
		want = NH_MIN(1u << NH_MIN(visits - OSTREAK + 1, 4u), max);
	if (OCHUNKS) {
		o->last = (uint8_t)cls;
		o->streak = (uint8_t)NH_MIN(visits, 255u);
		return chunk_alloc(c, b, cls, out, want);
	}
	void *p = ordered_alloc(c, cls);
	if (!p)
		return 0;
	out[0] = (uintptr_t)p;
	unsigned n = 1 + NH_MIN(want - 1, (unsigned)(o->end - o->next) / need);
	carve(o, (int)c->node, b, cls, need, n - 1, out + 1);
	o->last = (uint8_t)cls;
	o->streak = (uint8_t)NH_MIN(visits, 255u);
	return n;
}

void ordered_retire(struct mcache *c)
{
	for (unsigned b = 0; b < OBANDS; b++) {
		struct ohole *o = &c->ohole[b];
		if (!o->span)
			continue;
		struct ocentral *oc = &ocentral[c->node][b];
		mutex_lock(&oc->lock);
		struct mspan *gone = disown(oc, o);
		mutex_unlock(&oc->lock);
		if (gone)
			mheap_free_span(heap_of_node((int)c->node), gone);
	}
}

/* ---- evacuation --------------------------------------------------------------- */

/*
 * A heap that shrank and stays busy (a server after a delete) keeps its
 * survivors scattered over all its spans, and holes that new objects fill
 * keep it so: no OS page comes free. As Go's class spans are evacuated
 * (evacuate.c), the sparsest ordered spans then leave the partial list
 * for the evac list, where no P cuts from them: frees empty them, and an
 * empty span goes back to the heap. Sparse: at most a quarter of its
 * granules in use, while the band's spans are less than half used (and
 * more than a few). Should the band fill up again, they come back.
 * NUMAHEAP_EVACUATE=0 turns it off, as it does the class spans'.
 */
#define OEVAC_MIN_SPANS 16

static bool sparse(const struct ocentral *oc, const struct mspan *s)
{
	return NH_OPTION(EVACUATE) && oc->nspans >= OEVAC_MIN_SPANS && oc->live * 2 < (int64_t)oc->nspans * OGRANS &&
	       s->ogran * 4 < OGRANS;
}

/* s, not a P's and not empty, had objects back: on the partial list, or
 * the evac list if sparse. Lock held. */
void relist(struct ocentral *oc, struct mspan *s)
{
	enum span_list want = sparse(oc, s) ? SPAN_LIST_EVAC : SPAN_LIST_PARTIAL;
	if (s->list == want)
		return;
	if (s->list != SPAN_LIST_NONE)
		list_remove(s->list == SPAN_LIST_EVAC ? &oc->evac : &oc->partial, s);
	list_push(want == SPAN_LIST_EVAC ? &oc->evac : &oc->partial, s);
	set_list(s, (uint8_t)want);
	/* Its chunks' frees must see the list (free_general): no entries. */
	if (OCHUNKS && want == SPAN_LIST_EVAC)
		arena_clear_slots(s->base, OGRANS / OSLOT_GRANS(span_band(s)));
}

/* s, empty, leaves the band for the heap (the caller frees it once the
 * lock is dropped). Lock held. */
void unlink_span(struct ocentral *oc, struct mspan *s)
{
	if (s->list == SPAN_LIST_PARTIAL)
		list_remove(&oc->partial, s);
	else if (s->list == SPAN_LIST_EVAC)
		list_remove(&oc->evac, s);
	set_list(s, SPAN_LIST_NONE);
	oc->nspans--;
	oc->released_bytes -= (size_t)nh_popcount64(s->released) << nh_ounit_shift;
}

/* The background thread's look for sparse spans, each pass (from
 * mcentral_evacuate, after the class spans'): frees that the caches absorb
 * never relist a span. Takes the band locks. */
void ordered_evacuate(struct mheap *h)
{
	for (unsigned b = 0; b < OBANDS && nh_ordered_hi; b++) {
		struct ocentral *oc = &ocentral[h->node][b];
		mutex_lock(&oc->lock);
		for (struct mspan *s = oc->partial.first, *next; s; s = next) {
			next = s->next;
			relist(oc, s);
		}
		mutex_unlock(&oc->lock);
	}
}

/* ---- free ------------------------------------------------------------------ */

NH_COLD NH_NORETURN static void bad_pointer(const char *api, const struct mspan *s, uintptr_t p, unsigned g)
{
	unsigned st = prev_bit(start_map(s), g);
	if (st != OGRANS && next_bit(end_map(s), st) >= g)
		free_interior(api, p);
	nh_report_bad_pointer(api, (void *)p, "pointer not in use (double free, or never allocated)");
}

static unsigned checked_class(const char *api, const struct mspan *s, uintptr_t p)
{
	unsigned cls = ordered_object_class(s, p);
	if (NH_UNLIKELY(!cls))
		bad_pointer(api, s, p, (unsigned)((p - s->base) >> band_shift[span_band(s)]));
	return cls;
}

void ordered_bad_free(const struct mspan *s, uintptr_t p)
{
	checked_class("free", s, p);
	nh_report_bad_pointer("free", (void *)p, "ordered_bad_free on a valid object"); /* not reached */
}

/* A span being emptied takes its objects back at once, not through a cache
 * that would hand them out again (free's look at mspan.list is racy: either
 * way is correct). */
void ordered_free_evac(struct mspan *s, uintptr_t p, unsigned cls)
{
	struct mheap *h = heap_of_node(s->node);
	if (proc_current_node() != s->node) /* home from another node, as the remote buffer counts */
		atomic_fetch_add_explicit(&h->remote_frees, 1, memory_order_relaxed);
	uintptr_t rest;
	ordered_release(h, cls, &p, 1, &rest);
}

size_t ordered_size(const char *api, const struct mspan *s, uintptr_t p) { return nh_class_to_size[checked_class(api, s, p)]; }

unsigned ordered_release(struct mheap *h, unsigned cls, const uintptr_t *objs, unsigned n, uintptr_t *rest)
{
	struct ocentral *oc = &ocentral[h->node][class_band(cls)];
	struct mspan *empty[64];
	unsigned k = 0, nempty = 0, back = 0;
	bool locked = false;
	uint32_t now = 0;
	for (unsigned i = 0; i < n; i++) {
		uintptr_t p = objs[i] & ~NH_ENTRY_FRESH;
		struct mspan *s = span_of(p);
		if (!s || !s->ordered) {
			rest[k++] = objs[i];
			continue;
		}
		if (!locked) {
			mutex_lock(&oc->lock);
			locked = true;
			now = otick_now();
		}
		/* A drain of idle caches (the background thread) leaves the
		 * span as idle as it was, as pageAlloc leaves the chunk. */
		if (!nh_free_keeps_idle)
			s->otick = now;
		/* Fresh entries (a streak's, ordered_alloc_n) were never the
		 * program's: no mark to check. */
		if (NH_UNLIKELY(!(objs[i] & NH_ENTRY_FRESH) && !has_free_mark(p)))
			nh_report_bad_pointer("free", (void *)p,
					      "double free (or written after free), found when its cache gave it back");
		if (NH_UNLIKELY(span_band(s) != class_band(cls)))
			nh_report_bad_pointer("free", (void *)p, "object's span changed while cached (heap corruption)");
		unsigned sh = band_shift[span_band(s)], g = (unsigned)((p - s->base) >> sh);
		if (NH_UNLIKELY(!bit_test(start_map(s), g)))
			nh_report_bad_pointer("free", (void *)p, "double free (object already free in its span)");
		if (NH_UNLIKELY(ordered_object_class(s, p) != cls))
			nh_report_bad_pointer("free", (void *)p, "object's size changed while cached (heap corruption)");
		unsigned e = g + (nh_class_to_size[cls] >> sh) - 1; /* its end bit, as the class says */
		back++;
		/* Only an owner cuts without the lock: in another span, plain
		 * stores (readers load the words atomically). */
		bool owned = s->list == SPAN_LIST_OWNED;
		bit_clear_locked(end_map(s), e, owned);
		bit_clear_locked(start_map(s), g, owned);
		if (OCHUNKS && !slot_starts(s, g))
			arena_clear_slots(s->base + ((uintptr_t)(g & ~(OSLOT_GRANS(span_band(s)) - 1)) << sh), 1);
		s->nalloc--;
		s->ogran = (uint16_t)(s->ogran - (e - g + 1));
		oc->live -= e - g + 1;
		if (owned)
			continue;
		if (s->nalloc == 0) {
			unlink_span(oc, s);
			empty[nempty++] = s;
			if (nempty == 64) {
				mutex_unlock(&oc->lock);
				for (unsigned j = 0; j < nempty; j++)
					mheap_free_span(h, empty[j]);
				nempty = 0;
				mutex_lock(&oc->lock);
			}
		} else {
			relist(oc, s);
		}
	}
	if (locked)
		mutex_unlock(&oc->lock);
	if (back)
		__atomic_fetch_sub(&oc->out[cls], back, __ATOMIC_RELAXED);
	for (unsigned j = 0; j < nempty; j++)
		mheap_free_span(h, empty[j]);
	return k;
}

