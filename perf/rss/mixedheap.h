/*
 * mixedheap.h — the shape of mixed.c's heap, shared with placement.c (which
 * lays the same blocks out in a model) so that the two cannot drift apart:
 * the blocks' sizes and which of them survive the frees. Uses unit()
 * (perf/lib/rng.h, included before this file).
 */
#ifndef NHB_RSS_MIXEDHEAP_H
#define NHB_RSS_MIXEDHEAP_H

#include <math.h>
#include <stddef.h>

static inline size_t loguniform(double lo, double hi) { return (size_t)exp(log(lo) + unit() * (log(hi) - log(lo))); }

/* A block's size, by kind: small 90%, medium 9%, large 1%. */
static inline size_t mixed_size(void)
{
	double u = unit();
	if (u < 0.90)
		return loguniform(16, 512);
	if (u < 0.99)
		return loguniform(1024, 8192);
	return loguniform(65536, 1 << 20);
}

/* The runs pattern's run length unless the command line gives another. */
#define MIXED_RUN_LEN 32

/* Does block i survive the frees that leave 10%: with runs (run_len > 0),
 * one run of run_len consecutive blocks in ten; with run_len 0, each block
 * alone with probability 1/10 (a draw per block, in order). */
static inline int block_survives(size_t i, size_t run_len)
{
	return run_len ? (i / run_len) % 10 == 0 : unit() < 0.1;
}

#endif
