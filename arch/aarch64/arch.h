/* arch/aarch64/arch.h — AArch64 implementation of arch.h; see arch.h. */
#ifndef NUMAHEAP_ARCH_AARCH64_H
#define NUMAHEAP_ARCH_AARCH64_H

#ifndef __aarch64__
#error "arch/aarch64 built for another architecture"
#endif

static inline _Bool nh_mul_below(uint32_t x, const uint32_t *m, const uint32_t *a) { return (uint32_t)(x * *m + *a) < *m; }
static inline _Bool nh_xor_is_zero(uintptr_t *w, uintptr_t x) { return (*w ^= x) == 0; }

/* Neoverse and Apple cores use 64-byte lines; some prefetch in pairs. */
#define NH_CACHE_LINE 64

/* No restartable sequences yet (aarch64/rseq.h): per-thread P's. The
 * signature is glibc's for AArch64 (a brk instruction). */
#define NH_RSEQ_SUPPORTED 0
#define NH_RSEQ_SIG 0xd428bc00

static inline void nh_cpu_relax(void) { __asm__ __volatile__("yield" ::: "memory"); }

static inline uint64_t nh_cycles(void)
{
	uint64_t v;
	__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
	return v;
}

#endif
