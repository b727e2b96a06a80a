/*
 * arch/aarch64/rseq.h — restartable sequences on AArch64: not implemented
 * yet. NH_RSEQ_SUPPORTED 0 makes numaheap run per-thread P's there; the
 * stubs below only keep the shared code compiling and are never called.
 */
#ifndef NUMAHEAP_ARCH_AARCH64_RSEQ_H
#define NUMAHEAP_ARCH_AARCH64_RSEQ_H

#ifndef __aarch64__
#error "arch/aarch64/rseq.h built for another architecture"
#endif

#include <stdint.h>

#define NH_RSEQ_SUPPORTED 0
#define NH_RSEQ_SIG 0xd428bc00

struct nh_rseq_area {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
	uint32_t pad;
} __attribute__((aligned(32)));

static inline uintptr_t nh_rseq_pop(struct nh_rseq_area *rs, uintptr_t base, uintptr_t cls, uint64_t *a)
{
	(void)rs, (void)base, (void)cls, (void)a;
	return 0;
}
static inline int nh_rseq_push(struct nh_rseq_area *rs, uintptr_t base, uintptr_t cls, uintptr_t p, uint32_t node,
			       uint64_t *a)
{
	(void)rs, (void)base, (void)cls, (void)p, (void)node, (void)a;
	return 1;
}
static inline int nh_rseq_pop_batch(struct nh_rseq_area *rs, uintptr_t base, uint32_t cpu, uintptr_t cls,
				    uintptr_t *out, uintptr_t n, uint64_t *a)
{
	(void)rs, (void)base, (void)cpu, (void)cls, (void)out, (void)n, (void)a;
	return -1;
}
static inline int nh_rseq_push_batch(struct nh_rseq_area *rs, uintptr_t base, uint32_t cpu, uintptr_t cls,
				     const uintptr_t *in, uintptr_t n, uint64_t *a)
{
	(void)rs, (void)base, (void)cpu, (void)cls, (void)in, (void)n, (void)a;
	return -1;
}
static inline int nh_rseq_set_end(struct nh_rseq_area *rs, uintptr_t base, uint32_t cpu, uintptr_t cls,
				  uintptr_t end, uint64_t *a)
{
	(void)rs, (void)base, (void)cpu, (void)cls, (void)end, (void)a;
	return -1;
}
static inline int nh_rseq_store64(struct nh_rseq_area *rs, uint32_t cpu, uint64_t *addr, uint64_t v, uint64_t *a)
{
	(void)rs, (void)cpu, (void)addr, (void)v, (void)a;
	return -1;
}

#endif
