/*
 * arch.h — the CPU contract. src/ reaches the processor only through these
 * helpers; each architecture directory implements them and refuses to build
 * elsewhere.
 *
 *   nh_ctz64(x), nh_clz64(x)  count trailing/leading zeros; x != 0
 *   nh_popcount64(x)          number of set bits
 *   nh_cpu_relax()            spin-wait hint (pause / yield)
 *   nh_prefetch_w(p)          prefetch a line for writing
 *   nh_cycles()               a cheap monotonic-ish cycle counter for pacing
 *   nh_mul_below(x, m, a)     (uint32_t)(x * *m + *a) < *m, reading *m and *a
 *                             where they are (free's interior-pointer check)
 *   nh_xor_is_zero(w, x)      *w ^= x; whether *w is now 0 (malloc's check
 *                             and clearing of a free mark, in one)
 *   NH_CACHE_LINE             line size used for padding shared data
 *   NH_RSEQ_SUPPORTED         1: the restartable sequences below exist
 *   NH_RSEQ_SIG               the signature before every rseq abort handler
 *   NH_DLOPEN_STUB            top-level assembly defining dlopen(file, mode)
 *                             as: mode &= nh_dlopen_mask, then a tail jump
 *                             to nh_dlopen_next (after calling
 *                             nh_dlopen_resolve while that is still NULL;
 *                             NULL from it: return NULL). A jump, not a
 *                             call: glibc's dlopen reads its return address
 *                             to find its caller, whose RUNPATH and
 *                             namespace it uses (src/dlopen.c)
 *
 * NH_ARCH_RSEQ_H names the architecture's restartable-sequence operations
 * on per-CPU mcache slabs (x86_64/rseq.h documents them); src/mcache.h
 * includes it. arch/rseq.h, which it includes, registers the rseq area,
 * answers which CPU a thread runs on, and names the slab offsets the
 * sequences use. Nothing in arch/ includes anything from src/.
 */
#ifndef NUMAHEAP_ARCH_H
#define NUMAHEAP_ARCH_H

#include <stdint.h>

static inline unsigned nh_ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
static inline unsigned nh_clz64(uint64_t x) { return (unsigned)__builtin_clzll(x); }
#if defined(__POPCNT__) || defined(__aarch64__)
static inline unsigned nh_popcount64(uint64_t x) { return (unsigned)__builtin_popcountll(x); }
#else
/* Baseline x86-64 has no POPCNT: the builtin would call libgcc's
 * __popcountdi2 (seen in page-heap profiles); the same sum of bits inline. */
static inline unsigned nh_popcount64(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (unsigned)((x * 0x0101010101010101ULL) >> 56);
}
#endif
static inline void nh_prefetch_w(const void *p) { __builtin_prefetch(p, 1, 3); }

#if defined(__x86_64__)
#include "x86_64/arch.h"
#define NH_ARCH_RSEQ_H "x86_64/rseq.h"
#elif defined(__aarch64__)
#include "aarch64/arch.h"
#define NH_ARCH_RSEQ_H "aarch64/rseq.h"
#else
#error "numaheap: unsupported architecture (add arch/<arch>/arch.h)"
#endif

#endif /* NUMAHEAP_ARCH_H */
