/*
 * arch/x86_64/rseq.h — restartable sequences over per-CPU mcache slabs.
 *
 * The restart protocol (see Linux's Documentation on rseq, and tcmalloc's
 * percpu_rseq_x86_64.S): a thread registers a `struct rseq` with the kernel
 * (glibc >= 2.35 does it for every thread; numaheap does it itself when
 * glibc did not). Before a critical section the thread stores the address
 * of a descriptor {start_ip, post_commit_offset, abort_ip} into the area's
 * rseq_cs field. If the thread is preempted, migrated or signalled while its
 * instruction pointer is in [start_ip, start_ip + post_commit_offset), the
 * kernel clears rseq_cs and resumes it at abort_ip instead. So a sequence
 * that only reads until its final, single store (the commit) either
 * completes on one CPU without interference or does nothing at all.
 *
 * Each sequence here reads the CPU number (cpu_id_start), finds that CPU's
 * slab at base + (cpu << NH_MCACHE_SHIFT), and works on one class header
 * (struct mcache_class: cur at +0, end at +2, begin at +4, node at +6; slot
 * indices count 8-byte words from the slab's start). The abort handler,
 * preceded by the 4-byte signature the kernel checks (RSEQ_SIG, glibc's
 * value, encoded as a harmless ud1 instruction as librseq does), counts the
 * abort in *aborts and restarts the sequence from the top, re-arming
 * rseq_cs (the kernel cleared it).
 *
 * Operations:
 *   pop(cls)                   -> entry, or 0 when the stack is empty
 *   push(cls, p, node)         -> 0, or 1 when full or the slab's node differs
 *   pop_batch / push_batch     move up to n entries; only on expected_cpu
 *   set_end(cls, end)          change a class's capacity; only on expected_cpu
 *   store64(addr, v)           one plain store, only on expected_cpu
 * The *_cpu operations return -1 when the thread is not on expected_cpu.
 */
#ifndef NUMAHEAP_ARCH_X86_64_RSEQ_H
#define NUMAHEAP_ARCH_X86_64_RSEQ_H

#ifndef __x86_64__
#error "arch/x86_64/rseq.h built for another architecture"
#endif

#include <stdint.h>

#define NH_RSEQ_SUPPORTED 1
#define NH_RSEQ_SIG 0x53053053

/* The kernel's struct rseq (ABI), 32-byte aligned. */
struct nh_rseq_area {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
	uint32_t pad;
} __attribute__((aligned(32)));

#define NH_STR_(x) #x
#define NH_STR(x) NH_STR_(x)

/* Descriptor: version 0, flags 0, start, post-commit offset, abort. */
#define NH_RSEQ_CS(label, start, commit, abort)                                                            \
	".pushsection __rseq_cs, \"aw\"\n\t"                                                               \
	".balign 32\n\t" label ":\n\t"                                                                     \
	".long 0, 0\n\t"                                                                                   \
	".quad " start ", (" commit ") - (" start "), " abort "\n\t"                                       \
	".popsection\n\t"

/* Abort handler in its own section, preceded by the signature. */
#define NH_RSEQ_ABORT(label, restart, aborts)                                                              \
	".pushsection __rseq_failure, \"ax\"\n\t"                                                          \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                                                       \
	".long " NH_STR(NH_RSEQ_SIG) "\n\t" label ":\n\t"                                                   \
	"addq $1, (" aborts ")\n\t"                                                                        \
	"jmp " restart "\n\t"                                                                              \
	".popsection\n\t"

static inline __attribute__((always_inline)) uintptr_t nh_rseq_pop(struct nh_rseq_area *rs, uintptr_t base,
								    uintptr_t cls, uint64_t *aborts)
{
	uintptr_t c, cur, e;
	__asm__ __volatile__ goto(NH_RSEQ_CS(".Lnh_cs%=", ".Lnh_start%=", ".Lnh_post%=", ".Lnh_abort%=")
		     ".Lnh_arm%=:\n\t"
		     "leaq .Lnh_cs%=(%%rip), %[c]\n\t"
		     "movq %[c], 8(%[rs])\n\t"
		     ".Lnh_start%=:\n\t"
		     "movl (%[rs]), %k[c]\n\t"
		     "shlq $" NH_STR(NH_MCACHE_SHIFT) ", %[c]\n\t"
		     "addq %[base], %[c]\n\t"
		     "movzwl (%[c],%[cls],8), %k[cur]\n\t"
		     "cmpw 4(%[c],%[cls],8), %w[cur]\n\t"
		     "je %l[empty]\n\t"
		     "movq -8(%[c],%[cur],8), %[e]\n\t"
		     "subl $1, %k[cur]\n\t"
		     "movw %w[cur], (%[c],%[cls],8)\n\t"
		     ".Lnh_post%=:\n\t"
		     NH_RSEQ_ABORT(".Lnh_abort%=", ".Lnh_arm%=", "%[aborts]")
		     : [c] "=&r"(c), [cur] "=&r"(cur), [e] "=&r"(e)
		     : [rs] "r"(rs), [base] "r"(base), [cls] "r"(cls), [aborts] "r"(aborts)
		     : "memory", "cc"
		     : empty);
	return e;
empty:
	return 0;
}

static inline __attribute__((always_inline)) int nh_rseq_push(struct nh_rseq_area *rs, uintptr_t base,
							       uintptr_t cls, uintptr_t p, uint32_t node,
							       uint64_t *aborts)
{
	uintptr_t c, cur;
	__asm__ __volatile__ goto(NH_RSEQ_CS(".Lnh_cs%=", ".Lnh_start%=", ".Lnh_post%=", ".Lnh_abort%=")
		     ".Lnh_arm%=:\n\t"
		     "leaq .Lnh_cs%=(%%rip), %[c]\n\t"
		     "movq %[c], 8(%[rs])\n\t"
		     ".Lnh_start%=:\n\t"
		     "movl (%[rs]), %k[c]\n\t"
		     "shlq $" NH_STR(NH_MCACHE_SHIFT) ", %[c]\n\t"
		     "addq %[base], %[c]\n\t"
		     "cmpw %w[node], 6(%[c],%[cls],8)\n\t"
		     "jne %l[full]\n\t"
		     "movzwl (%[c],%[cls],8), %k[cur]\n\t"
		     "cmpw 2(%[c],%[cls],8), %w[cur]\n\t"
		     "je %l[full]\n\t"
		     "movq %[p], (%[c],%[cur],8)\n\t"
		     "addl $1, %k[cur]\n\t"
		     "movw %w[cur], (%[c],%[cls],8)\n\t"
		     ".Lnh_post%=:\n\t"
		     NH_RSEQ_ABORT(".Lnh_abort%=", ".Lnh_arm%=", "%[aborts]")
		     : [c] "=&r"(c), [cur] "=&r"(cur)
		     : [rs] "r"(rs), [base] "r"(base), [cls] "r"(cls), [p] "r"(p), [node] "r"(node),
		       [aborts] "r"(aborts)
		     : "memory", "cc"
		     : full);
	return 0;
full:
	return 1;
}

/* Pop up to n entries into out[] (top first). -1 if not on expected_cpu. */
static inline int nh_rseq_pop_batch(struct nh_rseq_area *rs, uintptr_t base, uint32_t expected_cpu,
				    uintptr_t cls, uintptr_t *out, uintptr_t n, uint64_t *aborts)
{
	uintptr_t c, cur, k, i, t;
	__asm__ __volatile__ goto(NH_RSEQ_CS(".Lnh_cs%=", ".Lnh_start%=", ".Lnh_post%=", ".Lnh_abort%=")
		     ".Lnh_arm%=:\n\t"
		     "leaq .Lnh_cs%=(%%rip), %[c]\n\t"
		     "movq %[c], 8(%[rs])\n\t"
		     ".Lnh_start%=:\n\t"
		     "movl (%[rs]), %k[c]\n\t"
		     "cmpl %k[c], %[cpu]\n\t"
		     "jne %l[wrong]\n\t"
		     "shlq $" NH_STR(NH_MCACHE_SHIFT) ", %[c]\n\t"
		     "addq %[base], %[c]\n\t"
		     "movzwl (%[c],%[cls],8), %k[cur]\n\t"
		     "movzwl 4(%[c],%[cls],8), %k[k]\n\t"
		     "negq %[k]\n\t"
		     "addq %[cur], %[k]\n\t" /* k = cur - begin */
		     "cmpq %[n], %[k]\n\t"
		     "cmovaq %[n], %[k]\n\t"
		     "xorl %k[i], %k[i]\n\t"
		     ".Lnh_loop%=:\n\t"
		     "cmpq %[k], %[i]\n\t"
		     "je .Lnh_done%=\n\t"
		     "movq -8(%[c],%[cur],8), %[t]\n\t"
		     "movq %[t], (%[out],%[i],8)\n\t"
		     "subq $1, %[cur]\n\t"
		     "addq $1, %[i]\n\t"
		     "jmp .Lnh_loop%=\n\t"
		     ".Lnh_done%=:\n\t"
		     "movw %w[cur], (%[c],%[cls],8)\n\t"
		     ".Lnh_post%=:\n\t"
		     NH_RSEQ_ABORT(".Lnh_abort%=", ".Lnh_arm%=", "%[aborts]")
		     : [c] "=&r"(c), [cur] "=&r"(cur), [k] "=&r"(k), [i] "=&r"(i), [t] "=&r"(t)
		     : [rs] "r"(rs), [base] "r"(base), [cpu] "r"(expected_cpu), [cls] "r"(cls), [out] "r"(out),
		       [n] "r"(n), [aborts] "r"(aborts)
		     : "memory", "cc"
		     : wrong);
	return (int)k;
wrong:
	return -1;
}

/* Push up to n entries from in[]; returns how many fit. -1: not on expected_cpu. */
static inline int nh_rseq_push_batch(struct nh_rseq_area *rs, uintptr_t base, uint32_t expected_cpu,
				     uintptr_t cls, const uintptr_t *in, uintptr_t n, uint64_t *aborts)
{
	uintptr_t c, cur, k, i, t;
	__asm__ __volatile__ goto(NH_RSEQ_CS(".Lnh_cs%=", ".Lnh_start%=", ".Lnh_post%=", ".Lnh_abort%=")
		     ".Lnh_arm%=:\n\t"
		     "leaq .Lnh_cs%=(%%rip), %[c]\n\t"
		     "movq %[c], 8(%[rs])\n\t"
		     ".Lnh_start%=:\n\t"
		     "movl (%[rs]), %k[c]\n\t"
		     "cmpl %k[c], %[cpu]\n\t"
		     "jne %l[wrong]\n\t"
		     "shlq $" NH_STR(NH_MCACHE_SHIFT) ", %[c]\n\t"
		     "addq %[base], %[c]\n\t"
		     "movzwl (%[c],%[cls],8), %k[cur]\n\t"
		     "movzwl 2(%[c],%[cls],8), %k[k]\n\t"
		     "subq %[cur], %[k]\n\t" /* k = end - cur */
		     "cmpq %[n], %[k]\n\t"
		     "cmovaq %[n], %[k]\n\t"
		     "xorl %k[i], %k[i]\n\t"
		     ".Lnh_loop%=:\n\t"
		     "cmpq %[k], %[i]\n\t"
		     "je .Lnh_done%=\n\t"
		     "movq (%[in],%[i],8), %[t]\n\t"
		     "movq %[t], (%[c],%[cur],8)\n\t"
		     "addq $1, %[cur]\n\t"
		     "addq $1, %[i]\n\t"
		     "jmp .Lnh_loop%=\n\t"
		     ".Lnh_done%=:\n\t"
		     "movw %w[cur], (%[c],%[cls],8)\n\t"
		     ".Lnh_post%=:\n\t"
		     NH_RSEQ_ABORT(".Lnh_abort%=", ".Lnh_arm%=", "%[aborts]")
		     : [c] "=&r"(c), [cur] "=&r"(cur), [k] "=&r"(k), [i] "=&r"(i), [t] "=&r"(t)
		     : [rs] "r"(rs), [base] "r"(base), [cpu] "r"(expected_cpu), [cls] "r"(cls), [in] "r"(in),
		       [n] "r"(n), [aborts] "r"(aborts)
		     : "memory", "cc"
		     : wrong);
	return (int)k;
wrong:
	return -1;
}

/* Set a class's end; 1 if cur is above it (pop first), -1: not on expected_cpu. */
static inline int nh_rseq_set_end(struct nh_rseq_area *rs, uintptr_t base, uint32_t expected_cpu, uintptr_t cls,
				  uintptr_t end, uint64_t *aborts)
{
	uintptr_t c, cur;
	__asm__ __volatile__ goto(NH_RSEQ_CS(".Lnh_cs%=", ".Lnh_start%=", ".Lnh_post%=", ".Lnh_abort%=")
		     ".Lnh_arm%=:\n\t"
		     "leaq .Lnh_cs%=(%%rip), %[c]\n\t"
		     "movq %[c], 8(%[rs])\n\t"
		     ".Lnh_start%=:\n\t"
		     "movl (%[rs]), %k[c]\n\t"
		     "cmpl %k[c], %[cpu]\n\t"
		     "jne %l[wrong]\n\t"
		     "shlq $" NH_STR(NH_MCACHE_SHIFT) ", %[c]\n\t"
		     "addq %[base], %[c]\n\t"
		     "movzwl (%[c],%[cls],8), %k[cur]\n\t"
		     "cmpq %[end], %[cur]\n\t"
		     "ja %l[above]\n\t"
		     "movw %w[end], 2(%[c],%[cls],8)\n\t"
		     ".Lnh_post%=:\n\t"
		     NH_RSEQ_ABORT(".Lnh_abort%=", ".Lnh_arm%=", "%[aborts]")
		     : [c] "=&r"(c), [cur] "=&r"(cur)
		     : [rs] "r"(rs), [base] "r"(base), [cpu] "r"(expected_cpu), [cls] "r"(cls), [end] "r"(end),
		       [aborts] "r"(aborts)
		     : "memory", "cc"
		     : wrong, above);
	return 0;
wrong:
	return -1;
above:
	return 1;
}

/* *addr = v, if on expected_cpu (0); else -1. */
static inline int nh_rseq_store64(struct nh_rseq_area *rs, uint32_t expected_cpu, uint64_t *addr, uint64_t v,
				  uint64_t *aborts)
{
	uintptr_t c;
	__asm__ __volatile__ goto(NH_RSEQ_CS(".Lnh_cs%=", ".Lnh_start%=", ".Lnh_post%=", ".Lnh_abort%=")
		     ".Lnh_arm%=:\n\t"
		     "leaq .Lnh_cs%=(%%rip), %[c]\n\t"
		     "movq %[c], 8(%[rs])\n\t"
		     ".Lnh_start%=:\n\t"
		     "movl (%[rs]), %k[c]\n\t"
		     "cmpl %k[c], %[cpu]\n\t"
		     "jne %l[wrong]\n\t"
		     "movq %[v], (%[addr])\n\t"
		     ".Lnh_post%=:\n\t"
		     NH_RSEQ_ABORT(".Lnh_abort%=", ".Lnh_arm%=", "%[aborts]")
		     : [c] "=&r"(c)
		     : [rs] "r"(rs), [cpu] "r"(expected_cpu), [addr] "r"(addr), [v] "r"(v), [aborts] "r"(aborts)
		     : "memory", "cc"
		     : wrong);
	return 0;
wrong:
	return -1;
}

#endif
