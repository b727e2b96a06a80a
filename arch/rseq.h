/*
 * arch/rseq.h — restartable-sequence areas and the CPU a thread runs on
 * (arch/rseq.c).
 *
 * Who asks what:
 *   proc.c      nh_rseq_start() once at start-up (per-CPU P's or not),
 *               nh_rseq_thread() before it works on a CPU's slab, and
 *               nh_cpu_current() for the node a thread allocates on
 *               (numa_heap_node_of_cpu maps the CPU to its heap node);
 *   the tool    nh_rseq_glibc() and nh_rseq_probe() for `numaheap topology`.
 * This is the only place that asks the kernel or libc for the CPU number.
 *
 * Like all of arch/, it includes nothing from src/.
 */
#ifndef NUMAHEAP_ARCH_RSEQ_H
#define NUMAHEAP_ARCH_RSEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h" /* NH_RSEQ_SUPPORTED, NH_RSEQ_SIG */

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

/* Restarted sequences, all threads together (the abort handlers add to it). */
extern uint64_t nh_rseq_aborts;

/* Choose every thread's area: glibc's when it registered one (glibc >= 2.35),
 * else numaheap's own, registered per thread. false where neither works on
 * the calling thread (old kernel, valgrind, seccomp, NH_RSEQ_SUPPORTED 0);
 * else *off is the area's offset from the thread pointer, the same for
 * every thread. Once, at start-up. */
bool nh_rseq_start(ptrdiff_t *off);
/* Use no area after all (the caller could not set the slabs up). */
void nh_rseq_stop(void);
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
