/*
 * pagealloc.h — pageAlloc, the free-page radix tree of one node (pagealloc.c),
 * and the scavenger's searches of its scavenged bitmaps (pagescav.c).
 */
#ifndef NUMAHEAP_PAGEALLOC_H
#define NUMAHEAP_PAGEALLOC_H

#include "internal.h"

struct mutex;

/* ------------------------------------------------------------------------
 * pageAlloc (pagealloc.c): which pages of a node's slice are free.
 *
 * Go's radix tree of summaries. The slice is cut into chunks of 512 pages
 * (4 MiB); each chunk has an allocation bitmap and a scavenged bitmap. A
 * summary (start, max, end) says how many free pages a region has at its
 * start, at most in one run, and at its end. Level NH_SUMMARY_LEVELS-1 sums
 * one chunk; each level above sums 8 entries of the level below (8 summaries
 * fill one cache line), so finding a run of n free pages walks the tree
 * from the root, leftmost first: address-ordered first fit.
 * ------------------------------------------------------------------------ */
#define NH_CHUNK_PAGES 512
#define NH_CHUNK_SHIFT (NH_PAGE_SHIFT + 9) /* 4 MiB */
#define NH_CHUNK_BYTES ((uintptr_t)1 << NH_CHUNK_SHIFT)
#define NH_CHUNK_WORDS (NH_CHUNK_PAGES / 64)
#define NH_SUMMARY_LEVELS 5
#define NH_SUMMARY_LEVEL_BITS 3
/* Root level bits for a slice of 2^shift bytes. */
#define NH_SUMMARY_L0_BITS(shift) ((shift) - NH_CHUNK_SHIFT - (NH_SUMMARY_LEVELS - 1) * NH_SUMMARY_LEVEL_BITS)
/* A summary field holds 0..2^21 pages: the pages one root entry covers. */
#define NH_SUM_LOG_MAX (9 + (NH_SUMMARY_LEVELS - 1) * NH_SUMMARY_LEVEL_BITS)
#define NH_SUM_MAX ((uint64_t)1 << NH_SUM_LOG_MAX)

typedef uint64_t palloc_sum;

/* Huge pages per chunk: bit h of palloc_chunk.broken is huge page h. */
#define NH_CHUNK_HUGE (NH_CHUNK_PAGES / NH_PAGES_PER_HUGE)

struct palloc_chunk {
	uint64_t alloc[NH_CHUNK_WORDS]; /* 1: page allocated */
	uint64_t scav[NH_CHUNK_WORDS];	/* 1: page free and returned to the OS */
	uint64_t free_tick;		/* clock() when pages were last freed here */
	uint64_t alloc_tick;		/* clock() when a span last took pages here */
	/* Bit h: huge page h of the chunk was released in part (the kernel
	 * split it into base pages); cleared when made whole again
	 * (page_alloc_collapse_begin). Counted in page_alloc.broken. */
	uint32_t broken;
	/* Bit h: huge page h grew on base pages (its arena advised
	 * MADV_NOHUGEPAGE, prefault.c's fresh_base) and is to be made huge
	 * once the program stops growing (page_alloc_next_base). Cleared by
	 * page_alloc_collapse_begin. Counted in page_alloc.base_huge. */
	uint32_t base;
};

struct page_alloc {
	uintptr_t base;	       /* first address of the slice */
	unsigned shift;	       /* log2 of the slice's size */
	unsigned l0bits;       /* root level bits */
	palloc_sum *summary[NH_SUMMARY_LEVELS];
	struct palloc_chunk **chunks; /* per chunk index; NULL where never grown */
	size_t nchunks;
	uintptr_t search_addr; /* no free page below this address */
	uintptr_t grown_end;   /* highest grown address (exclusive) */
	int node;	       /* node whose persistentalloc holds the metadata */
	struct mutex *lock;    /* every call holds it (the heap lock) */
	uint64_t (*clock)(void); /* time stamped on chunks at free (ns); may be NULL */
	/* Page counts, under *lock. */
	size_t pages_grown;
	size_t pages_alloc;
	size_t pages_scav; /* free and scavenged */
	size_t broken;	   /* huge pages with their bit set in chunk->broken */
	size_t base_huge;  /* huge pages with their bit set in chunk->base */
};

int page_alloc_init(struct page_alloc *pa, uintptr_t base, unsigned shift, int node, struct mutex *lock); /* at heap set-up, no lock */
/* [addr, addr+bytes) is new, chunk-aligned memory: free and scavenged. */
int page_alloc_grow(struct page_alloc *pa, uintptr_t addr, size_t bytes); /* pa->lock held */
/* First fit, aligned to align_pages (a power of two, 0 or 1 for none); 0 if
 * no run is free. *scav gets how many of the pages were scavenged. */
uintptr_t page_alloc_alloc(struct page_alloc *pa, size_t npages, size_t align_pages, size_t *scav); /* pa->lock held */
void page_alloc_free(struct page_alloc *pa, uintptr_t addr, size_t npages); /* pa->lock held */
/* Allocate exactly [addr, addr+npages) if all of it is free; else false. */
bool page_alloc_alloc_at(struct page_alloc *pa, uintptr_t addr, size_t npages, size_t *scav); /* pa->lock held */
/* Free [addr, addr+npages), whose memory went back to the OS: scavenged. */
void page_alloc_free_scavenged(struct page_alloc *pa, uintptr_t addr, size_t npages); /* pa->lock held */
/* Debug: check summaries against the bitmaps. Returns 0 or the bad level+1. */
int page_alloc_check(struct page_alloc *pa); /* pa->lock held */

/* ---- the scavenged bitmaps' searches (pagescav.c) ---------------------- */

/* Free pages not yet scavenged, in [addr, addr+npages), become scavenged. */
void page_alloc_mark_scavenged(struct page_alloc *pa, uintptr_t addr, size_t npages); /* pa->lock held */
/*
 * Find the highest run of free, unscavenged pages below *limit that is at
 * least min_pages long (clipped to max_pages), allocate it, and return its
 * address and length; the caller releases it to the OS and frees it with
 * page_alloc_free_scavenged. 0 when there is none.
 */
uintptr_t page_alloc_take_unscavenged(struct page_alloc *pa, uintptr_t *limit, size_t min_pages,
				      size_t max_pages, size_t align_pages, size_t *npages);

/* What the scavenger looks for (page_alloc_take_idle). */
struct scav_query {
	uintptr_t limit;	/* in/out: search below this address; moves down */
	size_t min_pages;	/* shortest run worth releasing (after alignment) */
	size_t max_pages;	/* take at most this much of a run (its top part) */
	size_t align_pages;	/* runs are trimmed to this alignment (power of two) */
	uint64_t idle_before;	/* skip chunks freed into at or after this tick; 0: none */
	bool allocs_too;	/* ... or allocated from (a span took pages there) */
	unsigned max_used;	/* only from huge pages with at most this many allocated
				 * pages, never across one's edge; 0: no such filter */
	uintptr_t sparse_hp;	/* internal: the huge page last found sparse (its
				 * runs taken so far count as allocated) */
	uint64_t next_idle;	/* out: lowest tick of a chunk skipped as busy */
};
/* Like page_alloc_take_unscavenged, with the query's filters. */
uintptr_t page_alloc_take_idle(struct page_alloc *pa, struct scav_query *q, size_t *npages); /* pa->lock held */
/* A run of pages: base address and length in bytes. */
struct page_run {
	uintptr_t base;
	size_t bytes;
};
/* The lowest released pages in [from, to), un-scavenged for pre-faulting:
 * see pagescav.c. */
unsigned page_alloc_unscavenge_low(struct page_alloc *pa, uintptr_t from, uintptr_t to, size_t window, size_t take,
				   struct page_run *out, unsigned max_runs);

/* [addr, addr + bytes) is about to go back to the OS: the huge pages it
 * covers in part are broken (the kernel splits them). Those not broken
 * before go into out[] (at most max); returns how many. */
unsigned page_alloc_note_broken(struct page_alloc *pa, uintptr_t addr, size_t bytes, uintptr_t *out, unsigned max);
/*
 * The next huge page, below *cursor (which moves down past it) and not
 * below floor, that the scavenger broke, that holds at most max_scav
 * released free pages (*nscav gets how many) and at least min_used
 * allocated ones: the program grew back into (nearly) all of it. 0 when
 * there is none. Nothing changes: page_alloc_collapse_begin does, once
 * the caller has decided.
 */
uintptr_t page_alloc_next_collapse(struct page_alloc *pa, uintptr_t *cursor, uintptr_t floor, unsigned max_scav,
				   unsigned min_used, unsigned *nscav);
/* The whole huge pages of [addr, addr + bytes) grow on base pages (their
 * range was just advised MADV_NOHUGEPAGE): noted, to be collapsed later. */
void page_alloc_note_base(struct page_alloc *pa, uintptr_t addr, size_t bytes); /* pa->lock held */
/* The next huge page below *cursor (which moves down past it) and not
 * below floor that grew on base pages and holds at most max_scav released
 * (or never touched) free pages (how much of it is resident is the
 * caller's question: mincore). 0 when there is none. */
uintptr_t page_alloc_next_base(struct page_alloc *pa, uintptr_t *cursor, uintptr_t floor, unsigned max_scav); /* pa->lock held */
/* Huge page hp is about to be collapsed: no longer broken, its free
 * released pages count as resident (the kernel fills them in), and its
 * chunk counts as used until hold_until (so that nothing splits it again
 * meanwhile: scav_query.allocs_too, page_alloc_chunk_idle). */
/* Returns whether it was broken (as opposed to only grown on base pages). */
bool page_alloc_collapse_begin(struct page_alloc *pa, uintptr_t hp, uint64_t hold_until);
/* Has the chunk holding addr been neither freed into nor allocated from
 * at or after idle_before? *tick gets its last use. A racy read: no lock. */
bool page_alloc_chunk_idle(struct page_alloc *pa, uintptr_t addr, uint64_t idle_before, uint64_t *tick);

/* Set while a thread frees memory that was idle already (the background
 * thread draining idle caches): the chunks' free ticks are left alone, so
 * the scavenger does not wait a second delay for it. */
extern __thread bool nh_free_keeps_idle;

palloc_sum palloc_sum_pack(unsigned start, unsigned max, unsigned end);
unsigned palloc_sum_start(palloc_sum s);
unsigned palloc_sum_max(palloc_sum s);
unsigned palloc_sum_end(palloc_sum s);

#endif /* NUMAHEAP_PAGEALLOC_H */
