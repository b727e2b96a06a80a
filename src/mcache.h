/*
 * mcache.h — a P's cache of free objects (mcache.c), and its fast paths:
 * one pop, one push, inline (the end of this file).
 */
#ifndef NUMAHEAP_MCACHE_H
#define NUMAHEAP_MCACHE_H

#include "lock.h"
#include "proc.h"

/* ------------------------------------------------------------------------
 * mcache (mcache.c): a P's cache of free objects, one stack per size class.
 *
 * The cache is one block of NH_MCACHE_BYTES (a "slab"): a header, then
 * slots. Stack positions are 16-bit indices of 8-byte words from the slab's
 * start, so a class's stack is words [begin, begin + max) and holds
 * cur - begin objects; end (begin <= end <= begin + max) is its current
 * capacity. A class header is 16 bytes, its word changes by single stores, so an
 * all-zero header (cur == begin == end) means "not set up": every pop and
 * push misses on it and goes to the slow path, which sets it up.
 *
 * One layout serves both kinds of P:
 *   per-thread  the slab belongs to one thread (struct m.cache); plain code
 *   per-CPU     slab i of the region at nh_fast.pcpu_base belongs to CPU i; the
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

/* At initialisation (no lock). */
void mcache_layout_init(void);
/* A new cache: its owner's, or allm_lock held (per-thread), or the slab's
 * lock held (per-CPU). */
void mcache_init(struct mcache *c, int node, uint32_t id);
/* Set a per-CPU slab up; 0, or -1 if the thread left the CPU. The slab's
 * lock (x->c->lock) held. */
int mcache_init_pcpu(struct pctx *x, int node);
/* Refill class cls, the slab's lock held (per-CPU): 1 refilled (pop again),
 * 0 ENOMEM, 2 could not fill the stack (left the CPU): *direct is one entry
 * to serve. Takes the class's central locks (mcentral_refill). */
int mcache_refill(struct pctx *x, unsigned cls, uintptr_t *direct);
void mcache_spread_lines(uintptr_t *v, unsigned n);
/* Overflow path of a push, the slab's lock held: 1 done, -1 left the CPU.
 * Takes the class's central locks (mcentral_release). */
int mcache_overflow(struct pctx *x, unsigned cls, uintptr_t p);
/* Free an object owned by another node through the remote buffer; the
 * cache's owner (per-CPU: its slab's lock held). Takes central locks when
 * the buffer is flushed. */
void mcache_free_remote(struct mcache *c, uintptr_t p);
void mcache_flush_remote(struct mcache *c); /* as mcache_free_remote */
/* Give every cached object back to mcentral; -1 if the thread left the CPU.
 * The slab's lock held (per-CPU); takes central locks. */
int mcache_drain(struct pctx *x);
/* Racy reads for statistics: no lock. */
size_t mcache_cached_objects(const struct mcache *c, unsigned cls);
uint64_t mcache_allocs(const struct mcache *c, unsigned cls);
unsigned mcache_batch(unsigned cls);
unsigned mcache_max(unsigned cls);

/* An empty cache that misses on every class: the per-thread fast path's default. */
extern struct mcache nh_empty_mcache;
/* The calling thread's per-thread cache (per-thread mode), or nh_empty_mcache. */
extern __thread struct mcache *nh_tls_cache __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------------
 * The fast paths: one pop or one push on the calling thread's P, no lock.
 *
 * A per-CPU P is reached through a restartable sequence on the CPU's slab
 * (arch/<arch>/rseq.h), a per-thread P through nh_tls_cache. known is the
 * mode the caller has already seen in nh_fast.plain (PLAIN_RSEQ,
 * PLAIN_PER_THREAD), or PLAIN_NO to read cpu_mode here; it is a constant
 * at every call, so each inlined copy keeps only the code of its mode.
 * A miss (empty, full, not set up, no slab for this CPU) returns false:
 * the caller's slow path takes the P's lock and tries again.
 * ------------------------------------------------------------------------ */
NH_INLINE bool mcache_mode_is_rseq(int known)
{
	return known == PLAIN_RSEQ || (known == PLAIN_NO && NH_LIKELY(nh_fast.cpu_mode == CPU_MODE_RSEQ));
}

/* Pop an entry of class cls into *e; false if the stack is empty. */
NH_INLINE bool mcache_pop_fast(unsigned cls, uintptr_t *e, int known)
{
	if (mcache_mode_is_rseq(known)) {
		uintptr_t v;
		NH_RSEQ_POP(nh_fast.rseq_off, nh_fast.pcpu_base, nh_fast.pcpu_count, (uintptr_t)cls << 4, v, miss);
		*e = v;
		return true;
	}
	struct mcache *c = nh_tls_cache;
	struct mcache_class *k = &c->cls[cls];
	uint64_t w = k->word;
	if (NH_UNLIKELY((uint16_t)w == k->begin))
		return false;
	*e = mcache_slots(c)[(uint16_t)w - 1];
	k->word = w + 0xffff; /* cur - 1, allocs + 1 */
	nh_prefetch_w((void *)mcache_slots(c)[(uint16_t)w - 2]); /* the next pop's */
	return true;
miss:
	return false;
}

/* Push p, an object of node node, on class cls; false if the stack is full
 * or the P holds another node's objects. */
NH_INLINE bool mcache_push_fast(unsigned cls, uintptr_t p, unsigned node, int known)
{
	if (mcache_mode_is_rseq(known)) {
		/* The sequence also checks the slab's node. */
		NH_RSEQ_PUSH(nh_fast.rseq_off, nh_fast.pcpu_base, nh_fast.pcpu_count, (uintptr_t)cls << 4, p, node,
			     miss);
		return true;
	}
	struct mcache *c = nh_tls_cache;
	struct mcache_class *k = &c->cls[cls];
	uint64_t w = k->word;
	if (NH_UNLIKELY((uint16_t)w == k->end || k->node != node))
		return false;
	mcache_slots(c)[(uint16_t)w] = p;
	k->word = w + 1;
	return true;
miss:
	return false;
}

#endif /* NUMAHEAP_MCACHE_H */
