// api_util.h — small helpers shared by the API conformance suites.
#pragma once

#include <cstdlib>
#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" {
// C23; glibc 2.36's headers do not declare them yet, numaheap exports them.
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);
}

// Keep the compiler from reasoning about (and eliding) an allocation.
static inline void escape(const void *p) { asm volatile("" : : "g"(p) : "memory"); }

// A size the compiler cannot see through (so malloc(SIZE_MAX) is really called).
static inline size_t opaque(size_t n)
{
	asm volatile("" : "+r"(n));
	return n;
}

static inline bool aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

// The alignment every malloc result must have: 16 (glibc's), or 8 for
// requests of 8 bytes or less when NUMAHEAP_MIN_ALIGN=8 asks for the 8-byte class.
static inline bool tiny_class_on()
{
	const char *e = getenv("NUMAHEAP_MIN_ALIGN");
	return e && e[0] == '8' && e[1] == 0;
}
static inline size_t min_align(size_t n) { return n <= 8 && tiny_class_on() ? 8 : 16; }

// Fill n bytes with a pattern derived from seed; check_pattern verifies it.
static inline uint8_t pattern_byte(uint64_t seed, size_t i)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + i;
	x ^= x >> 29;
	return (uint8_t)(x ^ (x >> 8) ^ (i >> 8));
}

static inline void fill_pattern(void *p, size_t n, uint64_t seed)
{
	uint8_t *b = (uint8_t *)p;
	for (size_t i = 0; i < n; i++)
		b[i] = pattern_byte(seed, i);
}

// The index of the first wrong byte, or (size_t)-1.
static inline size_t check_pattern(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = (const uint8_t *)p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != pattern_byte(seed, i))
			return i;
	return (size_t)-1;
}

static inline bool all_bytes(const void *p, size_t n, uint8_t v)
{
	const uint8_t *b = (const uint8_t *)p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

static constexpr size_t kPage = 8192;       // numaheap's page
static constexpr size_t kMaxSmall = 32768;  // largest size class
static inline size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
// The usable size of a large object (n > kMaxSmall): whole pages, an even
// number of them from 17 to 32 pages (the large-span cache's rounding).
static inline size_t large_usable(size_t n)
{
	size_t pages = round_up(n, kPage) / kPage;
	if (pages > 16 && pages <= 32)
		pages = round_up(pages, 2);
	return pages * kPage;
}
