/*
 * large.c — large objects: more than 32 KiB, or aligned beyond what a size
 * class gives.
 *
 * See malloc.c for the overview. A large object is a span of its own
 * (sizeclass 0, one object at its base), taken from the heap of the node
 * the calling thread runs on and given straight back to it by free: no
 * cache of the P's is involved. Spans of up to NH_LARGE_CACHE_PAGES are
 * rounded (large_round_pages) and kept whole in the node's large-span
 * cache when freed (mheap.c), so a program that mallocs and frees the
 * same large size does not go through pageAlloc every time.
 *
 * Invariants: a large object's pointer is its span's base (hardened.c's
 * guarded spans, whose object starts a page in, are freed by hardened.c);
 * its usable size is the whole span. realloc grows or shrinks a large
 * object in place when the pages after it allow.
 *
 * Locking: none here; the heap's lock and the large-span cache's are
 * taken inside mheap.c.
 */

#include "os/os.h"

#include "mspan.h"
#include "arena.h"
#include "mheap.h"
#include "proc.h"
#include "alloc.h"
#include "fastpath.h"
#include "prof.h"

#include <errno.h>
#include <string.h>

/* The largest block the kernel would map at once (os.h, os_map_limit):
 * a larger one gives ENOMEM, as under glibc, rather than memory the
 * program is killed for when it touches it. Set at start-up. */
static size_t large_limit = SIZE_MAX;

void large_init(void) { large_limit = os_map_limit(); }

struct mspan *alloc_large_span_on(struct mheap *h, size_t n, size_t align, bool exact)
{
	if (n > ((size_t)1 << NH_NODE_SHIFT) || n > large_limit) {
		errno = ENOMEM;
		return NULL;
	}
	size_t npages = (n + NH_PAGE_SIZE - 1) >> NH_PAGE_SHIFT;
	if (npages == 0)
		npages = 1;
	size_t align_pages = align > NH_PAGE_SIZE ? align >> NH_PAGE_SHIFT : 0;
	bool cached = align_pages <= 1 && !exact;
	if (cached)
		npages = large_round_pages(npages);
	struct mspan *s = NULL;
	if (cached)
		s = mheap_large_cache_take(h, npages);
	if (!s)
		s = mheap_alloc_span(h, npages, 0, align_pages);
	slow_path_hooks();
	if (s)
		proc_count_direct(0);
	return s;
}

struct mspan *alloc_large_span(size_t n, size_t align, bool exact)
{
	nh_ensure_init();
	if (NH_UNLIKELY(!nh_heaps_ok)) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc_large_span_on(heap_of_node(proc_current_node()), n, align, exact);
}

NH_NOINLINE void *alloc_large(size_t n, size_t align, bool zero)
{
	struct mspan *s = alloc_large_span(n, align, false);
	if (!s)
		return NULL;
	if (zero && s->needzero) /* the usable size, as calloc's small objects */
		memset((void *)s->base, 0, (size_t)s->npages << NH_PAGE_SHIFT);
	return (void *)s->base;
}

void *alloc_large_on(struct mheap *h, size_t n)
{
	struct mspan *s = alloc_large_span_on(h, n, 0, true);
	return s ? (void *)s->base : NULL;
}

static void free_large(struct mspan *s, uintptr_t p)
{
	if (NH_UNLIKELY(p != s->base))
		free_interior("free", p);
	if (NH_UNLIKELY(s->guarded))
		free_interior("free", p); /* a guarded span's base is its guard page */
	if (NH_UNLIKELY(atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_INUSE))
		free_double("free", p); /* kept in the large-span cache: freed already */
	if (NH_UNLIKELY(s->prof))
		prof_free(s); /* a sampled block (prof.c) */
	struct mheap *h = heap_of_node(s->node);
	atomic_fetch_add_explicit(&h->large_frees, 1, memory_order_relaxed);
	if (!mheap_large_cache_put(h, s))
		mheap_free_span(h, s);
}

NH_NOINLINE void free_not_small(uintptr_t p)
{
	struct mspan *s = span_of(p);
	if (NH_UNLIKELY(!s))
		free_bad("free", p);
	if (NH_UNLIKELY(s->sizeclass))
		free_interior("free", p); /* a small span's page with no info: cannot be */
	free_large(s, p);
}

bool large_resize(struct mspan *s, size_t n)
{
	if (n <= NH_MAX_SMALL_SIZE || n > ((size_t)1 << NH_NODE_SHIFT))
		return false;
	size_t npages = large_round_pages((n + NH_PAGE_SIZE - 1) >> NH_PAGE_SHIFT);
	struct mheap *h = heap_of_node(s->node);
	if (npages == s->npages)
		return true;
	if (npages < s->npages) {
		mheap_shrink_span(h, s, npages);
		return true;
	}
	return mheap_grow_span(h, s, npages);
}
