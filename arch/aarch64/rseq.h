/*
 * arch/aarch64/rseq.h — restartable sequences on AArch64: not implemented
 * yet. NH_RSEQ_SUPPORTED 0 (aarch64/arch.h) makes numaheap run per-thread
 * P's there (arch/rseq.c registers no area); the operations below (see
 * arch/x86_64/rseq.h for their contract) always miss or fail, and are never
 * reached in per-thread mode. They only keep the shared code compiling.
 */
#ifndef NUMAHEAP_ARCH_AARCH64_RSEQ_H
#define NUMAHEAP_ARCH_AARCH64_RSEQ_H

#ifndef __aarch64__
#error "arch/aarch64/rseq.h built for another architecture"
#endif

#include "../rseq.h" /* the area, the slab layout, nh_rseq_aborts */

#define NH_RSEQ_POP(off_, base_, count_, cls16_, e_, miss)                                                 \
	do {                                                                                               \
		(void)(off_), (void)(base_), (void)(count_), (void)(cls16_);                               \
		e_ = 0;                                                                                    \
		goto miss;                                                                                 \
	} while (0)
#define NH_RSEQ_PUSH(off_, base_, count_, cls16_, p_, node_, miss)                                         \
	do {                                                                                               \
		(void)(off_), (void)(base_), (void)(count_), (void)(cls16_), (void)(p_), (void)(node_);    \
		goto miss;                                                                                 \
	} while (0)

static inline int nh_rseq_pop_batch(ptrdiff_t off, uintptr_t base, uint32_t cpu, uintptr_t cls16, uintptr_t *out,
				    uintptr_t n)
{
	(void)off, (void)base, (void)cpu, (void)cls16, (void)out, (void)n;
	return -1;
}
static inline int nh_rseq_push_batch(ptrdiff_t off, uintptr_t base, uint32_t cpu, uintptr_t cls16,
				     const uintptr_t *in, uintptr_t n)
{
	(void)off, (void)base, (void)cpu, (void)cls16, (void)in, (void)n;
	return -1;
}
static inline int nh_rseq_set_end(ptrdiff_t off, uintptr_t base, uint32_t cpu, uintptr_t cls16, uintptr_t end)
{
	(void)off, (void)base, (void)cpu, (void)cls16, (void)end;
	return -1;
}
static inline int nh_rseq_store16(ptrdiff_t off, uint32_t cpu, void *dst, const void *src)
{
	(void)off, (void)cpu, (void)dst, (void)src;
	return -1;
}

#endif
