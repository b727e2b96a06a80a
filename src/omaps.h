/*
 * omaps.h — the two bitmaps of an ordered span (ordered.c): where its
 * objects start and end, and the holes between them.
 *
 * An ordered span has 512 granules (16 bytes in band 0, 128 in band 1).
 * Its struct's alloc_bits hold start[] (words 0-7: an object starts at
 * granule g) and end[] (words 8-15: an object ends at g). Bits are set and
 * cleared with atomic read-modify-writes and read with atomic loads: a P
 * sets bits in its hole while frees clear others in the same words.
 */
#ifndef NUMAHEAP_OMAPS_H
#define NUMAHEAP_OMAPS_H

#include "mspan.h"

#define OGRANS 512
#define OWORDS (OGRANS / 64)
_Static_assert(2 * OWORDS <= NH_SPAN_BITMAP_WORDS, "an ordered span's two maps fit in alloc_bits");

NH_INLINE uint64_t *start_map(const struct mspan *s) { return (uint64_t *)&s->alloc_bits[0]; }
NH_INLINE uint64_t *end_map(const struct mspan *s) { return (uint64_t *)&s->alloc_bits[OWORDS]; }

NH_INLINE bool bit_test(const uint64_t *m, unsigned g)
{
	return (__atomic_load_n(&m[g / 64], __ATOMIC_ACQUIRE) >> (g % 64)) & 1;
}

NH_INLINE void bit_set(uint64_t *m, unsigned g) { __atomic_fetch_or(&m[g / 64], (uint64_t)1 << (g % 64), __ATOMIC_RELEASE); }
NH_INLINE void bit_clear(uint64_t *m, unsigned g) { __atomic_fetch_and(&m[g / 64], ~((uint64_t)1 << (g % 64)), __ATOMIC_RELEASE); }

/* The first set bit of m at or after g; OGRANS if none. */
NH_INLINE unsigned next_bit(const uint64_t *m, unsigned g)
{
	while (g < OGRANS) {
		uint64_t w = __atomic_load_n(&m[g / 64], __ATOMIC_ACQUIRE) >> (g % 64);
		if (w)
			return g + (unsigned)nh_ctz64(w);
		g = (g | 63) + 1;
	}
	return OGRANS;
}

/* The first hole of at least need granules at or after b, a boundary:
 * [*lo, *hi). Lock held. */
NH_INLINE bool find_hole(const struct mspan *s, unsigned b, unsigned need, unsigned *lo, unsigned *hi)
{
	while (b < OGRANS) {
		if (bit_test(start_map(s), b)) {
			b = next_bit(end_map(s), b) + 1;
			continue;
		}
		unsigned e = next_bit(start_map(s), b);
		if (e - b >= need) {
			*lo = b;
			*hi = e;
			return true;
		}
		b = e;
	}
	return false;
}

/* The last set bit of m at or before g; OGRANS if none. */
NH_INLINE unsigned prev_bit(const uint64_t *m, unsigned g)
{
	for (;;) {
		uint64_t w = __atomic_load_n(&m[g / 64], __ATOMIC_ACQUIRE) & (((uint64_t)2 << (g % 64)) - 1);
		if (w)
			return (g & ~63u) + 63 - (unsigned)__builtin_clzll(w);
		if (g < 64)
			return OGRANS;
		g = (g & ~63u) - 1;
	}
}

#endif
