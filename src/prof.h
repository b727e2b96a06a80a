/*
 * prof.h — heap profiling: who holds the memory, per NUMA node (prof.c).
 *
 * Go's design (MemProfileRate): the bytes allocated are counted down to
 * the next sample, the intervals drawn from an exponential distribution
 * with a mean of NUMAHEAP_PROF_RATE, so that a block of n bytes is sampled
 * with probability 1 - exp(-n / rate); a sampled block records its stack,
 * its size and its node, and its free is noticed, so the in-use figures
 * stay right. A sampled block gets a span of its own (tcmalloc's way): its
 * page's size class is 0, so free finds it on the path large objects take
 * already, and free's fast path has nothing to test.
 *
 * Where the count is kept: blocks of a size class are counted by their P's
 * sample bank for the class (samplebank.c), in objects of the
 * class's size, each interval drawn as the byte countdown's would be; so
 * malloc's fast path is the same instructions with profiling on as off,
 * and only its slow path looks at the count. Larger blocks, and threads
 * without a P, count down this thread's bytes (nh_prof_countdown), as Go
 * does. With profiling off nothing here runs. free is unchanged either
 * way: only a sampled block's page fails its checks (its span is a large
 * one).
 */
#ifndef NUMAHEAP_PROF_H
#define NUMAHEAP_PROF_H

#include "internal.h"

struct mspan;

/* Profiling is on (NUMAHEAP_PROF=1); set once at initialisation. */
extern bool nh_prof_on;
/* Bytes this thread allocates before its next sample (blocks not counted
 * by a sample bank). */
extern __thread int64_t nh_prof_countdown __attribute__((tls_model("initial-exec")));

/* At initialisation, after the options; true if profiling is on. */
bool prof_init(void);

/* The countdown crossed zero (or was never drawn): is this block of n
 * bytes the sample? Draws the next countdown. */
bool prof_should_sample(size_t n);

/* A sample bank's interval (samplebank.c): the blocks of size bytes to serve
 * before the next sample, so that each is sampled with the chance a block
 * of that size has under the byte countdown. The calling thread's random
 * numbers. */
uint64_t prof_bank_interval(size_t size);
/* Inside the stack walker: this thread's mallocs are not sampled. */
bool prof_walking_now(void);

/* Count n bytes against this thread's countdown: true when it crossed
 * zero (then prof_should_sample decides). malloc's path for blocks past
 * the size classes (api.c, malloc_special). */
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
 * (the return address of the API function the program called) outwards.
 * NULL with errno ENOMEM. Takes the profile lock; holds no other.
 */
void *prof_alloc(size_t n, size_t align, bool zero, uintptr_t ret);
/* The same for malloc(n) sampled by its class's bank: its chance was that
 * of a block of the class's size, wsize, which its weight follows. */
void *prof_alloc_bank(size_t n, size_t wsize, uintptr_t ret);
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
