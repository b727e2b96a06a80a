/*
 * scavenger.h — returning memory to the OS, and the background thread (scavenger.c).
 */
#ifndef NUMAHEAP_SCAVENGER_H
#define NUMAHEAP_SCAVENGER_H

#include "internal.h"

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

#endif /* NUMAHEAP_SCAVENGER_H */
