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
 * partial list. Release clears the objects' bits in their spans: a full span
 * becomes partial (at the front, so the next refill finishes it off before
 * touching emptier ones), and an empty span goes back to the heap — unless
 * it is the class's last partial span, which is kept to stop a class that
 * hovers around one span's worth of objects from taking the heap lock on
 * every batch.
 *
 * Locking: c->lock (rank CENTRAL) for the lists, the spans' bitmaps and the
 * counters. The heap lock is never held at the same time.
 */
#include "internal.h"

void mcentral_init(struct mcentral *c, unsigned sizeclass, int node)
{
	mutex_init(&c->lock, LOCK_RANK_CENTRAL);
	c->sizeclass = (uint8_t)sizeclass;
	c->node = (uint8_t)node;
}

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
	unsigned got = 0;
	mutex_lock(&c->lock);
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

void mcentral_release(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n)
{
	struct mspan *empty[64];
	unsigned nempty = 0;
	mutex_lock(&c->lock);
	for (unsigned i = 0; i < n; i++) {
		uintptr_t p = objs[i];
		struct mspan *s = span_of(p);
		if (NH_UNLIKELY(!s || s->sizeclass != c->sizeclass))
			nh_report_bad_pointer("free", (void *)p, "object's span changed while cached (heap corruption)");
		mspan_put(s, p);
		c->objects_out--;
		if (s->list == SPAN_LIST_FULL) {
			list_remove(&c->full, s);
			s->list = SPAN_LIST_PARTIAL;
			list_push(&c->partial, s);
		}
		if (s->nalloc == 0 && c->partial.count > 1) {
			list_remove(&c->partial, s);
			s->list = SPAN_LIST_NONE;
			c->nspans--;
			empty[nempty++] = s;
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

void mcentral_fork_lock(bool lock)
{
	for (int n = 0; n < NH_MAX_NODES; n++) {
		struct mheap *h = nh_heaps[n];
		if (!h)
			continue;
		for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
			if (lock)
				mutex_lock(&h->central[c].lock);
			else
				mutex_unlock(&h->central[c].lock);
		}
	}
}

void mcentral_fork_child(void)
{
	for (int n = 0; n < NH_MAX_NODES; n++)
		if (nh_heaps[n])
			for (unsigned c = 1; c < NH_NUM_CLASSES; c++)
				mutex_reset(&nh_heaps[n]->central[c].lock);
}
