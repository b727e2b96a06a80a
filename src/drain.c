/*
 * drain.c — emptying other CPUs' caches (per-CPU mode): the background
 * pass drains the slabs of CPUs with no slow path for NUMAHEAP_CACHE_IDLE
 * (proc_drain_idle: it notes when it last saw each slab's gen move), and
 * malloc_trim / numaheap_release drain every CPU's (proc_drain_all).
 *
 * A slab's stacks are only ever popped by a restartable sequence running on
 * its CPU, so the draining thread moves itself onto each CPU in turn and
 * pops with the same sequences as the CPU's own threads (mcache_drain),
 * then goes back to the CPU mask it had. It may move onto a CPU outside
 * that mask (sched_setaffinity allows any CPU of the process's cpuset): a
 * program that pinned the thread that started the background thread, or
 * that calls malloc_trim, to one CPU still has its other CPUs' caches
 * drained. Per-thread caches are their threads' own, drained at exit.
 *
 * Locking: each slab's lock (rank PCACHE) in turn, the central locks under
 * it (mcache_drain); no other allocator lock held. slab_seen_at is the
 * background thread's own.
 */
#define _GNU_SOURCE 1

#include "internal.h"
#include "options.h"
#include "os/os.h"
#include "rseq.h"
#include "mcache.h"
#include "proc.h"

#include <sched.h>

/* When the background thread saw each slab's gen change last (its own). */
static uint64_t slab_seen_at[NH_MAX_CPUS];

/* Objects in c's stacks (racy), and whether it holds any (remote frees too). */
static bool slab_holds(struct mcache *c, size_t *cached)
{
	*cached = 0;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
		*cached += mcache_cached_objects(c, k);
	return *cached || c->nremote;
}

/*
 * Move the thread onto cpu and drain its slab (if idle_only, only if no
 * slow path has used it since the background pass looked); objects
 * drained. The CPU need not be in the thread's mask, only in the
 * process's cpuset: a program that pinned the thread that started the
 * background thread (or that calls malloc_trim) to one CPU still has its
 * other CPUs' caches drained. Where the kernel refuses the CPU, nothing.
 */
static size_t drain_on_cpu(struct mcache *c, uint32_t cpu, size_t cached, bool idle_only, bool *moved)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof one, &one) != 0)
		return 0;
	*moved = true;
	size_t drained = 0;
	mutex_lock(&c->lock);
	struct pctx x = {c, true, cpu};
	if ((!idle_only || c->gen == c->idle_gen) && mcache_drain(&x) == 0 && mcache_release_slots(&x) == 0) {
		drained = cached;
		c->gen++;
		c->idle_gen = c->gen;
	}
	mutex_unlock(&c->lock);
	return drained;
}

/* Can this thread drain other CPUs' slabs (by moving onto them)? The
 * fake-CPU build: every thread is "on CPU 0", so it would pop from the
 * slab the program is using; basic system calls only (os.h): no
 * sched_setaffinity. */
static bool can_drain_others(void)
{
	return !NH_RSEQ_FAKE && nh_fast.cpu_mode == CPU_MODE_RSEQ && !os_basic_syscalls && nh_rseq_thread();
}

/* When c's last slow path ran, by its stamps (mcache.c, quiet_stamp). */
static uint64_t slab_last_slow(const struct mcache *c)
{
	uint64_t t = 0;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
		t = NH_MAX(t, atomic_load_explicit(&c->quiet[k].cycles, memory_order_relaxed));
	return t;
}

/*
 * Drain the slabs holding objects: all of them (idle_ns 0), or those of
 * CPUs no slow path has used for idle_ns by now (*due: when the next turns
 * idle). Moves the calling thread from CPU to CPU, then back to its mask.
 */
static size_t drain_cpus(uint64_t now, uint64_t idle_ns, uint64_t *due, const struct alloc_counts *last)
{
	/* A slab whose gen moved since the last look is dated by its last
	 * slow path's stamp, not by this look (up to a round later), if the
	 * stamp is past last's count; else by this look, as before. */
	uint64_t ns = idle_ns ? os_nanotime() : 0, cyc = idle_ns ? nh_cycles() : 0;
	cpu_set_t saved;
	if (sched_getaffinity(0, sizeof saved, &saved) != 0)
		return 0;
	size_t drained = 0;
	bool moved = false;
	for (uint32_t cpu = 0; cpu < nh_fast.pcpu_count && cpu < NH_MAX_CPUS; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (!c->ready)
			continue;
		if (idle_ns && (c->gen != c->idle_gen || !slab_seen_at[cpu])) {
			c->idle_gen = c->gen; /* racy read of a hint; the lock guards the drain */
			uint64_t s = slab_last_slow(c);
			slab_seen_at[cpu] = s > last->cycles ? proc_cycles_time(s, last, ns, cyc) : now;
		}
		size_t cached;
		if (!slab_holds(c, &cached))
			continue;
		uint64_t ready_at = slab_seen_at[cpu] + idle_ns;
		if (idle_ns && now < ready_at) {
			if (!*due || ready_at < *due)
				*due = ready_at;
			continue;
		}
		size_t d = drain_on_cpu(c, cpu, cached, idle_ns != 0, &moved);
		drained += d;
		if (d && idle_ns)
			slab_seen_at[cpu] = now;
	}
	if (moved)
		sched_setaffinity(0, sizeof saved, &saved);
	return drained;
}

bool proc_drain_all(void)
{
	if (!can_drain_others())
		return false;
	/* A seccomp filter the program put on itself since start-up may kill
	 * it at sched_setaffinity (bgthread.c checks the same at its start). */
	if (NH_OPTION(SYSCALLS) == OS_SYSCALLS_AUTO && os_seccomp_mode() != os_seccomp_at_start)
		return false;
	drain_cpus(0, 0, NULL, NULL);
	return true;
}

size_t proc_drain_idle(uint64_t now, uint64_t idle_ns, uint64_t *due, const struct alloc_counts *last)
{
	return can_drain_others() && idle_ns ? drain_cpus(now, idle_ns, due, last) : 0;
}
