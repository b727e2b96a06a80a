/*
 * mcache.h — a P's cache of free objects (mcache.c), and its fast paths:
 * one pop, one push, inline (the end of this file).
 */
#ifndef NUMAHEAP_MCACHE_H
#define NUMAHEAP_MCACHE_H

#include "lock.h"
#include "ordered.h" /* struct ohole */
#include "proc.h"

/* ------------------------------------------------------------------------
 * mcache (mcache.c): a P's cache of free objects, one stack per size class.
 *
 * The cache is one block of NH_MCACHE_BYTES (a "slab"): headers, two
 * tables, heap profiling's countdown, the slow paths' fields, then slots.
 * Stack positions are 16-bit indices of 8-byte words from the slab's
 * start, so a class's stack is words [begin, begin + max) (then a few
 * unused lines: mcache.c, NH_MCACHE_SKEW) and holds cur - begin objects;
 * end (begin <= end <= begin + max) is its current capacity. A class
 * header changes by single stores, so an all-zero header (cur == begin ==
 * end) means "not set up": every pop and push misses on it and goes to the
 * slow path, which sets it up.
 *
 * There is a header for every node and class (hdr[node * classes + cls],
 * at byte mc_hoff(node, cls) of the slab), of which only the slab's own
 * node's are ever set up: free pushes on the header of the object's node,
 * taken from the page table (arena.h), so an object of another node finds
 * an all-zero header and misses, without a compare of nodes (frees go
 * home, through the slow path). malloc finds its header through the slab's
 * own tables, which hold the slab's node: size_hdr[n] for malloc(n),
 * n <= NH_SMALL_SIZE_MAX, and class_hdr[cls]; their zeros (a slab not set
 * up) point at header 0, class 0 of node 0, never set up.
 *
 * One layout serves both kinds of P, and one fast path (the restartable
 * sequences of arch/<arch>/rseq.h, which find the slab at nh_fast.pcpu_base
 * + (cpu_id << NH_MCACHE_SHIFT) from the thread's rseq area):
 *   per-CPU     slab i belongs to CPU i; the kernel keeps cpu_id, and the
 *               slow paths hold the slab's lock and change it only through
 *               sequences that check they still run on the slab's CPU
 *   per-thread  the slab belongs to one thread (struct m.cache), anywhere
 *               NH_MCACHE_BYTES-aligned; the thread's own (unregistered)
 *               rseq area holds its slab number as cpu_id, so the same
 *               sequences run on it as plain code; the slow paths use
 *               plain code
 * Slabs -1 and -2 (below pcpu_base) are all-zero sentinels: cpu_id is -1
 * before a thread has a slab (unregistered), -2 when the kernel refused
 * registration.
 *
 * Entries are object addresses; the low bit marks an object that came
 * straight from a span's bitmap (never freed since), which carries no free
 * cookie (see malloc.c: detecting double frees).
 * ------------------------------------------------------------------------ */
#define NH_MCACHE_SHIFT 18
#define NH_MCACHE_BYTES ((size_t)1 << NH_MCACHE_SHIFT) /* 256 KiB: 32768 slots */

struct mcache_class {
	/* Bits 0-15: cur, the next free slot. Bits 16-63: mallocs served by
	 * this stack (a pop adds 0xffff: cur - 1, allocs + 1, one store),
	 * and with heap profiling on the class's sample clock on this P: the
	 * counted pops stop short of the sign bit (mcache_clock_rearm). */
	uint64_t word;
	uint16_t end;	/* current capacity limit (at most begin + mcache_max(cls)) */
	uint16_t begin; /* first slot; fixed once set up */
	uint32_t pad;
} NH_ALIGNED(16);

#define NH_MCACHE_HEADERS (NH_MAX_NODES * NH_NUM_CLASSES)
/* The byte offset of the header of class cls of node node in a slab (what
 * the page table holds for free, and the slab's tables for malloc). */
NH_INLINE unsigned mc_hoff(unsigned node, unsigned cls) { return (node * NH_NUM_CLASSES + cls) << 4; }

NH_INLINE unsigned mc_cur(const struct mcache_class *k) { return (uint16_t)k->word; }
NH_INLINE uint64_t mc_allocs(const struct mcache_class *k) { return k->word >> 16; }

struct mcache_stats {
	uint64_t refills;  /* misses that went to mcentral */
	uint64_t flushes;  /* overflows that went to mcentral */
	uint64_t misses;   /* slow-path visits (refill or overflow); for capacity stealing */
};

/* Who writes what: hdr[] — the P's owner (per-CPU: rseq sequences only);
 * the tables — the slow path that sets the slab up or moves it to another
 * node (per-thread), before the headers they point to; everything else —
 * set up once, then under lock (per-CPU) or by the owning thread
 * (per-thread). */
struct mcache {
	struct mcache_class hdr[NH_MCACHE_HEADERS];
	uint16_t size_hdr[NH_SMALL_SIZE_MAX + 1]; /* malloc(n)'s header (mc_hoff of its class, this node) */
	uint16_t class_hdr[NH_NUM_CLASSES];	  /* class cls's header on this node; 0 for class 0 */
	uint32_t node;	   /* node whose objects this cache holds */
	uint32_t id;	   /* P id: the CPU, or a per-thread P number */
	struct mutex lock; /* per-CPU slow paths; unused per-thread */
	uint32_t ready;	   /* set up */
	uint32_t fork_locked; /* its lock taken by fork's prepare handler (proc.c); under the lock */
	size_t budget;	   /* byte budget for all classes */
	size_t cap_bytes;  /* sum of (end - begin) * size */
	uint64_t gen;	   /* bumped by every slow path: idle detection */
	uint32_t steal_backoff; /* overflows to wait before looking for capacity again */
	uint64_t idle_gen; /* gen seen by the last idle pass */
	uintptr_t remote[64]; uint32_t nremote; /* objects freed here that belong to another node */
	struct ohole ohole[OBANDS]; /* ordered.c: a hole per band; P held */
	struct mcache_stats stats[NH_NUM_CLASSES];
	struct { _Atomic uint64_t allocs, cycles; } quiet[NH_NUM_CLASSES]; uint64_t quiet_at; /* mcache.c, quiet_stamp */
	/* Heap profiling's clock (mcache_clock_rearm): allocs when the interval began, and before; 0 if off. */
	uint64_t clock_base[NH_NUM_CLASSES], clock_acc[NH_NUM_CLASSES];
};

#define NH_MCACHE_HDR_WORDS ((sizeof(struct mcache) + 7) / 8)

NH_INLINE uintptr_t *mcache_slots(struct mcache *c) { return (uintptr_t *)c; }
/* Class cls's header on the slab's node. */
NH_INLINE struct mcache_class *mc_class(struct mcache *c, unsigned cls) { return &c->hdr[c->node * NH_NUM_CLASSES + cls]; }
NH_INLINE const struct mcache_class *mc_class_c(const struct mcache *c, unsigned cls) { return mc_class((struct mcache *)c, cls); }

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
 * What the fast paths read, on one cache line. Written at start-up
 * (proc.c, arena.c); malloc_limit and page_count last (nh_fast_publish):
 * until then, and for good in hardened mode, both are 0 and every malloc
 * and free takes the general path.
 *   malloc_limit malloc(n) takes the fast path iff n < malloc_limit:
 *               NH_SMALL_SIZE_MAX + 1 in per-CPU and per-thread mode, 0
 *               where malloc must go the general way (hardened, heap
 *               profiling, before initialisation): the mode test and the
 *               size test are one compare
 *   rseq_off    every thread's rseq area is at thread pointer + rseq_off
 *               (numaheap's own, unregistered, for per-thread P's)
 *   pcpu_base   slab i at pcpu_base + (i << NH_MCACHE_SHIFT): CPU i's, or
 *               the per-thread slab numbered i; -1 and -2 the sentinels
 *   page_lo, page_count, page_table   free's page table (arena.h): page
 *               p >> NH_PAGE_SHIFT is entry (p >> NH_PAGE_SHIFT) - page_lo
 *               if that is below page_count (0 sends every free the
 *               general way: hardened, before initialisation, no table)
 *   prof_limit  with heap profiling on, malloc(n) for n < prof_limit
 *               (NH_SMALL_SIZE_MAX + 1; 0 when off) takes malloc_other's
 *               profiling path: the fast path's pop, counted
 *               (mcache_pop_size_counted; api.c)
 *   cpu_mode    CPU_MODE_RSEQ: the P's are CPUs (slow paths, statistics)
 *   pcpu_count  CPU slabs reserved (CPUs possible at start-up)
 */
struct nh_fast {
	size_t malloc_limit;
	ptrdiff_t rseq_off;
	uintptr_t pcpu_base;
	uintptr_t page_lo;
	uintptr_t page_count;
	const uint16_t *page_table;
	size_t prof_limit;
	uint32_t pcpu_count;
	uint8_t cpu_mode;
	bool hardened;	/* NUMAHEAP_HARDENED: every call goes through hardened.c */
	/* PLAIN_RSEQ (per-CPU P's) or PLAIN_PER_THREAD; PLAIN_NO (hardened)
	 * or PLAIN_PROF (heap profiling): malloc goes the general way
	 * (proc.h). */
	uint8_t plain;
} NH_ALIGNED(NH_CACHE_LINE);
_Static_assert(sizeof(struct nh_fast) == NH_CACHE_LINE, "nh_fast is one cache line");
/* Open the fast paths (malloc_limit, page_count) as the mode says; the
 * last step of initialisation (proc.c). */
void nh_fast_publish(void);
extern struct nh_fast nh_fast NH_HIDDEN;

/* Slab i: CPU i's, or a per-thread slab's number (negative below pcpu_base). */
NH_INLINE struct mcache *pcpu_slab(int32_t i)
{
	return (struct mcache *)(nh_fast.pcpu_base + ((uintptr_t)(intptr_t)i << NH_MCACHE_SHIFT));
}

/* At initialisation (no lock). */
void mcache_layout_init(void);
/* Set up a per-thread slab, fresh from the OS (all zero): its owner's, or
 * allm_lock held. */
void mcache_init(struct mcache *c, int node, uint32_t id);
/* Move an empty per-thread slab to node node: its headers, its tables.
 * Its owner only (or allm_lock held). */
void mcache_set_node(struct mcache *c, int node);
/* Set a per-CPU slab up; 0, or -1 if the thread left the CPU. Lock held. */
int mcache_init_pcpu(struct pctx *x, int node);
/* Refill class cls, the slab's lock held (per-CPU): 1 refilled (pop again),
 * 0 ENOMEM, 2 could not fill the stack (left the CPU): *direct is one entry
 * to serve. Takes the class's central locks (mcentral_refill). mcache_fill,
 * its tail, shuffles buf[0..got) (hardened) or spreads it over cache lines
 * (classes under a line) and pushes it (the last popped first). */
int mcache_refill(struct pctx *x, unsigned cls, uintptr_t *direct);
int mcache_fill(struct pctx *x, unsigned cls, uintptr_t *buf, unsigned got, uintptr_t *direct);
void mcache_spread_lines(uintptr_t *v, unsigned n);
/* A push's overflow, lock held: 1 done, -1 left the CPU. Central locks. */
int mcache_overflow(struct pctx *x, unsigned cls, uintptr_t p);
/* Free an object owned by another node through the remote buffer; the
 * cache's owner (per-CPU: its slab's lock held). Takes central locks when
 * the buffer is flushed. mcache_flush_remote: the same. */
void mcache_free_remote(struct mcache *c, uintptr_t p);
void mcache_flush_remote(struct mcache *c);
/* Give every cached object back to mcentral; -1 if the thread left the CPU.
 * The slab's lock held (per-CPU); takes central locks. After it, the OS
 * pages of the emptied slots may go (mcache_release_slots: 0 or -1). */
int mcache_drain(struct pctx *x);
int mcache_release_slots(struct pctx *x);
/* Heap profiling: if class cls's next pop on this P is the sample (a
 * counted pop crossed), start its next interval, k pops (k >= 1), and
 * return 1; 0 if another thread did; -1 if the thread left the CPU. The
 * slab's lock held (per-CPU). */
int mcache_clock_rearm(struct pctx *x, unsigned cls, uint64_t k);
/* Racy reads for statistics: no lock. */
size_t mcache_cached_objects(const struct mcache *c, unsigned cls);
uint64_t mcache_allocs(const struct mcache *c, unsigned cls);
unsigned mcache_batch(unsigned cls);
unsigned mcache_max(unsigned cls);

/* The per-thread P of a thread that has none (nh_tls_cache's first value). */
extern struct mcache nh_empty_mcache;
/* The calling thread's per-thread cache (per-thread mode), or nh_empty_mcache. */
extern __thread struct mcache *nh_tls_cache __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------------
 * The fast paths: one pop or one push on the calling thread's P, no lock.
 *
 * Both kinds of P run the same restartable sequences (arch/<arch>/rseq.h),
 * which find the slab from the rseq area's cpu_id: the CPU's (per-CPU
 * mode), or the thread's own slab number (per-thread mode). A miss (empty,
 * full, not set up, another node's object, no slab: a sentinel) returns
 * false: the caller's slow path takes the P's lock and tries again.
 * Callers make sure initialisation is done (nh_fast.rseq_off is 0 before).
 * ------------------------------------------------------------------------ */

/* Pop an entry for malloc(n), n <= NH_SMALL_SIZE_MAX, into *e; false if
 * the stack is empty. */
NH_INLINE bool mcache_pop_size(size_t n, uintptr_t *e)
{
	uintptr_t v;
	NH_RSEQ_POP_SIZE(nh_fast.rseq_off, nh_fast.pcpu_base, n, v, miss);
	*e = v;
	return true;
miss:
	return false;
}

/* The profiling pops (heap profiling on; api.c): as mcache_pop_size and
 * mcache_pop_class, on the header's clock. POP_CROSSED: this pop is the
 * sample, nothing popped (mcache_clock_rearm). A restart counts again. */
enum { POP_OK, POP_MISS, POP_CROSSED };
NH_INLINE int mcache_pop_size_counted(size_t n, uintptr_t *e)
{
	uintptr_t v;
	NH_RSEQ_POP_SIZE_COUNTED(nh_fast.rseq_off, nh_fast.pcpu_base, n, v, miss, crossed);
	*e = v;
	return POP_OK;
miss:
	return POP_MISS;
crossed:
	return POP_CROSSED;
}
NH_INLINE int mcache_pop_class_counted(unsigned cls, uintptr_t *e)
{
	uintptr_t v;
	NH_RSEQ_POP_CLASS_COUNTED(nh_fast.rseq_off, nh_fast.pcpu_base, (uintptr_t)cls, v, miss, crossed);
	*e = v;
	return POP_OK;
miss:
	return POP_MISS;
crossed:
	return POP_CROSSED;
}

/* Pop an entry of class cls into *e; false if the stack is empty. */
NH_INLINE bool mcache_pop_class(unsigned cls, uintptr_t *e)
{
	uintptr_t v;
	NH_RSEQ_POP_CLASS(nh_fast.rseq_off, nh_fast.pcpu_base, (uintptr_t)cls, v, miss);
	*e = v;
	return true;
miss:
	return false;
}

/* Push p on header h (mc_hoff of its node and class; bits 0-3 are
 * ignored: free passes its page entry); false if the stack is full or the
 * slab is another node's. */
NH_INLINE bool mcache_push(uintptr_t h, uintptr_t p)
{
	NH_RSEQ_PUSH(nh_fast.rseq_off, nh_fast.pcpu_base, h, p, miss);
	return true;
miss:
	return false;
}

#endif /* NUMAHEAP_MCACHE_H */
