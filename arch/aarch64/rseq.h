/*
 * arch/aarch64/rseq.h — restartable sequences on AArch64: not implemented
 * yet. NH_RSEQ_SUPPORTED 0 (aarch64/arch.h) makes numaheap run per-thread
 * P's there (arch/rseq.c registers no area). The single-object operations
 * below (see arch/x86_64/rseq.h for their contract) are plain C on the
 * thread's own slab, which is all per-thread mode needs; the batch
 * operations on a CPU's slab fail, and are never reached in per-thread
 * mode. They only keep the shared code compiling.
 */
#ifndef NUMAHEAP_ARCH_AARCH64_RSEQ_H
#define NUMAHEAP_ARCH_AARCH64_RSEQ_H

#ifndef __aarch64__
#error "arch/aarch64/rseq.h built for another architecture"
#endif

#include "../rseq.h" /* the area, the slab layout, nh_rseq_aborts */

/*
 * Per-thread P's run these as plain C on numaheap's own area, whose cpu_id
 * holds the thread's slab number (the same layout and sentinels as the
 * x86-64 sequences; a slab of a thread is only ever used by that thread).
 */
#define NH_RSEQ_SLAB_OF_(off_, base_)                                                                      \
	((base_) + ((uintptr_t)(intptr_t)(int32_t)((struct nh_rseq_area *)((char *)__builtin_thread_pointer() + \
									 (off_)))->cpu_id                  \
		    << NH_RSEQ_SLAB_SHIFT))
#define NH_RSEQ_POP_(off_, base_, table_, k_, e_, miss, count)                                             \
	do {                                                                                               \
		uintptr_t c_ = NH_RSEQ_SLAB_OF_(off_, base_);                                              \
		uintptr_t h_ = c_ + ((const uint16_t *)(c_ + (table_)))[k_];                               \
		uint64_t w_ = *(uint64_t *)(h_ + NH_RSEQ_CLASS_WORD);                                      \
		if ((uint16_t)w_ == *(const uint16_t *)(h_ + NH_RSEQ_CLASS_BEGIN))                         \
			goto miss;                                                                         \
		e_ = ((const uintptr_t *)c_)[(uint16_t)w_ - 1];                                            \
		w_ += NH_RSEQ_POP_ADD;                                                                     \
		count;                                                                                     \
		*(uint64_t *)(h_ + NH_RSEQ_CLASS_WORD) = w_;                                               \
	} while (0)
#define NH_RSEQ_POP_SIZE(off_, base_, n_, e_, miss)                                                        \
	NH_RSEQ_POP_(off_, base_, NH_RSEQ_SIZE_TABLE, n_, e_, miss, (void)0)
#define NH_RSEQ_POP_SIZE_COUNTED(off_, base_, n_, e_, miss, crossed)                                       \
	NH_RSEQ_POP_(off_, base_, NH_RSEQ_SIZE_TABLE, n_, e_, miss, if ((int64_t)w_ < 0) goto crossed)
#define NH_RSEQ_POP_CLASS(off_, base_, cls_, e_, miss)                                                     \
	NH_RSEQ_POP_(off_, base_, NH_RSEQ_CLASS_TABLE, cls_, e_, miss, (void)0)
#define NH_RSEQ_POP_CLASS_COUNTED(off_, base_, cls_, e_, miss, crossed)                                    \
	NH_RSEQ_POP_(off_, base_, NH_RSEQ_CLASS_TABLE, cls_, e_, miss, if ((int64_t)w_ < 0) goto crossed)
#define NH_RSEQ_PUSH(off_, base_, h_, p_, miss)                                                            \
	do {                                                                                               \
		uintptr_t c_ = NH_RSEQ_SLAB_OF_(off_, base_), a_ = (c_ + (h_)) & ~(uintptr_t)15;           \
		uint64_t w_ = *(uint64_t *)(a_ + NH_RSEQ_CLASS_WORD);                                      \
		if ((uint16_t)w_ == *(const uint16_t *)(a_ + NH_RSEQ_CLASS_END))                           \
			goto miss;                                                                         \
		((uintptr_t *)c_)[(uint16_t)w_] = (p_);                                                    \
		*(uint64_t *)(a_ + NH_RSEQ_CLASS_WORD) = w_ + 1;                                           \
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
static inline int nh_rseq_clock_rearm(ptrdiff_t off, uintptr_t base, uint32_t cpu, uintptr_t cls16, uint64_t start,
				      uint64_t *was)
{
	(void)off, (void)base, (void)cpu, (void)cls16, (void)start, (void)was;
	return -1;
}
static inline int nh_rseq_store16(ptrdiff_t off, uint32_t cpu, void *dst, const void *src)
{
	(void)off, (void)cpu, (void)dst, (void)src;
	return -1;
}

#endif
