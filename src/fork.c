/*
 * fork.c — fork: the child starts from a consistent heap, and fork never
 * deadlocks.
 *
 * Owns the pthread_atfork handlers. The prepare handler takes stdio's list
 * lock and then every allocator lock in rank order (each module's
 * *_fork_lock); the parent's releases them in reverse; the child's resets
 * them all (only its thread runs) and has proc.c give the other threads'
 * caches back.
 *
 * Why stdio's list lock first: glibc's fork takes it after the atfork
 * handlers, so a prepare handler holding numaheap's locks would wait for it
 * while a thread in fflush(NULL) holds it and waits for a stream whose
 * owner waits in realloc for numaheap (issue 18: a three-way deadlock).
 * Taken first, the order is glibc's own: stdio, then malloc. The lock is
 * recursive, so glibc's own take in fork succeeds. Weak: a libc without it
 * (musl) does not have this order to keep.
 *
 * A fork from a signal handler that interrupted its thread inside numaheap
 * (it holds one of its locks: nh_locks_held) or inside fork (it holds them
 * all) takes nothing: it would wait for itself. The locks are left alone,
 * as glibc leaves its malloc's alone in a process it believes
 * single-threaded; the child resets them, and may find the heap
 * mid-update, as a child forked from a signal handler may with any malloc
 * (POSIX allows it async-signal-safe calls only).
 *
 * Invariant: per thread, bit d of fork_locked says whether fork level d
 * (a signal handler may fork inside fork) took the locks, fork_held[d] the
 * thread's count of held locks before it did.
 */
#include "alloc.h"
#include "fixalloc.h"
#include "lock.h"
#include "mcache.h"
#include "mcentral.h"
#include "mheap.h"
#include "proc.h"
#include "prof.h"
#include "scavenger.h"
#include "ordered.h"

#include <pthread.h>

extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
extern void _IO_list_resetlock(void) __attribute__((weak));

static __thread uint32_t fork_depth, fork_locked;
static __thread uint32_t fork_held[32];

/* Every lock, in rank order (lockrank.h), after stdio's. */
static void fork_lock_all(void)
{
	if (_IO_list_lock)
		_IO_list_lock();
	lockrank_fork(1);
	proc_fork_lock(true);
	scavenger_fork_lock(true);
	mcentral_fork_lock(true);
	ordered_fork_lock(true);
	mheap_fork_lock(true);
	persistent_fork_lock(true);
	prof_fork_lock(true);
}

static void fork_prepare(void)
{
	uint32_t d = fork_depth++;
	if (atomic_load(&nh_initialized) != 2 || d >= 32)
		return;
	fork_held[d] = nh_locks_held;
	if (d > 0 || nh_locks_held > 0)
		return;
	fork_lock_all();
	fork_locked |= 1u << d;
}

static void fork_parent(void)
{
	uint32_t d = --fork_depth;
	if (atomic_load(&nh_initialized) != 2 || d >= 32 || !(fork_locked >> d & 1))
		return;
	fork_locked &= ~(1u << d);
	prof_fork_lock(false);
	persistent_fork_lock(false);
	mheap_fork_lock(false);
	ordered_fork_lock(false);
	mcentral_fork_lock(false);
	scavenger_fork_lock(false);
	proc_fork_lock(false);
	lockrank_fork(0);
	if (_IO_list_unlock)
		_IO_list_unlock();
}

static void fork_child(void)
{
	uint32_t d = --fork_depth;
	if (atomic_load(&nh_initialized) != 2 || d >= 32)
		return;
	/* Only this thread runs: every lock is free, whoever held it. */
	bool locked = fork_locked >> d & 1;
	fork_locked &= ~(1u << d);
	nh_locks_held = fork_held[d];
	if (locked && _IO_list_resetlock)
		_IO_list_resetlock(); /* glibc did too, if it took it */
	prof_fork_child();
	persistent_fork_child();
	mheap_fork_child();
	mcentral_fork_child();
	ordered_fork_child();
	scavenger_fork_child();
	lockrank_fork(-1);
	proc_fork_child(locked);
}

void fork_register_handlers(void)
{
	static bool done;
	if (!done) {
		done = true;
		pthread_atfork(fork_prepare, fork_parent, fork_child);
	}
}
