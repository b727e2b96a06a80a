// rng.h — shared by the test suites (stress, hardening): a small, fast,
// seedable RNG (splitmix64) and the 64-bit mixer the content patterns are
// built on. Header-only, no allocation (the fault probe starts with no heap).
#pragma once

#include <cstddef>
#include <cstdint>

// MurmurHash3's finaliser: every input bit affects every output bit.
inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

// The seed is mixed into the state: splitmix64 walks its state in steps of
// 0x9E37..., so a state made linearly from the seed (seed * 0x9E37... + c)
// made Rng(n + 1) the stream of Rng(n) shifted by one value, and the
// threads of a test seeded n, n + 1, ... drew nearly the same sequence.
struct Rng {
	uint64_t s;
	explicit Rng(uint64_t seed) : s(mix64(seed + 0x632BE59BD9B4E019ull)) {}
	uint64_t next()
	{
		// splitmix64
		uint64_t z = (s += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		return z ^ (z >> 31);
	}
	size_t below(size_t n) { return (size_t)(next() % n); }
	size_t range(size_t lo, size_t hi) { return lo + below(hi - lo + 1); } // inclusive
};
