/*
 * proc.h — P's and M's: per-CPU and per-thread allocator state (proc.c).
 */
#ifndef NUMAHEAP_PROC_H
#define NUMAHEAP_PROC_H

#include "internal.h"

struct mcache;
struct pctx;

/* ------------------------------------------------------------------------
 * P's and M's (proc.c).
 *
 * An M is a thread's allocator state (Go's M); a P is an allocation context
 * owning an mcache (Go's P): one per CPU (rseq mode) or one per thread.
 * The allocation counts live in the caches' class headers either way. The
 * rseq area and the CPU number are arch/'s (arch/rseq.h).
 * ------------------------------------------------------------------------ */
enum cpu_mode { CPU_MODE_PER_THREAD = 0, CPU_MODE_RSEQ = 1 };
/* nh_fast.plain, once initialisation is done: PLAIN_RSEQ or
 * PLAIN_PER_THREAD, the modes with malloc's fast path; above them the
 * modes whose every malloc goes the general way: PLAIN_NO (hardened) and
 * PLAIN_PROF (heap profiling on, set last), so one compare tells malloc's
 * general path (api.c, malloc_other) it has nothing special to do. */
enum { PLAIN_RSEQ = 0, PLAIN_PER_THREAD = 1, PLAIN_NO = 2, PLAIN_PROF = 3 };

struct m {
	struct mcache *cache; /* the thread's per-thread P's cache */
	struct m *next;	      /* allm list; under allm lock */
	struct m *prev;
	uint32_t id;
};

/* The P (cache context) of the calling thread now: its CPU's (lock taken)
 * or its own. false: none (a thread being torn down, or out of memory).
 * Takes the CPU slab's lock (rank PCACHE) and returns with it held; a new
 * thread's first call takes allm_lock too. No other lock may be held. */
bool proc_acquire_p(struct pctx *x);
/* Drops the slab lock proc_acquire_p took (per-CPU P's). */
void proc_release_p(struct pctx *x);
/* At initialisation (no lock). */
void proc_init(void);
/* Heap node of the CPU the calling thread runs on: arch/'s CPU
 * (nh_cpu_current), numa/'s heap node for it (numa_heap_node_of_cpu). */
int proc_current_node(void);
/* Sum the allocation counts of every cache, per-CPU and per-thread, into
 * out[]; with quiet (else NULL), quiet[k] gets the cycle count (nh_cycles)
 * by which every cache served its last malloc of class k, from the caches'
 * slow-path stamps (mcache.quiet), UINT64_MAX where one served a
 * malloc after its stamp. Takes allm_lock (racy reads of the caches). */
void proc_sum_allocs(uint64_t out[NH_NUM_CLASSES], uint64_t *quiet);
/* The background thread's count of mallocs so far by class (0: large),
 * every cache and the direct ones, at ns (cycles): since[k] is the latest
 * time the last of class k can have been made, from the stamps where they
 * tell, else ns. */
struct alloc_counts {
	uint64_t allocs[NH_NUM_CLASSES], since[NH_NUM_CLASSES];
	uint64_t ns, cycles;
};
/* Count into n, dating the stamps between last's clocks (the previous
 * count; 0: none) and n's. Returns n->ns. Takes allm_lock. */
uint64_t proc_count_allocs(struct alloc_counts *n, const struct alloc_counts *last);
/* A cycle count s as a time, in proportion between last's clocks (0:
 * none) and (ns, cyc), whose rate need not be known: last's time if s is
 * before them, ns if past (ns, cyc) or not known (UINT64_MAX). */
uint64_t proc_cycles_time(uint64_t s, const struct alloc_counts *last, uint64_t ns, uint64_t cyc);
/* Count objects held in the caches of node node (every cache if node < 0),
 * by class. Takes allm_lock. */
void proc_sum_cached(uint64_t out[NH_NUM_CLASSES], int node);
/* Drain the caches of CPUs no slow path has used for idle_ns (a background
 * pass at time now; a slow path dated by its stamp, between last's clocks
 * and now); *due gets when the next cache holding objects turns idle
 * (unchanged if none). Objects drained. Takes each idle CPU's slab lock in
 * turn, and the central locks under it. */
size_t proc_drain_idle(uint64_t now, uint64_t idle_ns, uint64_t *due, const struct alloc_counts *last);
/* Drain every CPU's slab now (malloc_trim, numaheap_release), moving the
 * calling thread onto each CPU that holds objects, then back to its own
 * mask. false where that cannot be done (per-thread caches, the basic
 * system calls, a thread without rseq): the caller drains its own P. Takes
 * each slab's lock in turn, and the central locks under it; no allocator
 * lock held. */
bool proc_drain_all(void);
/* Takes allm_lock. */
void proc_sum_cache_stats(uint64_t *refills, uint64_t *flushes, uint64_t *caches, uint64_t *aborts);
/* fork (fork.c): the CPU slabs' locks and allm_lock, taken (lock) or
 * dropped; in the child, all reset, and, if the parent's fork took them
 * (consistent), the other threads' caches given back. */
void proc_fork_lock(bool lock);
void proc_fork_child(bool consistent);
/* The pthread_atfork handlers, registered once (fork.c). */
void fork_register_handlers(void);
/* Mallocs served without a cache, by class (0: every large object), and
 * the latest cycle count (nh_cycles) at which one of each was served. */
extern _Atomic uint64_t nh_direct_allocs[NH_NUM_CLASSES];
extern _Atomic uint64_t nh_direct_cycles[NH_NUM_CLASSES];

/* Count a malloc served without a cache: dated first (the latest date
 * wins), so that whoever sees the count sees a date at least as late. */
NH_INLINE void proc_count_direct(unsigned cls)
{
	uint64_t t = nh_cycles(), o = atomic_load_explicit(&nh_direct_cycles[cls], memory_order_relaxed);
	while (o < t && !atomic_compare_exchange_weak_explicit(&nh_direct_cycles[cls], &o, t, memory_order_relaxed,
								 memory_order_relaxed))
		;
	atomic_fetch_add_explicit(&nh_direct_allocs[cls], 1, memory_order_release);
}
extern _Atomic size_t nh_metadata_bytes[NH_MAX_NODES];

#endif /* NUMAHEAP_PROC_H */
