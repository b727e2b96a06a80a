/*
 * pagealloc.c — pageAlloc: which pages of a node's address slice are free.
 *
 * See malloc.c for the overview; this is Go's mpagealloc.go, carried over.
 *
 * The slice (2 TiB) is cut into chunks of 512 pages (4 MiB). Each chunk that
 * has ever been grown has two bitmaps: alloc (1 = the page belongs to a
 * span) and scav (1 = the page is free and its memory was given back to the
 * OS). Above the chunks sits a radix tree of summaries. A summary packs
 * three numbers about a region of pages:
 *
 *   start  free pages at the region's beginning
 *   max    the longest run of free pages anywhere in it
 *   end    free pages at the region's end
 *
 * The leaf level has one summary per chunk; each level above has one
 * summary per 8 entries of the level below (8 x 8 bytes = one cache line),
 * and the root has 2^7 entries of 2^21 pages each. Example, 3 chunks:
 *
 *   chunk 0: ....#####.....      start=4 max=5 end=5   (. free, # used)
 *   chunk 1: ..............      start=max=end=all (completely free)
 *   chunk 2: #.............
 *   parent:  start=4, end=chunk 2's end, max=max(5, 5 + 512 + 0, ...)
 *
 * A parent's max also counts runs that straddle children: the end of one
 * child plus the starts of the following ones. Finding n free pages walks
 * down from the root, at each level taking the first entry whose max fits
 * n, or stopping early where a run straddles consecutive entries. That is
 * address-ordered first fit in O(levels) cache lines, and it packs the heap
 * towards low addresses, which keeps huge pages dense.
 *
 * Summaries of never-grown regions are zero ("no free pages"), so the tree
 * is reserved for the whole slice (about 5 MB of address space) and only
 * the parts that cover grown memory are ever touched.
 *
 * search_addr is a lower bound on the lowest free page: searches start there,
 * frees below it lower it. Everything here runs under pa->lock (the node's
 * heap lock); the functions assume it is held.
 *
 * This file is the tree, growth, first-fit allocation and freeing, and the
 * chunks' summaries (Go's mpagealloc.go and the summarising half of
 * mpallocbits.go). The searches of the scavenged bitmaps — which free runs
 * the scavenger releases, which released pages pre-faulting takes back —
 * are pagescav.c's; the bitmap helpers both use are pallocbits.h's.
 */

#include "os/os.h"

#include "report.h"
#include "fixalloc.h"
#include "pagealloc.h"
#include "pallocbits.h"

#include <errno.h>
#include <string.h>

#define SUM_MASK ((uint64_t)(NH_SUM_MAX - 1))

__thread bool nh_free_keeps_idle;

palloc_sum palloc_sum_pack(unsigned start, unsigned max, unsigned end)
{
	if (max == NH_SUM_MAX)
		return (palloc_sum)1 << 63;
	return (uint64_t)start | (uint64_t)max << NH_SUM_LOG_MAX | (uint64_t)end << (2 * NH_SUM_LOG_MAX);
}

unsigned palloc_sum_start(palloc_sum s)
{
	return s >> 63 ? (unsigned)NH_SUM_MAX : (unsigned)(s & SUM_MASK);
}

unsigned palloc_sum_max(palloc_sum s)
{
	return s >> 63 ? (unsigned)NH_SUM_MAX : (unsigned)((s >> NH_SUM_LOG_MAX) & SUM_MASK);
}

unsigned palloc_sum_end(palloc_sum s)
{
	return s >> 63 ? (unsigned)NH_SUM_MAX : (unsigned)((s >> (2 * NH_SUM_LOG_MAX)) & SUM_MASK);
}

/* log2 of the pages one entry of level l covers. */
static inline unsigned level_log_pages(unsigned l)
{
	return 9 + NH_SUMMARY_LEVEL_BITS * (NH_SUMMARY_LEVELS - 1 - l);
}

static inline unsigned level_bits(const struct page_alloc *pa, unsigned l)
{
	return l == 0 ? pa->l0bits : NH_SUMMARY_LEVEL_BITS;
}

static inline size_t level_index(const struct page_alloc *pa, unsigned l, uintptr_t addr)
{
	return (addr - pa->base) >> (NH_PAGE_SHIFT + level_log_pages(l));
}

static inline uintptr_t level_addr(const struct page_alloc *pa, unsigned l, size_t i)
{
	return pa->base + ((uintptr_t)i << (NH_PAGE_SHIFT + level_log_pages(l)));
}

int page_alloc_init(struct page_alloc *pa, uintptr_t base, unsigned shift, int node, struct mutex *lock)
{
	memset(pa, 0, sizeof *pa);
	if (shift < NH_CHUNK_SHIFT + (NH_SUMMARY_LEVELS - 1) * NH_SUMMARY_LEVEL_BITS ||
	    NH_SUMMARY_L0_BITS(shift) > NH_SUM_LOG_MAX)
		return -EINVAL;
	pa->base = base;
	pa->shift = shift;
	pa->l0bits = NH_SUMMARY_L0_BITS(shift);
	pa->node = node;
	pa->lock = lock;
	pa->nchunks = (size_t)1 << (shift - NH_CHUNK_SHIFT);
	for (unsigned l = 0; l < NH_SUMMARY_LEVELS; l++) {
		size_t n = (size_t)1 << (pa->l0bits + NH_SUMMARY_LEVEL_BITS * l);
		pa->summary[l] = os_reserve_zero(n * sizeof(palloc_sum), 0);
		if (!pa->summary[l])
			return -ENOMEM;
	}
	pa->chunks = os_reserve_zero(pa->nchunks * sizeof(struct palloc_chunk *), 0);
	if (!pa->chunks)
		return -ENOMEM;
	pa->search_addr = base + ((uintptr_t)1 << shift); /* nothing free yet */
	return 0;
}

/* ---- chunk bitmaps ---------------------------------------------------- */

/* Longest run of zero bits strictly inside x (x != 0). */
static unsigned longest_zero_run(uint64_t x)
{
	uint64_t y = ~x;
	unsigned n = 0;
	while (y) {
		y &= y << 1;
		n++;
	}
	return n;
}

static palloc_sum chunk_summarize(const struct palloc_chunk *c)
{
	unsigned start = 0, end = 0, max = 0, run = 0;
	for (int w = 0; w < NH_CHUNK_WORDS; w++) {
		uint64_t x = c->alloc[w];
		if (x != 0) {
			start += nh_ctz64(x);
			break;
		}
		start += 64;
	}
	if (start == NH_CHUNK_PAGES)
		return palloc_sum_pack(NH_CHUNK_PAGES, NH_CHUNK_PAGES, NH_CHUNK_PAGES);
	for (int w = NH_CHUNK_WORDS - 1; w >= 0; w--) {
		uint64_t x = c->alloc[w];
		if (x != 0) {
			end += nh_clz64(x);
			break;
		}
		end += 64;
	}
	for (int w = 0; w < NH_CHUNK_WORDS; w++) {
		uint64_t x = c->alloc[w];
		if (x == 0) {
			run += 64;
			continue;
		}
		run += nh_ctz64(x);
		if (run > max)
			max = run;
		if (x != ~(uint64_t)0) {
			unsigned inner = longest_zero_run(x);
			if (inner > max)
				max = inner;
		}
		run = nh_clz64(x);
	}
	if (run > max)
		max = run;
	return palloc_sum_pack(start, max, end);
}

/* Index of the first bit with value `one` at or after i, or NH_CHUNK_PAGES. */
static unsigned chunk_next(const uint64_t *bits, unsigned i, bool one)
{
	while (i < NH_CHUNK_PAGES) {
		uint64_t x = bits[i / 64];
		if (!one)
			x = ~x;
		x &= ~(uint64_t)0 << (i % 64);
		if (x)
			return (i & ~63u) + nh_ctz64(x);
		i = (i & ~63u) + 64;
	}
	return NH_CHUNK_PAGES;
}

/* First run of n free pages at or after page `from`, or -1. */
static int chunk_find(const struct palloc_chunk *c, unsigned n, unsigned from)
{
	unsigned i = from;
	while (i + n <= NH_CHUNK_PAGES) {
		i = chunk_next(c->alloc, i, false);
		if (i + n > NH_CHUNK_PAGES)
			return -1;
		unsigned j = chunk_next(c->alloc, i, true);
		if (j - i >= n)
			return (int)i;
		i = j;
	}
	return -1;
}

/* ---- summaries -------------------------------------------------------- */

static palloc_sum merge(const palloc_sum *sums, unsigned n, unsigned log_child_pages)
{
	unsigned full = 1u << log_child_pages;
	unsigned start = palloc_sum_start(sums[0]);
	unsigned most = palloc_sum_max(sums[0]);
	unsigned end = palloc_sum_end(sums[0]);
	for (unsigned i = 1; i < n; i++) {
		unsigned si = palloc_sum_start(sums[i]);
		unsigned mi = palloc_sum_max(sums[i]);
		unsigned ei = palloc_sum_end(sums[i]);
		if (start == i * full)
			start += si;
		most = NH_MAX(most, NH_MAX(end + si, mi));
		if (ei == full)
			end += full;
		else
			end = ei;
	}
	return palloc_sum_pack(start, most, end);
}

/*
 * Recompute the summaries covering [addr, addr + npages pages), from the
 * chunks up. A level whose summaries all came out as they were leaves the
 * levels above as they are (Go's update does the same): most span
 * allocations and frees change no chunk's start, max or end, or no longer
 * change anything a few levels up, so they stop early instead of merging
 * eight summaries on every level.
 */
static void update(struct page_alloc *pa, uintptr_t addr, size_t npages)
{
	uintptr_t last = addr + (npages << NH_PAGE_SHIFT) - 1;
	unsigned leaf = NH_SUMMARY_LEVELS - 1;
	bool changed = false;
	for (size_t ci = chunk_index(pa, addr); ci <= chunk_index(pa, last); ci++) {
		palloc_sum sum = chunk_summarize(pa->chunks[ci]);
		changed |= pa->summary[leaf][ci] != sum;
		pa->summary[leaf][ci] = sum;
	}
	for (int l = (int)leaf - 1; l >= 0 && changed; l--) {
		size_t lo = level_index(pa, (unsigned)l, addr), hi = level_index(pa, (unsigned)l, last);
		changed = false;
		for (size_t k = lo; k <= hi; k++) {
			palloc_sum sum = merge(&pa->summary[l + 1][k << NH_SUMMARY_LEVEL_BITS],
					       1u << NH_SUMMARY_LEVEL_BITS, level_log_pages((unsigned)l + 1));
			changed |= pa->summary[l][k] != sum;
			pa->summary[l][k] = sum;
		}
	}
}

/* ---- growth, allocation, freeing --------------------------------------- */

/* The summaries and chunks[] are reserved readable (zeros) for the whole
 * range and made writable where the heap grows (os.h: commit charge). */
static int commit_metadata(struct page_alloc *pa, uintptr_t addr, size_t bytes)
{
	uintptr_t last = addr + bytes - 1;
	for (unsigned l = 0; l < NH_SUMMARY_LEVELS; l++) {
		size_t lo = level_index(pa, l, addr), n = level_index(pa, l, last) - lo + 1;
		if (os_commit_range(&pa->summary[l][lo], n * sizeof(palloc_sum)) != 0)
			return -ENOMEM;
	}
	size_t lo = chunk_index(pa, addr);
	return os_commit_range(&pa->chunks[lo], (chunk_index(pa, last) - lo + 1) * sizeof *pa->chunks);
}

int page_alloc_grow(struct page_alloc *pa, uintptr_t addr, size_t bytes)
{
	if (bytes == 0 || (addr | bytes) & (NH_CHUNK_BYTES - 1) || addr < pa->base ||
	    addr + bytes > pa->base + ((uintptr_t)1 << pa->shift))
		return -EINVAL;
	if (commit_metadata(pa, addr, bytes) != 0)
		return -ENOMEM;
	size_t first = chunk_index(pa, addr), n = bytes >> NH_CHUNK_SHIFT;
	struct palloc_chunk *cs = persistentalloc(n * sizeof *cs, 64, pa->node);
	if (!cs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		/* A chunk is grown once; growing it again is a caller bug. */
		if (pa->chunks[first + i])
			nh_fatal("pageAlloc: chunk %zu grown twice", first + i);
		memset(cs[i].alloc, 0, sizeof cs[i].alloc);
		memset(cs[i].scav, 0xff, sizeof cs[i].scav); /* new memory is not backed */
		cs[i].free_tick = cs[i].alloc_tick = 0;
		cs[i].broken = cs[i].base = 0;
		pa->chunks[first + i] = &cs[i];
	}
	size_t npages = bytes >> NH_PAGE_SHIFT;
	update(pa, addr, npages);
	pa->pages_grown += npages;
	pa->pages_scav += npages;
	if (addr < pa->search_addr)
		pa->search_addr = addr;
	if (addr + bytes > pa->grown_end)
		pa->grown_end = addr + bytes;
	return 0;
}

/* See pallocbits.h. */
size_t page_alloc_alloc_range(struct page_alloc *pa, uintptr_t addr, size_t npages)
{
	size_t scav = 0;
	uintptr_t a = addr;
	size_t left = npages;
	while (left) {
		struct palloc_chunk *c = pa->chunks[chunk_index(pa, a)];
		unsigned i = chunk_page(a), k = (unsigned)NH_MIN((size_t)(NH_CHUNK_PAGES - i), left);
		bits_set(c->alloc, i, k);
		unsigned s = bits_count(c->scav, i, k);
		if (s) {
			bits_clear(c->scav, i, k);
			scav += s;
		}
		a += (uintptr_t)k << NH_PAGE_SHIFT;
		left -= k;
	}
	update(pa, addr, npages);
	pa->pages_alloc += npages;
	pa->pages_scav -= scav;
	return scav;
}

/* A span took [addr, addr + npages): its chunks were just used (the
 * scavenger's subrelease leaves such chunks alone, scavenger.c). */
static void stamp_alloc(struct page_alloc *pa, uintptr_t addr, size_t npages)
{
	if (!pa->clock)
		return;
	uint64_t now = pa->clock();
	size_t last = chunk_index(pa, addr + (npages << NH_PAGE_SHIFT) - 1);
	for (size_t ci = chunk_index(pa, addr); ci <= last; ci++)
		pa->chunks[ci]->alloc_tick = now;
}

/*
 * The first-fit search. *lowest gets a lower bound on the lowest free page
 * (for search_addr): exact when the search passed no free page on its way.
 */
static uintptr_t find(struct page_alloc *pa, size_t npages, uintptr_t *lowest)
{
	size_t i = 0;
	bool skipped = false;
	uintptr_t lb = pa->search_addr;
	for (unsigned l = 0; l < NH_SUMMARY_LEVELS; l++) {
		unsigned bits = level_bits(pa, l), logp = level_log_pages(l);
		size_t entries = (size_t)1 << bits;
		i <<= bits;
		const palloc_sum *sums = pa->summary[l] + i;
		size_t j0 = 0, sidx = level_index(pa, l, pa->search_addr);
		if ((sidx & ~(entries - 1)) == i)
			j0 = sidx & (entries - 1);
		size_t base = 0, size = 0;
		bool descend = false, seen = false;
		size_t j;
		for (j = j0; j < entries; j++) {
			palloc_sum s = sums[j];
			if (s == 0) {
				size = 0;
				continue;
			}
			if (!seen) {
				seen = true;
				if (!skipped)
					lb = NH_MAX(lb, level_addr(pa, l, i + j));
			}
			unsigned st = palloc_sum_start(s);
			if (size + st >= npages) {
				if (size == 0)
					base = j << logp;
				size += st;
				break;
			}
			if (palloc_sum_max(s) >= npages) {
				descend = true;
				break;
			}
			skipped = true;
			if (size == 0 || st < (1u << logp)) {
				size = palloc_sum_end(s);
				base = ((j + 1) << logp) - size;
				continue;
			}
			size += (size_t)1 << logp;
		}
		if (descend) {
			i += j;
			continue;
		}
		if (size >= npages) {
			*lowest = lb;
			return level_addr(pa, l, i) + ((uintptr_t)base << NH_PAGE_SHIFT);
		}
		if (l == 0) {
			*lowest = lb;
			return 0;
		}
		nh_fatal("pageAlloc: summary at level %u claims %zu free pages that are not there", l - 1, npages);
	}
	/* i is a chunk whose summary's max fits npages. */
	struct palloc_chunk *c = pa->chunks[i];
	uintptr_t cbase = pa->base + ((uintptr_t)i << NH_CHUNK_SHIFT);
	unsigned from = chunk_index(pa, pa->search_addr) == i ? chunk_page(pa->search_addr) : 0;
	int j = chunk_find(c, (unsigned)npages, from);
	if (j < 0)
		nh_fatal("pageAlloc: chunk %zu summary disagrees with its bitmap", i);
	if (!skipped) {
		unsigned f = chunk_next(c->alloc, from, false);
		lb = NH_MAX(lb, cbase + ((uintptr_t)f << NH_PAGE_SHIFT));
	}
	*lowest = lb;
	return cbase + ((uintptr_t)j << NH_PAGE_SHIFT);
}

uintptr_t page_alloc_alloc(struct page_alloc *pa, size_t npages, size_t align_pages, size_t *scav)
{
	if (align_pages == 0)
		align_pages = 1;
	size_t need = npages + align_pages - 1;
	if (npages == 0 || pa->search_addr >= pa->grown_end || need < npages)
		return 0;
	uintptr_t lowest;
	uintptr_t addr = find(pa, need, &lowest);
	if (!addr) {
		pa->search_addr = NH_MAX(pa->search_addr, lowest);
		return 0;
	}
	/* An aligned request searched for npages + align - 1: the aligned part
	 * of the run found is free. */
	uintptr_t ab = (uintptr_t)align_pages << NH_PAGE_SHIFT;
	uintptr_t at = (addr + ab - 1) & ~(ab - 1);
	size_t s = page_alloc_alloc_range(pa, at, npages);
	stamp_alloc(pa, at, npages);
	if (scav)
		*scav = s;
	/* Still a lower bound: either nothing was free below addr, or lowest is. */
	pa->search_addr = lowest == at ? at + (npages << NH_PAGE_SHIFT) : lowest;
	return at;
}

static bool range_free(struct page_alloc *pa, uintptr_t addr, size_t npages)
{
	if (addr < pa->base || addr + (npages << NH_PAGE_SHIFT) > pa->grown_end)
		return false;
	uintptr_t a = addr;
	size_t left = npages;
	while (left) {
		struct palloc_chunk *c = pa->chunks[chunk_index(pa, a)];
		unsigned i = chunk_page(a), k = (unsigned)NH_MIN((size_t)(NH_CHUNK_PAGES - i), left);
		if (!c || bits_count(c->alloc, i, k))
			return false;
		a += (uintptr_t)k << NH_PAGE_SHIFT;
		left -= k;
	}
	return true;
}

bool page_alloc_alloc_at(struct page_alloc *pa, uintptr_t addr, size_t npages, size_t *scav)
{
	if (npages == 0 || !range_free(pa, addr, npages))
		return false;
	size_t s = page_alloc_alloc_range(pa, addr, npages);
	stamp_alloc(pa, addr, npages);
	if (scav)
		*scav = s;
	if (pa->search_addr == addr)
		pa->search_addr = addr + (npages << NH_PAGE_SHIFT);
	return true;
}

static void free_range(struct page_alloc *pa, uintptr_t addr, size_t npages, bool scavenged)
{
	uintptr_t a = addr;
	size_t left = npages;
	while (left) {
		struct palloc_chunk *c = pa->chunks[chunk_index(pa, a)];
		unsigned i = chunk_page(a), k = (unsigned)NH_MIN((size_t)(NH_CHUNK_PAGES - i), left);
		if (bits_count(c->alloc, i, k) != k)
			nh_fatal("pageAlloc: freeing free pages at %p", (void *)a);
		bits_clear(c->alloc, i, k);
		if (scavenged)
			bits_set(c->scav, i, k);
		else if (pa->clock && !nh_free_keeps_idle)
			c->free_tick = pa->clock();
		a += (uintptr_t)k << NH_PAGE_SHIFT;
		left -= k;
	}
	update(pa, addr, npages);
	pa->pages_alloc -= npages;
	if (scavenged)
		pa->pages_scav += npages;
	if (addr < pa->search_addr)
		pa->search_addr = addr;
}

void page_alloc_free(struct page_alloc *pa, uintptr_t addr, size_t npages)
{
	free_range(pa, addr, npages, false);
}

void page_alloc_free_scavenged(struct page_alloc *pa, uintptr_t addr, size_t npages)
{
	free_range(pa, addr, npages, true);
}

int page_alloc_check(struct page_alloc *pa)
{
	unsigned leaf = NH_SUMMARY_LEVELS - 1;
	size_t lo = chunk_index(pa, pa->base), hi = pa->grown_end > pa->base ? chunk_index(pa, pa->grown_end - 1) : 0;
	size_t nalloc = 0, nscav = 0, nbroken = 0, nbase = 0;
	for (size_t ci = lo; pa->grown_end > pa->base && ci <= hi; ci++) {
		struct palloc_chunk *c = pa->chunks[ci];
		palloc_sum want = c ? chunk_summarize(c) : 0;
		if (pa->summary[leaf][ci] != want)
			return leaf + 1;
		if (c) {
			nalloc += bits_count(c->alloc, 0, NH_CHUNK_PAGES);
			nscav += bits_count(c->scav, 0, NH_CHUNK_PAGES);
			nbroken += (size_t)nh_popcount64(c->broken);
			nbase += (size_t)nh_popcount64(c->base);
			for (int w = 0; w < NH_CHUNK_WORDS; w++)
				if (c->alloc[w] & c->scav[w])
					return 100; /* allocated pages are never scavenged */
		}
	}
	for (int l = (int)leaf - 1; l >= 0; l--) {
		size_t n = (size_t)1 << (pa->l0bits + NH_SUMMARY_LEVEL_BITS * (unsigned)l);
		size_t top = pa->grown_end > pa->base ? level_index(pa, (unsigned)l, pa->grown_end - 1) + 1 : 0;
		for (size_t k = 0; k < n && k < top; k++) {
			palloc_sum want = merge(&pa->summary[l + 1][k << NH_SUMMARY_LEVEL_BITS],
						1u << NH_SUMMARY_LEVEL_BITS, level_log_pages((unsigned)l + 1));
			if (pa->summary[l][k] != want)
				return l + 1;
		}
	}
	if (nalloc != pa->pages_alloc)
		return 101;
	if (nscav != pa->pages_scav)
		return 102;
	if (nbroken != pa->broken)
		return 104;
	if (nbase != pa->base_huge)
		return 105;
	/* search_addr: no free page below it. */
	if (pa->search_addr > pa->base && pa->grown_end > pa->base) {
		uintptr_t a = pa->base;
		uintptr_t stop = NH_MIN(pa->search_addr, pa->grown_end);
		for (; a < stop; a += NH_PAGE_SIZE) {
			struct palloc_chunk *c = pa->chunks[chunk_index(pa, a)];
			if (!c) {
				a += NH_CHUNK_BYTES - NH_PAGE_SIZE;
				continue;
			}
			unsigned p = chunk_page(a);
			if (!(c->alloc[p / 64] & ((uint64_t)1 << (p % 64))))
				return 103;
		}
	}
	return 0;
}
