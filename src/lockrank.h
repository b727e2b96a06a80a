/*
 * lockrank.h — the lock order of numaheap, stated once.
 *
 * A thread may acquire a lock only if its rank is higher than the rank of
 * every lock it already holds; locks of one rank marked "many" may be held
 * together (only fork does that: it takes every lock, in a fixed order).
 * Debug builds (NH_DEBUG) check this on every acquisition (lock.c).
 *
 * Who holds what, lowest first:
 *
 *   PCACHE      one per CPU (mcache.c, proc.c): a per-CPU P's slow paths;
 *               fork takes them all
 *   ALLM        the registry of threads (proc.c): thread start and exit,
 *               fork, statistics walking the caches
 *   SCAV        synchronous scavenging (scavenger.c): malloc_trim, limit
 *   TRANSFER    one per size class per node (mcentral.c): the transfer
 *               cache; many
 *   CENTRAL     one per size class per node (mcentral.c); many
 *   ORDERED     one per band per node (ordered.c): ordered spans; many
 *   LCACHE      one per node (mheap.c): the cache of freed large spans
 *   HEAP        one per node (mheap.c): pageAlloc, arenas, span structs
 *   PERSISTENT  one per node (fixalloc.c): metadata bump allocation
 *   PROF        the heap profile's buckets (prof.c); taken with no other
 *               lock held, but fork's handler takes it last
 *
 * Paths never nest CENTRAL and HEAP today (mcentral drops its lock before
 * asking the heap for a span), but the order allows it.
 */
#ifndef NUMAHEAP_LOCKRANK_H
#define NUMAHEAP_LOCKRANK_H

enum lock_rank {
	LOCK_RANK_PCACHE = 0, /* zero, so a per-CPU slab's zeroed lock is ranked */
	LOCK_RANK_ALLM,
	LOCK_RANK_SCAV,
	LOCK_RANK_TRANSFER,
	LOCK_RANK_CENTRAL,
	LOCK_RANK_ORDERED,
	LOCK_RANK_LCACHE,
	LOCK_RANK_HEAP,
	LOCK_RANK_PERSISTENT,
	LOCK_RANK_PROF,
	LOCK_RANK_COUNT
};

/* Ranks whose locks fork's prepare handler holds all at once. */
static inline int lock_rank_many(unsigned rank)
{
	return rank == LOCK_RANK_PCACHE || rank == LOCK_RANK_TRANSFER || rank == LOCK_RANK_CENTRAL || rank == LOCK_RANK_ORDERED || rank == LOCK_RANK_HEAP || rank == LOCK_RANK_PERSISTENT;
}

#endif
