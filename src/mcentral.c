/*
 * mcentral.c — the spans of one size class on one node.
 *
 * See malloc.c for the overview. An mcentral keeps its spans on two lists:
 * partial (at least one free object) and full (none). P caches refill from
 * it in batches and release to it in batches, so its lock is taken once per
 * batch, not per object.
 *
 * Refill takes objects from the first partial span; when there is none it
 * drops its lock, asks the node's heap for a fresh span and puts it on the
 * partial list. Release checks each object's free mark (gone: its other
 * entry was handed out, a double free) and clears the objects' bits in
 * their spans: a full span becomes partial (at the front, so the next
 * refill finishes it off before touching emptier ones), and an empty span
 * goes back to the heap — unless it is the class's last partial span, which
 * is kept to stop a class that hovers around one span's worth of objects
 * from taking the heap lock on every batch, or the class keeps fewer than
 * NH_CENTRAL_KEEP_BYTES of empty spans (flagged kept, counted in nempty): a
 * program that frees thousands of objects and allocates them again then
 * takes its spans back without a pageAlloc round trip for each (perf/micro
 * lifo k=10000: 20-25% of the pair). The background thread gives kept spans
 * back once the class has taken nothing from here for a pass (gen, bumped
 * by refills), as do malloc_trim and the memory limit; a drain of idle
 * caches keeps none.
 *
 * In front of the spans sits a transfer cache (tcmalloc's): a stack of
 * cache entries that P caches fill when they overflow and empty when they
 * refill, a batch at a time, as plain copies. Objects only reach their
 * spans' bitmaps when it is full, and only come from spans when it is
 * empty, so a producer thread and a consumer thread pass objects to each
 * other without any per-object work. The background thread drains transfer
 * caches that sat unused, so their objects do not pin spans forever.
 *
 * Locking: c->tc_lock (rank TRANSFER) for the transfer cache; c->lock (rank
 * CENTRAL) for the lists, the spans' bitmaps, the kept flags and the
 * counters. They are not held together. The heap lock is never held with
 * either.
 */

#include "os/os.h"

#include "mspan.h"
#include "arena.h"

#include "mheap.h"
#include "mcache.h"

#include "alloc.h"
#include "scavenger.h"
#include "ordered.h"

#include <string.h>

void mcentral_init(struct mcentral *c, unsigned sizeclass, int node)
{
	mutex_init(&c->tc_lock, LOCK_RANK_TRANSFER);
	mutex_init(&c->lock, LOCK_RANK_CENTRAL);
	c->sizeclass = (uint8_t)sizeclass;
	c->node = (uint8_t)node;
	/* 8 batches, at most 256 KiB worth, at least 2 batches. */
	unsigned b = mcache_batch(sizeclass);
	unsigned cap = (256u << 10) / nh_class_to_size[sizeclass];
	c->tc_cap = NH_MAX(2 * b, NH_MIN(8 * b, cap));
	size_t span_bytes = (size_t)nh_class_to_npages[sizeclass] << NH_PAGE_SHIFT;
	c->empty_max = (uint32_t)NH_MAX((size_t)1, NH_CENTRAL_KEEP_BYTES / span_bytes);
}

/* Take up to n entries from the transfer cache. */
static unsigned transfer_take(struct mcentral *c, uintptr_t *out, unsigned n)
{
	if (!c->tc_count)
		return 0;
	mutex_lock(&c->tc_lock);
	unsigned k = NH_MIN(n, c->tc_count);
	memcpy(out, c->tc_slots + c->tc_count - k, (size_t)k * sizeof *out);
	c->tc_count -= k;
	c->tc_gen++;
	mutex_unlock(&c->tc_lock);
	return k;
}

/* Put up to n entries into the transfer cache; how many fit. */
static unsigned transfer_put(struct mcentral *c, const uintptr_t *objs, unsigned n)
{
	if (c->tc_count + n > c->tc_cap)
		return 0; /* racy pre-check; rechecked under the lock */
	mutex_lock(&c->tc_lock);
	if (!c->tc_slots) {
		c->tc_slots = persistentalloc((size_t)c->tc_cap * sizeof(uintptr_t), 64, c->node);
		if (!c->tc_slots) {
			mutex_unlock(&c->tc_lock);
			return 0;
		}
	}
	unsigned k = c->tc_count + n <= c->tc_cap ? n : 0; /* whole batches only */
	memcpy(c->tc_slots + c->tc_count, objs, (size_t)k * sizeof *objs);
	c->tc_count += k;
	c->tc_gen++;
	mutex_unlock(&c->tc_lock);
	return k;
}

size_t mcentral_transfer_objects(struct mcentral *c) { return c->tc_count; }

static void span_reclaim(struct mcentral *c, struct mspan *s, const uintptr_t *objs, unsigned k);

unsigned mcentral_refill(struct mcentral *c, struct mheap *h, uintptr_t *out, unsigned n)
{
	unsigned got = transfer_take(c, out, n);
	/* Ordered classes take fresh objects from ordered spans instead. */
	if (got == n || NH_UNLIKELY(ordered_class(c->sizeclass)))
		return got;
	return got + mcentral_refill_spans(c, h, out + got, n - got);
}

unsigned mcentral_refill_spans(struct mcentral *c, struct mheap *h, uintptr_t *out, unsigned n)
{
	unsigned got = 0;
	mutex_lock(&c->lock);
	c->gen++;
	while (got < n) {
		struct mspan *s = c->partial.first;
		if (!s) {
			mutex_unlock(&c->lock);
			s = mheap_alloc_span(h, nh_class_to_npages[c->sizeclass], c->sizeclass, 0);
			mutex_lock(&c->lock);
			if (!s)
				break;
			c->nspans++;
			s->list = SPAN_LIST_PARTIAL;
			list_push(&c->partial, s);
		}
		if (s->kept) {
			s->kept = 0; /* a kept empty span is in use again */
			c->nempty--;
		}
		unsigned k = mspan_take(s, out + got, n - got);
		if (NH_UNLIKELY(s->released))
			span_reclaim(c, s, out + got, k);
		got += k;
		c->objects_out += k;
		if (s->nalloc == s->nelems) {
			list_remove(&c->partial, s);
			s->list = SPAN_LIST_FULL;
			list_push(&c->full, s);
		}
	}
	mutex_unlock(&c->lock);
	return got;
}

static void release_to_spans(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n, bool keep);

static unsigned unit_shift; /* log2 of mcentral_unit_bytes(); set by its first call */

/* An empty span leaves list l of the class for the heap (which the caller
 * gives it to once c->lock is dropped; its released bits go with it, for
 * mheap_free_span). */
static void unlink_from(struct mcentral *c, struct span_list_head *l, struct mspan *s)
{
	list_remove(l, s);
	s->list = SPAN_LIST_NONE;
	c->nspans--;
	if (s->released)
		c->released_bytes -= (size_t)nh_popcount64(s->released) << unit_shift;
}

static void unlink_empty(struct mcentral *c, struct mspan *s) { unlink_from(c, &c->partial, s); }

void evac_unlink_empty(struct mcentral *c, struct mspan *s)
{
	if (c->evac_cursor == s)
		c->evac_cursor = s->next;
	unlink_from(c, &c->evac, s);
	atomic_store_explicit(&s->evac, 0, memory_order_relaxed);
	__atomic_fetch_add(&nh_scav.evacuated, 1, __ATOMIC_RELAXED);
}

/* Give the n empty spans collected under c->lock to the heap. Called with
 * c->lock held; drops it (the heap lock is never taken under it), and takes
 * it again if relock. */
static void free_empty_spans(struct mcentral *c, struct mheap *h, struct mspan **empty, unsigned *n, bool relock)
{
	mutex_unlock(&c->lock);
	for (unsigned j = 0; j < *n; j++)
		mheap_free_span(h, empty[j]);
	*n = 0;
	if (relock)
		mutex_lock(&c->lock);
}

/* Objects going back to their spans: those of ordered spans (ordered.c)
 * to them, the others to the class's, a piece of the batch at a time. */
static void release_home(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n, bool keep)
{
	if (NH_LIKELY(!ordered_class(c->sizeclass))) {
		release_to_spans(c, h, objs, n, keep);
		return;
	}
	uintptr_t rest[128];
	while (n) {
		unsigned m = NH_MIN(n, 128u), k;
		if ((k = ordered_release(h, c->sizeclass, objs, m, rest)) > 0)
			release_to_spans(c, h, rest, k, keep);
		objs += m;
		n -= m;
	}
}

void mcentral_release(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n)
{
	/* Objects of idle caches (the background thread's drain) go straight
	 * to their spans: in the transfer cache they would wait for its next
	 * round, idle as they are, before the release could see them. */
	if (!nh_free_keeps_idle && transfer_put(c, objs, n) == n)
		return;
	/* A drain of idle caches (the background thread) keeps no empty span. */
	release_home(c, h, objs, n, !nh_free_keeps_idle);
}

static void release_to_spans(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n, bool keep)
{
	struct mspan *empty[64];
	unsigned nempty = 0;
	struct mspan *s = NULL;
	uintptr_t lo = 0, hi = 0; /* the last span's range: batches often share spans */
	mutex_lock(&c->lock);
	c->puts++;
	for (unsigned i = 0; i < n; i++) {
		uintptr_t p = objs[i] & ~NH_ENTRY_FRESH;
		/* A freed object keeps its mark until it is handed out: gone,
		 * its other entry was handed out first (fastpath.h,
		 * entry_to_object), or it was written after free. */
		if (!(objs[i] & NH_ENTRY_FRESH) && NH_UNLIKELY(!has_free_mark(p)))
			nh_report_bad_pointer("free", (void *)p,
					      "double free (or written after free), found when its cache gave it back");
		if (p - lo >= hi - lo) {
			s = span_of(p);
			if (NH_UNLIKELY(!s || s->sizeclass != c->sizeclass))
				nh_report_bad_pointer("free", (void *)p,
						      "object's span changed while cached (heap corruption)");
			lo = s->base;
			hi = s->base + ((uintptr_t)s->npages << NH_PAGE_SHIFT);
		}
		mspan_put(s, p, objs[i] & NH_ENTRY_FRESH);
		c->objects_out--;
		if (s->list == SPAN_LIST_EVAC) {
			c->evac_objects -= c->evac_objects != 0;
			if (s->nalloc == 0) {
				evac_unlink_empty(c, s);
				empty[nempty++] = s;
				lo = hi = 0;
				if (nempty == 64)
					free_empty_spans(c, h, empty, &nempty, true);
			}
			continue;
		}
		if (s->list == SPAN_LIST_FULL) {
			list_remove(&c->full, s);
			s->list = SPAN_LIST_PARTIAL;
			list_push(&c->partial, s);
		}
		if (s->nalloc == 0 && c->partial.count > 1) {
			if (keep && c->nempty < c->empty_max) {
				s->kept = 1; /* for the next refills */
				c->nempty++;
				continue;
			}
			unlink_empty(c, s);
			empty[nempty++] = s;
			lo = hi = 0; /* s goes back to the heap */
			if (nempty == 64)
				free_empty_spans(c, h, empty, &nempty, true);
		}
	}
	free_empty_spans(c, h, empty, &nempty, false);
}

/* Give the kept empty spans back to the heap. */
static void give_back_kept(struct mcentral *c, struct mheap *h)
{
	for (;;) {
		struct mspan *empty[64];
		unsigned nempty = 0;
		mutex_lock(&c->lock);
		for (struct mspan *s = c->partial.first, *next; s && nempty < 64; s = next) {
			next = s->next;
			if (!s->kept)
				continue;
			s->kept = 0;
			c->nempty--;
			unlink_empty(c, s);
			empty[nempty++] = s;
		}
		mutex_unlock(&c->lock);
		for (unsigned j = 0; j < nempty; j++)
			mheap_free_span(h, empty[j]);
		if (nempty < 64)
			return;
	}
}

size_t mcentral_drain(struct mheap *h, bool idle_only)
{
	size_t moved = 0;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		struct mcentral *c = &h->central[k];
		/* Racy hints, both; the locks guard the work. */
		bool central_idle = c->gen == c->idle_gen;
		if (c->tc_count && (!idle_only || c->tc_gen == c->tc_idle_gen)) {
			uintptr_t buf[256];
			unsigned n;
			while ((n = transfer_take(c, buf, 256)) > 0) {
				release_home(c, h, buf, n, false);
				moved += n;
			}
		}
		c->tc_idle_gen = c->tc_gen;
		if (c->nempty && (!idle_only || central_idle))
			give_back_kept(c, h);
		c->idle_gen = c->gen;
	}
	return moved;
}

/* ---- the in-span release ------------------------------------------------------ */

/*
 * A span of a multi-object class whose objects are mostly free still holds
 * all of its pages: its live objects pin the span, and the pageAlloc sees
 * it as in use. Its OS pages that only free slots cover (or none) can go
 * back to the OS all the same, as glibc gives back the inside of a large
 * free chunk: nothing reads a free slot (a free object's mark lives in it
 * only while a cache holds the object, and a cached object is allocated in
 * the bitmap), and refill hands a slot out fresh, so the program's first
 * write faults in a zero page. The span remembers which OS pages went
 * (mspan.released): refill clears the bits of the pages the objects it
 * takes cover (span_reclaim; the program is about to write them), and when
 * the span goes back to the heap its wholly released pages become
 * scavenged pages of the pageAlloc (mheap_free_span). calloc clears small
 * objects whatever their pages held, so it does not care.
 *
 * Released while the span stays in use: its slots in the piece are marked
 * allocated under the central lock (mcentral_take_free_pages), the lock is
 * dropped for the system call, and they are cleared again under it
 * (mcentral_put_free_pages), as the page scavenger allocates a run in the
 * pageAlloc while it releases it. Pieces are maximal runs of such OS pages
 * in a span, so two pieces of one span never share a slot (a slot covering
 * parts of two runs would cover all of the page between them, which would
 * then be in the run too).
 *
 * Invariant (under the lock): a bit of s->released is set only while
 * every slot overlapping that OS page is free in the bitmap, or held by
 * a piece being put back.
 */

/* The first object of a small span: after the tail waste, which sits at
 * the span's start (mspan.h). */
static inline uintptr_t span_first_obj(const struct mspan *s) { return mspan_first(s); }

size_t mcentral_unit_bytes(void)
{
	if (NH_UNLIKELY(!unit_shift)) {
		size_t ps = os_page_size(), most = 0;
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
			most = NH_MAX(most, (size_t)nh_class_to_npages[k] << NH_PAGE_SHIFT);
		/* A span's OS pages must fit the 32 bits of s->released. */
		if (ps < 4096 || (ps & (ps - 1)) || most / ps > 32)
			return 0;
		unit_shift = (unsigned)nh_ctz64(ps);
	}
	return (size_t)1 << unit_shift;
}

/* Set, clear or test bits [lo, hi) of a span's bitmap. */
static void obj_bits(uint64_t *bits, unsigned lo, unsigned hi, bool set)
{
	while (lo < hi) {
		unsigned off = lo % 64, k = NH_MIN(64 - off, hi - lo);
		uint64_t m = (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << off;
		if (set)
			bits[lo / 64] |= m;
		else
			bits[lo / 64] &= ~m;
		lo += k;
	}
}

static bool obj_bits_any(const uint64_t *bits, unsigned lo, unsigned hi)
{
	while (lo < hi) {
		unsigned off = lo % 64, k = NH_MIN(64 - off, hi - lo);
		uint64_t m = (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << off;
		if (bits[lo / 64] & m)
			return true;
		lo += k;
	}
	return false;
}

/* The slots [*lo, *hi) that overlap OS page j of span s. */
static void unit_objects(const struct mspan *s, unsigned j, unsigned *lo, unsigned *hi)
{
	uintptr_t off0 = span_first_obj(s) - s->base;
	uintptr_t us = (uintptr_t)j << unit_shift, ue = us + ((uintptr_t)1 << unit_shift);
	uintptr_t l = us > off0 ? (us - off0) / s->elemsize : 0;
	uintptr_t h = ue > off0 ? (ue - off0 + s->elemsize - 1) / s->elemsize : 0;
	*lo = (unsigned)NH_MIN(l, (uintptr_t)s->nelems);
	*hi = (unsigned)NH_MIN(h, (uintptr_t)s->nelems);
}

/* Racy hints (no lock; tests/hardening/tsan.supp names them). */
bool mcentral_release_pending(const struct mcentral *c) { return c->puts != c->scanned_puts; }
uint64_t mcentral_rescan_at(const struct mcentral *c) { return c->rescan_at; }
size_t mcentral_released_bytes(const struct mcentral *c) { return c->released_bytes; }
uint64_t mcentral_reclaimed_bytes(const struct mcentral *c) { return c->reclaimed_bytes; }

/* Objects just taken from s by a refill: the OS pages they cover are the
 * program's again (it writes them, and they fault in). */
static void span_reclaim(struct mcentral *c, struct mspan *s, const uintptr_t *objs, unsigned k)
{
	for (unsigned i = 0; i < k && s->released; i++) {
		uintptr_t off = (objs[i] & ~NH_ENTRY_FRESH) - s->base;
		unsigned j0 = (unsigned)(off >> unit_shift);
		unsigned j1 = (unsigned)((off + s->elemsize - 1) >> unit_shift);
		uint32_t m = (uint32_t)((((uint64_t)2 << j1) - 1) & ~(((uint64_t)1 << j0) - 1));
		uint32_t hit = s->released & m;
		if (hit) {
			size_t b = (size_t)nh_popcount64(hit) << unit_shift;
			s->released &= ~hit;
			c->released_bytes -= b;
			c->reclaimed_bytes += b;
		}
	}
}

/* Is OS page j of s releasable: not released yet, and no slot over it allocated? */
static bool unit_free(const struct mspan *s, unsigned j)
{
	if (s->released >> j & 1)
		return false;
	unsigned lo, hi;
	unit_objects(s, j, &lo, &hi);
	return !obj_bits_any(s->alloc_bits, lo, hi);
}

/* The pieces of span s, up to max, their slots taken. Central lock held. */
static unsigned span_take_pieces(struct mspan *s, struct span_piece *out, unsigned max)
{
	unsigned nunits = (unsigned)(((size_t)s->npages << NH_PAGE_SHIFT) >> unit_shift);
	unsigned got = 0, j = 0;
	while (j < nunits && got < max) {
		if (!unit_free(s, j)) {
			j++;
			continue;
		}
		unsigned j0 = j;
		while (j < nunits && unit_free(s, j))
			j++;
		unsigned lo, hi, lo2, hi2;
		unit_objects(s, j0, &lo, &hi);
		unit_objects(s, j - 1, &lo2, &hi2);
		if (hi2 <= lo)
			continue; /* no slot there at all (cannot happen: waste < OS page) */
		obj_bits(s->alloc_bits, lo, hi2, true);
		s->nalloc = (uint16_t)(s->nalloc + (hi2 - lo));
		uint32_t units = (uint32_t)((((uint64_t)1 << (j - j0)) - 1) << j0);
		out[got++] = (struct span_piece){s, units, (uint16_t)lo, (uint16_t)hi2};
	}
	return got;
}

unsigned mcentral_take_free_pages(struct mcentral *c, struct mheap *h, uint64_t idle_before, uint64_t *busy,
				  struct span_piece *out, unsigned max)
{
	if (!mcentral_unit_bytes())
		return 0;
	/* Nothing went back to the spans since the last full scan, and no
	 * chunk it skipped as busy has turned idle (idle_before 0, every
	 * chunk: none was skipped). The memory limit's scavenges come here
	 * on every slow path over the limit. */
	if (!mcentral_release_pending(c) && (idle_before ? idle_before : UINT64_MAX) <= mcentral_rescan_at(c))
		return 0;
	unsigned n = 0;
	bool skipped = false;
	mutex_lock(&c->lock);
	for (struct mspan *s = c->partial.first; s && n < max; s = s->next) {
		if (s->kept || s->nalloc == s->nelems)
			continue;
		uint64_t t;
		if (idle_before && !page_alloc_chunk_idle(&h->pages, s->base, idle_before, &t)) {
			skipped = true;
			if (!*busy || t < *busy)
				*busy = t;
			continue;
		}
		n += span_take_pieces(s, out + n, max - n);
	}
	if (n < max) {
		c->scanned_puts = c->puts;
		c->rescan_at = skipped ? *busy : UINT64_MAX;
	}
	mutex_unlock(&c->lock);
	return n;
}

void span_piece_range(const struct span_piece *p, uintptr_t *addr, size_t *len)
{
	unsigned j0 = (unsigned)nh_ctz64(p->units);
	*addr = p->s->base + ((uintptr_t)j0 << unit_shift);
	*len = (size_t)nh_popcount64(p->units) << unit_shift;
}

/* The slots of piece p whose mark word (their first) was on a page that
 * just went back to the OS: zero now, so no mark (mspan.c). A piece's
 * units are one run, so these slots are one run too: those starting in it. */
static void unmark_released(struct mspan *s, const struct span_piece *p)
{
	uintptr_t off0 = span_first_obj(s) - s->base, size = s->elemsize;
	unsigned j0 = (unsigned)nh_ctz64(p->units), j1 = j0 + (unsigned)nh_popcount64(p->units);
	uintptr_t us = (uintptr_t)j0 << unit_shift, ue = (uintptr_t)j1 << unit_shift;
	uintptr_t lo = us > off0 ? (us - off0 + size - 1) / size : 0;
	uintptr_t hi = ue > off0 ? (ue - off0 + size - 1) / size : 0;
	lo = NH_MAX(lo, (uintptr_t)p->own_lo);
	hi = NH_MIN(hi, (uintptr_t)p->own_hi);
	if (lo < hi)
		obj_bits(mspan_unmarked(s), (unsigned)lo, (unsigned)hi, true);
}

void mcentral_put_free_pages(struct mcentral *c, struct mheap *h, const struct span_piece *p, unsigned n,
			     const int *res)
{
	struct mspan *empty[64];
	unsigned nempty = 0;
	mutex_lock(&c->lock);
	for (unsigned i = 0; i < n; i++) {
		struct mspan *s = p[i].s;
		if (res[i] == 0) {
			s->released |= p[i].units;
			c->released_bytes += (size_t)nh_popcount64(p[i].units) << unit_shift;
			unmark_released(s, &p[i]);
		}
		obj_bits(s->alloc_bits, p[i].own_lo, p[i].own_hi, false);
		s->nalloc = (uint16_t)(s->nalloc - (p[i].own_hi - p[i].own_lo));
		if (p[i].own_lo / 64 < s->freeindex)
			s->freeindex = (uint16_t)(p[i].own_lo / 64);
		if (s->list == SPAN_LIST_EVAC) {
			if (s->nalloc == 0) {
				evac_unlink_empty(c, s);
				empty[nempty++] = s;
				if (nempty == 64)
					free_empty_spans(c, h, empty, &nempty, true);
			}
			continue;
		}
		if (s->list == SPAN_LIST_FULL) {
			list_remove(&c->full, s);
			s->list = SPAN_LIST_PARTIAL;
			list_push(&c->partial, s);
		}
		if (s->nalloc == 0 && !s->kept && c->partial.count > 1) {
			unlink_empty(c, s);
			empty[nempty++] = s;
			if (nempty == 64)
				free_empty_spans(c, h, empty, &nempty, true);
		}
	}
	free_empty_spans(c, h, empty, &nempty, false);
}

void mcentral_fork_lock(bool lock)
{
	for_each_heap(h) {
		for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
			if (lock) {
				mutex_lock(&h->central[c].tc_lock);
				mutex_lock(&h->central[c].lock);
			} else {
				mutex_unlock(&h->central[c].lock);
				mutex_unlock(&h->central[c].tc_lock);
			}
		}
	}
}

void mcentral_fork_child(void)
{
	for_each_heap(h)
		for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
			mutex_reset(&h->central[c].tc_lock);
			mutex_reset(&h->central[c].lock);
		}
}
