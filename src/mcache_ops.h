/*
 * mcache_ops.h — the slow paths' operations on a P's cache (mcache.c),
 * shared with samplebank.c: written once for both kinds of P (plain code
 * for a per-thread P, restartable sequences for a per-CPU one, which
 * return -1 when the thread has left the slab's CPU).
 *
 * Locking: the P's lock held (per-CPU); release_to_central takes the
 * class's central locks.
 */
#ifndef NUMAHEAP_MCACHE_OPS_H
#define NUMAHEAP_MCACHE_OPS_H

#include "mcache.h"

/* Pop up to n entries of the header at byte hoff of the slab (a class
 * stack or a bank), top first; how many, or -1. */
int mc_op_pop_batch_at(struct pctx *x, unsigned hoff, uintptr_t *out, unsigned n);
/* Push up to n entries on the header at byte hoff; how many, or -1. */
int mc_op_push_batch_at(struct pctx *x, unsigned hoff, const uintptr_t *in, unsigned n);
/* The same on class cls's stack of the slab's node. */
int mc_op_pop_batch(struct pctx *x, unsigned cls, uintptr_t *out, unsigned n);
/* Set class cls's capacity end: 0 done, 1 cur above end (pop first), -1. */
int mc_op_set_end(struct pctx *x, unsigned cls, unsigned end);
/* Hand n entries (tags kept) back to the class's mcentral. */
void mc_release_to_central(struct mcache *c, unsigned cls, uintptr_t *objs, unsigned n);
/* Count a slow path for idle detection; every 64, halve the miss counts. */
void mc_age_misses(struct mcache *c);
/* The first slot of class cls's bank region before any swap. */
unsigned mcache_bank_begin(unsigned cls);
/* Give class cls's bank objects back to mcentral, those below its floor
 * too: 0, or -1 if the thread left the CPU (mcache_drain). */
int mcache_bank_drain(struct pctx *x, unsigned cls);

#endif /* NUMAHEAP_MCACHE_OPS_H */
