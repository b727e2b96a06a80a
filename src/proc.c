/*
 * proc.c — M's and P's: the allocator's per-thread and per-CPU state.
 *
 * See malloc.c for the overview. An M is a thread's allocator state; a P is
 * an allocation context that owns an mcache.
 *
 * P's are CPUs ("rseq" mode) when the kernel offers restartable sequences:
 * one slab per possible CPU at nh_fast.pcpu_base + (cpu << NH_MCACHE_SHIFT),
 * reserved at start-up and set up lazily by the first slow path that runs
 * on that CPU (so a process confined to a few CPUs touches a few slabs).
 * A thread uses the slab of the CPU it is on; a thread pinned to a CPU
 * always hits the same, node-local cache. arch/rseq.c chooses and registers
 * the rseq area (glibc's, or numaheap's own per thread); where neither
 * works (old kernel, valgrind, seccomp, other architectures) or
 * NUMAHEAP_PERCPU=0, every M owns a P of its own ("per-thread" mode); a
 * single thread can also fall back alone if its registration failed.
 *
 * Per-CPU P's need nothing per thread: the fast paths find the rseq area
 * at a fixed offset from the thread pointer and the slab from the CPU
 * number, and the allocation counts live in the slabs' class headers. The
 * sequences see the slab only through arch/rseq.h's offsets, which the
 * _Static_asserts below tie to mcache.h.
 *
 * The node a thread allocates on (proc_current_node) is the heap node
 * numa/ gives the CPU that arch/ says the thread runs on; numaheap asks
 * this in no other way.
 *
 * Invariants: nh_fast is written once, by proc_init, cpu_mode last (the
 * fast paths read it without a lock). A per-CPU slab changes only on its
 * CPU: its fast paths are sequences, its slow paths hold its lock and use
 * sequences that check the CPU. A thread's tls_state only grows: 0 fresh,
 * 1 with an M, 2 exited.
 *
 * Life of an M (per-thread P's only):
 *   - A new thread's nh_tls_cache is nh_empty_mcache, on which every pop
 *     and push misses, so its first malloc or free comes here
 *     (thread_cache_slow): the M and its cache are made, and a pthread key
 *     is set whose destructor runs at thread exit.
 *   - At thread exit the destructor drains the cache back to mcentral and
 *     parks it for the next thread (its counts stay in it), and the thread
 *     is marked exited: later mallocs and frees on the dying thread (other
 *     destructors, libc's clean-up) go straight to mcentral.
 *   - fork: the prepare handler takes stdio's list lock, then every
 *     allocator lock in rank order, so the child starts with consistent
 *     heaps (not when the forking thread holds a numaheap lock already: a
 *     fork from a signal handler; see fork_prepare). The child drains the
 *     other threads' per-thread caches to mcentral, as at thread exit
 *     (fork_child says why that is safe). Per-CPU slabs are consistent at
 *     any instant and carry over as they are.
 *
 * Idle CPUs, and malloc_trim: drain.c drains other CPUs' slabs.
 *
 * Locking: allm_lock (rank ALLM) protects the M list, the idle and the
 * made per-thread caches (idle_caches, all_caches) and the M fixalloc; each
 * per-CPU slab's lock (rank PCACHE) its slow paths. Fork takes them all
 * (fork_lock_all gives the order).
 */
#define _GNU_SOURCE 1

#include "options.h"
#include "os/os.h"

#include "numa.h"
#include "rseq.h"

#include "fixalloc.h"

#include "arena.h"

#include "mcache.h"
#include "proc.h"
#include "alloc.h"
#include "scavenger.h"
#include "hardened.h"
#include "prof.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

__thread struct mcache *nh_tls_cache __attribute__((tls_model("initial-exec"))) = &nh_empty_mcache;
static __thread struct m *tls_m;  /* this thread's M (per-thread P's only) */
static __thread int tls_state;	 /* 0 fresh, 1 has an M, 2 exited: no cache any more */
struct nh_fast nh_fast = {.cpu_mode = CPU_MODE_PER_THREAD};
static struct mutex allm_lock;
static struct m *allm;
static struct fixalloc m_alloc;
static struct mcache *idle_caches[4096];
static unsigned nidle;
static struct mcache **all_caches; /* every per-thread cache ever made (statistics) */
static unsigned nall_caches, all_caches_cap;
static uint32_t next_id;
static pthread_key_t m_key;
static bool key_ok;
static __thread int creating;

static void m_exit(void *arg);

/* ---- per-CPU P's ---------------------------------------------------------------- */

/*
 * The restartable sequences (arch/<arch>/rseq.h) address a slab with the
 * numbers of arch/rseq.h, which cannot see mcache.h: here both are in view,
 * so a change to either side that breaks the other fails the build.
 */
_Static_assert(NH_RSEQ_SLAB_SHIFT == NH_MCACHE_SHIFT, "slab i at pcpu_base + (i << NH_MCACHE_SHIFT)");
_Static_assert(offsetof(struct mcache, hdr) == 0, "the headers open the slab");
_Static_assert(sizeof(struct mcache_class) == 1u << NH_RSEQ_CLASS_SHIFT, "header h at h << CLASS_SHIFT");
_Static_assert(offsetof(struct mcache_class, word) == NH_RSEQ_CLASS_WORD, "word: cur | allocs");
_Static_assert(offsetof(struct mcache_class, end) == NH_RSEQ_CLASS_END, "end");
_Static_assert(offsetof(struct mcache_class, begin) == NH_RSEQ_CLASS_BEGIN, "begin");
_Static_assert(sizeof(((struct mcache_class *)0)->end) * 8 == NH_RSEQ_CUR_BITS &&
		       sizeof(((struct mcache_class *)0)->begin) * 8 == NH_RSEQ_CUR_BITS,
	       "end and begin are compared with cur as 16-bit words");
_Static_assert(offsetof(struct mcache, size_hdr) == NH_RSEQ_SIZE_TABLE, "malloc(n)'s header at SIZE_TABLE + 2n");
_Static_assert(offsetof(struct mcache, class_hdr) == NH_RSEQ_CLASS_TABLE, "class k's header at CLASS_TABLE + 2k");
_Static_assert(sizeof(((struct mcache *)0)->size_hdr[0]) == 2 && sizeof(((struct mcache *)0)->class_hdr[0]) == 2,
	       "the tables are read with movzwl (,2)");
_Static_assert(offsetof(struct mcache, class_hdr) + sizeof(((struct mcache *)0)->class_hdr) <= NH_RSEQ_SLAB_READ,
	       "a sequence reads no more of a sentinel than NH_RSEQ_SLAB_READ");
_Static_assert(NH_MCACHE_HEADERS << NH_RSEQ_CLASS_SHIFT <= 65536, "header offsets fit the tables' 16 bits");
_Static_assert(sizeof(*mcache_slots(NULL)) == NH_RSEQ_SLOT_BYTES, "slots are words from the slab's start");
_Static_assert(NH_MCACHE_BYTES / NH_RSEQ_SLOT_BYTES <= 1u << NH_RSEQ_CUR_BITS, "every slot index fits in cur");

/*
 * The highest CPU number the kernel may give plus one, from
 * /sys/devices/system/cpu/possible ("0-63", "0,2-5"): the last number.
 * 0 if it cannot be read. The sequences index slabs with the CPU number
 * unchecked, so every possible CPU needs one.
 */
static uint32_t possible_cpus(void)
{
	char buf[4096];
	ssize_t n = os_read_file("/sys/devices/system/cpu/possible", buf, sizeof buf - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	uint32_t last = 0;
	bool any = false;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] >= '0' && buf[i] <= '9') {
			uint32_t v = 0;
			while (i < n && buf[i] >= '0' && buf[i] <= '9' && v < 1u << 24)
				v = v * 10 + (uint32_t)(buf[i++] - '0');
			last = v;
			any = true;
		}
	}
	return any ? last + 1 : 0;
}

/*
 * The slab region: the two sentinels, then (per-CPU mode) one slab per
 * possible CPU, each set up by its CPU's first slow path (so a process
 * confined to a few CPUs touches a few slabs). The region is reserved
 * readable (zero pages): a slab is made writable when its CPU first takes
 * it (proc_acquire_p), so a process is charged commit for the CPUs it ran
 * on, not for every possible one. The sentinels are never written (a
 * sequence misses on them before its commit: now the MMU says so too)
 * and only their first NH_RSEQ_SLAB_READ bytes are ever read. false: no
 * room.
 */
static bool map_slabs(uint32_t count)
{
	/* Until there is a region, or without one: sentinels in BSS (never
	 * written, so never backed). A per-thread slab cannot be numbered
	 * from them (its alignment differs): no region, no heap. */
	static char no_slabs[2 * NH_MCACHE_BYTES + NH_RSEQ_SLAB_READ] NH_ALIGNED(4096);
	nh_fast.pcpu_base = (uintptr_t)no_slabs + 2 * NH_MCACHE_BYTES;
	void *r = os_reserve_zero((size_t)(count + 2) << NH_MCACHE_SHIFT, NH_MCACHE_BYTES);
	if (!r)
		return false;
	nh_fast.pcpu_base = (uintptr_t)r + ((uintptr_t)2 << NH_MCACHE_SHIFT);
	return true;
}

/* Per-CPU P's when rseq works and NUMAHEAP_PERCPU allows. */
static bool choose_cpu_mode(void)
{
	ptrdiff_t off;
	uint32_t count = (uint32_t)numa_topo.ncpus, possible = possible_cpus();
	nh_fast.rseq_off = nh_rseq_own_offset(); /* per-thread, until per-CPU is chosen */
	if (!NH_OPTION(PERCPU) || possible > count || !nh_rseq_start(&off, !os_basic_syscalls))
		return false;
	if (!map_slabs(count)) {
		nh_rseq_stop();
		return false;
	}
	nh_fast.rseq_off = off;
	nh_fast.pcpu_count = count;
	nh_fast.cpu_mode = CPU_MODE_RSEQ;
	return true;
}

void proc_init(void)
{
	mutex_init(&allm_lock, LOCK_RANK_ALLM);
	fixalloc_init(&m_alloc, sizeof(struct m), 0, NULL);
	key_ok = pthread_key_create(&m_key, m_exit) == 0;
	if (!choose_cpu_mode()) {
		/* Per-thread P's: the same sequences, on numaheap's own rseq
		 * area, unregistered, whose cpu_id is each thread's slab. */
		nh_fast.rseq_off = nh_rseq_own_offset();
		if (!map_slabs(0))
			nh_heaps_ok = false; /* not even 512 KiB: no heap at all */
	}
	nh_fast.plain = nh_hardened ? PLAIN_NO : nh_fast.cpu_mode == CPU_MODE_RSEQ ? PLAIN_RSEQ : PLAIN_PER_THREAD;
}

void nh_fast_publish(void)
{
	bool plain = nh_fast.plain == PLAIN_RSEQ || nh_fast.plain == PLAIN_PER_THREAD;
	if (!nh_heaps_ok)
		return; /* every call fails in the general path, ENOMEM */
	if (!nh_hardened)
		arena_publish_page_table();
	if (plain && !nh_prof_on) /* heap profiling: every malloc to malloc_other */
		nh_fast.malloc_limit = NH_SMALL_SIZE_MAX + 1;
}

/* The calling thread's per-thread slab number, in its own rseq area. */
static void set_thread_slot(struct mcache *c)
{
	if (nh_fast.cpu_mode == CPU_MODE_RSEQ)
		return; /* a thread of a per-CPU process whose registration failed: slow paths only */
	int32_t slot = -1;
	if (c != &nh_empty_mcache)
		slot = (int32_t)((intptr_t)((uintptr_t)c - nh_fast.pcpu_base) >> NH_MCACHE_SHIFT);
	nh_rseq_set_slot(slot);
}

int proc_current_node(void) { return numa_heap_node_of_cpu(nh_cpu_current()); }

/* ---- per-thread P's ------------------------------------------------------------- */

static struct mcache *cache_get(int node)
{
	if (nidle) {
		struct mcache *c = idle_caches[--nidle];
		mcache_set_node(c, node); /* drained when it went idle */
		return c;
	}
	if (nall_caches == all_caches_cap) {
		unsigned cap = all_caches_cap ? 2 * all_caches_cap : 256;
		struct mcache **a = persistentalloc(cap * sizeof *a, 8, 0);
		if (!a)
			return NULL;
		if (nall_caches)
			memcpy(a, all_caches, nall_caches * sizeof *a);
		all_caches = a; /* the old array is leaked: metadata is never freed */
		all_caches_cap = cap;
	}
	/* Aligned: the sequences find it at pcpu_base + (slot << NH_MCACHE_SHIFT). */
	struct mcache *c = os_map(NH_MCACHE_BYTES, NH_MCACHE_BYTES);
	if (!c)
		return NULL;
	numa_bind_heap(c, NH_MCACHE_BYTES, node);
	mcache_init(c, node, next_id++);
	all_caches[nall_caches++] = c;
	return c;
}

/* Give the calling thread a per-thread P; false if it cannot have one. */
static bool thread_cache_slow(void)
{
	if (tls_state == 2 || creating)
		return false; /* exited, or pthread_setspecific allocating */
	nh_ensure_init();
	creating = 1;
	mutex_lock(&allm_lock);
	struct m *m = fixalloc_alloc(&m_alloc);
	struct mcache *c = m ? cache_get(proc_current_node()) : NULL;
	if (!c) {
		if (m)
			fixalloc_free(&m_alloc, m);
		mutex_unlock(&allm_lock);
		creating = 0;
		return false; /* out of memory: serve this thread uncached */
	}
	m->cache = c;
	m->id = c->id;
	m->next = allm;
	if (allm)
		allm->prev = m;
	allm = m;
	mutex_unlock(&allm_lock);
	tls_m = m;
	tls_state = 1;
	nh_tls_cache = c;
	set_thread_slot(c);
	if (key_ok)
		pthread_setspecific(m_key, m);
	creating = 0;
	return true;
}

static void m_unlink(struct m *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		allm = m->next;
	if (m->next)
		m->next->prev = m->prev;
	m->next = m->prev = NULL;
}

/* Retire the M of a thread that is gone: its cache's objects go back to
 * mcentral, the cache to the idle list for the next thread. lock: take
 * allm_lock for the list (not across the drain, which takes mcentral's
 * locks); fork's child, the only thread left, needs none. */
static void m_retire(struct m *m, bool lock)
{
	struct pctx x = {m->cache, false, 0};
	mcache_drain(&x);
	if (lock)
		mutex_lock(&allm_lock);
	m_unlink(m);
	if (nidle < sizeof idle_caches / sizeof idle_caches[0])
		idle_caches[nidle++] = m->cache;
	fixalloc_free(&m_alloc, m);
	if (lock)
		mutex_unlock(&allm_lock);
}

static void m_exit(void *arg)
{
	struct m *m = arg;
	nh_tls_cache = &nh_empty_mcache;
	set_thread_slot(&nh_empty_mcache);
	tls_state = 2;
	tls_m = NULL;
	m_retire(m, true);
}

/* ---- P's ------------------------------------------------------------------------ */

/* Slab cpu's pages are writable (map_slabs); set once, never cleared. */
static _Atomic uint8_t slab_committed[NH_MAX_CPUS];
_Static_assert(NUMA_MAX_CPUS <= NH_MAX_CPUS, "a slab per CPU number");

/* Make slab cpu writable, once; false past the commit limit. Two threads
 * may both do it (mprotect is idempotent). */
static bool slab_writable(struct mcache *c, uint32_t cpu)
{
	if (NH_LIKELY(atomic_load_explicit(&slab_committed[cpu], memory_order_acquire)))
		return true;
	if (os_commit(c, NH_MCACHE_BYTES) != 0)
		return false;
	atomic_store_explicit(&slab_committed[cpu], 1, memory_order_release);
	return true;
}

bool proc_acquire_p(struct pctx *x)
{
	if (nh_fast.cpu_mode == CPU_MODE_RSEQ && tls_state != 1) {
		for (;;) {
			struct nh_rseq_area *rs = nh_rseq_thread();
			if (!rs)
				break; /* registration failed: a per-thread P for this thread */
			uint32_t cpu = rs->cpu_id;
			if (cpu >= nh_fast.pcpu_count)
				return false; /* a CPU beyond those possible at start-up */
			struct mcache *c = pcpu_slab(cpu);
			if (!slab_writable(c, cpu))
				return false; /* past the commit limit: the direct paths */
			mutex_lock(&c->lock);
			*x = (struct pctx){c, true, cpu};
			if (NH_LIKELY(c->ready))
				return true;
			int node = numa_heap_node_of_cpu((int)cpu);
			numa_bind_heap(c, NH_MCACHE_BYTES, node);
			if (mcache_init_pcpu(x, node) == 0)
				return true;
			mutex_unlock(&c->lock); /* moved to another CPU meanwhile: again */
		}
	}
	if (nh_tls_cache == &nh_empty_mcache && !thread_cache_slow())
		return false;
	set_thread_slot(nh_tls_cache); /* again: numaheap_topology's probe may have reset it */
	*x = (struct pctx){nh_tls_cache, false, 0};
	return true;
}

void proc_release_p(struct pctx *x)
{
	if (x->rseq)
		mutex_unlock(&x->c->lock);
}

/* ---- statistics --------------------------------------------------------------- */

/* Add cache c's allocs to out[]; with quiet, raise quiet[k] to the cycles
 * by which c's last malloc of class k was served: its stamp's, if the
 * allocs have not moved since (read around the stamp: a slow path may be
 * writing it), else UINT64_MAX (after the stamp: not known when). */
static void sum_cache(const struct mcache *c, uint64_t out[NH_NUM_CLASSES], uint64_t *quiet)
{
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		uint64_t a = mcache_allocs(c, k);
		out[k] += a;
		if (!quiet)
			continue;
		uint64_t s = atomic_load_explicit(&c->quiet[k].allocs, memory_order_acquire);
		uint64_t t = atomic_load_explicit(&c->quiet[k].cycles, memory_order_relaxed);
		if (s != a || atomic_load_explicit(&c->quiet[k].allocs, memory_order_relaxed) != s)
			t = UINT64_MAX;
		quiet[k] = NH_MAX(quiet[k], t);
	}
}

void proc_sum_allocs(uint64_t out[NH_NUM_CLASSES], uint64_t *quiet)
{
	memset(out, 0, sizeof(uint64_t) * NH_NUM_CLASSES);
	if (quiet)
		memset(quiet, 0, sizeof(uint64_t) * NH_NUM_CLASSES);
	mutex_lock(&allm_lock);
	for (unsigned i = 0; i < nall_caches; i++)
		sum_cache(all_caches[i], out, quiet);
	mutex_unlock(&allm_lock);
	for (uint32_t cpu = 0; cpu < nh_fast.pcpu_count; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (c->ready)
			sum_cache(c, out, quiet);
	}
}

uint64_t proc_cycles_time(uint64_t s, const struct alloc_counts *last, uint64_t ns, uint64_t cyc)
{
	if (s >= cyc || !last->ns || cyc <= last->cycles || ns <= last->ns)
		return ns;
	if (s <= last->cycles)
		return last->ns;
	return last->ns + (uint64_t)((unsigned __int128)(s - last->cycles) * (ns - last->ns) / (cyc - last->cycles));
}

/*
 * A program that stopped allocating just after a round would otherwise be
 * seen as busy until the next (up to a second later), and its idle delays
 * (scavenger.c) would start that much late; its caches' stamps date its
 * last mallocs to within a millisecond where slow paths followed them,
 * as when frees overflowed its caches.
 */
uint64_t proc_count_allocs(struct alloc_counts *n, const struct alloc_counts *last)
{
	uint64_t quiet[NH_NUM_CLASSES];
	proc_sum_allocs(n->allocs, quiet);
	for (unsigned k = 0; k < NH_NUM_CLASSES; k++) {
		n->allocs[k] += atomic_load_explicit(&nh_direct_allocs[k], memory_order_acquire);
		quiet[k] = NH_MAX(quiet[k], atomic_load_explicit(&nh_direct_cycles[k], memory_order_relaxed));
	}
	/* After the reads: every stamp they saw is older. */
	n->ns = os_nanotime();
	n->cycles = nh_cycles();
	for (unsigned k = 0; k < NH_NUM_CLASSES; k++)
		n->since[k] = proc_cycles_time(quiet[k], last, n->ns, n->cycles);
	return n->ns;
}

void proc_sum_cached(uint64_t out[NH_NUM_CLASSES], int node)
{
	memset(out, 0, sizeof(uint64_t) * NH_NUM_CLASSES);
	mutex_lock(&allm_lock);
	for (unsigned i = 0; i < nall_caches; i++)
		if (node < 0 || all_caches[i]->node == (uint32_t)node)
			for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
				out[k] += mcache_cached_objects(all_caches[i], k);
	mutex_unlock(&allm_lock);
	for (uint32_t cpu = 0; cpu < nh_fast.pcpu_count; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (c->ready && (node < 0 || c->node == (uint32_t)node))
			for (unsigned k = 1; k < NH_NUM_CLASSES; k++)
				out[k] += mcache_cached_objects(c, k);
	}
}

void proc_sum_cache_stats(uint64_t *refills, uint64_t *flushes, uint64_t *caches, uint64_t *aborts)
{
	*refills = *flushes = *caches = 0;
	*aborts = __atomic_load_n(&nh_rseq_aborts, __ATOMIC_RELAXED);
	mutex_lock(&allm_lock);
	for (struct m *m = allm; m; m = m->next)
		(*caches)++;
	for (unsigned i = 0; i < nall_caches; i++)
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
			*refills += all_caches[i]->stats[k].refills;
			*flushes += all_caches[i]->stats[k].flushes;
		}
	mutex_unlock(&allm_lock);
	for (uint32_t cpu = 0; cpu < nh_fast.pcpu_count; cpu++) {
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

/* ---- fork (fork.c runs the handlers) -------------------------------------------------- */

/*
 * The slabs' locks around fork. Prepare takes the lock of every slab that
 * is set up and marks it (fork_locked, written under that lock); the
 * parent releases exactly the marked ones. A slab can become set up in
 * between (its first slow path holds its lock while it sets it up, and
 * prepare passed it by as not ready): unlocking it by its ready flag then
 * released that thread's lock from the forking thread, which broke the
 * slab's exclusion and drove the forking thread's count of held locks
 * below zero, so every later fork took no lock at all and its child could
 * find the heap mid-update (the fork soak: "pageAlloc: chunk N summary
 * disagrees with its bitmap" in about one child in 5,000).
 */
void proc_fork_lock(bool lock)
{
	if (!lock)
		mutex_unlock(&allm_lock);
	for (uint32_t cpu = 0; cpu < nh_fast.pcpu_count; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (lock) {
			if (!c->ready)
				continue;
			mutex_lock(&c->lock);
			c->fork_locked = 1;
		} else if (c->fork_locked) {
			c->fork_locked = 0;
			mutex_unlock(&c->lock);
		}
	}
	if (lock)
		mutex_lock(&allm_lock);
}

void proc_fork_child(bool consistent)
{
	mutex_reset(&allm_lock);
	/* Every slab lock whoever held it, set up or not: a thread that was
	 * setting a slab up when fork came does not exist here (a slab not
	 * set up is set up again by its first slow path). Untouched slabs are
	 * only read. */
	for (uint32_t cpu = 0; cpu < nh_fast.pcpu_count; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (c->fork_locked)
			c->fork_locked = 0;
		if (atomic_load_explicit(&c->lock.state, memory_order_relaxed))
			mutex_reset(&c->lock);
	}
	if (!consistent)
		return; /* forked from inside numaheap: nothing more is safe */
	/*
	 * Only this thread survives. The others' per-thread caches go back
	 * to mcentral and to the idle list, as at thread exit (m_exit). A
	 * thread caught half-way through a move left its cache consistent:
	 * a cache's word is the commit point of every pop and push, a flush
	 * takes its batch out of the cache before it releases it, and a
	 * refill releases nothing; what was in flight (in that thread's
	 * locals) is lost, never counted twice.
	 */
	struct m *self = tls_m;
	struct m *m = allm;
	while (m) {
		struct m *next = m->next;
		if (m != self)
			m_retire(m, false); /* the only thread left: no lock */
		m = next;
	}
}
