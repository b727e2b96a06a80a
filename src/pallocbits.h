/*
 * pallocbits.h — a chunk's bitmaps (Go's mpallocbits.go): the helpers
 * pagealloc.c and pagescav.c share, and nothing else includes.
 *
 * A chunk of the pageAlloc (pagealloc.h) is 512 pages with two bitmaps of
 * 8 words: alloc (1 = the page belongs to a span, or is being released)
 * and scav (1 = the page is free and its memory was given back to the
 * OS). A page is never both. Everything here runs under pa->lock.
 */
#ifndef NUMAHEAP_PALLOCBITS_H
#define NUMAHEAP_PALLOCBITS_H

#include "pagealloc.h"

/* The chunk holding addr, and addr's page in it. */
static inline size_t chunk_index(const struct page_alloc *pa, uintptr_t addr)
{
	return (addr - pa->base) >> NH_CHUNK_SHIFT;
}

static inline unsigned chunk_page(uintptr_t addr) { return (unsigned)((addr >> NH_PAGE_SHIFT) & (NH_CHUNK_PAGES - 1)); }

/* Set, clear or count bits [i, i+n) of a chunk's bitmap. */
static inline void bits_set(uint64_t *bits, unsigned i, unsigned n)
{
	while (n) {
		unsigned off = i % 64, k = NH_MIN(64 - off, n);
		uint64_t m = (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << off;
		bits[i / 64] |= m;
		i += k;
		n -= k;
	}
}

static inline void bits_clear(uint64_t *bits, unsigned i, unsigned n)
{
	while (n) {
		unsigned off = i % 64, k = NH_MIN(64 - off, n);
		uint64_t m = (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << off;
		bits[i / 64] &= ~m;
		i += k;
		n -= k;
	}
}

static inline unsigned bits_count(const uint64_t *bits, unsigned i, unsigned n)
{
	unsigned c = 0;
	while (n) {
		unsigned off = i % 64, k = NH_MIN(64 - off, n);
		uint64_t m = (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << off;
		c += nh_popcount64(bits[i / 64] & m);
		i += k;
		n -= k;
	}
	return c;
}

/*
 * Mark [addr, addr+npages) allocated in the bitmaps and the summaries; the
 * pages are free. Returns how many of them were scavenged (and are no
 * longer). pagealloc.c.
 */
size_t page_alloc_alloc_range(struct page_alloc *pa, uintptr_t addr, size_t npages);

#endif /* NUMAHEAP_PALLOCBITS_H */
