/* arch/x86_64/arch.h — x86-64 implementation of arch.h; see arch.h. */
#ifndef NUMAHEAP_ARCH_X86_64_H
#define NUMAHEAP_ARCH_X86_64_H

#ifndef __x86_64__
#error "arch/x86_64 built for another architecture"
#endif

#define NH_CACHE_LINE 64

/* Restartable sequences over per-CPU slabs: x86_64/rseq.h. The signature
 * the kernel checks before an abort handler is glibc's value. */
#define NH_RSEQ_SUPPORTED 1
#define NH_RSEQ_SIG 0x53053053

/* arch.h's NH_DLOPEN_STUB. The resolver is called with the stack aligned
 * (entry leaves it 8 off; two pushes and 8 bytes more) and the arguments
 * kept across it; endbr64 for builds with indirect-branch tracking. */
#define NH_DLOPEN_STUB                                                                             \
	".text\n"                                                                                  \
	".p2align 4\n"                                                                             \
	".globl dlopen\n"                                                                          \
	".type dlopen, @function\n"                                                                \
	"dlopen:\n"                                                                                \
	".cfi_startproc\n"                                                                         \
	"endbr64\n"                                                                                \
	"movq nh_dlopen_next(%rip), %rax\n"                                                        \
	"testq %rax, %rax\n"                                                                       \
	"jz 2f\n"                                                                                  \
	"1: andl nh_dlopen_mask(%rip), %esi\n"                                                     \
	"jmp *%rax\n"                                                                              \
	"2: pushq %rdi\n"                                                                          \
	".cfi_adjust_cfa_offset 8\n"                                                               \
	"pushq %rsi\n"                                                                             \
	".cfi_adjust_cfa_offset 8\n"                                                               \
	"subq $8, %rsp\n"                                                                          \
	".cfi_adjust_cfa_offset 8\n"                                                               \
	"call nh_dlopen_resolve\n"                                                                 \
	"addq $8, %rsp\n"                                                                          \
	".cfi_adjust_cfa_offset -8\n"                                                              \
	"popq %rsi\n"                                                                              \
	".cfi_adjust_cfa_offset -8\n"                                                              \
	"popq %rdi\n"                                                                              \
	".cfi_adjust_cfa_offset -8\n"                                                              \
	"testq %rax, %rax\n"                                                                       \
	"jnz 1b\n"                                                                                 \
	"ret\n"                                                                                    \
	".cfi_endproc\n"                                                                           \
	".size dlopen, .-dlopen\n"

static inline void nh_cpu_relax(void) { __builtin_ia32_pause(); }

static inline uint64_t nh_cycles(void) { return __builtin_ia32_rdtsc(); }

/* (uint32_t)(x * *m + *a) < *m with *m and *a as memory operands: GCC
 * loads *m into a register to use it twice, one instruction more on free's
 * fast path than multiplying and comparing from memory. */
static inline _Bool nh_mul_below(uint32_t x, const uint32_t *m, const uint32_t *a)
{
	_Bool below;
	__asm__("imull %[m], %[x]\n\t"
		"addl %[a], %[x]\n\t"
		"cmpl %[m], %[x]"
		: [x] "+r"(x), "=@ccb"(below)
		: [m] "m"(*m), [a] "m"(*a));
	return below;
}

/* One xor to memory, which sets the flags: GCC makes a load, two xors, a
 * store and a compare of it. */
static inline _Bool nh_xor_is_zero(uintptr_t *w, uintptr_t x)
{
	_Bool zero;
	__asm__("xorq %[x], %[w]" : [w] "+m"(*w), "=@ccz"(zero) : [x] "r"(x));
	return zero;
}

#endif
