/*
 * fixalloc.c — off-heap metadata: persistentalloc and fixalloc.
 *
 * See malloc.c for the overview. numaheap never keeps its own structures in
 * the user heap: span structs, arena metadata, caches, thread states and the
 * pageAlloc's bitmaps come from here, in memory mapped for the purpose on
 * the node that uses it.
 *
 * persistentalloc (Go's persistentalloc) bump-allocates never-freed metadata
 * from 1 MiB chunks, one chunk stream per node, under that node's PERSISTENT
 * lock. Requests of 64 KiB or more get a mapping of their own.
 *
 * fixalloc (Go's mfixalloc.go) recycles fixed-size objects through a free
 * list threaded through their first word, taking new ones from
 * persistentalloc 16 KiB at a time. It has no lock of its own: each fixalloc
 * is protected by the lock of its owner (the heap lock for span structs,
 * the allm lock for thread states).
 */

#include "lock.h"

#include "os/os.h"

#include "numa.h"

#include "fixalloc.h"

#include <errno.h>
#include <string.h>

enum { PERSISTENT_CHUNK = 1 << 20, PERSISTENT_DIRECT = 64 << 10, FIX_CHUNK = 16 << 10 };

struct persistent {
	struct mutex lock;
	uintptr_t cur;
	size_t left;
	bool inited;
};

static struct persistent persistent[NH_MAX_NODES];
_Atomic size_t nh_metadata_bytes[NH_MAX_NODES];

/* Called once at start-up, single-threaded. */
void persistent_init(void)
{
	for (int i = 0; i < NH_MAX_NODES; i++) {
		mutex_init(&persistent[i].lock, LOCK_RANK_PERSISTENT);
		persistent[i].inited = true;
	}
}

void persistent_fork_lock(bool lock)
{
	for (int i = 0; i < NH_MAX_NODES; i++) {
		if (lock)
			mutex_lock(&persistent[i].lock);
		else
			mutex_unlock(&persistent[i].lock);
	}
}

void persistent_fork_child(void)
{
	for (int i = 0; i < NH_MAX_NODES; i++)
		mutex_reset(&persistent[i].lock);
}

static void *map_metadata(size_t n, size_t align, int node)
{
	void *p = os_map(n, align);
	if (!p)
		return NULL;
	/* Metadata of a node's heap lives on that node. */
	numa_bind_heap(p, n, node);
	atomic_fetch_add_explicit(&nh_metadata_bytes[node], n, memory_order_relaxed);
	return p;
}

void *persistentalloc(size_t size, size_t align, int node)
{
	if (align == 0)
		align = 8;
	if (size >= PERSISTENT_DIRECT) {
		size_t ps = os_page_size();
		return map_metadata((size + ps - 1) & ~(ps - 1), align, node);
	}
	struct persistent *pa = &persistent[node];
	mutex_lock(&pa->lock);
	uintptr_t p = (pa->cur + align - 1) & ~(uintptr_t)(align - 1);
	if (!pa->cur || p + size > pa->cur + pa->left) {
		void *chunk = map_metadata(PERSISTENT_CHUNK, 0, node);
		if (!chunk) {
			mutex_unlock(&pa->lock);
			errno = ENOMEM;
			return NULL;
		}
		pa->cur = (uintptr_t)chunk;
		pa->left = PERSISTENT_CHUNK;
		p = (pa->cur + align - 1) & ~(uintptr_t)(align - 1);
	}
	pa->left -= p + size - pa->cur;
	pa->cur = p + size;
	mutex_unlock(&pa->lock);
	return (void *)p;
}

struct fixlink {
	struct fixlink *next;
};

void fixalloc_init(struct fixalloc *f, size_t size, int node, _Atomic size_t *stat)
{
	memset(f, 0, sizeof *f);
	f->size = (size + 15) & ~(size_t)15;
	f->node = node;
	f->stat = stat;
}

void *fixalloc_alloc(struct fixalloc *f)
{
	void *p;
	if (f->list) {
		p = f->list;
		f->list = f->list->next;
		memset(p, 0, f->size);
	} else {
		if (f->nchunk < f->size) {
			size_t n = FIX_CHUNK > f->size ? FIX_CHUNK : f->size;
			void *c = persistentalloc(n, 64, f->node);
			if (!c)
				return NULL;
			f->chunk = (uintptr_t)c;
			f->nchunk = n;
		}
		/* Fresh persistentalloc memory is zero. */
		p = (void *)f->chunk;
		f->chunk += f->size;
		f->nchunk -= f->size;
	}
	f->inuse += f->size;
	if (f->stat)
		atomic_fetch_add_explicit(f->stat, f->size, memory_order_relaxed);
	return p;
}

void fixalloc_free(struct fixalloc *f, void *p)
{
	struct fixlink *l = p;
	l->next = f->list;
	f->list = l;
	f->inuse -= f->size;
	if (f->stat)
		atomic_fetch_sub_explicit(f->stat, f->size, memory_order_relaxed);
}
