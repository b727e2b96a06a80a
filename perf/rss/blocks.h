/*
 * blocks.h — what mixed.c and steady.c share: the clock, the program's
 * table of live blocks (v[0..n), cap slots, live bytes requested), the
 * frees that leave 10% of them, and the idle phase's computation, which reads every live block without calling
 * the allocator.
 */
#ifndef NHB_RSS_BLOCKS_H
#define NHB_RSS_BLOCKS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "mixedheap.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct blk {
	unsigned char *p;
	size_t size;
};
static struct blk *v;
static size_t n, cap, live;

/* Free 90% of the blocks, as block_survives() says (mixedheap.h). */
static void free_most(size_t run_len)
{
	size_t keep = 0;
	for (size_t i = 0; i < n; i++) {
		if (block_survives(i, run_len)) {
			v[keep++] = v[i];
		} else {
			free(v[i].p);
			live -= v[i].size;
		}
	}
	n = keep;
}

/* Read the last byte of every live block for seconds; a hash, so the
 * reads are not optimised away. */
static uint64_t compute(double seconds)
{
	double end = now() + seconds;
	uint64_t h = 1469598103934665603ULL;
	while (now() < end)
		for (size_t i = 0; i < n && (i & 1023 || now() < end); i++)
			h = (h ^ v[i].p[v[i].size - 1]) * 1099511628211ULL;
	return h;
}

#endif
