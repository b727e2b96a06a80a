/*
 * prof.h — heap profiling: who holds the memory, per NUMA node (prof.c).
 *
 * Go's design (MemProfileRate): each thread counts down the bytes it
 * allocates to its next sample, the intervals drawn from an exponential
 * distribution with a mean of NUMAHEAP_PROF_RATE; a sampled block records
 * its stack, its size and its node, and its free is noticed, so the in-use
 * figures stay right. A sampled block gets a span of its own (tcmalloc's
 * way): its page's size class is 0, so free finds it on the path large
 * objects take already, and free's fast path has nothing to test.
 *
 * With profiling off, nothing here runs: malloc's per-CPU and per-thread
 * fast paths never read this header's state. With it on, malloc_limit is 0
 * and nh_fast.plain PLAIN_PROF, which sends every malloc to malloc_other
 * (api.c): small blocks are popped on their class header's clock (the
 * counted pops, mcache.h), which leave for prof_clock_crossed at the end
 * of an interval; the aligned allocations past 16 bytes that take no
 * class, larger blocks and a refill's direct object count on the thread's
 * countdown below. free is unchanged either way: only a sampled block's
 * page fails its checks (its span is a large one).
 */
#ifndef NUMAHEAP_PROF_H
#define NUMAHEAP_PROF_H

#include "internal.h"

struct mspan;

/* Profiling is on (NUMAHEAP_PROF=1); set once at initialisation. */
extern bool nh_prof_on;
/* Bytes this thread allocates before its next sample. */
extern __thread int64_t nh_prof_countdown __attribute__((tls_model("initial-exec")));

/* At initialisation, after the options; true if profiling is on. */
bool prof_init(void);

/* The countdown crossed zero (or was never drawn): is this block of n
 * bytes the sample? Draws the next countdown. */
bool prof_should_sample(size_t n);

/* The pops of class cls until its clock's next sample on a P, drawn
 * (mcache.c, the clock). */
uint64_t prof_clock_draw(unsigned cls);

/* A counted pop of class cls crossed its header's clock: is this block the
 * sample? Starts the clock's next interval if so. Takes the P (its slab's
 * lock, per-CPU). */
bool prof_clock_crossed(unsigned cls);

/* Count n bytes against this thread's countdown: true when it crossed
 * zero (then prof_should_sample decides). malloc's profiling path
 * (api.c, malloc_other): a subtract from the thread-local word and a
 * branch. */
NH_INLINE bool prof_count(size_t n)
{
	nh_prof_countdown -= (int64_t)n;
	return nh_prof_countdown < 0;
}

/* Count n bytes against this thread's countdown: true when this block is
 * to be sampled. */
NH_INLINE bool prof_tick(size_t n)
{
	nh_prof_countdown -= (int64_t)n;
	return NH_UNLIKELY(nh_prof_countdown < 0) && prof_should_sample(n);
}

/*
 * The sampled allocation: a span of its own for n bytes (aligned to align,
 * zeroed if zero), its stack recorded from the frame that returns to ret
 * (the return address of the API function the program called) outwards,
 * weighted by the chance that a block of counted bytes (what its clock
 * counted: its class's size, or n) is sampled.
 * NULL with errno ENOMEM. Takes the profile lock; holds no other.
 */
void *prof_alloc(size_t n, size_t counted, size_t align, bool zero, uintptr_t ret);
/* A sampled span is being freed (free_large): its bucket's in-use figures
 * go down. Takes the profile lock. */
void prof_free(struct mspan *s);

/* Write the profile (pprof's format, or gperftools' text format if the
 * path ends in ".heap") to path, "%p" replaced by the process id; NULL:
 * NUMAHEAP_PROF_FILE. 0, or -1 (errno set). Takes the profile lock. */
int prof_dump(const char *path);
/* The background thread's periodic dump (NUMAHEAP_PROF_INTERVAL): due? */
bool prof_interval_due(uint64_t now_ns);

/* fork: the profile lock around it (proc.c). */
void prof_fork_lock(bool lock);
void prof_fork_child(void);

#endif /* NUMAHEAP_PROF_H */
