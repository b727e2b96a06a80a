/*
 * pagescav.c — the pageAlloc's scavenged bitmaps: which free pages the
 * scavenger releases, and which released ones pre-faulting takes back.
 *
 * See malloc.c for the overview, and pagealloc.c for the pageAlloc. This
 * is the searching half of Go's mgcscavenge.go (findScavengeCandidate);
 * the policy — how much, when, from which node — is scavenger.c's.
 *
 * Each chunk's scav bitmap marks the free pages whose memory went back to
 * the OS (pallocbits.h); a page is never both allocated and scavenged. The
 * scavenger looks for free, unscavenged runs from the top of the heap down
 * (the allocator packs low, so the top stays free longest) and allocates
 * each run it takes, so no span can be carved from it while the kernel
 * releases it; the caller frees it back scavenged
 * (page_alloc_free_scavenged) or, if the release failed, plain. Chunks
 * carry the tick of their last free (free_tick) and of the last span
 * carved from them (alloc_tick), so recently used memory can be left alone
 * for a while: freed into, for whole huge pages; freed into or allocated
 * from, for the free pages of huge pages still in use (the subrelease).
 *
 * A run released inside a huge page (not the whole of it) splits that
 * huge page in the kernel: its other pages stay on base pages, and when
 * the program grows back into the released ones they come back one base
 * page per fault. Such huge pages are marked broken in their chunk; once
 * none of their pages is released any more, page_alloc_next_collapse hands
 * them to the scavenger to be made huge again (MADV_COLLAPSE).
 *
 * Locking: every function runs under pa->lock (the node's heap lock), and
 * the callers drop it around the system calls.
 */

#include "pagealloc.h"
#include "pallocbits.h"

void page_alloc_mark_scavenged(struct page_alloc *pa, uintptr_t addr, size_t npages)
{
	uintptr_t a = addr;
	size_t left = npages;
	while (left) {
		struct palloc_chunk *c = pa->chunks[chunk_index(pa, a)];
		unsigned i = chunk_page(a), k = (unsigned)NH_MIN((size_t)(NH_CHUNK_PAGES - i), left);
		for (unsigned p = i; p < i + k; p++) {
			uint64_t m = (uint64_t)1 << (p % 64);
			if (!(c->alloc[p / 64] & m) && !(c->scav[p / 64] & m)) {
				c->scav[p / 64] |= m;
				pa->pages_scav++;
			}
		}
		a += (uintptr_t)k << NH_PAGE_SHIFT;
		left -= k;
	}
}

/* ---- what the scavenger releases ------------------------------------------ */

/* Allocated pages in the huge page holding chunk page p. */
static unsigned huge_used(const struct palloc_chunk *c, unsigned p)
{
	unsigned first = p & ~(unsigned)(NH_PAGES_PER_HUGE - 1);
	return bits_count(c->alloc, first, NH_PAGES_PER_HUGE);
}

/* Chunk page p is allocated, or free and released already. */
static inline bool page_unavailable(const struct palloc_chunk *c, int p)
{
	uint64_t m = (uint64_t)1 << (p % 64);
	return (c->alloc[p / 64] & m) || (c->scav[p / 64] & m);
}

/*
 * May chunk ci hold a run for q? Not if its longest free run is shorter
 * than min (a fragmented heap is skipped a chunk at a time when only whole
 * huge pages are wanted: runs never cross a chunk here), nor if it has no
 * free unscavenged page, nor if pages were freed into it at or after
 * q->idle_before (q->next_idle then notes when it turns idle).
 */
static bool chunk_has_candidates(struct page_alloc *pa, struct scav_query *q, size_t ci, size_t min)
{
	struct palloc_chunk *c = pa->chunks[ci];
	if (!c || palloc_sum_max(pa->summary[NH_SUMMARY_LEVELS - 1][ci]) < min)
		return false;
	bool any = false;
	for (int w = 0; w < NH_CHUNK_WORDS && !any; w++)
		any = (~c->alloc[w] & ~c->scav[w]) != 0;
	if (!any)
		return false;
	uint64_t tick = q->allocs_too ? NH_MAX(c->free_tick, c->alloc_tick) : c->free_tick;
	if (q->idle_before && tick >= q->idle_before) {
		if (!q->next_idle || tick < q->next_idle)
			q->next_idle = tick;
		return false;
	}
	return true;
}



/*
 * q->max_used: a run is taken only within the huge page holding its top
 * page hi, and only if that huge page is sparse; a dense one is skipped
 * whole (one count per huge page, not per run). The run starts at chunk
 * page *p + 1, at address *rs. Returns false to skip the huge page (*p
 * moves below it); true with the run clipped to the huge page (*rs up to
 * its start, *p below it).
 */
static bool sparse_huge_page(struct scav_query *q, const struct palloc_chunk *c, uintptr_t cbase, int hi, int *p,
			     uintptr_t *rs)
{
	int first = hi & ~(NH_PAGES_PER_HUGE - 1);
	uintptr_t hp = cbase + ((uintptr_t)first << NH_PAGE_SHIFT);
	if (hp != q->sparse_hp) {
		/* Judged once, at its highest run, before any of it is taken
		 * (the scan only moves down). */
		if (huge_used(c, (unsigned)hi) > q->max_used) {
			*p = first - 1;
			return false;
		}
		q->sparse_hp = hp;
	}
	if (*p + 1 < first) {
		*rs = cbase + ((uintptr_t)first << NH_PAGE_SHIFT);
		*p = first - 1;
	}
	return true;
}

/*
 * The highest run of chunk ci below top that passes q's filters and is at
 * least min pages once aligned to align: at most q->max_pages of it (its
 * top part) is allocated and returned, q->limit moved to its start. 0 if
 * the chunk has none.
 */
static uintptr_t take_in_chunk(struct page_alloc *pa, struct scav_query *q, size_t ci, uintptr_t top, size_t align,
			       size_t min, size_t *npages)
{
	struct palloc_chunk *c = pa->chunks[ci];
	uintptr_t cbase = pa->base + (ci << NH_CHUNK_SHIFT);
	int p = (int)((top - cbase) >> NH_PAGE_SHIFT) - 1;
	while (p >= 0) {
		if (page_unavailable(c, p)) {
			p--;
			continue;
		}
		int hi = p;
		while (p >= 0 && !page_unavailable(c, p))
			p--;
		uintptr_t rs = cbase + ((uintptr_t)(p + 1) << NH_PAGE_SHIFT);
		uintptr_t re = cbase + ((uintptr_t)(hi + 1) << NH_PAGE_SHIFT);
		if (q->max_used && !sparse_huge_page(q, c, cbase, hi, &p, &rs))
			continue;
		uintptr_t ab = (uintptr_t)align << NH_PAGE_SHIFT;
		uintptr_t as = (rs + ab - 1) & ~(ab - 1), ae = re & ~(ab - 1);
		if (ae > as && ((ae - as) >> NH_PAGE_SHIFT) >= min) {
			size_t n = (ae - as) >> NH_PAGE_SHIFT;
			if (n > q->max_pages)
				n = NH_MAX(q->max_pages & ~(align - 1), align);
			uintptr_t start = ae - (n << NH_PAGE_SHIFT);
			page_alloc_alloc_range(pa, start, n);
			q->limit = start;
			*npages = n;
			return start;
		}
	}
	return 0;
}

/*
 * Scan down from q->limit for the highest run of free, unscavenged pages
 * that passes the query's filters, take at most max_pages of it (its top
 * part, aligned), allocate it so nobody else can, and return it. q->limit
 * moves to the run's start so the next call continues below. Highest first,
 * because the allocator packs low: the top of the heap stays free longest.
 */
uintptr_t page_alloc_take_idle(struct page_alloc *pa, struct scav_query *q, size_t *npages)
{
	size_t align = q->align_pages ? q->align_pages : 1;
	size_t min = NH_MAX(q->min_pages, align);
	uintptr_t top = NH_MIN(q->limit, pa->grown_end);
	while (top > pa->base) {
		size_t ci = chunk_index(pa, top - 1);
		if (chunk_has_candidates(pa, q, ci, min)) {
			uintptr_t a = take_in_chunk(pa, q, ci, top, align, min, npages);
			if (a)
				return a;
		}
		top = pa->base + (ci << NH_CHUNK_SHIFT);
	}
	q->limit = pa->base;
	return 0;
}

uintptr_t page_alloc_take_unscavenged(struct page_alloc *pa, uintptr_t *limit, size_t min_pages,
				      size_t max_pages, size_t align_pages, size_t *npages)
{
	struct scav_query q = {.limit = *limit, .min_pages = min_pages, .max_pages = max_pages,
			       .align_pages = align_pages};
	uintptr_t a = page_alloc_take_idle(pa, &q, npages);
	*limit = q.limit;
	return a;
}

/* ---- huge pages to make whole again ------------------------------------- */

unsigned page_alloc_note_broken(struct page_alloc *pa, uintptr_t addr, size_t bytes, uintptr_t *out, unsigned max)
{
	unsigned nout = 0;
	uintptr_t end = addr + bytes;
	for (uintptr_t hp = addr & ~(NH_HUGE_BYTES - 1); hp < end; hp += NH_HUGE_BYTES) {
		if (addr <= hp && end >= hp + NH_HUGE_BYTES)
			continue; /* all of it goes: no longer a huge page, not split either */
		struct palloc_chunk *c = pa->chunks[chunk_index(pa, hp)];
		uint32_t bit = (uint32_t)1 << (chunk_page(hp) / NH_PAGES_PER_HUGE);
		if (c->broken & bit)
			continue;
		c->broken |= bit;
		pa->broken++;
		if (nout < max)
			out[nout++] = hp;
	}
	return nout;
}

/* The walk of next_collapse and next_base: the next huge page below
 * *cursor, not below floor, with its bit set in chunk->base (base) or
 * chunk->broken, at most max_scav released pages and at least min_used
 * allocated ones. */
static uintptr_t next_marked(struct page_alloc *pa, bool base, uintptr_t *cursor, uintptr_t floor, unsigned max_scav,
			     unsigned min_used, unsigned *nscav)
{
	uintptr_t top = NH_MIN(*cursor, pa->grown_end);
	floor = NH_MAX(floor, pa->base);
	while (top > floor) {
		size_t ci = chunk_index(pa, top - 1);
		struct palloc_chunk *c = pa->chunks[ci];
		uintptr_t cbase = pa->base + (ci << NH_CHUNK_SHIFT);
		top = cbase;
		uint32_t marks = !c ? 0 : base ? c->base : c->broken;
		for (int h = NH_CHUNK_HUGE - 1; marks && h >= 0; h--) {
			uintptr_t hp = cbase + ((uintptr_t)h << NH_HUGE_SHIFT);
			if (hp >= *cursor || hp < floor || !(marks >> h & 1))
				continue;
			unsigned first = (unsigned)h * NH_PAGES_PER_HUGE;
			unsigned ns = bits_count(c->scav, first, NH_PAGES_PER_HUGE);
			if (ns > max_scav || bits_count(c->alloc, first, NH_PAGES_PER_HUGE) < min_used)
				continue; /* not grown back into (yet), or never touched */
			*cursor = hp;
			*nscav = ns;
			return hp;
		}
	}
	*cursor = floor;
	return 0;
}

uintptr_t page_alloc_next_collapse(struct page_alloc *pa, uintptr_t *cursor, uintptr_t floor, unsigned max_scav,
				   unsigned min_used, unsigned *nscav)
{
	return pa->broken ? next_marked(pa, false, cursor, floor, max_scav, min_used, nscav) : 0;
}

void page_alloc_note_base(struct page_alloc *pa, uintptr_t addr, size_t bytes)
{
	uintptr_t hp = (addr + NH_HUGE_BYTES - 1) & ~(NH_HUGE_BYTES - 1);
	for (; hp + NH_HUGE_BYTES <= addr + bytes; hp += NH_HUGE_BYTES) {
		struct palloc_chunk *c = pa->chunks[chunk_index(pa, hp)];
		uint32_t bit = (uint32_t)1 << (chunk_page(hp) / NH_PAGES_PER_HUGE);
		if (!(c->base & bit)) {
			c->base |= bit;
			pa->base_huge++;
		}
	}
}

uintptr_t page_alloc_next_base(struct page_alloc *pa, uintptr_t *cursor, uintptr_t floor, unsigned max_scav)
{
	unsigned ns;
	return pa->base_huge ? next_marked(pa, true, cursor, floor, max_scav, 0, &ns) : 0;
}

bool page_alloc_collapse_begin(struct page_alloc *pa, uintptr_t hp, uint64_t hold_until)
{
	struct palloc_chunk *c = pa->chunks[chunk_index(pa, hp)];
	unsigned h = chunk_page(hp) / NH_PAGES_PER_HUGE, first = h * NH_PAGES_PER_HUGE;
	uint32_t bit = (uint32_t)1 << h;
	/* The free pages still released: the collapse fills them in. */
	pa->pages_scav -= bits_count(c->scav, first, NH_PAGES_PER_HUGE);
	bits_clear(c->scav, first, NH_PAGES_PER_HUGE);
	bool was_broken = c->broken & bit;
	if (was_broken) {
		c->broken &= ~bit;
		pa->broken--;
	}
	if (c->base & bit) {
		c->base &= ~bit;
		pa->base_huge--;
	}
	/* Counts as used until then: not split again meanwhile. */
	if (c->alloc_tick < hold_until)
		c->alloc_tick = hold_until;
	return was_broken;
}

bool page_alloc_chunk_idle(struct page_alloc *pa, uintptr_t addr, uint64_t idle_before, uint64_t *tick)
{
	const struct palloc_chunk *c = pa->chunks[chunk_index(pa, addr)];
	uint64_t t = NH_MAX(c->free_tick, c->alloc_tick); /* racy: a hint (tsan.supp) */
	*tick = t;
	return t < idle_before;
}

/* ---- what pre-faulting takes back ----------------------------------------- */

/*
 * For pre-faulting (prefault.c): walk up from search_addr, where the next
 * spans come from (first fit packs low), through the free pages. Free
 * resident ones count towards the window as they are; released ones get
 * their scavenged bits cleared and go into out[] as runs, in address
 * order, for the caller to fault in. Stops when window pages are free and
 * resident (or about to be), or out[] is full, or it reaches to (no page
 * from there up is taken), or take pages have been
 * taken and the next page starts a huge page: the caller faults in a
 * little at a time, nearest first, and looks again, so that it moves
 * ahead of a program that overtook it instead of faulting in behind it.
 * The chunks touched get a fresh free tick, so the scavenger leaves what
 * was faulted in alone for its delay. Returns the number of runs.
 */
unsigned page_alloc_unscavenge_low(struct page_alloc *pa, uintptr_t from, uintptr_t to, size_t window, size_t take,
				   struct page_run *out, unsigned max_runs)
{
	size_t have = 0, taken = 0;
	unsigned nruns = 0;
	uintptr_t a = pa->search_addr;
	while (a < pa->grown_end && have < window) {
		size_t ci = chunk_index(pa, a);
		struct palloc_chunk *c = pa->chunks[ci];
		uintptr_t cbase = pa->base + (ci << NH_CHUNK_SHIFT);
		unsigned first = a > cbase ? chunk_page(a) : 0;
		a = cbase + NH_CHUNK_BYTES;
		if (!c || palloc_sum_max(pa->summary[NH_SUMMARY_LEVELS - 1][ci]) == 0)
			continue;
		bool touched = false;
		for (unsigned p = first; p < NH_CHUNK_PAGES && have < window; p++) {
			unsigned w = p / 64;
			uint64_t m = (uint64_t)1 << (p % 64);
			if (p % 64 == 0 && !(c->scav[w] & ~c->alloc[w])) {
				/* Nothing released in these 64 pages: count the free ones. */
				have += (size_t)nh_popcount64(~c->alloc[w]);
				p += 63;
				continue;
			}
			if (c->alloc[w] & m)
				continue;
			if (c->scav[w] & m) {
				uintptr_t pg = cbase + ((uintptr_t)p << NH_PAGE_SHIFT);
				if (pg < from) {
					have++; /* the program's, soon */
					continue;
				}
				if (pg >= to) {
					have = window; /* not to be faulted in: done */
					break;
				}
				if (taken >= take && pg % NH_HUGE_BYTES == 0) {
					have = window; /* enough for this call */
					break;
				}
				if (nruns && out[nruns - 1].base + out[nruns - 1].bytes == pg) {
					out[nruns - 1].bytes += NH_PAGE_SIZE;
				} else if (nruns < max_runs) {
					out[nruns++] = (struct page_run){pg, NH_PAGE_SIZE};
				} else {
					have = window; /* out[] is full */
					break;
				}
				c->scav[w] &= ~m;
				pa->pages_scav--;
				taken++;
				touched = true;
			}
			have++;
		}
		if (touched && pa->clock)
			c->free_tick = pa->clock();
	}
	return nruns;
}
