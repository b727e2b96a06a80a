/*
 * mcache.c — a P's cache of free objects: the slow paths.
 *
 * See malloc.c for the overview and internal.h for the layout. The fast
 * paths (pop on malloc, push on free) live in malloc.c; this file refills
 * an empty class from mcentral, flushes a full one back, and sizes the
 * stacks.
 *
 * Sizing. Each class moves objects in batches of batch[c] (32 KiB worth,
 * 2 to 128 objects): one central lock round trip per batch. Its stack has
 * room for max[c] = 8 batches (at most 1024 objects), fixed at start-up, but
 * its capacity (end - begin) starts at one batch and grows by a batch on
 * each overflow while the P's total capacity, in bytes, stays within
 * NUMAHEAP_CACHE_BYTES. A class that keeps overflowing thus earns room, a
 * class that is never used costs nothing, and the cache holds at most the
 * budget (plus one batch per class).
 *
 * Flushing returns the oldest batch (the stack's bottom) and keeps the
 * recently freed objects on top: they are the ones still in the CPU's cache.
 *
 * Locking: none. A P's cache is touched only by its owner.
 */
#include "internal.h"

#include <string.h>

static uint16_t batch[NH_NUM_CLASSES];
static uint16_t maxcap[NH_NUM_CLASSES];
static uint16_t slot_begin[NH_NUM_CLASSES];

struct mcache nh_empty_mcache; /* begin == cur == end == 0 for every class */

void mcache_layout_init(void)
{
	unsigned next = (unsigned)NH_MCACHE_HDR_WORDS;
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		unsigned b = 32768 / nh_class_to_size[c];
		b = NH_MAX(2u, NH_MIN(128u, b));
		batch[c] = (uint16_t)b;
		maxcap[c] = (uint16_t)NH_MIN(8 * b, 1024u);
		slot_begin[c] = (uint16_t)next;
		next += maxcap[c];
	}
	if (next > NH_MCACHE_BYTES / 8)
		nh_fatal("mcache layout needs %u slots, have %zu", next, NH_MCACHE_BYTES / 8);
}

void mcache_init(struct mcache *c, int node, uint32_t id)
{
	memset(c, 0, sizeof *c);
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		struct mcache_class *m = &c->cls[k];
		m->begin = m->cur = slot_begin[k];
		m->max = maxcap[k];
		m->end = (uint16_t)(m->begin + batch[k]);
	}
	c->node = node;
	c->id = id;
	c->budget = (size_t)NH_OPTION(CACHE_BYTES);
	c->cap_bytes = 0;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
		c->cap_bytes += (size_t)batch[k] * nh_class_to_size[k];
}

unsigned mcache_batch(unsigned cls) { return batch[cls]; }

void *mcache_refill(struct mcache *c, unsigned cls)
{
	struct mcache_class *m = &c->cls[cls];
	struct mheap *h = heap_of_node(c->node);
	uintptr_t *slots = mcache_slots(c);
	unsigned room = (unsigned)(m->end - m->cur);
	unsigned want = NH_MIN((unsigned)batch[cls], room);
	if (want == 0)
		want = 1;
	unsigned got = mcentral_refill(&h->central[cls], h, slots + m->cur, want);
	c->stats[cls].refills++;
	if (got == 0)
		return NULL;
	m->cur = (uint16_t)(m->cur + got - 1);
	uintptr_t e = slots[m->cur];
	return (void *)(e & ~NH_ENTRY_FRESH);
}

/* Give the n entries at slots[from..from+n) back to mcentral. */
static void release_entries(struct mcache *c, unsigned cls, unsigned from, unsigned n)
{
	uintptr_t *slots = mcache_slots(c);
	uintptr_t objs[1024];
	for (unsigned i = 0; i < n; i++)
		objs[i] = slots[from + i] & ~NH_ENTRY_FRESH;
	struct mheap *h = heap_of_node(c->node);
	mcentral_release(&h->central[cls], h, objs, n);
}

void mcache_flush_push(struct mcache *c, unsigned cls, uintptr_t p)
{
	struct mcache_class *m = &c->cls[cls];
	size_t step = (size_t)batch[cls] * nh_class_to_size[cls];
	if (m->end - m->begin + batch[cls] <= m->max && c->cap_bytes + step <= c->budget) {
		/* The class overflows: let it grow by a batch. */
		m->end = (uint16_t)(m->end + batch[cls]);
		c->cap_bytes += step;
	} else {
		unsigned n = NH_MIN((unsigned)batch[cls], (unsigned)(m->cur - m->begin));
		release_entries(c, cls, m->begin, n);
		uintptr_t *slots = mcache_slots(c);
		memmove(slots + m->begin, slots + m->begin + n, (size_t)(m->cur - m->begin - n) * 8);
		m->cur = (uint16_t)(m->cur - n);
		c->stats[cls].flushes++;
	}
	mcache_slots(c)[m->cur++] = p;
}

void mcache_drain(struct mcache *c)
{
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		struct mcache_class *m = &c->cls[k];
		unsigned n = (unsigned)(m->cur - m->begin);
		if (n) {
			release_entries(c, k, m->begin, n);
			m->cur = m->begin;
		}
	}
}

size_t mcache_cached_objects(const struct mcache *c, unsigned cls)
{
	const struct mcache_class *m = &c->cls[cls];
	return (size_t)(uint16_t)(m->cur - m->begin);
}
