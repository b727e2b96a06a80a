/*
 * arch/rseq.h — restartable-sequence areas and the CPU a thread runs on
 * (arch/rseq.c), and the slab layout the sequences of arch/<arch>/rseq.h
 * assume.
 *
 * Who asks what:
 *   proc.c      nh_rseq_start() once at start-up (per-CPU P's or not),
 *               nh_rseq_thread() before it works on a CPU's slab, and
 *               nh_cpu_current() for the node a thread allocates on
 *               (numa_heap_node_of_cpu maps the CPU to its heap node);
 *   the tool    nh_rseq_glibc() and nh_rseq_probe() for `numaheap topology`.
 * This is the only place that asks the kernel or libc for the CPU number.
 *
 * Like all of arch/, it includes nothing from src/: src/ includes it, and
 * proc.c asserts that the layout below is the one mcache.h declares.
 */
#ifndef NUMAHEAP_ARCH_RSEQ_H
#define NUMAHEAP_ARCH_RSEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h" /* NH_RSEQ_SUPPORTED, NH_RSEQ_SIG */

/* The kernel's struct rseq (ABI), 32-byte aligned. The sequences read
 * cpu_id (negative: not registered) and store a descriptor's address in
 * rseq_cs, at these offsets. Per-thread P's use numaheap's own area,
 * never registered, as plain memory: cpu_id holds the thread's slab
 * number (nh_rseq_set_slot), and the same sequences run as plain code. */
struct nh_rseq_area {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
	uint32_t pad;
} __attribute__((aligned(32)));

#define NH_RSEQ_AREA_CPU_ID 4
#define NH_RSEQ_AREA_CS 8
_Static_assert(offsetof(struct nh_rseq_area, cpu_id) == NH_RSEQ_AREA_CPU_ID, "the sequences read cpu_id here");
_Static_assert(offsetof(struct nh_rseq_area, rseq_cs) == NH_RSEQ_AREA_CS, "the sequences arm rseq_cs here");
_Static_assert(sizeof(struct nh_rseq_area) == 32, "the kernel's struct rseq, as registered");

/*
 * The slab as the sequences address it (src/mcache.h declares it; proc.c
 * asserts each number against offsetof and sizeof there):
 *   slab i          at base + (i << NH_RSEQ_SLAB_SHIFT), i the cpu_id read
 *                   as a signed number: slabs -1 and -2 are the sentinels
 *                   for the kernel's "not registered" and "registration
 *                   failed", all zero, on which every sequence misses
 *   header h        at slab + h, h = (node * classes + class) <<
 *                   NH_RSEQ_CLASS_SHIFT: the headers first, one per node
 *                   and class
 *     +WORD         cur in the low NH_RSEQ_CUR_BITS bits, allocs above
 *     +END +BEGIN   16-bit fields
 *   +SIZE_TABLE     uint16_t [n] for n <= 1024: the header of malloc(n)'s
 *                   class on the slab's node
 *   +CLASS_TABLE    uint16_t [class]: the header of the class on the slab's
 *                   node
 *   slot j          at slab + j * NH_RSEQ_SLOT_BYTES (indices count from the
 *                   slab's start, so they fit in cur's bits)
 * An all-zero header misses every pop and push: the sentinels', another
 * node's, one not set up yet, and the tables' zeros point at header 0,
 * never set up.
 */
#define NH_RSEQ_SLAB_SHIFT 18
#define NH_RSEQ_CLASS_SHIFT 4
#define NH_RSEQ_CLASS_WORD 0
#define NH_RSEQ_CLASS_END 8
#define NH_RSEQ_CLASS_BEGIN 10
#define NH_RSEQ_SIZE_TABLE 17152
#define NH_RSEQ_CLASS_TABLE 19202
/* The sentinels' bytes a sequence can read: the headers and both tables. */
#define NH_RSEQ_SLAB_READ 20480
#define NH_RSEQ_CUR_BITS 16
#define NH_RSEQ_SLOT_BYTES 8
/* A pop's commit adds this to the word: cur - 1 and allocs + 1 in one store. */
#define NH_RSEQ_POP_ADD 0xffff
_Static_assert(NH_RSEQ_POP_ADD == (1u << NH_RSEQ_CUR_BITS) - 1, "cur - 1 + (1 << CUR_BITS)");
/* Heap profiling's clock (src/mcache.h, the counted pops): a header's
 * allocs count up to NH_RSEQ_CLOCK_DUE, the word's sign bit; a counted pop
 * whose commit would set it takes the sample instead. */
#define NH_RSEQ_CLOCK_DUE ((uint64_t)1 << (63 - NH_RSEQ_CUR_BITS))

/* 1 in the test-only build that pretends every thread is registered on
 * CPU 0 (NH_RSEQ_FAKE_CPU0: arch/rseq.c), so valgrind can count the per-CPU
 * fast paths. */
#ifdef NH_RSEQ_FAKE_CPU0
#define NH_RSEQ_FAKE 1
#else
#define NH_RSEQ_FAKE 0
#endif

/* Restarted sequences, all threads together (the abort handlers add to it). */
extern uint64_t nh_rseq_aborts;

/* Choose every thread's area: glibc's when it registered one (glibc >= 2.35),
 * else numaheap's own, registered per thread (only if may_register).
 * false where neither works on the calling thread (old kernel, valgrind,
 * seccomp, NH_RSEQ_SUPPORTED 0); else *off is the area's offset from the
 * thread pointer, the same for every thread. Once, at start-up. */
bool nh_rseq_start(ptrdiff_t *off, bool may_register);
/* Use no area after all (the caller could not set the slabs up). */
void nh_rseq_stop(void);
/* numaheap's own area's offset from the thread pointer: per-thread P's run
 * the sequences on it (nh_rseq_start chose no area, so it is never
 * registered). */
ptrdiff_t nh_rseq_own_offset(void);
/* Per-thread P's: the calling thread's slab number, in its own area's
 * cpu_id (-1: none). Only while nh_rseq_start chose no area. */
void nh_rseq_set_slot(int32_t slot);
/* The calling thread's registered area, registering numaheap's own if that
 * is the choice and this thread has none yet; NULL if it has none. */
struct nh_rseq_area *nh_rseq_thread(void);
/* The CPU the calling thread runs on now: the area's cpu_id when it is
 * registered, else sched_getcpu (-1 if even that fails). */
int nh_cpu_current(void);

/* For `numaheap topology`. Whether this glibc exports its area (2.35 and
 * later), its offset and size (0: registration turned off). */
bool nh_rseq_glibc(ptrdiff_t *off, unsigned *size);
/* Whether the calling thread can have an area: 0, or the errno with which
 * registering one fails. *glibc: glibc's is registered here. The thread is
 * left as it was. */
int nh_rseq_probe(bool *glibc);

#endif /* NUMAHEAP_ARCH_RSEQ_H */
