/*
 * arch/rseq.c — which restartable-sequence area each thread uses, and the
 * CPU a thread runs on. See arch/rseq.h for the contract and
 * arch/x86_64/rseq.h for the restart protocol; this file is the same on
 * every architecture.
 *
 * The area is glibc's when glibc registered one for every thread (glibc >=
 * 2.35 exports __rseq_offset and __rseq_size; __rseq_size is 0 when
 * GLIBC_TUNABLES=glibc.pthread.rseq=0 turned registration off). Else
 * numaheap registers its own, an initial-exec TLS variable (own_rseq), on
 * each thread the first time the thread needs it (nh_rseq_thread). Either
 * way every thread's area is at one offset from its thread pointer, which
 * is what lets the sequences address it as %fs:off. The kernel forgets an
 * area when its thread exits, and glibc re-initialises the TLS of a reused
 * thread stack, so own_rseq needs no unregistration: a new thread finds it
 * unregistered (cpu_id -1) and registers it again.
 *
 * Invariants: rseq_source and rseq_off are written once, at start-up
 * (nh_rseq_start, nh_rseq_stop), before proc.c publishes per-CPU mode;
 * every later reader sees them final. A registered area's cpu_id is
 * written by the kernel only, and is negative until the area is
 * registered. With no area chosen (per-thread P's), own_rseq is never
 * registered and its cpu_id is the thread's slab number, written by the
 * thread itself (nh_rseq_set_slot): the sequences then run on the thread's
 * own slab as plain code. No locks.
 *
 * Runs inside malloc's initialisation and fast-path fallbacks: no malloc,
 * no stdio; only raw system calls and sched_getcpu.
 *
 * NH_RSEQ_FAKE_CPU0 (the test-only library numaheap_fakecpu, for counting
 * instructions under valgrind, which has no rseq): every thread's area is
 * own_rseq with cpu_id 0, never registered, so the kernel never writes it
 * and never restarts a sequence; the sequences run as plain code on CPU
 * 0's slab. Only single-threaded programs may run on it: two threads
 * would share the slab with no protection at all.
 */
#define _GNU_SOURCE 1

#include "rseq.h"

#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_rseq
#define SYS_rseq -1 /* headers older than rseq: the call fails with ENOSYS */
#endif
#define NH_RSEQ_FLAG_UNREGISTER 1

uint64_t nh_rseq_aborts;

enum rseq_source { RSEQ_NONE, RSEQ_GLIBC, RSEQ_OWN, RSEQ_FAKE };
static enum rseq_source rseq_source;
static ptrdiff_t rseq_off; /* every thread's area: thread pointer + rseq_off */
#if NH_RSEQ_FAKE
static __thread struct nh_rseq_area own_rseq __attribute__((tls_model("initial-exec"))) = {.cpu_id = 0};
#else
static __thread struct nh_rseq_area own_rseq __attribute__((tls_model("initial-exec"))) = {.cpu_id = (uint32_t)-1};
#endif
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/* The calling thread's area at offset off from its thread pointer. */
static struct nh_rseq_area *area_at(ptrdiff_t off)
{
	return (struct nh_rseq_area *)((char *)__builtin_thread_pointer() + off);
}

static long rseq_register(struct nh_rseq_area *a, int flags)
{
	return syscall(SYS_rseq, a, sizeof *a, flags, NH_RSEQ_SIG);
}

struct nh_rseq_area *nh_rseq_thread(void)
{
	if (!NH_RSEQ_SUPPORTED || rseq_source == RSEQ_NONE)
		return NULL;
	struct nh_rseq_area *rs = area_at(rseq_off);
	if ((int32_t)rs->cpu_id >= 0 || rseq_source == RSEQ_FAKE)
		return rs;
	if (rseq_source == RSEQ_OWN && rseq_register(&own_rseq, 0) == 0)
		return rs;
	return NULL;
}

bool nh_rseq_glibc(ptrdiff_t *off, unsigned *size)
{
	if (!&__rseq_size || !&__rseq_offset)
		return false;
	*off = __rseq_offset;
	*size = __rseq_size;
	return true;
}

bool nh_rseq_start(ptrdiff_t *off, bool may_register)
{
	ptrdiff_t goff;
	unsigned gsize;
	rseq_source = RSEQ_NONE;
	if (!NH_RSEQ_SUPPORTED)
		return false;
	if (NH_RSEQ_FAKE) {
		rseq_source = RSEQ_FAKE;
		*off = rseq_off = (char *)&own_rseq - (char *)__builtin_thread_pointer();
		return true;
	}
	if (nh_rseq_glibc(&goff, &gsize) && gsize > 0) {
		rseq_source = RSEQ_GLIBC;
		rseq_off = goff;
		if (!nh_rseq_thread())
			rseq_source = RSEQ_NONE;
	}
	if (rseq_source == RSEQ_NONE && may_register) {
		rseq_source = RSEQ_OWN;
		rseq_off = (char *)&own_rseq - (char *)__builtin_thread_pointer();
		if (!nh_rseq_thread())
			rseq_source = RSEQ_NONE;
	}
	*off = rseq_off;
	return rseq_source != RSEQ_NONE;
}

void nh_rseq_stop(void)
{
	/* Per-thread P's will use own_rseq as plain memory: the kernel must
	 * not write it. Only the starting thread can have registered it. */
	if (rseq_source == RSEQ_OWN && rseq_register(&own_rseq, NH_RSEQ_FLAG_UNREGISTER) == 0)
		own_rseq.cpu_id = (uint32_t)-1;
	rseq_source = RSEQ_NONE;
}

ptrdiff_t nh_rseq_own_offset(void) { return (char *)&own_rseq - (char *)__builtin_thread_pointer(); }

void nh_rseq_set_slot(int32_t slot)
{
	if (rseq_source == RSEQ_NONE)
		own_rseq.cpu_id = (uint32_t)slot;
}

int nh_cpu_current(void)
{
	if (rseq_source != RSEQ_NONE) {
		int32_t cpu = (int32_t)area_at(rseq_off)->cpu_id;
		if (cpu >= 0)
			return cpu;
	}
	return sched_getcpu();
}

int nh_rseq_probe(bool *glibc)
{
	ptrdiff_t goff;
	unsigned gsize;
	*glibc = false;
	if (nh_rseq_glibc(&goff, &gsize) && gsize > 0) {
		if ((int32_t)area_at(goff)->cpu_id >= 0) {
			*glibc = true;
			return 0;
		}
	}
	/* numaheap's own area, registered and unregistered again (the kernel
	 * sets cpu_id back to -1: the slab number of a per-thread P is put
	 * back); EBUSY: it is registered already. */
	uint32_t slot = own_rseq.cpu_id;
	if (rseq_register(&own_rseq, 0) == 0) {
		rseq_register(&own_rseq, NH_RSEQ_FLAG_UNREGISTER);
		own_rseq.cpu_id = slot;
		return 0;
	}
	return errno == EBUSY ? 0 : errno;
}
