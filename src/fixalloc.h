/*
 * fixalloc.h — off-heap metadata: persistentalloc and fixalloc (fixalloc.c).
 */
#ifndef NUMAHEAP_FIXALLOC_H
#define NUMAHEAP_FIXALLOC_H

#include "internal.h"

/* ------------------------------------------------------------------------
 * persistentalloc and fixalloc (fixalloc.c): off-heap metadata.
 * ------------------------------------------------------------------------ */

/* Bump allocator of never-freed metadata, one per node (lock rank PERSISTENT). */
void *persistentalloc(size_t size, size_t align, int node); /* takes the node's persistent lock */
/* fork (fork.c): the persistent locks, taken or dropped; reset in the child. */
void persistent_fork_lock(bool lock);
void persistent_fork_child(void);

/*
 * fixalloc: a free list of fixed-size objects carved from persistentalloc
 * chunks (Go's mfixalloc.go). Not thread-safe: every fixalloc names the lock
 * its users hold. Freed objects are reused, never returned to the OS. The
 * first word of a free object links the list, so objects are >= 8 bytes.
 */
struct fixalloc {
	size_t size;
	struct fixlink *list; /* free objects */
	uintptr_t chunk;      /* bump pointer into the current chunk */
	size_t nchunk;	      /* bytes left in the chunk */
	size_t inuse;	      /* bytes handed out and not freed */
	int node;
	_Atomic size_t *stat; /* metadata bytes counter this fixalloc charges */
};

/* The lock its users hold must be held (fixalloc has none of its own). */
void fixalloc_init(struct fixalloc *f, size_t size, int node, _Atomic size_t *stat);
void *fixalloc_alloc(struct fixalloc *f); /* zeroed; NULL if the OS refuses; users' lock held */
void fixalloc_free(struct fixalloc *f, void *p); /* users' lock held */

#endif /* NUMAHEAP_FIXALLOC_H */
