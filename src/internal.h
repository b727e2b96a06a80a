/*
 * internal.h — every type of the allocator, in one place.
 *
 * See malloc.c for the overview of how the pieces fit. Each structure below
 * says, field by field, who writes it and under which lock; "P-local" means
 * only the owner of the P touches it (its thread in per-thread mode), and
 * readers of statistics read such fields racily, as a snapshot.
 */
#ifndef NUMAHEAP_INTERNAL_H
#define NUMAHEAP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "lockrank.h"
#include "sizeclasses.h"

#define NH_LIKELY(x) __builtin_expect(!!(x), 1)
#define NH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NH_NOINLINE __attribute__((noinline))
#define NH_COLD __attribute__((cold, noinline))
#define NH_INLINE static inline __attribute__((always_inline))
#define NH_HIDDEN __attribute__((visibility("hidden")))
#define NH_ALIGNED(n) __attribute__((aligned(n)))
#define NH_NORETURN __attribute__((noreturn))

/*
 * The public names. A build with NH_PREFIX=x_ exports x_malloc, x_free...
 * instead of replacing malloc (and no C++ operators): the sanitizer builds
 * of the tests run numaheap that way, beside the sanitizer's own malloc.
 */
#define NH_CAT2(a, b) a##b
#define NH_CAT(a, b) NH_CAT2(a, b)
#ifdef NH_PREFIX
#define NH_NAME(x) NH_CAT(NH_PREFIX, x)
#else
#define NH_NAME(x) x
#endif
#define NH_API __attribute__((visibility("default")))

#define NH_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NH_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------------------
 * The address space.
 *
 * Every node's heap lives in its own 2 TiB slice of virtual address space,
 * starting at NH_HEAP_BASE. The slice of a pointer is therefore its node, the
 * heap's range check is one subtraction and compare, and a pointer outside
 * [NH_HEAP_BASE, NH_HEAP_END) was not handed out by numaheap. Arenas are
 * mapped at fixed addresses inside the slice (MAP_FIXED_NOREPLACE, moving on
 * when something else lives there), growing upwards from the slice's start.
 *
 *   NH_HEAP_BASE                                               NH_HEAP_END
 *   | node 0: 2 TiB | node 1: 2 TiB | ...                | node 15 |
 *     |arena|arena|...   64 MiB each, 8192 pages of 8 KiB
 * ------------------------------------------------------------------------ */
#define NH_HEAP_BASE ((uintptr_t)0x100000000000ULL) /* 16 TiB */
#define NH_NODE_SHIFT 41			    /* 2 TiB per node */
#define NH_MAX_NODES 16
#define NH_HEAP_RANGE ((uintptr_t)NH_MAX_NODES << NH_NODE_SHIFT)
#define NH_HEAP_END (NH_HEAP_BASE + NH_HEAP_RANGE)

#define NH_ARENA_SHIFT 26 /* 64 MiB arenas */
#define NH_ARENA_BYTES ((uintptr_t)1 << NH_ARENA_SHIFT)
#define NH_PAGES_PER_ARENA (NH_ARENA_BYTES >> NH_PAGE_SHIFT) /* 8192 */
#define NH_ARENAS_PER_NODE ((uintptr_t)1 << (NH_NODE_SHIFT - NH_ARENA_SHIFT))

#define NH_HUGE_SHIFT 21 /* 2 MiB transparent huge pages */
#define NH_HUGE_BYTES ((uintptr_t)1 << NH_HUGE_SHIFT)
#define NH_PAGES_PER_HUGE (NH_HUGE_BYTES >> NH_PAGE_SHIFT) /* 256 */

#define NH_MAX_CPUS 1024

/* The large-span cache of each node (mheap.c): spans up to 256 KiB, at most
 * 16 of one size, 4 MiB in all. */
#define NH_LARGE_CACHE_PAGES 32
#define NH_LARGE_CACHE_DEPTH 16
#define NH_LARGE_CACHE_BYTES ((size_t)4 << 20)

/*
 * Large objects the cache can hold are rounded the way size classes are:
 * exact up to 16 pages, to an even number of pages above (at most 1/17
 * more, finer than tcmalloc's or jemalloc's classes). Half as many sizes
 * above 16 pages, so a freed span fits a later request more often (rptest:
 * 57% of large mallocs served by the cache instead of 48% at 2 MiB, 80% at
 * 4 MiB), and the usable size stays a function of the request:
 * malloc(malloc_usable_size(p)) gets the same size.
 */
NH_INLINE size_t large_round_pages(size_t npages)
{
	return npages > 16 && npages <= NH_LARGE_CACHE_PAGES ? (npages + 1) & ~(size_t)1 : npages;
}

/* The start of each node's heap that stays on base pages (arena.c). */
#define NH_SMALL_HEAP_BYTES ((uintptr_t)4 << 20)

/* ------------------------------------------------------------------------
 * Locks (lock.c). A futex word that spins briefly before sleeping, so that
 * uncontended and lightly contended slow paths never enter the kernel.
 * ------------------------------------------------------------------------ */
struct mutex {
	_Atomic uint32_t state; /* 0 unlocked, 1 locked, 2 locked with waiters */
	uint32_t rank;		/* enum lock_rank; checked in debug builds */
};

void mutex_init(struct mutex *m, enum lock_rank rank);
void mutex_lock_slow(struct mutex *m);
void mutex_unlock_slow(struct mutex *m);
void lockrank_acquire(struct mutex *m);
void lockrank_release(struct mutex *m);
/* Debug builds: fork's handlers take every lock, outside the rank checks. */
void lockrank_fork(int phase);

/* How many numaheap locks the calling thread holds: fork's prepare handler,
 * run from a signal handler that interrupted this thread inside the
 * allocator, must not wait for them (proc.c). */
extern __thread uint32_t nh_locks_held __attribute__((tls_model("initial-exec")));

NH_INLINE void mutex_lock(struct mutex *m)
{
	uint32_t z = 0;
	nh_locks_held++;
	if (NH_UNLIKELY(!atomic_compare_exchange_strong_explicit(&m->state, &z, 1, memory_order_acquire,
								 memory_order_relaxed)))
		mutex_lock_slow(m);
#ifdef NH_DEBUG
	lockrank_acquire(m);
#endif
}

NH_INLINE void mutex_unlock(struct mutex *m)
{
#ifdef NH_DEBUG
	lockrank_release(m);
#endif
	if (NH_UNLIKELY(atomic_exchange_explicit(&m->state, 0, memory_order_release) == 2))
		mutex_unlock_slow(m);
	nh_locks_held--;
}

/* After fork, in the child: every lock is free again (only this thread runs). */
NH_INLINE void mutex_reset(struct mutex *m) { atomic_store_explicit(&m->state, 0, memory_order_relaxed); }

/* ------------------------------------------------------------------------
 * Options (options.c, options.def): parsed once at start-up, read-only after.
 * ------------------------------------------------------------------------ */
enum nh_opt_type { OPT_BOOL, OPT_SIZE, OPT_INT, OPT_ENUM, OPT_PATH, OPT_TIME, OPT_LIST };

#define NH_OPT(name, type, def, lo, hi, choices, when, doc) NH_OPTID_##name,
enum nh_option_id {
#include "options.def"
	NH_NUM_OPTIONS
};
#undef NH_OPT

#define NH_PATH_MAX 256
struct nh_options {
	int64_t v[NH_NUM_OPTIONS]; /* value; an index into choices for OPT_ENUM */
	bool set[NH_NUM_OPTIONS];  /* given in the environment */
	char stats_file[NH_PATH_MAX]; /* NUMAHEAP_STATS_FILE */
	char lib[NH_PATH_MAX];	      /* NUMAHEAP_LIB */
};
extern struct nh_options nh_opt;
#define NH_OPTION(name) (nh_opt.v[NH_OPTID_##name])

void options_init(void);
/* Apply NUMAHEAP_MIN_ALIGN to the size-to-class table (sizeclass.c). */
void sizeclass_init(void);
void options_print(int fd);

/* ------------------------------------------------------------------------
 * The OS contract (os.h / os_linux.c).
 * ------------------------------------------------------------------------ */
#include "os.h"

/* ------------------------------------------------------------------------
 * Topology (numa/numa.h).
 * ------------------------------------------------------------------------ */
#include "../numa/numa.h"

/* ------------------------------------------------------------------------
 * persistentalloc and fixalloc (fixalloc.c): off-heap metadata.
 * ------------------------------------------------------------------------ */

/* Bump allocator of never-freed metadata, one per node (lock rank PERSISTENT). */
void *persistentalloc(size_t size, size_t align, int node);

/*
 * fixalloc: a free list of fixed-size objects carved from persistentalloc
 * chunks (Go's mfixalloc.go). Not thread-safe: every fixalloc names the lock
 * its users hold. Freed objects are reused, never returned to the OS. The
 * first word of a free object links the list, so objects are >= 8 bytes.
 */
struct fixalloc {
	size_t size;
	struct fixlink *list; /* free objects */
	uintptr_t chunk;      /* bump pointer into the current chunk */
	size_t nchunk;	      /* bytes left in the chunk */
	size_t inuse;	      /* bytes handed out and not freed */
	int node;
	_Atomic size_t *stat; /* metadata bytes counter this fixalloc charges */
};

void fixalloc_init(struct fixalloc *f, size_t size, int node, _Atomic size_t *stat);
void *fixalloc_alloc(struct fixalloc *f); /* zeroed; NULL if the OS refuses */
void fixalloc_free(struct fixalloc *f, void *p);

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

struct palloc_chunk {
	uint64_t alloc[NH_CHUNK_WORDS]; /* 1: page allocated */
	uint64_t scav[NH_CHUNK_WORDS];	/* 1: page free and returned to the OS */
	uint64_t free_tick;		/* clock() when pages were last freed here */
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
};

int page_alloc_init(struct page_alloc *pa, uintptr_t base, unsigned shift, int node, struct mutex *lock);
/* [addr, addr+bytes) is new, chunk-aligned memory: free and scavenged. */
int page_alloc_grow(struct page_alloc *pa, uintptr_t addr, size_t bytes);
/* First fit, aligned to align_pages (a power of two, 0 or 1 for none); 0 if
 * no run is free. *scav gets how many of the pages were scavenged. */
uintptr_t page_alloc_alloc(struct page_alloc *pa, size_t npages, size_t align_pages, size_t *scav);
void page_alloc_free(struct page_alloc *pa, uintptr_t addr, size_t npages);
/* Allocate exactly [addr, addr+npages) if all of it is free; else false. */
bool page_alloc_alloc_at(struct page_alloc *pa, uintptr_t addr, size_t npages, size_t *scav);
/* Free pages not yet scavenged, in [addr, addr+npages), become scavenged. */
void page_alloc_mark_scavenged(struct page_alloc *pa, uintptr_t addr, size_t npages);
/*
 * Find the highest run of free, unscavenged pages below *limit that is at
 * least min_pages long (clipped to max_pages), allocate it, and return its
 * address and length; the caller releases it to the OS and frees it with
 * page_alloc_free_scavenged. 0 when there is none.
 */
uintptr_t page_alloc_take_unscavenged(struct page_alloc *pa, uintptr_t *limit, size_t min_pages,
				      size_t max_pages, size_t align_pages, size_t *npages);
void page_alloc_free_scavenged(struct page_alloc *pa, uintptr_t addr, size_t npages);

/* What the scavenger looks for (page_alloc_take_idle). */
struct scav_query {
	uintptr_t limit;	/* in/out: search below this address; moves down */
	size_t min_pages;	/* shortest run worth releasing (after alignment) */
	size_t max_pages;	/* take at most this much of a run (its top part) */
	size_t align_pages;	/* runs are trimmed to this alignment (power of two) */
	uint64_t idle_before;	/* skip chunks freed into at or after this tick; 0: none */
	unsigned max_used;	/* only from huge pages with at most this many allocated
				 * pages, never across one's edge; 0: no such filter */
	uintptr_t sparse_hp;	/* internal: the huge page last found sparse (its
				 * runs taken so far count as allocated) */
	uint64_t next_idle;	/* out: lowest free_tick of a chunk skipped as busy */
};
/* Like page_alloc_take_unscavenged, with the query's filters. */
uintptr_t page_alloc_take_idle(struct page_alloc *pa, struct scav_query *q, size_t *npages);
/* A run of pages: base address and length in bytes. */
struct page_run {
	uintptr_t base;
	size_t bytes;
};
/* The lowest released pages, un-scavenged for pre-faulting: see pagealloc.c. */
unsigned page_alloc_unscavenge_low(struct page_alloc *pa, uintptr_t from, size_t window, size_t take,
				   struct page_run *out, unsigned max_runs);
/* Debug: check summaries against the bitmaps. Returns 0 or the bad level+1. */
int page_alloc_check(struct page_alloc *pa);

/* Set while a thread frees memory that was idle already (the background
 * thread draining idle caches): the chunks' free ticks are left alone, so
 * the scavenger does not wait a second delay for it. */
extern __thread bool nh_free_keeps_idle;

palloc_sum palloc_sum_pack(unsigned start, unsigned max, unsigned end);
unsigned palloc_sum_start(palloc_sum s);
unsigned palloc_sum_max(palloc_sum s);
unsigned palloc_sum_end(palloc_sum s);

/* ------------------------------------------------------------------------
 * mspan (mspan.c): a run of pages, holding objects of one size class or one
 * large object. Allocated from the heap's fixalloc under the heap lock.
 * ------------------------------------------------------------------------ */
enum span_state {
	SPAN_DEAD = 0,	 /* not in use; its pages are free */
	SPAN_INUSE = 1,	 /* holds objects; spans[] maps its pages to it */
	SPAN_CACHED = 2, /* a freed large span kept whole for reuse (mheap.c) */
};

enum span_list { SPAN_LIST_NONE, SPAN_LIST_PARTIAL, SPAN_LIST_FULL };

#define NH_MAX_SPAN_OBJECTS 1024 /* proven by mksizeclasses */
#define NH_SPAN_BITMAP_WORDS (NH_MAX_SPAN_OBJECTS / 64)

struct mspan {
	/* mcentral list links; under the central lock. */
	struct mspan *next;
	struct mspan *prev;
	/* Set at span creation under the heap lock; immutable while in use. */
	uintptr_t base;
	uint32_t npages;
	uint32_t elemsize;  /* object size; npages * NH_PAGE_SIZE for large */
	uint32_t divmul;    /* (off * divmul) >> 32 == off / elemsize */
	uint16_t nelems;    /* objects in the span (1 for large) */
	uint8_t sizeclass;  /* 0: one large object */
	uint8_t node;
	_Atomic uint8_t state; /* enum span_state; read without locks by free */
	uint8_t list;	       /* enum span_list; under the central lock */
	uint8_t needzero;      /* memory may hold old data (large spans) */
	uint8_t guarded;       /* hardened large object between guard pages */
	/* Object accounting; under the central lock (small spans). */
	uint16_t nalloc;    /* objects out of the bitmap: with users or in caches */
	uint16_t freeindex; /* first bitmap word that may have a free object */
	uint8_t kept;	    /* empty, kept on mcentral's partial list; under its lock */
	uint8_t pad1[3];
	/* 1: object allocated. Declared for the largest span; a span struct
	 * is allocated only as long as its class needs (mspan_struct_size). */
	uint64_t alloc_bits[NH_SPAN_BITMAP_WORDS];
};

/* Bytes of span struct a class needs: header plus its bitmap words. */
NH_INLINE size_t mspan_struct_size(unsigned bitmap_words)
{
	return offsetof(struct mspan, alloc_bits) + (size_t)bitmap_words * 8;
}

void mspan_init_small(struct mspan *s, unsigned sizeclass);
/* Take up to n free objects into out[] (tagged NH_ENTRY_FRESH). */
unsigned mspan_take(struct mspan *s, uintptr_t *out, unsigned n);
NH_INLINE unsigned mspan_obj_index(const struct mspan *s, uintptr_t p)
{
	return (unsigned)(((uint64_t)(p - s->base) * s->divmul) >> 32);
}

NH_NORETURN NH_COLD void nh_report_bad_pointer(const char *api, const void *p, const char *what);

/* Return one object to the span's bitmap; aborts on a double free. Inline:
 * every object a flush sends back to its span comes through here. */
NH_INLINE void mspan_put(struct mspan *s, uintptr_t p)
{
	unsigned idx = mspan_obj_index(s, p);
	uint64_t m = (uint64_t)1 << (idx % 64);
	if (NH_UNLIKELY(!(s->alloc_bits[idx / 64] & m)))
		nh_report_bad_pointer("free", (void *)p, "double free (object already free in its span)");
	s->alloc_bits[idx / 64] &= ~m;
	s->nalloc--;
	if (idx / 64 < s->freeindex)
		s->freeindex = (uint16_t)(idx / 64);
}

/* ------------------------------------------------------------------------
 * heapArena and the arena map (arena.c).
 *
 * nh_arena_map[p >> 26] is the metadata of the 64 MiB arena holding p, or
 * NULL. It spans the whole 47-bit user address space (2^21 entries, 16 MiB
 * of BSS, of which only the pages around the heap's slices are ever
 * touched), so a lookup is one shift and one load, and any pointer below
 * 2^47 that numaheap did not hand out finds NULL. Entries go from NULL to an
 * arena once, under the owning node's heap lock, and never change back, so
 * free() reads them without a lock.
 * ------------------------------------------------------------------------ */
#define NH_ADDR_BITS 47
struct heap_arena {
	/*
	 * pageinfo[i], what free needs about page i without touching its span:
	 * the size class (bits 0-7; 0 for a large object or a free page) and
	 * the phase (bits 16-31): (page start - span base) % object size, so
	 * a pointer is an object's start iff ((p % page) + phase) % size == 0.
	 * Same writers and readers as spans[]. First in the struct: free's
	 * load needs no offset added to its index.
	 */
	_Atomic uint32_t pageinfo[NH_PAGES_PER_ARENA];
	/* spans[i]: the in-use span holding page i, NULL if the page is free.
	 * Written under the heap lock; read locklessly by free/realloc. */
	struct mspan *_Atomic spans[NH_PAGES_PER_ARENA];
	uintptr_t base;
	/* Pages from here up have never been handed out since the arena was
	 * mapped: they are known to be zero. Under the heap lock. */
	uintptr_t zeroed_base;
	struct heap_arena *next; /* the node's arenas; under the heap lock */
	int node;
};

extern struct heap_arena *_Atomic nh_arena_map[(uintptr_t)1 << (NH_ADDR_BITS - NH_ARENA_SHIFT)];

NH_INLINE struct heap_arena *arena_of(uintptr_t p)
{
	if (NH_UNLIKELY(p >> NH_ADDR_BITS))
		return NULL;
	return atomic_load_explicit(&nh_arena_map[p >> NH_ARENA_SHIFT], memory_order_acquire);
}

NH_INLINE struct mspan *span_of(uintptr_t p)
{
	struct heap_arena *ha = arena_of(p);
	if (NH_UNLIKELY(!ha))
		return NULL;
	return atomic_load_explicit(&ha->spans[(p >> NH_PAGE_SHIFT) & (NH_PAGES_PER_ARENA - 1)],
				    memory_order_acquire);
}

NH_INLINE int node_of_addr(uintptr_t p) { return (int)((p - NH_HEAP_BASE) >> NH_NODE_SHIFT); }

/* Map spans[] and pageinfo[] for [base, base + npages pages) to s (NULL to
 * clear). Heap lock. */
void arena_set_spans(uintptr_t base, size_t npages, struct mspan *s);

NH_INLINE uint32_t pageinfo_of(const struct heap_arena *ha, uintptr_t p)
{
	return atomic_load_explicit(&ha->pageinfo[(p >> NH_PAGE_SHIFT) & (NH_PAGES_PER_ARENA - 1)],
				    memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Statistics (stats.c, stats.def).
 * ------------------------------------------------------------------------ */
/* Counts of the kernel calls numaheap made, by kind; relaxed atomics. */
struct nh_kstats {
	_Atomic uint64_t mmap, munmap, madvise, mbind, mprotect, futex_wait, futex_wake, io_uring_enter;
};
extern struct nh_kstats nh_kstats;
#define NH_KSTAT_INC(field) atomic_fetch_add_explicit(&nh_kstats.field, 1, memory_order_relaxed)

/* ------------------------------------------------------------------------
 * mcentral (mcentral.c): the spans of one size class on one node.
 *
 * partial holds spans with at least one free object, full those without.
 * Caches take objects in batches (refill) and give them back in batches
 * (release); both take the central lock once per batch.
 * ------------------------------------------------------------------------ */
struct span_list_head {
	struct mspan *first;
	size_t count;
};

/*
 * Empty spans an mcentral keeps (per class and node) instead of giving them
 * back to the heap at once: a program that frees thousands of objects and
 * allocates them again takes its spans back without a pageAlloc round trip
 * for each. The background thread gives them back once the class has been
 * idle for a pass (mcentral_drain), so they do not stay while idle.
 */
#define NH_CENTRAL_KEEP_BYTES ((size_t)1 << 20)

struct mcentral {
	/*
	 * The transfer cache (tcmalloc's): cache entries (tags kept) passed
	 * from P caches that overflow to P caches that refill, whole batches
	 * at a time, without touching span bitmaps. Under tc_lock.
	 */
	struct mutex tc_lock;
	uint32_t tc_count;
	uint32_t tc_cap;
	uintptr_t *tc_slots;	  /* tc_cap entries, allocated on first use */
	uint64_t tc_gen;	  /* bumped on use: idle detection */
	uint64_t tc_idle_gen;

	struct mutex lock NH_ALIGNED(NH_CACHE_LINE);
	uint8_t sizeclass;
	uint8_t node;
	struct span_list_head partial; /* under lock */
	struct span_list_head full;    /* under lock */
	/* Under lock. */
	uint64_t nspans;	  /* spans of this class on this node */
	uint64_t objects_out;	  /* sum of nalloc over the spans */
	uint32_t nempty;	  /* empty spans kept on the partial list */
	uint32_t empty_max;	  /* how many may be kept: NH_CENTRAL_KEEP_BYTES worth */
	uint64_t gen;		  /* bumped by refills: idle detection for the kept spans */
	uint64_t idle_gen;
} NH_ALIGNED(NH_CACHE_LINE);

struct mheap;
void mcentral_init(struct mcentral *c, unsigned sizeclass, int node);
/* Fill out[] with up to n cache entries; returns how many, 0 on ENOMEM. */
unsigned mcentral_refill(struct mcentral *c, struct mheap *h, uintptr_t *out, unsigned n);
/* Give back n cache entries (objects, tagged or not) of this class and node. */
void mcentral_release(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n);
/* Return the transfer caches' objects to their spans and the kept empty
 * spans to the heap: all of them, or only those of classes unused since the
 * last call (idle). Objects moved. */
size_t mcentral_drain(struct mheap *h, bool idle_only);
size_t mcentral_transfer_objects(struct mcentral *c);

/* ------------------------------------------------------------------------
 * mheap (mheap.c): the page heap of one node.
 * ------------------------------------------------------------------------ */
struct mheap {
	struct mutex lock;
	int node;
	struct page_alloc pages;       /* under lock */
	uintptr_t arena_hint;	       /* next address to try for an arena; lock */
	struct heap_arena *arenas;     /* list of this node's arenas; lock */
	/* mspan structs, by bitmap size: large objects (none), classes of up to
	 * 256 objects (4 words), the 8 and 16 B classes (16 words); lock. */
	struct fixalloc spanalloc[3];
	/* Byte counts, under lock (read racily by stats). */
	size_t mapped_bytes;
	size_t inuse_bytes;	/* pages in in-use spans */
	size_t large_inuse_bytes;	/* pages of large spans, cached ones included */
	_Atomic uint64_t large_frees;	/* large objects freed by the program */
	uint64_t released_reused_bytes;	/* scavenged pages handed out again */
	uint64_t grow_calls;
	uint64_t scav_released_bytes;	/* released to the OS by scavenging, in total */
	uint64_t prefault_bytes;	/* released pages faulted in ahead of the program */
	uintptr_t regrow_front;	/* end of the highest span taken from released pages this pre-faulting episode; lock */
	_Atomic uint64_t remote_frees;	/* objects freed by other nodes' threads, sent home */
	struct mcentral central[NH_NUM_CLASSES];
	/*
	 * Freed large spans of up to NH_LARGE_CACHE_PAGES pages, kept whole
	 * (pages allocated, spans[] mapped, state SPAN_CACHED) so the next
	 * large malloc of the same size takes one without the heap lock or a
	 * pageAlloc search. At most NH_LARGE_CACHE_BYTES in all; the
	 * background thread empties it when unused. Under lcache_lock.
	 */
	struct mutex lcache_lock;
	struct mspan *lcache[NH_LARGE_CACHE_PAGES + 1][NH_LARGE_CACHE_DEPTH];
	uint8_t lcache_n[NH_LARGE_CACHE_PAGES + 1];
	size_t lcache_bytes;
	uint64_t lcache_gen, lcache_idle_gen;
	uint64_t lcache_hits;
};

extern struct mheap *nh_heaps[NH_MAX_NODES];

/* Take a cached large span of exactly npages, or NULL. */
struct mspan *mheap_large_cache_take(struct mheap *h, size_t npages);
/* Keep a freed large span for reuse; false if the cache has no room. */
bool mheap_large_cache_put(struct mheap *h, struct mspan *s);
/* Give the cached spans back to the heap: all, or only if unused since the
 * last call. Bytes given back. */
size_t mheap_large_cache_drain(struct mheap *h, bool idle_only);
/* What every heap keeps in front of its pages (mcentral's transfer caches
 * and kept empty spans, the large-span cache) goes back: all of it, or only
 * what sat unused since the last call. Objects moved out of transfer caches. */
size_t mheap_drain_caches(bool idle_only);

int mheap_init(int node);
/* A span of npages for sizeclass (0: large), or NULL with errno ENOMEM. */
struct mspan *mheap_alloc_span(struct mheap *h, size_t npages, unsigned sizeclass, size_t align_pages);
void mheap_free_span(struct mheap *h, struct mspan *s);
/* Grow a large span in place to npages if the pages after it are free. */
bool mheap_grow_span(struct mheap *h, struct mspan *s, size_t npages);
/* Shrink a large span in place, freeing its tail pages. */
void mheap_shrink_span(struct mheap *h, struct mspan *s, size_t npages);

/* ------------------------------------------------------------------------
 * mcache (mcache.c): a P's cache of free objects, one stack per size class.
 *
 * The cache is one block of NH_MCACHE_BYTES (a "slab"): a header, then
 * slots. Stack positions are 16-bit indices of 8-byte words from the slab's
 * start, so a class's stack is words [begin, begin + max) and holds
 * cur - begin objects; end (begin <= end <= begin + max) is its current
 * capacity. A class header is 8 bytes and changes by single stores, so an
 * all-zero header (cur == begin == end) means "not set up": every pop and
 * push misses on it and goes to the slow path, which sets it up.
 *
 * One layout serves both kinds of P:
 *   per-thread  the slab belongs to one thread (struct m.cache); plain code
 *   per-CPU     slab i of the region at nh_pcpu_base belongs to CPU i; the
 *               fast paths are restartable sequences (arch/<arch>/rseq.h)
 *               that find the slab from the CPU number, and the slow paths
 *               hold the slab's lock and change it only through sequences
 *               that check they still run on the slab's CPU.
 *
 * Entries are object addresses; the low bit marks an object that came
 * straight from a span's bitmap (never freed since), which carries no free
 * cookie (see malloc.c: detecting double frees).
 * ------------------------------------------------------------------------ */
#define NH_MCACHE_SHIFT 18
#define NH_MCACHE_BYTES ((size_t)1 << NH_MCACHE_SHIFT) /* 256 KiB: 32768 slots */
#define NH_ENTRY_FRESH ((uintptr_t)1)

struct mcache_class {
	/* Bits 0-15: cur, the next free slot. Bits 16-63: mallocs served by
	 * this stack (a pop adds 0xffff: cur - 1, allocs + 1, one store). */
	uint64_t word;
	uint16_t end;	/* current capacity limit (at most begin + mcache_max(cls)) */
	uint16_t begin; /* first slot; fixed once set up */
	uint16_t node;	/* the slab's node, here so push checks it on the line it writes */
	uint16_t pad;
} NH_ALIGNED(16);

NH_INLINE unsigned mc_cur(const struct mcache_class *k) { return (uint16_t)k->word; }
NH_INLINE uint64_t mc_allocs(const struct mcache_class *k) { return k->word >> 16; }

struct mcache_stats {
	uint64_t refills;  /* misses that went to mcentral */
	uint64_t flushes;  /* overflows that went to mcentral */
	uint64_t misses;   /* slow-path visits (refill or overflow); for capacity stealing */
};

/* Who writes what: cls[] — the P's owner (per-CPU: rseq sequences only);
 * everything else — set up once, then under lock (per-CPU) or by the
 * owning thread (per-thread). */
struct mcache {
	struct mcache_class cls[NH_NUM_CLASSES];
	uint32_t node;	   /* node whose objects this cache holds */
	uint32_t id;	   /* P id: the CPU, or a per-thread P number */
	struct mutex lock; /* per-CPU slow paths; unused per-thread */
	uint32_t ready;	   /* set up */
	uint32_t pad;
	size_t budget;	   /* byte budget for all classes */
	size_t cap_bytes;  /* sum of (end - begin) * size */
	uint64_t gen;	   /* bumped by every slow path: idle detection */
	uint32_t steal_backoff; /* overflows to wait before looking for capacity again */
	uint32_t pad3;
	uint64_t idle_gen; /* gen seen by the last idle pass */
	uintptr_t remote[64]; /* objects freed here that belong to another node */
	uint32_t nremote;
	uint32_t pad2;
	struct mcache_stats stats[NH_NUM_CLASSES];
};

#define NH_MCACHE_HDR_WORDS ((sizeof(struct mcache) + 7) / 8)

NH_INLINE uintptr_t *mcache_slots(struct mcache *c) { return (uintptr_t *)c; }

#include NH_ARCH_RSEQ_H

/*
 * How slow paths reach a cache: directly (a per-thread P), or through rseq
 * sequences that only act while the thread runs on cpu. Operations return
 * -1 when the thread has left that CPU; the caller starts over.
 */
struct pctx {
	struct mcache *c;
	bool rseq;
	uint32_t cpu;
};

/*
 * What the fast paths read, on one cache line. Written once at start-up.
 *   cpu_mode    CPU_MODE_RSEQ: pop and push on the CPU's slab
 *   rseq_off    every thread's rseq area is at thread pointer + rseq_off
 *   pcpu_base   slab i at pcpu_base + (i << NH_MCACHE_SHIFT)
 *   pcpu_count  slabs reserved (CPUs possible at start-up)
 */
struct nh_fast {
	int cpu_mode;
	uint32_t pcpu_count;
	ptrdiff_t rseq_off;
	uintptr_t pcpu_base;
	bool hardened;	/* NUMAHEAP_HARDENED: every call goes through hardened.c */
	/* The one test malloc and free make before their fast paths: hardened
	 * off, and PLAIN_RSEQ (per-CPU P's) or PLAIN_PER_THREAD; 0 (hardened,
	 * or before initialisation) takes the general path. */
	uint8_t plain;
} NH_ALIGNED(NH_CACHE_LINE);
extern struct nh_fast nh_fast;

NH_INLINE struct mcache *pcpu_slab(uint32_t cpu) { return (struct mcache *)(nh_fast.pcpu_base + ((uintptr_t)cpu << NH_MCACHE_SHIFT)); }

void mcache_layout_init(void);
void mcache_init(struct mcache *c, int node, uint32_t id);
/* Set a per-CPU slab up; 0, or -1 if the thread left the CPU. Lock held. */
int mcache_init_pcpu(struct pctx *x, int node);
/* Refill class cls, lock held (per-CPU): 1 refilled (pop again), 0 ENOMEM,
 * 2 could not fill the stack (left the CPU): *direct is one entry to serve. */
int mcache_refill(struct pctx *x, unsigned cls, uintptr_t *direct);
void mcache_spread_lines(uintptr_t *v, unsigned n);
/* Overflow path of a push, lock held: 1 done, -1 left the CPU. */
int mcache_overflow(struct pctx *x, unsigned cls, uintptr_t p);
/* Free an object owned by another node through the remote buffer. */
void mcache_free_remote(struct mcache *c, uintptr_t p);
void mcache_flush_remote(struct mcache *c);
/* Give every cached object back to mcentral; -1 if the thread left the CPU. */
int mcache_drain(struct pctx *x);
size_t mcache_cached_objects(const struct mcache *c, unsigned cls);
uint64_t mcache_allocs(const struct mcache *c, unsigned cls);
unsigned mcache_batch(unsigned cls);
unsigned mcache_max(unsigned cls);

/* An empty cache that misses on every class: the per-thread fast path's default. */
extern struct mcache nh_empty_mcache;
/* The calling thread's per-thread cache (per-thread mode), or nh_empty_mcache. */
extern __thread struct mcache *nh_tls_cache __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------------
 * P's and M's (proc.c).
 *
 * An M is a thread's allocator state (Go's M); a P is an allocation context
 * owning an mcache (Go's P): one per CPU (rseq mode) or one per thread.
 * The M keeps the thread's exact per-class allocation counts either way.
 * ------------------------------------------------------------------------ */
enum cpu_mode { CPU_MODE_PER_THREAD = 0, CPU_MODE_RSEQ = 1 };
enum { PLAIN_NO = 0, PLAIN_RSEQ = 1, PLAIN_PER_THREAD = 2 };

struct m {
	struct mcache *cache; /* the thread's per-thread P's cache */
	struct m *next;	      /* allm list; under allm lock */
	struct m *prev;
	uint32_t id;
};

/* The P (cache context) of the calling thread now: its CPU's (lock taken)
 * or its own. false: none (a thread being torn down, or out of memory). */
bool proc_acquire_p(struct pctx *x);
void proc_release_p(struct pctx *x);
void proc_init(void);
/* Node the calling thread runs on. */
int proc_current_node(void);
/* Sum the allocation counts of every cache, per-CPU and per-thread, into out[]. */
void proc_sum_allocs(uint64_t out[NH_NUM_CLASSES]);
/* Count objects held in the caches of node node (every cache if node < 0), by class. */
void proc_sum_cached(uint64_t out[NH_NUM_CLASSES], int node);
/* Drain the caches of CPUs unused since the last call (background pass). */
size_t proc_drain_idle(void);
void proc_sum_cache_stats(uint64_t *refills, uint64_t *flushes, uint64_t *caches, uint64_t *aborts);
void proc_register_atfork(void);
/* Mallocs served without a cache, by class (0: every large object). */
extern _Atomic uint64_t nh_direct_allocs[NH_NUM_CLASSES];
extern _Atomic size_t nh_metadata_bytes[NH_MAX_NODES];

/* ------------------------------------------------------------------------
 * Reporting (report.c): allocation-free formatting and fatal errors.
 * ------------------------------------------------------------------------ */
struct nh_buf {
	char *p;
	size_t len;
	size_t cap;
	int fd;	      /* flushed here when full; -1 to truncate instead */
	size_t total; /* characters written, including those truncated */
};

void buf_puts(struct nh_buf *b, const char *s);
void buf_putc(struct nh_buf *b, char c);
void buf_printf(struct nh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_flush(struct nh_buf *b);
void nh_printf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nh_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
NH_NORETURN void nh_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Bad-pointer reports: "numaheap: <what> <pointer>: <detail>", then abort. */
NH_NORETURN NH_COLD void nh_report_bad_pointer(const char *api, const void *p, const char *what);

/* ------------------------------------------------------------------------
 * Global state (malloc.c).
 * ------------------------------------------------------------------------ */
extern uintptr_t nh_cookie; /* secret; a freed object's mark word is cookie ^ address */

/*
 * The word of a small object that holds its free mark (cookie ^ address)
 * while it is free: its first. Only malloc and a flush to the spans read it
 * (and free in hardened mode); free writes it with one 8-byte store, so
 * malloc's load takes the value from that store even when the program has
 * just written narrower data there. (The mark sat in the second word while
 * free read it in every mode: free's 8-byte load right after the program's
 * 1-byte store missed store-to-load forwarding. Once the check moved to
 * malloc, the first word was the faster: no class test, and 64 B
 * malloc/free pairs 1.4-2.8 ns quicker in perf/micro.)
 */
NH_INLINE uintptr_t *mark_word(uintptr_t p) { return (uintptr_t *)p; }

/* The free mark of the object at p, and whether its mark word holds it. */
NH_INLINE uintptr_t free_mark(uintptr_t p) { return nh_cookie ^ p; }
NH_INLINE bool has_free_mark(uintptr_t p) { return *mark_word(p) == free_mark(p); }
extern bool nh_heaps_ok;    /* at least one heap could be set up */
extern _Atomic int nh_initialized;
void nh_init_slow(void);

NH_INLINE void nh_ensure_init(void)
{
	if (NH_UNLIKELY(atomic_load_explicit(&nh_initialized, memory_order_acquire) != 2))
		nh_init_slow();
}

NH_INLINE struct mheap *heap_of_node(int node) { return nh_heaps[node]; }

/* ------------------------------------------------------------------------
 * The scavenger and the background thread (scavenger.c).
 * ------------------------------------------------------------------------ */
enum { SCAV_IO_URING = 0, SCAV_MADVISE = 1, SCAV_OFF = 2 };

struct nh_scav_stats {
	const char *backend;	/* "io_uring", "madvise", "off", or "pending" */
	int running;		/* the background thread runs */
	int uring_failed;	/* io_uring was asked for and could not be set up */
	uint64_t passes;
	uint64_t bg_released_bytes;
	uint64_t sync_released_bytes; /* malloc_trim, numaheap_release, the limit */
	uint64_t submissions;	/* madvise runs submitted through io_uring */
	uint64_t syscalls;	/* synchronous madvise calls */
	uint64_t bg_syscalls;	/* io_uring_enter or madvise calls of the thread */
	uint64_t cpu_ns;	/* time the background thread spent working (wall, an upper bound of its CPU) */
	uint64_t limit_hits;	/* synchronous scavenges forced by the memory limit */
	uint64_t cache_drained_objects; /* objects drained from idle CPUs' caches */
	const char *prefault;	/* "on", "off" or "unsupported" (kernel before 5.14) */
	uint64_t prefault_episodes;	/* times the heap grew back into released memory */
	uint64_t prefault_ns;	/* time spent doing it (wall) */
};
extern struct nh_scav_stats nh_scav;

void scavenger_init(void);
void scavenger_heap_grew(void);
/* A span took released pages (heap lock may be held): wake the pre-faulting. */
void scavenger_regrowing(void);
/* Start the background thread if it is wanted and not running (slow paths). */
void scavenger_poll(void);
void scavenger_check_limit(void);
/* Release free memory now, in this thread: all of it, or down to the goal. */
size_t scavenge_now(bool all);
void scavenger_fork_lock(bool lock);
void scavenger_install_signal(void);
/* Write the statistics where NUMAHEAP_STATS_FILE says (appending if
 * periodic), in NUMAHEAP_STATS's format (text unless json). */
void stats_dump(bool periodic);
void stats_init(void);
void scavenger_fork_child(void);

/* ------------------------------------------------------------------------
 * Hardened mode (hardened.c) and the entry points it builds on (malloc.c).
 * ------------------------------------------------------------------------ */
#define nh_hardened (nh_fast.hardened)

uint64_t nh_random(void);
void hardened_shuffle(uintptr_t *v, unsigned n);
void *hardened_alloc(size_t n, size_t align, bool zero);
void hardened_set_canary(uintptr_t p, unsigned cls);
void hardened_free(uintptr_t p);
size_t hardened_usable_size(uintptr_t p);
void *hardened_realloc(uintptr_t p, size_t n);

void *nh_alloc_class(unsigned cls);
void *nh_alloc_large(size_t n, size_t align, bool zero);
struct mspan *nh_alloc_large_span(size_t n, size_t align);
/* A valid object's span; reports and aborts on a bad pointer. */
struct mspan *nh_checked_span(const char *api, uintptr_t p);
/* Free an object whose span the caller has checked (hardened mode: the
 * free mark goes in the first word). */
void nh_free_unchecked(struct mspan *s, uintptr_t p);

NH_INLINE unsigned nh_size_to_class(size_t n)
{
	if (n <= NH_SMALL_SIZE_MAX)
		return nh_size_to_class8[(n + NH_SMALL_SIZE_DIV - 1) / NH_SMALL_SIZE_DIV];
	return nh_size_to_class128[(n - NH_SMALL_SIZE_MAX + NH_LARGE_SIZE_DIV - 1) / NH_LARGE_SIZE_DIV];
}

/* Stats output (stats.c). */
void stats_print(int fd, bool json);
void stats_at_exit(void);
size_t stats_json(char *buf, size_t cap);

#endif /* NUMAHEAP_INTERNAL_H */
