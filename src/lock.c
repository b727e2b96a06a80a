/*
 * lock.c — numaheap's mutex: a futex word that spins before it sleeps.
 *
 * State 0 is free, 1 held, 2 held with (possible) sleepers. The fast path in
 * lock.h is one compare-and-swap to take and one exchange to release.
 * A contended acquirer spins for a short while (allocator critical sections
 * are a few hundred nanoseconds), then marks the word 2 and sleeps in
 * FUTEX_WAIT; the releaser wakes one sleeper only when the word was 2. So an
 * uncontended or lightly contended refill never enters the kernel.
 *
 * Debug builds keep, per thread, the locks it holds and check the order of
 * lockrank.h on each acquisition.
 */

#include "lock.h"

#include "os/os.h"
#include "report.h" /* nh_fatal, in debug builds */

enum { SPIN_ITERS = 200, SPIN_YIELD_ITERS = 4 };

__thread uint32_t nh_locks_held __attribute__((tls_model("initial-exec")));

void mutex_init(struct mutex *m, enum lock_rank rank)
{
	atomic_store_explicit(&m->state, 0, memory_order_relaxed);
	m->rank = rank;
}

void mutex_lock_slow(struct mutex *m)
{
	for (int i = 0; i < SPIN_ITERS; i++) {
		uint32_t z = 0;
		if (atomic_load_explicit(&m->state, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(&m->state, &z, 1, memory_order_acquire,
							  memory_order_relaxed))
			return;
		nh_cpu_relax();
	}
	/* Give a preempted holder on our CPU a chance before sleeping. */
	for (int i = 0; i < SPIN_YIELD_ITERS; i++) {
		uint32_t z = 0;
		if (atomic_compare_exchange_strong_explicit(&m->state, &z, 1, memory_order_acquire,
							    memory_order_relaxed))
			return;
		os_yield();
	}
	while (atomic_exchange_explicit(&m->state, 2, memory_order_acquire) != 0) {
		NH_KSTAT_INC(futex_wait);
		os_futex_wait(&m->state, 2, OS_FUTEX_FOREVER);
	}
}

void mutex_unlock_slow(struct mutex *m)
{
	NH_KSTAT_INC(futex_wake);
	os_futex_wake(&m->state, 1);
}

#ifdef NH_DEBUG
enum { MAX_HELD = 64 };
static __thread struct mutex *held[MAX_HELD];
static __thread int nheld;
static __thread int in_fork; /* fork takes every lock at once: not tracked */

void lockrank_fork(int phase)
{
	/* 1: prepare begins; 0: parent done; -1: child done (nothing held). */
	in_fork = phase == 1;
	if (phase == -1)
		nheld = 0;
}

void lockrank_acquire(struct mutex *m)
{
	if (in_fork)
		return;
	if (nheld > 0) {
		struct mutex *top = held[nheld - 1];
		bool ok = m->rank > top->rank || (m->rank == top->rank && lock_rank_many(m->rank));
		if (!ok)
			nh_fatal("lock order violation: rank %u taken while holding rank %u", m->rank,
				 top->rank);
	}
	if (nheld == MAX_HELD)
		nh_fatal("too many locks held");
	held[nheld++] = m;
}

void lockrank_release(struct mutex *m)
{
	if (in_fork)
		return;
	for (int i = nheld - 1; i >= 0; i--) {
		if (held[i] == m) {
			for (int j = i; j < nheld - 1; j++)
				held[j] = held[j + 1];
			nheld--;
			return;
		}
	}
	nh_fatal("unlock of a mutex not held (rank %u)", m->rank);
}
#else
void lockrank_acquire(struct mutex *m) { (void)m; }
void lockrank_release(struct mutex *m) { (void)m; }
void lockrank_fork(int phase) { (void)phase; }
#endif
