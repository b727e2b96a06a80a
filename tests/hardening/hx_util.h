// hx_util.h — helpers shared by the hardening suites: the report format of
// bad frees, content patterns, a small RNG, and ways to keep the compiler
// from seeing through allocations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/resource.h>

#include "../common/rng.h"

extern "C" {
// C23; glibc 2.36's headers do not declare them yet, numaheap exports them.
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);
}

namespace hx {

// Keep the compiler from reasoning about (and eliding) an allocation.
static inline void escape(const void *p) { asm volatile("" : : "g"(p) : "memory"); }

// A value the compiler cannot see through.
template <class T> static inline T opaque(T v)
{
	asm volatile("" : "+r"(v));
	return v;
}

static inline void *opaque_ptr(const void *p) { return opaque((void *)p); }

constexpr size_t kPage = 8192;       // numaheap's page
constexpr size_t kMaxSmall = 32768;  // largest size class
constexpr uintptr_t kHeapBase = 0x100000000000ull;

static inline size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// "numaheap: api(0x...): reason; aborting", as a regex; reason is a regex.
static inline std::string addr(const void *p)
{
	char b[32];
	snprintf(b, sizeof b, "%p", p);
	return b;
}

static inline std::string msg(const char *api, const void *p, const std::string &reason)
{
	return std::string("numaheap: ") + api + "\\(" + addr(p) + "\\): " + reason + "; aborting";
}

// Plain strings: no allocation in static initialisers (the fault probe starts
// with no heap at all).
static const char kDouble[] = "double free";
static const char kNotOurs[] = "invalid pointer \\(not allocated by numaheap\\)";
static const char kInterior[] = "invalid pointer \\(inside an object, not its start\\)";
static const char kNotInUse[] = "pointer not in use \\(double free, or never allocated\\)";
static const char kCorrupt[] = "freed object was written after free, or freed twice \\(heap corruption\\)";
static const char kOverflow[] = "heap overflow \\(the canary after the object was overwritten\\)";

// No core files from the intended aborts.
struct NoCoreDumps {
	NoCoreDumps()
	{
		struct rlimit r = {0, 0};
		setrlimit(RLIMIT_CORE, &r);
	}
};

using ::Rng;
using ::mix64;

// Byte i of object id's pattern: distinct per object and per position, so a
// block handed out twice, a stale copy or a shifted memcpy is caught.
static inline uint8_t pattern_byte(uint64_t id, size_t i) { return (uint8_t)(mix64(id + (i >> 3) * 0x9E3779B97F4A7C15ull) >> (8 * (i & 7))); }

static inline void fill(void *p, size_t n, uint64_t id)
{
	uint8_t *b = (uint8_t *)p;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w = mix64(id + (i >> 3) * 0x9E3779B97F4A7C15ull);
		memcpy(b + i, &w, 8);
	}
	for (; i < n; i++)
		b[i] = pattern_byte(id, i);
}

// The index of the first wrong byte, or (size_t)-1.
static inline size_t check(const void *p, size_t n, uint64_t id)
{
	const uint8_t *b = (const uint8_t *)p;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		if (w != mix64(id + (i >> 3) * 0x9E3779B97F4A7C15ull))
			break;
	}
	for (; i < n; i++)
		if (b[i] != pattern_byte(id, i))
			return i;
	return (size_t)-1;
}

static inline bool is_zero(const void *p, size_t n)
{
	const uint8_t *b = (const uint8_t *)p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

// Resident set size of this process, in bytes.
static inline size_t rss_bytes()
{
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	unsigned long size = 0, res = 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return res * 4096;
}

} // namespace hx
