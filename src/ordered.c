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
 * class, as any other (so malloc reuses it for the same class); when a
 * stack overflows, or a cache is drained, it goes back to its span here
 * instead of to mcentral (ordered_release), and the span's hole grows.
 *
 * An ordered span is one page (512 granules of 16 bytes). An object is a
 * run of granules; two bitmaps in the span's alloc_bits say where objects
 * start and end:
 *
 *   start[g]  an object starts at granule g (allocated: the program's, or
 *             on a cache's stack)
 *   end[g]    an object ends at granule g
 *
 * So an object's size is the distance from its start to the next end bit,
 * which only the object's own free clears: free reads it without a lock.
 * Granules outside every [start, end] are free, and a hole is a run of
 * them; walking from a boundary (0, or the granule after an end) finds the
 * holes without a third map.
 *
 * The page table has no class for an ordered page (entry 0), so free and
 * realloc take the general path for these objects (malloc.c, free_general;
 * api.c): the cost of this mode. aligned requests above 16 bytes skip the
 * caches (api.c), which may hold ordered objects of their class.
 *
 * Spans: a P owns its bump span (list OWNED); others are on the node's
 * partial list (they have had objects freed since they were last looked
 * at) or on no list. A span whose last object comes back goes to the heap,
 * unless a P owns it.
 *
 * Locking: ocentral.lock (rank ORDERED), one per node, guards the bitmaps'
 * writes, nalloc, the lists and the P's hole; the heap lock is taken
 * after it is dropped. Readers of start and end (free, realloc,
 * malloc_usable_size) use atomic loads, without it.
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
#include "omaps.h"
#include "sizeclass.h"
#include "hardened.h"

#include <string.h>

/*
 * Two bands: objects up to 1 KiB in 16-byte granules on one-page spans,
 * larger ones up to 8 KiB in 128-byte granules on 8-page spans (every
 * class size is a multiple of its band's granule). Both have 512 granules
 * a span, so the maps are the same size.
 */
#define OBANDS 2
#define OMAX_GRANS 64 /* an object's granules, at most: 1 KiB / 16, 8 KiB / 128 */
static const unsigned band_shift[OBANDS] = {4, 7};
static const unsigned band_max[OBANDS] = {1024, 8192};
#define BAND_PAGES(b) ((OGRANS << band_shift[b]) >> NH_PAGE_SHIFT)
_Static_assert((OGRANS << 4) == NH_PAGE_SIZE, "band 0's span is one page");
_Static_assert(OGRANS <= 65535, "holes are 16-bit granule numbers");

unsigned nh_ordered_lo, nh_ordered_hi, nh_ordered_mid;
static unsigned unit_shift; /* log2 of mcentral_unit_bytes(); 0: no in-span release */
static uint8_t gran_class[OBANDS][OMAX_GRANS + 1]; /* granules -> class; 0: no class of that size */

struct ocentral {
	struct mutex lock;
	struct span_list_head partial;
	size_t nspans;
	size_t released_bytes; /* OS pages released inside its spans */
	struct span_list_head evac; /* sparse spans being emptied: never a P's again */
	int64_t live;		    /* granules of objects out (owners' cuts counted late) */
	uint64_t out[NH_NUM_CLASSES]; /* objects handed out, by class (with users or in caches); atomic */
} NH_ALIGNED(64);
static struct ocentral ocentral[NH_MAX_NODES][OBANDS];

void ordered_init(void)
{
	size_t max = NH_OPTION(ORDERED);
	for (int n = 0; n < NH_MAX_NODES; n++)
		for (unsigned b = 0; b < OBANDS; b++)
			mutex_init(&ocentral[n][b].lock, LOCK_RANK_ORDERED);
	if (!max || nh_hardened)
		return;
	nh_ordered_mid = NH_NUM_CLASSES;
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		uint32_t size = nh_class_to_size[c];
		if (size < 16 || size > max || size > band_max[OBANDS - 1])
			continue;
		unsigned b = size > band_max[0];
		if (!nh_ordered_lo)
			nh_ordered_lo = c;
		if (b && nh_ordered_mid == NH_NUM_CLASSES)
			nh_ordered_mid = c;
		nh_ordered_hi = c;
		gran_class[b][size >> band_shift[b]] = (uint8_t)c;
	}
	size_t u = mcentral_unit_bytes();
	unit_shift = u && u < NH_PAGE_SIZE ? (unsigned)nh_ctz64(u) : 0;
}

/* The object starting at granule g of s: its class (0: g starts none). */
static unsigned object_class(const struct mspan *s, unsigned g)
{
	if (!bit_test(start_map(s), g))
		return 0;
	unsigned e = next_bit(end_map(s), g);
	return e - g + 1 <= OMAX_GRANS ? gran_class[s->ordered - 1][e - g + 1] : 0;
}

static inline unsigned span_band(const struct mspan *s) { return s->ordered - 1u; }
static inline unsigned class_band(unsigned cls) { return cls >= nh_ordered_mid; }

/* ---- allocation ---------------------------------------------------------- */

/* mspan.list of an ordered span: written under the lock, read by free
 * without it (ordered_free's look for an evacuating span). */
static inline void set_list(struct mspan *s, unsigned l) { __atomic_store_n(&s->list, (uint8_t)l, __ATOMIC_RELAXED); }

/* A span's clock for the in-span release (mspan.otick): about a millisecond
 * a tick, wrapping after 73 minutes (compared by difference). */
static inline uint32_t otick_of(uint64_t ns) { return (uint32_t)(ns >> 20); }
static inline uint32_t otick_now(void) { return otick_of(os_nanotime()); }


/* The OS pages of granules [lo, hi) of s, as bits of s->released. */
static uint32_t units_of(const struct mspan *s, unsigned lo, unsigned hi)
{
	unsigned sh = band_shift[span_band(s)];
	unsigned j0 = (lo << sh) >> unit_shift, j1 = ((hi << sh) - 1) >> unit_shift;
	return (uint32_t)((((uint64_t)2 << j1) - 1) & ~(((uint64_t)1 << j0) - 1));
}

/* Granules [lo, hi) of s are handed out: the released OS pages under them
 * are the program's again (they fault in as zeros). Lock held. */
static void reclaim(struct ocentral *oc, struct mspan *s, unsigned lo, unsigned hi)
{
	uint32_t m = s->released & units_of(s, lo, hi);
	s->released &= ~m;
	oc->released_bytes -= (size_t)nh_popcount64(m) << unit_shift;
}

/* s, c's span of band b, leaves it: to the heap if empty (returned, for
 * the caller to free once the lock is dropped), else on the partial list.
 * The objects c cut from it count now. Lock held. */
static struct mspan *disown(struct ocentral *oc, struct mcache *c, unsigned b, struct mspan *s)
{
	s->nalloc = (uint16_t)(s->nalloc + c->ocarved[b]);
	s->ogran = (uint16_t)(s->ogran + c->ocarvedg[b]);
	oc->live += c->ocarvedg[b];
	c->ocarved[b] = c->ocarvedg[b] = 0;
	s->otick = otick_now();
	if (s->nalloc) { /* what room is left: for the next P that needs it */
		set_list(s, SPAN_LIST_PARTIAL);
		list_push(&oc->partial, s);
		return NULL;
	}
	set_list(s, SPAN_LIST_NONE);
	oc->nspans--;
	oc->released_bytes -= (size_t)nh_popcount64(s->released) << unit_shift;
	return s;
}

/* c's hole of band b is [lo, hi) of s now: its released OS pages are the
 * program's again (they fault in as zeros as c cuts objects there). Lock
 * held. */
static void set_hole(struct ocentral *oc, struct mcache *c, unsigned b, struct mspan *s, unsigned lo, unsigned hi)
{
	c->onext[b] = (uint16_t)lo;
	c->oend[b] = (uint16_t)hi;
	if (NH_UNLIKELY(s->released))
		reclaim(oc, s, lo, hi);
}

/* A span with a hole of need granules for c: from the partial list, or a
 * fresh one. Lock held; dropped and taken again for the heap. */
static struct mspan *own_span(struct ocentral *oc, struct mcache *c, unsigned b, unsigned need, struct mspan **gone)
{
	struct mspan *s;
	while ((s = oc->partial.first)) {
		list_remove(&oc->partial, s);
		unsigned lo, hi;
		if (find_hole(s, 0, need, &lo, &hi)) {
			set_hole(oc, c, b, s, lo, hi);
			set_list(s, SPAN_LIST_OWNED);
			return s;
		}
		set_list(s, SPAN_LIST_NONE); /* only small holes: back when more is freed */
	}
	mutex_unlock(&oc->lock);
	if (*gone) {
		mheap_free_span(heap_of_node(c->node), *gone);
		*gone = NULL;
	}
	s = mheap_alloc_span(heap_of_node((int)c->node), BAND_PAGES(b), NH_ORDERED_SPAN + b, 0);
	mutex_lock(&oc->lock);
	if (!s)
		return NULL;
	oc->nspans++;
	set_list(s, SPAN_LIST_OWNED);
	c->onext[b] = 0;
	c->oend[b] = OGRANS;
	return s;
}

/*
 * Cut an object of class cls from c's hole of band b, which has room. No
 * lock: the hole's granules are c's alone (no object there, no free can
 * touch them, no in-span release looks at an owned span), and the bits
 * are set with atomic ors, as frees clear others in the same words. The
 * span's nalloc counts c's objects when c gives it up (disown).
 */
static void *carve(struct mcache *c, unsigned b, unsigned cls, unsigned need)
{
	struct mspan *s = c->ospan[b];
	unsigned g = c->onext[b];
	bit_set(start_map(s), g);
	bit_set(end_map(s), g + need - 1);
	c->onext[b] = (uint16_t)(g + need);
	c->ocarved[b]++;
	c->ocarvedg[b] = (uint16_t)(c->ocarvedg[b] + need);
	__atomic_fetch_add(&ocentral[c->node][b].out[cls], 1, __ATOMIC_RELAXED);
	uintptr_t p = s->base + ((uintptr_t)g << band_shift[b]);
	*mark_word(p) = 0; /* a mark from the granule's last life: not freed now */
	return (void *)p;
}

void *ordered_alloc(struct mcache *c, unsigned cls)
{
	unsigned b = class_band(cls), need = nh_class_to_size[cls] >> band_shift[b];
	if (NH_LIKELY((unsigned)(c->oend[b] - c->onext[b]) >= need))
		return carve(c, b, cls, need);
	struct ocentral *oc = &ocentral[c->node][b];
	struct mspan *s, *gone = NULL;
	mutex_lock(&oc->lock);
	while ((unsigned)(c->oend[b] - c->onext[b]) < need) {
		unsigned lo, hi;
		if ((s = c->ospan[b]) && find_hole(s, c->oend[b], need, &lo, &hi)) {
			set_hole(oc, c, b, s, lo, hi);
			continue;
		}
		if (s)
			gone = disown(oc, c, b, s);
		c->onext[b] = c->oend[b] = 0;
		c->ospan[b] = own_span(oc, c, b, need, &gone);
		if (!c->ospan[b]) {
			mutex_unlock(&oc->lock);
			if (gone)
				mheap_free_span(heap_of_node((int)c->node), gone);
			return NULL;
		}
	}
	mutex_unlock(&oc->lock);
	if (gone)
		mheap_free_span(heap_of_node((int)c->node), gone);
	return carve(c, b, cls, need);
}

void ordered_retire(struct mcache *c)
{
	for (unsigned b = 0; b < OBANDS; b++) {
		struct mspan *s = c->ospan[b];
		if (!s)
			continue;
		struct ocentral *oc = &ocentral[c->node][b];
		mutex_lock(&oc->lock);
		struct mspan *gone = disown(oc, c, b, s);
		c->ospan[b] = NULL;
		c->onext[b] = c->oend[b] = 0;
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
 */
#define OEVAC_MIN_SPANS 16

static bool sparse(const struct ocentral *oc, const struct mspan *s)
{
	return oc->nspans >= OEVAC_MIN_SPANS && oc->live * 2 < (int64_t)oc->nspans * OGRANS && s->ogran * 4 < OGRANS;
}

/* s, not a P's and not empty, had objects back: on the partial list, or
 * the evac list if sparse. Lock held. */
static void relist(struct ocentral *oc, struct mspan *s)
{
	enum span_list want = sparse(oc, s) ? SPAN_LIST_EVAC : SPAN_LIST_PARTIAL;
	if (s->list == want)
		return;
	if (s->list != SPAN_LIST_NONE)
		list_remove(s->list == SPAN_LIST_EVAC ? &oc->evac : &oc->partial, s);
	list_push(want == SPAN_LIST_EVAC ? &oc->evac : &oc->partial, s);
	set_list(s, (uint8_t)want);
}

/* s, empty and not a P's, leaves its list for the heap. Lock held. */
static void unlink_span(struct ocentral *oc, struct mspan *s)
{
	if (s->list == SPAN_LIST_PARTIAL)
		list_remove(&oc->partial, s);
	else if (s->list == SPAN_LIST_EVAC)
		list_remove(&oc->evac, s);
	set_list(s, SPAN_LIST_NONE);
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
	uintptr_t off = p - s->base;
	unsigned sh = band_shift[span_band(s)], g = (unsigned)(off >> sh);
	unsigned cls = (off & ((1u << sh) - 1)) ? 0 : object_class(s, g);
	if (NH_UNLIKELY(!cls))
		bad_pointer(api, s, p, g);
	return cls;
}

void ordered_free(struct mspan *s, uintptr_t p)
{
	unsigned cls = checked_class("free", s, p);
	*mark_word(p) = free_mark(p);
	/* A span being emptied takes its objects back at once, not through a
	 * cache that would hand them out again (a racy look: either way is
	 * correct). */
	if (NH_UNLIKELY(__atomic_load_n(&s->list, __ATOMIC_RELAXED) == SPAN_LIST_EVAC)) {
		struct mheap *h = heap_of_node(s->node);
		if (proc_current_node() != s->node) /* home from another node, as the remote buffer counts */
			atomic_fetch_add_explicit(&h->remote_frees, 1, memory_order_relaxed);
		ordered_release(h, cls, &p, 1);
		return;
	}
	if (NH_UNLIKELY(!mcache_push(NH_HOFF(s->node, cls), p)))
		free_to_cache(p, s->node, cls);
}

size_t ordered_size(const char *api, const struct mspan *s, uintptr_t p) { return nh_class_to_size[checked_class(api, s, p)]; }

unsigned ordered_object_class(const struct mspan *s, uintptr_t p)
{
	uintptr_t off = p - s->base;
	unsigned sh = band_shift[span_band(s)];
	return (off & ((1u << sh) - 1)) ? 0 : object_class(s, (unsigned)(off >> sh));
}

unsigned ordered_release(struct mheap *h, unsigned cls, uintptr_t *objs, unsigned n)
{
	struct ocentral *oc = &ocentral[h->node][class_band(cls)];
	struct mspan *empty[64];
	unsigned k = 0, nempty = 0;
	bool locked = false;
	uint32_t now = 0;
	for (unsigned i = 0; i < n; i++) {
		uintptr_t p = objs[i] & ~NH_ENTRY_FRESH;
		struct mspan *s = span_of(p);
		if (!s || !s->ordered) {
			objs[k++] = objs[i];
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
		if (NH_UNLIKELY(!has_free_mark(p)))
			nh_report_bad_pointer("free", (void *)p,
					      "double free (or written after free), found when its cache gave it back");
		if (NH_UNLIKELY(span_band(s) != class_band(cls)))
			nh_report_bad_pointer("free", (void *)p, "object's span changed while cached (heap corruption)");
		unsigned g = (unsigned)((p - s->base) >> band_shift[span_band(s)]);
		if (NH_UNLIKELY(!bit_test(start_map(s), g)))
			nh_report_bad_pointer("free", (void *)p, "double free (object already free in its span)");
		if (NH_UNLIKELY(object_class(s, g) != cls))
			nh_report_bad_pointer("free", (void *)p, "object's size changed while cached (heap corruption)");
		__atomic_fetch_sub(&oc->out[cls], 1, __ATOMIC_RELAXED);
		unsigned e = next_bit(end_map(s), g);
		bit_clear(end_map(s), e);
		bit_clear(start_map(s), g);
		s->nalloc--;
		s->ogran = (uint16_t)(s->ogran - (e - g + 1));
		oc->live -= e - g + 1;
		if (s->list == SPAN_LIST_OWNED)
			continue;
		if (s->nalloc == 0) {
			unlink_span(oc, s);
			oc->nspans--;
			oc->released_bytes -= (size_t)nh_popcount64(s->released) << unit_shift;
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
	for (unsigned j = 0; j < nempty; j++)
		mheap_free_span(h, empty[j]);
	return k;
}

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
	return ~used & (uint32_t)(((uint64_t)1 << (((size_t)OGRANS << band_shift[span_band(s)]) >> unit_shift)) - 1);
}

unsigned ordered_take_free_pages(struct mheap *h, unsigned band, uint64_t idle_before, uint64_t *busy,
				 struct span_piece *out, unsigned max)
{
	struct ocentral *oc = &ocentral[h->node][band];
	if (!nh_ordered_hi || !unit_shift)
		return 0;
	unsigned sh = band_shift[band], n = 0;
	mutex_lock(&oc->lock);
	/* The background thread's look for sparse spans (evacuation above):
	 * frees that the caches absorb never relist a span. */
	for (struct mspan *s = oc->partial.first, *next; s; s = next) {
		next = s->next;
		relist(oc, s);
	}
	for (struct mspan *s = oc->partial.first ? oc->partial.first : oc->evac.first; s && n < max;
	     s = s->next ? s->next : s->list == SPAN_LIST_PARTIAL ? oc->evac.first : NULL) {
		uint32_t units = free_units(s) & ~s->released;
		if (!units)
			continue;
		/* Idle: its chunk's pages (mcentral.c's rule), or the span
		 * itself: nothing went back to it, and no P gave it up, since
		 * idle_before. The span's own clock too, as in a busy heap spans
		 * come and go in every chunk all the time, and the free pages
		 * of the spans nobody cuts from would stay. */
		int32_t ahead = (int32_t)(s->otick - otick_of(idle_before));
		uint64_t t;
		if (idle_before && ahead > 0 && !page_alloc_chunk_idle(&h->pages, s->base, idle_before, &t)) {
			uint64_t ts = idle_before + ((uint64_t)ahead << 20); /* the span's, as the chunk's t */
			t = NH_MIN(t, ts);
			if (!*busy || t < *busy)
				*busy = t;
			continue;
		}
		while (units && n < max) {
			/* One run of free OS pages: a piece, held as an object
			 * of the span's while it goes (no P can cut into it). */
			unsigned j0 = (unsigned)nh_ctz64(units), j1 = j0;
			while (j1 < 32 && (units >> j1 & 1))
				j1++;
			uint32_t run = (uint32_t)((((uint64_t)1 << (j1 - j0)) - 1) << j0);
			units &= ~run;
			unsigned lo = (j0 << unit_shift) >> sh, hi = (j1 << unit_shift) >> sh;
			bit_set(start_map(s), lo);
			bit_set(end_map(s), hi - 1);
			s->nalloc++;
			out[n++] = (struct span_piece){s, run, (uint16_t)lo, (uint16_t)hi};
		}
	}
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
			oc->released_bytes += (size_t)nh_popcount64(p[i].units) << unit_shift;
		}
		bit_clear(end_map(s), p[i].own_hi - 1u);
		bit_clear(start_map(s), p[i].own_lo);
		if (--s->nalloc == 0 && s->list != SPAN_LIST_OWNED) {
			unlink_span(oc, s);
			oc->nspans--;
			oc->released_bytes -= (size_t)nh_popcount64(s->released) << unit_shift;
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
	if (!unit_shift)
		return 0;
	struct ocentral *oc = lock_span(h, s, lo, hi);
	if (!oc)
		return 0;
	uint32_t m = 0;
	for (uint32_t bits = s->released; bits; bits &= bits - 1) {
		unsigned j = (unsigned)nh_ctz64(bits);
		uintptr_t a = s->base + ((uintptr_t)j << unit_shift);
		if (a >= lo && a < hi)
			m |= (uint32_t)1 << j;
	}
	size_t b = (size_t)nh_popcount64(m) << unit_shift;
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

size_t ordered_released_bytes(int node) { return ocentral[node][0].released_bytes + ocentral[node][1].released_bytes; }

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

void ordered_stats(int node, size_t *spans, size_t *bytes)
{
	*spans = *bytes = 0;
	for (unsigned b = 0; b < OBANDS; b++) {
		*spans += ocentral[node][b].nspans;
		*bytes += ocentral[node][b].nspans * BAND_PAGES(b) * NH_PAGE_SIZE;
	}
}
