/*
 * mcentral.h — the spans of one size class on one node (mcentral.c).
 */
#ifndef NUMAHEAP_MCENTRAL_H
#define NUMAHEAP_MCENTRAL_H

#include "lock.h"

struct mspan;
struct mheap;

/* ------------------------------------------------------------------------
 * mcentral (mcentral.c): the spans of one size class on one node.
 *
 * partial holds spans with at least one free object, full those without.
 * Caches take objects in batches (refill) and give them back in batches
 * (release); both take the central lock once per batch.
 * ------------------------------------------------------------------------ */
struct span_list_head {
	struct mspan *first;
	size_t count;
};

/*
 * Empty spans an mcentral keeps (per class and node) instead of giving them
 * back to the heap at once: a program that frees thousands of objects and
 * allocates them again takes its spans back without a pageAlloc round trip
 * for each. The background thread gives them back once the class has been
 * idle for a pass (mcentral_drain), so they do not stay while idle.
 */
#define NH_CENTRAL_KEEP_BYTES ((size_t)1 << 20)

struct mcentral {
	/*
	 * The transfer cache (tcmalloc's): cache entries (tags kept) passed
	 * from P caches that overflow to P caches that refill, whole batches
	 * at a time, without touching span bitmaps. Under tc_lock.
	 */
	struct mutex tc_lock;
	uint32_t tc_count;
	uint32_t tc_cap;
	uintptr_t *tc_slots;	  /* tc_cap entries, allocated on first use */
	uint64_t tc_gen;	  /* bumped on use: idle detection */
	uint64_t tc_idle_gen;

	struct mutex lock NH_ALIGNED(NH_CACHE_LINE);
	uint8_t sizeclass;
	uint8_t node;
	struct span_list_head partial; /* under lock */
	struct span_list_head full;    /* under lock */
	/* Under lock. */
	uint64_t nspans;	  /* spans of this class on this node */
	uint64_t objects_out;	  /* sum of nalloc over the spans */
	uint32_t nempty;	  /* empty spans kept on the partial list */
	uint32_t empty_max;	  /* how many may be kept: NH_CENTRAL_KEEP_BYTES worth */
	uint64_t gen;		  /* bumped by refills: idle detection for the kept spans */
	uint64_t idle_gen;
} NH_ALIGNED(NH_CACHE_LINE);

/* At initialisation (no lock). */
void mcentral_init(struct mcentral *c, unsigned sizeclass, int node);
/* Fill out[] with up to n cache entries; returns how many, 0 on ENOMEM.
 * Takes c->tc_lock, then c->lock (one at a time), and the heap's lock for a
 * new span. A P's lock may be held (rank PCACHE is lowest). */
unsigned mcentral_refill(struct mcentral *c, struct mheap *h, uintptr_t *out, unsigned n);
/* Give back n cache entries (objects, tagged or not) of this class and node.
 * Takes c->tc_lock, then c->lock, and the heap's lock for an empty span. */
void mcentral_release(struct mcentral *c, struct mheap *h, const uintptr_t *objs, unsigned n);
/* Return the transfer caches' objects to their spans and the kept empty
 * spans to the heap: all of them, or only those of classes unused since the
 * last call (idle). Objects moved. Takes each class's tc_lock and lock, and
 * h->lock, one at a time. */
size_t mcentral_drain(struct mheap *h, bool idle_only);
/* fork (fork.c): every class's tc_lock and lock of every heap, taken or
 * dropped; reset in the child. */
void mcentral_fork_lock(bool lock);
void mcentral_fork_child(void);
/* A racy read (statistics): no lock. */
size_t mcentral_transfer_objects(struct mcentral *c);

#endif /* NUMAHEAP_MCENTRAL_H */
