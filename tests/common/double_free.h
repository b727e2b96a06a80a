// double_free.h — shared by the bad-free tests (api, hardening): how a double
// free of a small object is caught, and how a test brings it out.
//
// The default mode does not read the object in free (a cold object would
// stall every free on the miss; src/fastpath.h, entry_to_object). The
// second free pushes a second cache entry; the double free is caught when
// one of the two would be handed out again ("malloc(p): freed object was
// written after free, or freed twice") or goes back to its span ("free(p):
// double free ..."), before the object can be handed out twice. Hardened
// mode also checks in free and names the second free itself.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "numaheap.h"
#include "cpu_pin.h"

namespace dfree {

// Every thread of the (death-test) process on the CPU it runs on now, so
// that the entries of a double free made on several threads share a cache.
inline void pin_to_one_cpu() { pin_to_current_cpu(); }

// Allocate objects of n bytes until a duplicate entry comes out (this
// CPU's cache, then the transfer cache), then give this CPU's cache back
// to the spans, which checks what is left.
inline void reuse(size_t n)
{
	size_t k = std::min<size_t>(4096, (size_t(64) << 20) / n);
	for (size_t i = 0; i < k; i++) {
		void *q = malloc(n);
		asm volatile("" : : "g"(q) : "memory");
	}
	numaheap_release();
}

// The report of a double free of p, in either mode, as a regex.
inline std::string caught(const void *p)
{
	char a[32];
	snprintf(a, sizeof a, "%p", p);
	return std::string("numaheap: (malloc\\(") + a +
	       "\\): freed object was written after free, or freed twice \\(heap corruption\\)|free\\(" + a +
	       "\\): (double free[^;\n]*|pointer not in use \\(double free, or never allocated\\))); aborting";
}

} // namespace dfree
