/*
 * proc.c — M's and P's: the allocator's per-thread and per-CPU state.
 *
 * See malloc.c for the overview. An M is a thread's allocator state; a P is
 * an allocation context that owns an mcache.
 *
 * P's are CPUs ("rseq" mode) when the kernel offers restartable sequences:
 * one slab per possible CPU at nh_pcpu_base + (cpu << NH_MCACHE_SHIFT),
 * reserved at start-up and set up lazily by the first slow path that runs
 * on that CPU (so a process confined to a few CPUs touches a few slabs).
 * A thread uses the slab of the CPU it is on; a thread pinned to a CPU
 * always hits the same, node-local cache. The rseq area is glibc's when
 * glibc registered one (glibc >= 2.35: __rseq_offset, __rseq_size); else
 * numaheap registers its own per thread (GLIBC_TUNABLES=glibc.pthread.rseq=0).
 * Where neither works (old kernel, valgrind, seccomp, other architectures)
 * or NUMAHEAP_PERCPU=0, every M owns a P of its own ("per-thread" mode); a
 * single thread can also fall back alone if its registration failed.
 *
 * Life of an M:
 *   - A new thread's nh_tls_m points at nh_m_boot, whose cache is empty and
 *     which has no rseq area, so its first malloc or free misses and comes
 *     here (proc_m_slow): the M is built and a pthread key is set whose
 *     destructor runs at thread exit.
 *   - At thread exit the destructor drains a per-thread cache back to
 *     mcentral, adds the thread's counts to the dead totals and points
 *     nh_tls_m at nh_m_dead: later mallocs and frees on the dying thread
 *     (other destructors, libc's clean-up) go straight to mcentral.
 *   - fork: the prepare handler takes every allocator lock in rank order,
 *     so the child starts with consistent heaps. Per-thread caches of the
 *     other threads are dropped in the child, not drained: one of those
 *     threads may have been moving entries, and its objects stay allocated
 *     (a bounded leak in the child, as with glibc's tcache). Per-CPU slabs
 *     are consistent at any instant and carry over as they are.
 *
 * Idle CPUs: a background pass (proc_drain_idle) drains the slabs of CPUs
 * with no slow path since the previous pass, by moving itself onto each
 * such CPU and popping with the same restartable sequences as any thread.
 *
 * Locking: allm_lock (rank ALLM) protects the M list, the idle per-thread
 * caches, the M fixalloc and the dead totals; each per-CPU slab's lock
 * (rank PCACHE) its slow paths.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread struct m *nh_tls_m __attribute__((tls_model("initial-exec"))) = &nh_m_boot;
struct m nh_m_boot = {.cache = &nh_empty_mcache};
struct m nh_m_dead = {.cache = &nh_empty_mcache, .dead = 1};
int nh_cpu_mode = CPU_MODE_PER_THREAD;
uintptr_t nh_pcpu_base;
uint32_t nh_pcpu_count;

enum rseq_source { RSEQ_NONE, RSEQ_GLIBC, RSEQ_OWN };
static enum rseq_source rseq_source;
static __thread struct nh_rseq_area own_rseq __attribute__((tls_model("initial-exec"))) = {.cpu_id = (uint32_t)-1};
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

static struct mutex allm_lock;
static struct m *allm;
static struct fixalloc m_alloc;
static struct mcache *idle_caches[4096];
static unsigned nidle;
static uint64_t dead_allocs[NH_NUM_CLASSES];
static uint64_t dead_refills, dead_flushes, dead_aborts;
static uint32_t next_id;
static pthread_key_t m_key;
static bool key_ok;
static __thread int creating;

static void m_exit(void *arg);

/* ---- restartable sequences -------------------------------------------------- */

/* This thread's registered rseq area, registering our own if needed. */
static struct nh_rseq_area *thread_rseq(void)
{
	if (!NH_RSEQ_SUPPORTED)
		return NULL;
	if (rseq_source == RSEQ_GLIBC) {
		struct nh_rseq_area *rs =
			(struct nh_rseq_area *)((char *)__builtin_thread_pointer() + __rseq_offset);
		return (int32_t)rs->cpu_id >= 0 ? rs : NULL;
	}
	if (rseq_source == RSEQ_OWN) {
		if ((int32_t)own_rseq.cpu_id < 0 &&
		    syscall(SYS_rseq, &own_rseq, sizeof own_rseq, 0, NH_RSEQ_SIG) != 0)
			return NULL;
		return &own_rseq;
	}
	return NULL;
}

static void choose_cpu_mode(void)
{
	rseq_source = RSEQ_NONE;
	if (!NH_RSEQ_SUPPORTED || !NH_OPTION(PERCPU))
		return;
	if (&__rseq_size && &__rseq_offset && __rseq_size > 0) {
		rseq_source = RSEQ_GLIBC;
		if (!thread_rseq())
			rseq_source = RSEQ_NONE;
	}
	if (rseq_source == RSEQ_NONE) {
		rseq_source = RSEQ_OWN;
		if (!thread_rseq())
			rseq_source = RSEQ_NONE;
	}
	if (rseq_source == RSEQ_NONE)
		return;
	nh_pcpu_count = (uint32_t)numa_topo.ncpus;
	void *base = os_map((size_t)nh_pcpu_count << NH_MCACHE_SHIFT, NH_MCACHE_BYTES);
	if (!base) {
		rseq_source = RSEQ_NONE;
		return;
	}
	nh_pcpu_base = (uintptr_t)base;
	nh_cpu_mode = CPU_MODE_RSEQ;
}

void proc_init(void)
{
	mutex_init(&allm_lock, LOCK_RANK_ALLM);
	fixalloc_init(&m_alloc, sizeof(struct m), 0, NULL);
	key_ok = pthread_key_create(&m_key, m_exit) == 0;
	choose_cpu_mode();
}

int proc_current_node(void)
{
	struct nh_rseq_area *rs = nh_tls_m->rs;
	return numa_heap_node_of_cpu(rs ? (int)rs->cpu_id_start : sched_getcpu());
}

/* ---- M's ---------------------------------------------------------------------- */

static struct mcache *cache_get(int node)
{
	if (nidle)
		return idle_caches[--nidle];
	struct mcache *c = os_map(NH_MCACHE_BYTES, 4096);
	if (!c)
		return NULL;
	numa_bind_heap(c, NH_MCACHE_BYTES, node);
	mcache_init(c, node, next_id++);
	return c;
}

struct m *proc_m_slow(void)
{
	struct m *m = nh_tls_m;
	if (m != &nh_m_boot)
		return m;
	if (creating)
		return &nh_m_dead; /* pthread_setspecific allocating: no cache yet */
	nh_ensure_init();
	creating = 1;
	struct nh_rseq_area *rs = nh_cpu_mode == CPU_MODE_RSEQ ? thread_rseq() : NULL;
	mutex_lock(&allm_lock);
	m = fixalloc_alloc(&m_alloc);
	struct mcache *c = &nh_empty_mcache;
	if (m && !rs)
		c = cache_get(proc_current_node());
	if (!m || !c) {
		if (m)
			fixalloc_free(&m_alloc, m);
		mutex_unlock(&allm_lock);
		creating = 0;
		return &nh_m_dead; /* out of memory: serve this thread uncached */
	}
	m->rs = rs;
	m->cache = c;
	m->id = rs ? 0 : c->id;
	m->next = allm;
	if (allm)
		allm->prev = m;
	allm = m;
	mutex_unlock(&allm_lock);
	nh_tls_m = m;
	if (key_ok)
		pthread_setspecific(m_key, m);
	creating = 0;
	return m;
}

static void m_unlink(struct m *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		allm = m->next;
	if (m->next)
		m->next->prev = m->prev;
	for (unsigned k = 0; k < NH_NUM_CLASSES; k++) {
		dead_allocs[k] += m->allocs[k];
		if (m->cache != &nh_empty_mcache) {
			dead_refills += m->cache->stats[k].refills;
			dead_flushes += m->cache->stats[k].flushes;
			m->cache->stats[k].refills = m->cache->stats[k].flushes = 0;
		}
	}
	dead_aborts += m->rseq_aborts;
}

static void m_exit(void *arg)
{
	struct m *m = arg;
	nh_tls_m = &nh_m_dead;
	if (m->cache != &nh_empty_mcache) {
		struct pctx x = {m->cache, NULL, 0, NULL};
		mcache_drain(&x);
	}
	mutex_lock(&allm_lock);
	m_unlink(m);
	if (m->cache != &nh_empty_mcache && nidle < sizeof idle_caches / sizeof idle_caches[0])
		idle_caches[nidle++] = m->cache;
	fixalloc_free(&m_alloc, m);
	mutex_unlock(&allm_lock);
}

/* ---- P's ------------------------------------------------------------------------ */

bool proc_acquire_p(struct m *m, struct pctx *x)
{
	if (!m->rs) {
		if (m->cache == &nh_empty_mcache)
			return false;
		*x = (struct pctx){m->cache, NULL, 0, NULL};
		return true;
	}
	for (;;) {
		uint32_t cpu = m->rs->cpu_id_start;
		if (cpu >= nh_pcpu_count)
			return false; /* a CPU beyond those possible at start-up */
		struct mcache *c = pcpu_slab(cpu);
		mutex_lock(&c->lock);
		*x = (struct pctx){c, m->rs, cpu, &m->rseq_aborts};
		if (NH_LIKELY(c->ready))
			return true;
		int node = numa_heap_node_of_cpu((int)cpu);
		numa_bind_heap(c, NH_MCACHE_BYTES, node);
		if (mcache_init_pcpu(x, node) == 0)
			return true;
		mutex_unlock(&c->lock); /* moved to another CPU meanwhile: again */
	}
}

void proc_release_p(struct pctx *x)
{
	if (x->rs)
		mutex_unlock(&x->c->lock);
}

size_t proc_drain_idle(void)
{
	if (nh_cpu_mode != CPU_MODE_RSEQ)
		return 0;
	struct m *m = nh_tls_m;
	if (m == &nh_m_boot)
		m = proc_m_slow();
	if (!m->rs)
		return 0;
	cpu_set_t saved;
	if (sched_getaffinity(0, sizeof saved, &saved) != 0)
		return 0;
	size_t drained = 0;
	for (uint32_t cpu = 0; cpu < nh_pcpu_count; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (!c->ready || !CPU_ISSET(cpu, &saved))
			continue;
		if (c->gen != c->idle_gen) {
			c->idle_gen = c->gen; /* racy read of a hint; the lock guards the drain */
			continue;
		}
		size_t cached = 0;
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
			cached += mcache_cached_objects(c, k);
		if (!cached && !c->nremote)
			continue;
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof one, &one) != 0)
			continue;
		mutex_lock(&c->lock);
		struct pctx x = {c, m->rs, cpu, &m->rseq_aborts};
		if (c->gen == c->idle_gen && mcache_drain(&x) == 0) {
			drained += cached;
			c->gen++;
			c->idle_gen = c->gen;
		}
		mutex_unlock(&c->lock);
	}
	sched_setaffinity(0, sizeof saved, &saved);
	return drained;
}

/* ---- statistics --------------------------------------------------------------- */

void proc_sum_allocs(uint64_t out[NH_NUM_CLASSES])
{
	mutex_lock(&allm_lock);
	for (unsigned k = 0; k < NH_NUM_CLASSES; k++)
		out[k] = dead_allocs[k];
	for (struct m *m = allm; m; m = m->next)
		for (unsigned k = 0; k < NH_NUM_CLASSES; k++)
			out[k] += m->allocs[k];
	mutex_unlock(&allm_lock);
}

void proc_sum_cached(uint64_t out[NH_NUM_CLASSES])
{
	memset(out, 0, sizeof(uint64_t) * NH_NUM_CLASSES);
	mutex_lock(&allm_lock);
	for (struct m *m = allm; m; m = m->next)
		if (m->cache != &nh_empty_mcache)
			for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
				out[k] += mcache_cached_objects(m->cache, k);
	mutex_unlock(&allm_lock);
	for (uint32_t cpu = 0; cpu < nh_pcpu_count; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (c->ready)
			for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
				out[k] += mcache_cached_objects(c, k);
	}
}

void proc_sum_cache_stats(uint64_t *refills, uint64_t *flushes, uint64_t *caches, uint64_t *aborts)
{
	*caches = 0;
	mutex_lock(&allm_lock);
	*refills = dead_refills;
	*flushes = dead_flushes;
	*aborts = dead_aborts;
	for (struct m *m = allm; m; m = m->next) {
		*aborts += m->rseq_aborts;
		if (m->cache == &nh_empty_mcache)
			continue;
		(*caches)++;
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
			*refills += m->cache->stats[k].refills;
			*flushes += m->cache->stats[k].flushes;
		}
	}
	mutex_unlock(&allm_lock);
	for (uint32_t cpu = 0; cpu < nh_pcpu_count; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (!c->ready)
			continue;
		(*caches)++;
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
			*refills += c->stats[k].refills;
			*flushes += c->stats[k].flushes;
		}
	}
}

/* ---- fork ------------------------------------------------------------------------ */

void mcentral_fork_lock(bool lock);
void mcentral_fork_child(void);
void mheap_fork_lock(bool lock);
void mheap_fork_child(void);
void persistent_fork_lock(bool lock);
void persistent_fork_child(void);

static void pcpu_fork_lock(bool lock)
{
	for (uint32_t cpu = 0; cpu < nh_pcpu_count; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (!c->ready)
			continue;
		if (lock)
			mutex_lock(&c->lock);
		else
			mutex_unlock(&c->lock);
	}
}

static void fork_prepare(void)
{
	if (atomic_load(&nh_initialized) != 2)
		return;
	lockrank_fork(1);
	pcpu_fork_lock(true);
	mutex_lock(&allm_lock);
	scavenger_fork_lock(true);
	mcentral_fork_lock(true);
	mheap_fork_lock(true);
	persistent_fork_lock(true);
}

static void fork_parent(void)
{
	if (atomic_load(&nh_initialized) != 2)
		return;
	persistent_fork_lock(false);
	mheap_fork_lock(false);
	mcentral_fork_lock(false);
	scavenger_fork_lock(false);
	mutex_unlock(&allm_lock);
	pcpu_fork_lock(false);
	lockrank_fork(0);
}

static void fork_child(void)
{
	if (atomic_load(&nh_initialized) != 2)
		return;
	persistent_fork_child();
	mheap_fork_child();
	mcentral_fork_child();
	scavenger_fork_child();
	mutex_reset(&allm_lock);
	lockrank_fork(-1);
	for (uint32_t cpu = 0; cpu < nh_pcpu_count; cpu++)
		if (pcpu_slab(cpu)->ready)
			mutex_reset(&pcpu_slab(cpu)->lock);
	/* Only this thread survives. Drop the others' M's and caches. */
	struct m *self = nh_tls_m;
	struct m *m = allm;
	while (m) {
		struct m *next = m->next;
		if (m != self) {
			m_unlink(m);
			fixalloc_free(&m_alloc, m);
		}
		m = next;
	}
}

void proc_register_atfork(void)
{
	static bool done;
	if (!done) {
		done = true;
		pthread_atfork(fork_prepare, fork_parent, fork_child);
	}
}
