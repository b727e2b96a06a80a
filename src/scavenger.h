/*
 * scavenger.h — returning memory to the OS (scavenger.c; split huge pages:
 * hugepages.c; pre-faulting: prefault.c), and the background thread that
 * does it among its other jobs (bgthread.c).
 */
#ifndef NUMAHEAP_SCAVENGER_H
#define NUMAHEAP_SCAVENGER_H

#include "internal.h"

struct os_batch;

/* NUMAHEAP_SCAVENGER */
enum { SCAV_IO_URING = 0, SCAV_MADVISE = 1, SCAV_OFF = 2 };
/* NUMAHEAP_THP_ADAPT */
enum { THP_ADAPT_OFF = 0, THP_ADAPT_ON = 1, THP_ADAPT_BASE = 2 };

/* Written by the background thread or under scav_lock; read racily by stats.c. */
struct nh_scav_stats {
	const char *backend;	/* "io_uring", "madvise", "off", or "pending" */
	int running;		/* the background thread runs */
	int uring_failed;	/* io_uring was asked for and could not be set up */
	uint64_t passes;
	uint64_t bg_released_bytes;
	uint64_t sync_released_bytes; /* malloc_trim, numaheap_release, the limit */
	uint64_t sync_releases;	/* releases of everything: those calls (under scav_lock) */
	_Atomic uint64_t trims_paced; /* malloc_trim calls that came before their turn (released nothing) */
	uint64_t submissions;	/* madvise runs submitted through io_uring */
	uint64_t syscalls;	/* synchronous madvise calls */
	uint64_t bg_syscalls;	/* io_uring_enter or madvise calls of the thread */
	uint64_t cpu_ns;	/* time the background thread spent working (wall, an upper bound of its CPU) */
	uint64_t limit_hits;	/* synchronous scavenges forced by the memory limit */
	uint64_t cache_drained_objects; /* objects drained from idle CPUs' caches */
	uint64_t evacuations;	 /* spans put under evacuation (mcentral.c) */
	uint64_t evacuated;	 /* of those, emptied and given back to the heap */
	uint64_t evac_stalls;	 /* of those, put back to use: they stopped emptying */
	const char *prefault;	/* "on", "off" or "unsupported" (kernel before 5.14) */
	uint64_t prefault_episodes;	/* times the heap grew back into released memory (or fresh, when large) */
	uint64_t prefault_ns;	/* time spent doing it (wall) */
	uint64_t prefault_huge_ns;	/* moving average of the thread's CPU time per huge page faulted in */
	uint64_t prefault_fresh_offs;	/* times fresh growth was left to the program (fresh memory faults in quickly here) */
	uint64_t fresh_base_switches;	/* times new arenas were put on base pages (fresh huge pages slow, CPUs busy) */
	_Atomic uint64_t base_arena_bytes;	/* arenas mapped on base pages for that reason */
	uint64_t subreleased_bytes;	/* released from huge pages still in use (the subrelease) */
	uint64_t retained_released_bytes; /* released once idle for NUMAHEAP_SCAVENGE_RETAIN_TIME, whatever the goal */
	uint64_t span_released_bytes;	/* released inside spans still in use (the in-span release) */
	uint64_t budget_cuts;	/* background passes the CPU budget stopped with work left */
	const char *collapse;	/* "on", "off" or "unsupported" (kernel before 6.1) */
	uint64_t collapses;	/* split huge pages made whole again (MADV_COLLAPSE) */
	uint64_t base_collapses;	/* of collapses: huge pages grown on base pages (fresh huge pages slow) */
	uint64_t collapse_failures;	/* collapses the kernel refused (no huge page to be had) */
	uint64_t collapse_moves;	/* of collapses, interleave mode: moved to their turn's node */
	unsigned delay_shift;	/* the background delays are the options' << this (churn back-off) */
	uint64_t churn_events;	/* background releases the program soon grew back into */
};
extern struct nh_scav_stats nh_scav; /* scavenger.c */

/* ------------------------------------------------------------------------
 * For the rest of the allocator.
 * ------------------------------------------------------------------------ */

/* scavenger.c: the release policy. */
/* At initialisation (no lock). */
void scavenger_init(void);
/* Above NUMAHEAP_MEMORY_LIMIT, scavenge now: as scavenge_now. No lock held. */
void scavenger_check_limit(void);
/* Release free memory now, in this thread: all of it, or down to the goal.
 * No lock held; takes scav_lock, and each heap's lock around each batch
 * (never across the system call). */
size_t scavenge_now(bool all);
/* malloc_trim's pacing (scavenger.c): the time this call starts at if it may
 * release, 0 if not (counted in trims_paced); and what a call that started
 * at start and released bytes spent. No lock. */
uint64_t scavenger_trim_turn(void);
void scavenger_trim_spent(uint64_t start, size_t released);
/* A malloc_trim call was paced less than a second before now: no
 * pre-faulting, no collapsing. No lock. */
bool scavenger_trims_paced(uint64_t now);
/* fork's handlers: take or drop scav_lock (rank SCAV). */
void scavenger_fork_lock(bool lock);
void scavenger_fork_child(void);

/* bgthread.c: the background thread. */
void scavenger_heap_grew(void);
/* A span took released pages (heap lock may be held): wake the pre-faulting. */
void scavenger_regrowing(void);
/* Start the background thread if it is wanted and not running (slow paths).
 * No allocator lock may be held: creating a thread allocates. */
void scavenger_poll(void);
/* Stop the background thread and wait until it has exited (bgthread.c):
 * for a call that needs the process to have one thread. No allocator lock
 * held; the next slow path starts the thread again. */
void scavenger_thread_stop(void);
void scavenger_install_signal(void);

/* ------------------------------------------------------------------------
 * Between scavenger.c and bgthread.c.
 * ------------------------------------------------------------------------ */

/* scavenger.c, for the thread. One background pass over every node
 * through b: bytes released; *due gets the time at which the next busy
 * chunk or class turns idle (0: none; now: the pass was cut short). Its
 * subrelease, in-span release and collapse steps stop once budget_ns
 * have gone by; n counts the mallocs so far by class, and dates each
 * class's last (which classes are idle; proc_count_allocs, at now);
 * quiet_ns is how long the program has made no malloc at all. Takes each
 * heap's lock per batch. */
struct alloc_counts; /* proc.h */
size_t scavenge_background(uint64_t now, struct os_batch *b, uint64_t *due, uint64_t budget_ns,
			   const struct alloc_counts *n, uint64_t quiet_ns);
/* scav_lock, which a pre-faulting episode holds through each look. */
void scavenger_lock(void);
void scavenger_unlock(void);
/* Released memory the program has taken back so far, every node (pages
 * handed out again or faulted in ahead, OS pages inside spans; racy sums). */
uint64_t scavenger_regrown_bytes(void);
/* Memory of every heap that is mapped and not released: what the memory
 * limit limits (racy sums; no lock). */
size_t scavenger_resident_bytes(void);

/* prefault.c. One look of pre-faulting at every node's window, scav_lock held: 0, or
 * -1 if the kernel cannot pre-fault. *last_work gets the time of the last
 * node that faulted something in. */
int prefault_pass(uint64_t *last_work);
/* The next episode's program starts from anywhere. quiet: the episode
 * ends because the heap stopped growing (not because of a release of
 * everything, which the program may already be growing back from); then a
 * heap that grew back since the episode's last look at it keeps its
 * fronts, and the result is false: the episode must look again. Takes
 * each heap's lock. */
bool prefault_forget_fronts(bool quiet);
/* Instead of an episode, while malloc_trim calls are paced: time a fresh
 * huge page if none was yet, and decide whether new arenas go on base
 * pages. scav_lock held. */
void prefault_probe(void);
/* Is fresh growth worth faulting in ahead here (prefault.c)? Any thread. */
bool prefault_fresh_wanted(void);
/* bytes of fresh pages were handed out (mheap.c). Any thread. */
void prefault_note_fresh(size_t bytes);
/* Should new arenas go on base pages (prefault.c: fresh huge pages are
 * slow here and the program keeps its CPUs busy)? Any thread. */
bool prefault_fresh_on_base(void);

struct mheap;
/* hugepages.c, for the policy. Mark the n huge pages at hps, just split
 * by a release, MADV_NOHUGEPAGE (no lock needed). */
void hugepages_mark_split(const uintptr_t *hps, unsigned n);
/* Make the split huge pages of h that the program grew back into whole,
 * until deadline: true if it stopped there with work left. Takes h's lock
 * and scav_lock, never together across a system call. Background thread. */
bool hugepages_collapse(struct mheap *h, uint64_t now, uint64_t deadline);

/* bgthread.c, for the policy. */
void bg_init(bool prefault);
void bg_prefault_cancel(void);
void bg_fork_child(void);

#endif /* NUMAHEAP_SCAVENGER_H */
