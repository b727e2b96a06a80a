/*
 * mspan.c — spans: runs of pages cut into objects of one size class.
 *
 * See malloc.c for the overview. A small-object span keeps one allocation
 * bit per object (1 = allocated: with the program, or in some P's cache).
 * Caches take objects from a span in batches: mspan_take scans the inverted
 * bitmap a word at a time and peels free objects off with count-trailing-
 * zeros, Go's allocCache trick applied to a whole batch at once; freeindex
 * remembers the first word that may still have a free bit. Objects come
 * back one by one (mspan_put, inline in mspan.h for mcentral's release
 * loop), which also catches a double free that slipped past the cache: its
 * bit is already clear.
 *
 * A second bitmap says which free slots carry no free mark (unmarked):
 * mspan_take hands those out as fresh entries and the others as checked
 * ones, so a slot freed twice, the second time after its first free had
 * gone back to the span, is caught when either of its two lives comes out
 * of a cache (entry_to_object): the one handed out first cleared the mark.
 *
 * Bits past nelems in the last word are set at init, so a scan never
 * yields them; words past the last are not there (span structs are only
 * as long as their class's bitmap, see mheap.c).
 * Locking: the span's mcentral lock for every function here.
 */

#include "mspan.h"

#include "mcache.h"

#include <string.h>

void mspan_init_small(struct mspan *s, unsigned sizeclass)
{
	s->sizeclass = (uint8_t)sizeclass;
	s->elemsize = nh_class_to_size[sizeclass];
	s->divmul = nh_class_to_divmul[sizeclass];
	s->nelems = (uint16_t)((s->npages << NH_PAGE_SHIFT) / s->elemsize);
	s->tail = (uint16_t)((s->npages << NH_PAGE_SHIFT) - (uintptr_t)s->nelems * s->elemsize);
	s->nalloc = 0;
	s->freeindex = 0;
	s->kept = 0;
	atomic_store_explicit(&s->evac, 0, memory_order_relaxed);
	s->evac_seen = 0;
	s->evac_fell = 0;
	s->evac_rest = 0;
	unsigned n = s->nelems, nwords = mspan_words(s);
	memset(s->alloc_bits, 0, nwords * sizeof(uint64_t));
	if (n % 64)
		s->alloc_bits[n / 64] = ~(uint64_t)0 << (n % 64);
	/* No slot has been handed out: none carries a mark. */
	memset(mspan_unmarked(s), 0xff, nwords * sizeof(uint64_t));
}

unsigned mspan_take(struct mspan *s, uintptr_t *out, unsigned n)
{
	unsigned got = 0, nwords = mspan_words(s);
	unsigned w = s->freeindex;
	uintptr_t size = s->elemsize, first = mspan_first(s);
	uint64_t *unmarked = mspan_unmarked(s);
	for (; w < nwords && got < n; w++) {
		uint64_t freebits = ~s->alloc_bits[w];
		if (!freebits)
			continue;
		uint64_t taken = 0, um = unmarked[w];
		while (freebits && got < n) {
			unsigned i = nh_ctz64(freebits);
			freebits &= freebits - 1;
			taken |= (uint64_t)1 << i;
			out[got++] = (first + (uintptr_t)(w * 64 + i) * size) | ((um >> i) & NH_ENTRY_FRESH);
		}
		s->alloc_bits[w] |= taken;
		unmarked[w] = um & ~taken;
		if (freebits)
			break; /* this word still has free objects */
	}
	s->freeindex = (uint16_t)w;
	s->nalloc = (uint16_t)(s->nalloc + got);
	return got;
}

