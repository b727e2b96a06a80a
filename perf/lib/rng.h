/*
 * rng.h — the benchmarks' random numbers: xorshift64*, one state per
 * program (perf/micro, perf/rss, perf/kbypass include it). A program that
 * wants another sequence defines NHB_RNG_SEED before including it, or sets
 * rng_state at run time.
 */
#ifndef NHB_RNG_H
#define NHB_RNG_H

#include <stdint.h>

#ifndef NHB_RNG_SEED
#define NHB_RNG_SEED 0x9e3779b97f4a7c15ULL
#endif

static uint64_t rng_state = NHB_RNG_SEED;

static inline uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, 1). */
static inline double unit(void) { return (double)(rng() >> 11) / 9007199254740992.0; }

#endif
