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
 * their spans: a full span
 * becomes partial (at the front, so the next refill finishes it off before
 * touching emptier ones), and an empty span goes back to the heap — unless
 * it is the class's last partial span, which is kept to stop a class that
 * hovers around one span's worth of objects from taking the heap lock on
 * every batch, or the class keeps fewer than NH_CENTRAL_KEEP_BYTES of empty
 * spans (flagged kept, counted in nempty): a program that frees thousands
 * of objects and allocates them again then takes its spans back without a
 * pageAlloc round trip for each (perf/micro lifo k=10000: 20-25% of the
 * pair). The background thread gives kept spans back once the class has
 * taken nothing from here for a pass (gen, bumped by refills), as do
 * malloc_trim and the memory limit; a drain of idle caches keeps none.
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
 * counters. They are not
 * held together. The heap lock is never held with either.
 */

#include "mspan.h"
#include "arena.h"

#include "mheap.h"
#include "mcache.h"

#include "alloc.h"

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

static void list_push(struct span_list_head *l, struct mspan *s)
{
	s->prev = NULL;
	s->next = l->first;
	if (l->first)
		l->first->prev = s;
	l->first = s;
	l->count++;
}

static void list_remove(struct span_list_head *l, struct mspan *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	l->count--;
}

unsigned mcentral_refill(struct mcentral *c, struct mheap *h, uintptr_t *out, unsigned n)
{
	unsigned got = transfer_take(c, out, n);
	if (got == n)
		return got;
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

/* An empty span leaves the class's partial list for the heap (which the
 * caller gives it to once c->lock is dropped). */
static void unlink_empty(struct mcentral *c, struct mspan *s)
{
	list_remove(&c->partial, s);
	s->list = SPAN_LIST_NONE;
	c->nspans--;
}

void mcentral_release(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n)
{
	if (transfer_put(c, objs, n) == n)
		return;
	/* A drain of idle caches (the background thread) keeps no empty span. */
	release_to_spans(c, h, objs, n, !nh_free_keeps_idle);
}

static void release_to_spans(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n, bool keep)
{
	struct mspan *empty[64];
	unsigned nempty = 0;
	struct mspan *s = NULL;
	uintptr_t lo = 0, hi = 0; /* the last span's range: batches often share spans */
	mutex_lock(&c->lock);
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
		mspan_put(s, p);
		c->objects_out--;
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
			if (nempty == 64) {
				mutex_unlock(&c->lock);
				for (unsigned j = 0; j < nempty; j++)
					mheap_free_span(h, empty[j]);
				nempty = 0;
				mutex_lock(&c->lock);
			}
		}
	}
	mutex_unlock(&c->lock);
	for (unsigned j = 0; j < nempty; j++)
		mheap_free_span(h, empty[j]);
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
				release_to_spans(c, h, buf, n, false);
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
