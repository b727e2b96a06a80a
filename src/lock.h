/*
 * lock.h — numaheap's mutex (lock.c) and its ranks (lockrank.h).
 */
#ifndef NUMAHEAP_LOCK_H
#define NUMAHEAP_LOCK_H

#include "internal.h"
#include "lockrank.h"

/* ------------------------------------------------------------------------
 * Locks (lock.c). A futex word that spins briefly before sleeping, so that
 * uncontended and lightly contended slow paths never enter the kernel.
 * ------------------------------------------------------------------------ */
struct mutex {
	_Atomic uint32_t state; /* 0 unlocked, 1 locked, 2 locked with waiters */
	uint32_t rank;		/* enum lock_rank; checked in debug builds */
};

void mutex_init(struct mutex *m, enum lock_rank rank);
void mutex_lock_slow(struct mutex *m);
void mutex_unlock_slow(struct mutex *m);
void lockrank_acquire(struct mutex *m);
void lockrank_release(struct mutex *m);
/* Debug builds: fork's handlers take every lock, outside the rank checks. */
void lockrank_fork(int phase);

/* How many numaheap locks the calling thread holds: fork's prepare handler,
 * run from a signal handler that interrupted this thread inside the
 * allocator, must not wait for them (proc.c). */
extern __thread uint32_t nh_locks_held __attribute__((tls_model("initial-exec")));

NH_INLINE void mutex_lock(struct mutex *m)
{
	uint32_t z = 0;
	nh_locks_held++;
	if (NH_UNLIKELY(!atomic_compare_exchange_strong_explicit(&m->state, &z, 1, memory_order_acquire,
								 memory_order_relaxed)))
		mutex_lock_slow(m);
#ifdef NH_DEBUG
	lockrank_acquire(m);
#endif
}

NH_INLINE void mutex_unlock(struct mutex *m)
{
#ifdef NH_DEBUG
	lockrank_release(m);
#endif
	if (NH_UNLIKELY(atomic_exchange_explicit(&m->state, 0, memory_order_release) == 2))
		mutex_unlock_slow(m);
	nh_locks_held--;
}

/* After fork, in the child: every lock is free again (only this thread runs). */
NH_INLINE void mutex_reset(struct mutex *m) { atomic_store_explicit(&m->state, 0, memory_order_relaxed); }

#endif /* NUMAHEAP_LOCK_H */
