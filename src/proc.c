/*
 * proc.c — M's and P's: the allocator's per-thread state.
 *
 * See malloc.c for the overview. An M is a thread's allocator state; a P is
 * an allocation context that owns an mcache. For now every M owns one P
 * ("per-thread" mode); caches of exited threads are drained and kept in an
 * idle pool for the next thread, so a program that churns threads does not
 * churn caches.
 *
 * Life of an M:
 *   - A new thread's nh_tls_m points at nh_m_boot, whose cache is empty, so
 *     its first malloc or free misses and comes here (proc_m_slow), which
 *     builds the M and registers a pthread key whose destructor runs at
 *     thread exit.
 *   - At thread exit the destructor drains the cache back to mcentral, adds
 *     the thread's counts to the dead totals and points nh_tls_m at
 *     nh_m_dead: later mallocs and frees on the dying thread (other
 *     destructors, libc's own clean-up) go straight to mcentral.
 *   - fork: the prepare handler takes every allocator lock in rank order,
 *     so the child starts with consistent heaps. In the child the other
 *     threads' caches are dropped, not drained: one of those threads may
 *     have been in the middle of moving entries, and its objects stay
 *     allocated (a bounded leak in the child, as with glibc's tcache).
 *
 * Locking: allm_lock (rank ALLM) protects the M list, the idle caches, the
 * M fixalloc and the dead totals.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

__thread struct m *nh_tls_m __attribute__((tls_model("initial-exec"))) = &nh_m_boot;
struct m nh_m_boot = {.cache = &nh_empty_mcache};
struct m nh_m_dead = {.cache = &nh_empty_mcache, .dead = 1};
int nh_cpu_mode = CPU_MODE_PER_THREAD;

static struct mutex allm_lock;
static struct m *allm;
static struct fixalloc m_alloc;
static struct mcache *idle_caches[4096];
static unsigned nidle;
static uint64_t dead_allocs[NH_NUM_CLASSES];
static uint64_t dead_refills, dead_flushes;
static uint32_t next_id;
static pthread_key_t m_key;
static bool key_ok;
static __thread int creating;

static void m_exit(void *arg);

void proc_init(void)
{
	mutex_init(&allm_lock, LOCK_RANK_ALLM);
	fixalloc_init(&m_alloc, sizeof(struct m), 0, NULL);
	key_ok = pthread_key_create(&m_key, m_exit) == 0;
}

static struct mcache *cache_get(int node)
{
	if (nidle)
		return idle_caches[--nidle];
	struct mcache *c = os_map(NH_MCACHE_BYTES, 4096);
	if (!c)
		return NULL;
	numa_bind(c, NH_MCACHE_BYTES, node, NUMA_BIND_PREFERRED, 0);
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
	mutex_lock(&allm_lock);
	m = fixalloc_alloc(&m_alloc);
	struct mcache *c = m ? cache_get(numa_current_node()) : NULL;
	if (!c) {
		if (m)
			fixalloc_free(&m_alloc, m);
		mutex_unlock(&allm_lock);
		creating = 0;
		return &nh_m_dead; /* out of memory: serve this thread uncached */
	}
	m->cache = c;
	m->id = c->id;
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
		dead_refills += m->cache->stats[k].refills;
		dead_flushes += m->cache->stats[k].flushes;
		m->cache->stats[k].refills = m->cache->stats[k].flushes = 0;
	}
}

static void m_exit(void *arg)
{
	struct m *m = arg;
	nh_tls_m = &nh_m_dead;
	mcache_drain(m->cache);
	mutex_lock(&allm_lock);
	m_unlink(m);
	if (nidle < sizeof idle_caches / sizeof idle_caches[0])
		idle_caches[nidle++] = m->cache;
	fixalloc_free(&m_alloc, m);
	mutex_unlock(&allm_lock);
}

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
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
			out[k] += mcache_cached_objects(m->cache, k);
	mutex_unlock(&allm_lock);
}

void proc_sum_cache_stats(uint64_t *refills, uint64_t *flushes, uint64_t *caches)
{
	*caches = 0;
	mutex_lock(&allm_lock);
	*refills = dead_refills;
	*flushes = dead_flushes;
	for (struct m *m = allm; m; m = m->next) {
		(*caches)++;
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
			*refills += m->cache->stats[k].refills;
			*flushes += m->cache->stats[k].flushes;
		}
	}
	mutex_unlock(&allm_lock);
}

/* ---- fork ------------------------------------------------------------------ */

void mcentral_fork_lock(bool lock);
void mcentral_fork_child(void);
void mheap_fork_lock(bool lock);
void mheap_fork_child(void);
void persistent_fork_lock(bool lock);
void persistent_fork_child(void);

static void fork_prepare(void)
{
	if (atomic_load(&nh_initialized) != 2)
		return;
	mutex_lock(&allm_lock);
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
	mutex_unlock(&allm_lock);
}

static void fork_child(void)
{
	if (atomic_load(&nh_initialized) != 2)
		return;
	persistent_fork_child();
	mheap_fork_child();
	mcentral_fork_child();
	mutex_reset(&allm_lock);
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
