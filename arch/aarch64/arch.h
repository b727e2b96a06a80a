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

/* arch.h's NH_DLOPEN_STUB. The jump goes through x16, which a BTI
 * landing pad of either kind ("bti c" included) accepts. */
#define NH_DLOPEN_STUB                                                                             \
	".text\n"                                                                                  \
	".p2align 2\n"                                                                             \
	".globl dlopen\n"                                                                          \
	".type dlopen, %function\n"                                                                \
	"dlopen:\n"                                                                                \
	".cfi_startproc\n"                                                                         \
	"adrp x16, nh_dlopen_next\n"                                                               \
	"ldr x16, [x16, :lo12:nh_dlopen_next]\n"                                                   \
	"cbz x16, 2f\n"                                                                            \
	"1: adrp x17, nh_dlopen_mask\n"                                                            \
	"ldr w17, [x17, :lo12:nh_dlopen_mask]\n"                                                   \
	"and w1, w1, w17\n"                                                                        \
	"br x16\n"                                                                                 \
	"2: stp x29, x30, [sp, #-32]!\n"                                                           \
	".cfi_def_cfa_offset 32\n"                                                                 \
	".cfi_offset 29, -32\n"                                                                    \
	".cfi_offset 30, -24\n"                                                                    \
	"mov x29, sp\n"                                                                            \
	"stp x0, x1, [sp, #16]\n"                                                                  \
	"bl nh_dlopen_resolve\n"                                                                   \
	"mov x16, x0\n"                                                                            \
	"ldp x0, x1, [sp, #16]\n"                                                                  \
	"ldp x29, x30, [sp], #32\n"                                                                \
	".cfi_restore 30\n"                                                                        \
	".cfi_restore 29\n"                                                                        \
	".cfi_def_cfa_offset 0\n"                                                                  \
	"cbnz x16, 1b\n"                                                                           \
	"mov x0, #0\n"                                                                             \
	"ret\n"                                                                                    \
	".cfi_endproc\n"                                                                           \
	".size dlopen, .-dlopen\n"

static inline void nh_cpu_relax(void) { __asm__ __volatile__("yield" ::: "memory"); }

static inline uint64_t nh_cycles(void)
{
	uint64_t v;
	__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
	return v;
}

#endif
