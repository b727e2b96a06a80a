/*
 * arch/x86_64/rseq.h — restartable sequences over per-CPU mcache slabs.
 *
 * The restart protocol (Linux's rseq(2); tcmalloc's percpu_rseq_x86_64.S):
 * a thread registers a `struct rseq` with the kernel (glibc >= 2.35 does it
 * for every thread; numaheap does it itself when glibc did not). Before a
 * critical section the thread stores the address of a descriptor
 * {start_ip, post_commit_offset, abort_ip} into the area's rseq_cs field. If
 * the thread is preempted, migrated or signalled while its instruction
 * pointer is in [start_ip, start_ip + post_commit_offset), the kernel clears
 * rseq_cs and resumes it at abort_ip instead. So a sequence that only reads
 * until its final, single store (the commit) either completes on one CPU
 * without interference or has no effect.
 *
 * Every thread's rseq area sits at the same offset `off` from its thread
 * pointer (glibc's __rseq_offset, or numaheap's own initial-exec TLS
 * area), so sequences address it as %fs:off, with no per-thread pointer to
 * load. They read the CPU number from cpu_id, sign-extended: it is -1
 * until the thread is registered and -2 if registration failed, and slabs
 * -1 and -2 are zeroed sentinels on which every sequence misses, so no
 * compare is needed (proc.c reserves a slab for every possible CPU).
 * Per-thread P's run the same sequences as plain code on numaheap's own
 * area, never registered, whose cpu_id holds the thread's slab number.
 *
 * A sequence finds the slab at base + (cpu << NH_RSEQ_SLAB_SHIFT) and works
 * on one header (struct mcache_class, 16 bytes), at slab + h: malloc reads
 * h from the slab's table for its size (or class), free has it from the
 * page table, and a node's objects have headers of their own, so the
 * header says the node too (another node's are all zero: a push misses).
 * arch/rseq.h names every offset the assembly below uses, and proc.c
 * asserts each against src/mcache.h:
 *
 *   +NH_RSEQ_CLASS_WORD   (0)  word   cur (bits 0-15) | allocs (bits 16-63)
 *   +NH_RSEQ_CLASS_END    (8)  end      16 bits each
 *   +NH_RSEQ_CLASS_BEGIN (10)  begin
 *
 * Slot indices count 8-byte words (NH_RSEQ_SLOT_BYTES) from the slab's
 * start. A pop commits word + 0xffff (NH_RSEQ_POP_ADD): cur - 1 and
 * allocs + 1 in one store, so counting mallocs is free (and, with heap
 * profiling on, it is the sample clock: src/mcache.h). The abort handler,
 * preceded by the 4-byte signature the kernel checks (NH_RSEQ_SIG, glibc's
 * value, encoded as a harmless ud1 instruction as librseq does), counts the abort in nh_rseq_aborts with an atomic add (the
 * abort path is rare) and restarts the sequence from the top, re-arming
 * rseq_cs (the kernel cleared it).
 *
 * The single-object sequences address the class header through one register
 * (leaq first), not as base + index in every access: with the indexed form
 * the malloc/free pair took 15 ns instead of 9.5 on this project's Xeon
 * (perf/micro, lifo k=1), the header word's store and the next sequence's
 * load of it being on the loop-carried path of every pair.
 *
 * Operations (expected_cpu: the CPU whose lock the caller holds; h: a header):
 *   pop_size(n), pop_class(cls) -> entry, or miss when the stack is empty
 *   push(h, p)              -> miss when full (or another node's header)
 *   pop_batch / push_batch  move up to n entries, on expected_cpu only
 *   set_end(cls, end)       change a class's capacity, on expected_cpu only
 *   clock_rearm(cls, start) heap profiling's next interval, on expected_cpu only
 *   store16(dst, src)       one 16-byte store (a whole header), on expected_cpu
 * The expected_cpu operations return -1 when the thread is not on that CPU.
 */
#ifndef NUMAHEAP_ARCH_X86_64_RSEQ_H
#define NUMAHEAP_ARCH_X86_64_RSEQ_H

#ifndef __x86_64__
#error "arch/x86_64/rseq.h built for another architecture"
#endif

#include "../rseq.h" /* the area, the slab layout (NH_RSEQ_*), nh_rseq_aborts */

#define NH_STR_(x) #x
#define NH_STR(x) NH_STR_(x)

/* arch/rseq.h's offsets as assembler text; proc.c pins them to the structs. */
#define NH_AS_CPU_ID NH_STR(NH_RSEQ_AREA_CPU_ID)
#define NH_AS_CS NH_STR(NH_RSEQ_AREA_CS)
#define NH_AS_WORD NH_STR(NH_RSEQ_CLASS_WORD)
#define NH_AS_END NH_STR(NH_RSEQ_CLASS_END)
#define NH_AS_BEGIN NH_STR(NH_RSEQ_CLASS_BEGIN)
#define NH_AS_SIZE_TABLE NH_STR(NH_RSEQ_SIZE_TABLE)
#define NH_AS_CLASS_TABLE NH_STR(NH_RSEQ_CLASS_TABLE)
#define NH_AS_SLOT NH_STR(NH_RSEQ_SLOT_BYTES)

/* Descriptor: version 0, flags 0, start, post-commit offset, abort. */
#define NH_RSEQ_CS                                                                                         \
	".pushsection __rseq_cs, \"aw\"\n\t"                                                               \
	".balign 32\n\t"                                                                                   \
	".Lnh_cs%=:\n\t"                                                                                   \
	".long 0, 0\n\t"                                                                                   \
	".quad .Lnh_start%=, .Lnh_post%= - .Lnh_start%=, .Lnh_abort%=\n\t"                                 \
	".popsection\n\t"

/* Arm: point the thread's rseq_cs at the descriptor (scratch: %[c]). */
#define NH_RSEQ_ARM                                                                                        \
	".Lnh_arm%=:\n\t"                                                                                  \
	"leaq .Lnh_cs%=(%%rip), %[c]\n\t"                                                                  \
	"movq %[c], %%fs:" NH_AS_CS "(%[off])\n\t"                                                     \
	".Lnh_start%=:\n\t"

/* Abort handler in its own section, preceded by the signature. */
#define NH_RSEQ_ABORT                                                                                      \
	".Lnh_post%=:\n\t"                                                                                 \
	".pushsection __rseq_failure, \"ax\"\n\t"                                                          \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                                                       \
	".long " NH_STR(NH_RSEQ_SIG) "\n\t"                                                                \
	".Lnh_abort%=:\n\t"                                                                                \
	"lock addq $1, nh_rseq_aborts(%%rip)\n\t"                                                          \
	"jmp .Lnh_arm%=\n\t"                                                                               \
	".popsection\n\t"

/* %[c] = this CPU's slab (a sentinel when unregistered). */
#define NH_RSEQ_SLAB                                                                                       \
	"movslq %%fs:" NH_AS_CPU_ID "(%[off]), %[c]\n\t"                                                   \
	"shlq $" NH_STR(NH_RSEQ_SLAB_SHIFT) ", %[c]\n\t"                                                   \
	"addq %[base], %[c]\n\t"

/* Same, but only on expected_cpu. */
#define NH_RSEQ_SLAB_ON(label)                                                                             \
	"movl %%fs:" NH_AS_CPU_ID "(%[off]), %k[c]\n\t"                                                                   \
	"cmpl %k[c], %[cpu]\n\t"                                                                           \
	"jne %l[" label "]\n\t"                                                                            \
	"shlq $" NH_STR(NH_RSEQ_SLAB_SHIFT) ", %[c]\n\t"                                                      \
	"addq %[base], %[c]\n\t"

/*
 * The pop: the header's address in %[h] (from the slab's table, by the
 * instructions hsel, which may use %[c] and %[k]), then an entry of it into
 * e_, or goto miss. base_ is an lvalue read as a memory operand (one
 * register fewer on the fast path). The entry comes out in %rax, malloc's
 * return register: its object is what malloc returns. NH_POP_PREFETCH: after the commit, the
 * object the next pop will return is prefetched for writing (its first
 * word is read and cleared then, and it is most often cold); the slot read
 * there is outside the sequence, so only a hint.
 */
#ifndef NH_POP_PREFETCH
#define NH_POP_PREFETCH 0
#endif
#define NH_RSEQ_POP_(off_, base_, k_, e_, hsel, count, miss_, ...)                                      \
	do {                                                                                               \
		uintptr_t c_, w_, h_;                                                                      \
		__asm__ __volatile__ goto(NH_RSEQ_CS NH_RSEQ_ARM NH_RSEQ_SLAB hsel                         \
					  "addq %[c], %[h]\n\t"                                            \
					  "movq " NH_AS_WORD "(%[h]), %[w]\n\t"                           \
					  "cmpw " NH_AS_BEGIN "(%[h]), %w[w]\n\t"                         \
					  "je %l[" #miss_ "]\n\t"                                          \
					  "movzwl %w[w], %k[e]\n\t"                                        \
					  "movq -" NH_AS_SLOT "(%[c],%[e]," NH_AS_SLOT "), %[e]\n\t"      \
					  "addq $" NH_STR(NH_RSEQ_POP_ADD) ", %[w]\n\t" count             \
					  "movq %[w], " NH_AS_WORD "(%[h])\n\t" NH_RSEQ_ABORT             \
					  : [c] "=&r"(c_), [w] "=&r"(w_), [e] "=&a"(e_), [h] "=&r"(h_)     \
					  : [off] "r"(off_), [base] "m"(base_), [k] "r"(k_)                \
					  : "memory", "cc"                                                 \
					  : miss_, ##__VA_ARGS__);                                         \
		if (NH_POP_PREFETCH)                                                                       \
			__builtin_prefetch((void *)((uintptr_t *)c_)[(uint16_t)w_ - 1], 1, 3);             \
	} while (0)

#define NH_RSEQ_HSEL_SIZE "movzwl " NH_AS_SIZE_TABLE "(%[c],%[k],2), %k[h]\n\t"
#define NH_RSEQ_HSEL_CLASS "movzwl " NH_AS_CLASS_TABLE "(%[c],%[k],2), %k[h]\n\t"

/* Pop an entry for malloc(n_), n_ <= NH_SMALL_SIZE_MAX, into e_, or goto miss. */
#define NH_RSEQ_POP_SIZE(off_, base_, n_, e_, miss_) NH_RSEQ_POP_(off_, base_, n_, e_, NH_RSEQ_HSEL_SIZE, "", miss_)
/* Pop an entry of class cls_ into e_, or goto miss. */
#define NH_RSEQ_POP_CLASS(off_, base_, cls_, e_, miss_) NH_RSEQ_POP_(off_, base_, cls_, e_, NH_RSEQ_HSEL_CLASS, "", miss_)
/* The same two on heap profiling's clock: a commit that would set the
 * word's sign bit (allocs reaching NH_RSEQ_CLOCK_DUE) goes to crossed
 * instead, nothing popped. The add sets the flag: one branch more. */
#define NH_RSEQ_POP_SIZE_COUNTED(off_, base_, n_, e_, miss_, crossed_)                                     \
	NH_RSEQ_POP_(off_, base_, n_, e_, NH_RSEQ_HSEL_SIZE, "js %l[" #crossed_ "]\n\t", miss_, crossed_)
#define NH_RSEQ_POP_CLASS_COUNTED(off_, base_, cls_, e_, miss_, crossed_)                                  \
	NH_RSEQ_POP_(off_, base_, cls_, e_, NH_RSEQ_HSEL_CLASS, "js %l[" #crossed_ "]\n\t", miss_, crossed_)

/* Push p_ on header h_ of the slab, or goto miss (full; another node's
 * header, or one not set up, is all zero: full). h_ may carry anything in
 * its low 4 bits (free passes its page entry, whose page index is there):
 * slabs and headers are 16-byte aligned, so the header is at
 * (slab + h_) & -16. */
#define NH_RSEQ_PUSH(off_, base_, h_, p_, miss)                                                            \
	do {                                                                                               \
		uintptr_t c_, w_, a_, t_;                                                                  \
		__asm__ __volatile__ goto(NH_RSEQ_CS NH_RSEQ_ARM NH_RSEQ_SLAB                              \
					  "leaq (%[c],%[k]), %[a]\n\t"                                     \
					  "andq $-16, %[a]\n\t"                                            \
					  "movq " NH_AS_WORD "(%[a]), %[w]\n\t"                           \
					  "cmpw " NH_AS_END "(%[a]), %w[w]\n\t"                           \
					  "je %l[" #miss "]\n\t"                                           \
					  "movzwl %w[w], %k[t]\n\t"                                        \
					  "movq %[p], (%[c],%[t]," NH_AS_SLOT ")\n\t"                     \
					  "addq $1, %[w]\n\t"                                              \
					  "movq %[w], " NH_AS_WORD "(%[a])\n\t" NH_RSEQ_ABORT             \
					  : [c] "=&r"(c_), [w] "=&r"(w_), [a] "=&r"(a_), [t] "=&r"(t_)     \
					  : [off] "r"(off_), [base] "m"(base_), [k] "r"(h_), [p] "r"(p_)   \
					  : "memory", "cc"                                                 \
					  : miss);                                                         \
	} while (0)

/* Pop up to n entries of header cls16 (a header offset) into out[] (top
 * first). -1 if not on expected_cpu. */
static inline int nh_rseq_pop_batch(ptrdiff_t off, uintptr_t base, uint32_t expected_cpu, uintptr_t cls16,
				    uintptr_t *out, uintptr_t n)
{
	uintptr_t c, w, k, i, t, cur;
	__asm__ __volatile__ goto(NH_RSEQ_CS NH_RSEQ_ARM NH_RSEQ_SLAB_ON("wrong")
				  "movq " NH_AS_WORD "(%[c],%[cls]), %[w]\n\t"
				  "movzwl %w[w], %k[cur]\n\t"
				  "movzwl " NH_AS_BEGIN "(%[c],%[cls]), %k[k]\n\t"
				  "negq %[k]\n\t"
				  "addq %[cur], %[k]\n\t" /* k = cur - begin */
				  "cmpq %[n], %[k]\n\t"
				  "cmovaq %[n], %[k]\n\t"
				  "xorl %k[i], %k[i]\n\t"
				  ".Lnh_loop%=:\n\t"
				  "cmpq %[k], %[i]\n\t"
				  "je .Lnh_done%=\n\t"
				  "movq -" NH_AS_SLOT "(%[c],%[cur]," NH_AS_SLOT "), %[t]\n\t"
				  "movq %[t], (%[out],%[i],8)\n\t"
				  "subq $1, %[cur]\n\t"
				  "addq $1, %[i]\n\t"
				  "jmp .Lnh_loop%=\n\t"
				  ".Lnh_done%=:\n\t"
				  "subq %[k], %[w]\n\t"
				  "movq %[w], " NH_AS_WORD "(%[c],%[cls])\n\t" NH_RSEQ_ABORT
				  : [c] "=&r"(c), [w] "=&r"(w), [k] "=&r"(k), [i] "=&r"(i), [t] "=&r"(t),
				    [cur] "=&r"(cur)
				  : [off] "r"(off), [base] "r"(base), [cpu] "r"(expected_cpu), [cls] "r"(cls16),
				    [out] "r"(out), [n] "r"(n)
				  : "memory", "cc"
				  : wrong);
	return (int)k;
wrong:
	return -1;
}

/* Push up to n entries from in[]; returns how many fit. -1: not on expected_cpu. */
static inline int nh_rseq_push_batch(ptrdiff_t off, uintptr_t base, uint32_t expected_cpu, uintptr_t cls16,
				     const uintptr_t *in, uintptr_t n)
{
	uintptr_t c, w, k, i, t, cur;
	__asm__ __volatile__ goto(NH_RSEQ_CS NH_RSEQ_ARM NH_RSEQ_SLAB_ON("wrong")
				  "movq " NH_AS_WORD "(%[c],%[cls]), %[w]\n\t"
				  "movzwl %w[w], %k[cur]\n\t"
				  "movzwl " NH_AS_END "(%[c],%[cls]), %k[k]\n\t"
				  "subq %[cur], %[k]\n\t" /* k = end - cur */
				  "cmpq %[n], %[k]\n\t"
				  "cmovaq %[n], %[k]\n\t"
				  "xorl %k[i], %k[i]\n\t"
				  ".Lnh_loop%=:\n\t"
				  "cmpq %[k], %[i]\n\t"
				  "je .Lnh_done%=\n\t"
				  "movq (%[in],%[i],8), %[t]\n\t"
				  "movq %[t], (%[c],%[cur]," NH_AS_SLOT ")\n\t"
				  "addq $1, %[cur]\n\t"
				  "addq $1, %[i]\n\t"
				  "jmp .Lnh_loop%=\n\t"
				  ".Lnh_done%=:\n\t"
				  "addq %[k], %[w]\n\t"
				  "movq %[w], " NH_AS_WORD "(%[c],%[cls])\n\t" NH_RSEQ_ABORT
				  : [c] "=&r"(c), [w] "=&r"(w), [k] "=&r"(k), [i] "=&r"(i), [t] "=&r"(t),
				    [cur] "=&r"(cur)
				  : [off] "r"(off), [base] "r"(base), [cpu] "r"(expected_cpu), [cls] "r"(cls16),
				    [in] "r"(in), [n] "r"(n)
				  : "memory", "cc"
				  : wrong);
	return (int)k;
wrong:
	return -1;
}

/* Set a class's end; 1 if cur is above it (pop first), -1: not on expected_cpu. */
static inline int nh_rseq_set_end(ptrdiff_t off, uintptr_t base, uint32_t expected_cpu, uintptr_t cls16,
				  uintptr_t end)
{
	uintptr_t c, cur;
	__asm__ __volatile__ goto(NH_RSEQ_CS NH_RSEQ_ARM NH_RSEQ_SLAB_ON("wrong")
				  "movzwl " NH_AS_WORD "(%[c],%[cls]), %k[cur]\n\t"
				  "cmpq %[end], %[cur]\n\t"
				  "ja %l[above]\n\t"
				  "movw %w[end], " NH_AS_END "(%[c],%[cls])\n\t" NH_RSEQ_ABORT
				  : [c] "=&r"(c), [cur] "=&r"(cur)
				  : [off] "r"(off), [base] "r"(base), [cpu] "r"(expected_cpu), [cls] "r"(cls16),
				    [end] "r"(end)
				  : "memory", "cc"
				  : wrong, above);
	return 0;
wrong:
	return -1;
above:
	return 1;
}

/* Heap profiling's clock on header cls16 (a header offset), on
 * expected_cpu: if its allocs are at NH_RSEQ_CLOCK_DUE - 1 or beyond (the
 * next pop is the sample), put allocs at start, cur kept, and return 1
 * with the allocs replaced in *was; 0 if not (another thread did it); -1
 * if not on expected_cpu. */
static inline int nh_rseq_clock_rearm(ptrdiff_t off, uintptr_t base, uint32_t expected_cpu, uintptr_t cls16,
				      uint64_t start, uint64_t *was)
{
	uintptr_t c, w, t;
	__asm__ __volatile__ goto(NH_RSEQ_CS NH_RSEQ_ARM NH_RSEQ_SLAB_ON("wrong")
				  "movq " NH_AS_WORD "(%[c],%[cls]), %[w]\n\t"
				  "movq %[w], %[t]\n\t"
				  "shrq $" NH_STR(NH_RSEQ_CUR_BITS) ", %[t]\n\t"
				  "cmpq %[due], %[t]\n\t"
				  "jb %l[early]\n\t"
				  "movq %[t], (%[was])\n\t"
				  "movzwl %w[w], %k[w]\n\t"
				  "movq %[start], %[t]\n\t"
				  "shlq $" NH_STR(NH_RSEQ_CUR_BITS) ", %[t]\n\t"
				  "orq %[t], %[w]\n\t"
				  "movq %[w], " NH_AS_WORD "(%[c],%[cls])\n\t" NH_RSEQ_ABORT
				  : [c] "=&r"(c), [w] "=&r"(w), [t] "=&r"(t)
				  : [off] "r"(off), [base] "r"(base), [cpu] "r"(expected_cpu), [cls] "r"(cls16),
				    [start] "r"(start), [due] "r"(NH_RSEQ_CLOCK_DUE - 1), [was] "r"(was)
				  : "memory", "cc"
				  : wrong, early);
	return 1;
wrong:
	return -1;
early:
	return 0;
}

/* Copy 16 bytes from src to dst (16-aligned) in one store, on expected_cpu (0); else -1. */
static inline int nh_rseq_store16(ptrdiff_t off, uint32_t expected_cpu, void *dst, const void *src)
{
	uintptr_t c;
	__asm__ __volatile__ goto(NH_RSEQ_CS NH_RSEQ_ARM
				  "movdqu (%[src]), %%xmm0\n\t"
				  "movl %%fs:" NH_AS_CPU_ID "(%[off]), %k[c]\n\t"
				  "cmpl %k[c], %[cpu]\n\t"
				  "jne %l[wrong]\n\t"
				  "movdqa %%xmm0, (%[dst])\n\t" NH_RSEQ_ABORT
				  : [c] "=&r"(c)
				  : [off] "r"(off), [cpu] "r"(expected_cpu), [dst] "r"(dst), [src] "r"(src)
				  : "memory", "cc", "xmm0"
				  : wrong);
	return 0;
wrong:
	return -1;
}

#endif
