// stress_util.h — shared by the stress suites: a fast per-thread RNG, size
// distributions, and content patterns (each object is filled with a pattern
// derived from its identity and checked before it is freed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <malloc.h>

#include "../common/rng.h"

// Mostly small, some medium, a few large (> 32 KiB: page runs).
inline size_t random_size(Rng &r, unsigned large_permille = 15, size_t large_max = 256 << 10)
{
	unsigned x = (unsigned)r.below(1000);
	if (x < large_permille)
		return r.range(32769, large_max);
	if (x < 700)
		return r.range(0, 256);
	if (x < 930)
		return r.range(257, 4096);
	return r.range(4097, 32768);
}

// Heap profiling on (stress.prof.*): a block of the threads' own machinery
// that outlives them (TLS, stdio buffers) may have been sampled, which
// makes it a large object, so mallinfo's large-object count is no measure
// of a leak then.
inline bool heap_profiling_on()
{
	const char *p = getenv("NUMAHEAP_PROF");
	return p && strcmp(p, "0") != 0;
}

// Word i of the pattern for object id: distinct per object and per word, so a
// block handed out twice, a stale copy, or a shifted memcpy is caught.
inline uint64_t pattern_word(uint64_t id, size_t i) { return mix64(id) + i * 0x9E3779B97F4A7C15ull; }

inline void fill(void *p, size_t n, uint64_t id)
{
	unsigned char *b = (unsigned char *)p;
	size_t words = n / 8;
	for (size_t i = 0; i < words; i++) {
		uint64_t w = pattern_word(id, i);
		memcpy(b + 8 * i, &w, 8);
	}
	uint64_t last = pattern_word(id, words);
	for (size_t j = 0; j < n % 8; j++)
		b[8 * words + j] = (unsigned char)(last >> (8 * j));
}

// True if the first n bytes hold the pattern of id.
inline bool verify(const void *p, size_t n, uint64_t id)
{
	const unsigned char *b = (const unsigned char *)p;
	size_t words = n / 8;
	for (size_t i = 0; i < words; i++) {
		uint64_t w;
		memcpy(&w, b + 8 * i, 8);
		if (w != pattern_word(id, i))
			return false;
	}
	uint64_t last = pattern_word(id, words);
	for (size_t j = 0; j < n % 8; j++)
		if (b[8 * words + j] != (unsigned char)(last >> (8 * j)))
			return false;
	return true;
}

inline bool is_zero(const void *p, size_t n)
{
	const unsigned char *b = (const unsigned char *)p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

inline bool aligned_ok(const void *p, size_t n)
{
	return ((uintptr_t)p & ((n <= 8 ? 8 : 16) - 1)) == 0;
}
