/*
 * hardened.c — NUMAHEAP_HARDENED=1: catching overflows, at a price.
 *
 * See malloc.c for the checks that are always on (bad, interior and double
 * frees; writes to freed objects, found before the object is reused) and
 * why numaheap needs no "safe-linking": it keeps no pointers inside free
 * objects at all — free lists are stacks in the P's slab and bitmaps in the
 * span structs, both outside the user heap — so a use-after-free write has
 * no allocator pointer to redirect. Hardened mode adds:
 *
 *   canaries     a small object gets 8 bytes more than asked for, and the
 *                last 8 bytes of its slot hold a secret mixed with its
 *                address. free and realloc check it: a linear overflow past
 *                the object is reported ("heap overflow") instead of
 *                silently corrupting the neighbour.
 *   guard pages  a large object sits between two 8 KiB pages mapped
 *                PROT_NONE: running off either end faults at once. (Large
 *                objects aligned to more than 8 KiB get no guards.)
 *   random       objects of a refilled batch are handed out in random
 *                order, and new spans start at a random page offset, so an
 *                attacker cannot predict which object follows which.
 *
 * The price: 8 bytes per small object, two mprotect calls per large malloc
 * and two per free (which also split huge pages), and a cheaper heap layout
 * lost; docs/reliability.md and perf/ give the measured overhead.
 *
 * Layering: api.c sends every call here while hardened mode is on
 * (nh_hardened, set at start-up, never changed); this file calls the core's
 * entry points (alloc.h) as api.c does, and the core's allocation and free
 * paths never call back. The exceptions are randomness: mheap.c takes a
 * span's random offset from nh_random, mcache.c shuffles a refilled batch
 * with hardened_shuffle.
 *
 * Locking: none of its own; nh_random's state is one atomic counter.
 */

#include "os/os.h"

#include "mspan.h"

#include "mheap.h"

#include "alloc.h"

#include "sizeclass.h"

#include <errno.h>
#include <string.h>

static inline uintptr_t canary_of(uintptr_t p) { return (nh_cookie * 0x9e3779b97f4a7c15ull) ^ p ^ 0x5a5a5a5a5a5a5a5aull; }

uint64_t nh_random(void)
{
	static _Atomic uint64_t state;
	uint64_t z = atomic_fetch_add_explicit(&state, 0x9e3779b97f4a7c15ull, memory_order_relaxed) + nh_cookie;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void hardened_shuffle(uintptr_t *v, unsigned n)
{
	for (unsigned i = n; i > 1; i--) {
		unsigned j = (unsigned)(nh_random() % i);
		uintptr_t t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

static void set_canary(uintptr_t p, unsigned cls)
{
	*(uintptr_t *)(p + nh_class_to_size[cls] - 8) = canary_of(p);
}

void *hardened_alloc(size_t n, size_t align, bool zero)
{
	size_t need;
	/* Nothing beyond a node's slice can be had; this also keeps the page
	 * arithmetic below from wrapping. */
	if (__builtin_add_overflow(n, 8, &need) || n > ((size_t)1 << NH_NODE_SHIFT)) {
		errno = ENOMEM;
		return NULL;
	}
	if (align < 16)
		align = 16;
	if (need <= NH_MAX_SMALL_SIZE && align <= NH_PAGE_SIZE) {
		for (unsigned cls = nh_size_to_class(need); cls < NH_NUM_CLASSES; cls++) {
			if (nh_class_to_size[cls] % align)
				continue;
			uintptr_t p = (uintptr_t)nh_alloc_class(cls);
			if (!p)
				return NULL;
			set_canary(p, cls);
			if (zero) /* the usable size: all but the canary */
				memset((void *)p, 0, nh_class_to_size[cls] - 8);
			return (void *)p;
		}
	}
	if (align > NH_PAGE_SIZE) {
		/* No guards for over-aligned large objects (see above). */
		return alloc_large(n, align, zero);
	}
	size_t npages = (n + NH_PAGE_SIZE - 1) >> NH_PAGE_SHIFT;
	if (npages == 0)
		npages = 1;
	if (npages > ((size_t)1 << (NH_NODE_SHIFT - NH_PAGE_SHIFT)) - 2) {
		errno = ENOMEM;
		return NULL;
	}
	/* Exact: the guards go at the span's first and last page. */
	struct mspan *s = alloc_large_span((npages + 2) << NH_PAGE_SHIFT, 0, true);
	if (!s)
		return NULL;
	if (os_protect((void *)s->base, NH_PAGE_SIZE, false) != 0 ||
	    os_protect((void *)(s->base + ((npages + 1) << NH_PAGE_SHIFT)), NH_PAGE_SIZE, false) != 0) {
		os_protect((void *)s->base, (npages + 2) << NH_PAGE_SHIFT, true);
		mheap_free_span(heap_of_node(s->node), s);
		errno = ENOMEM;
		return NULL;
	}
	s->guarded = 1;
	uintptr_t p = s->base + NH_PAGE_SIZE;
	if (zero && s->needzero) /* the usable size, between the guards */
		memset((void *)p, 0, npages << NH_PAGE_SHIFT);
	return (void *)p;
}

/* numaheap_malloc_onnode: room for the canary, as hardened_alloc; a large
 * object gets no guards (as an over-aligned one). */
void *hardened_alloc_onnode(size_t n, int node)
{
	struct mheap *h = heap_for_node(node);
	if (!h)
		return NULL;
	if (n > NH_MAX_SMALL_SIZE - 8)
		return alloc_large_on(h, n);
	unsigned cls = nh_size_to_class(n + 8);
	uintptr_t p = (uintptr_t)alloc_from_central(h, cls, false);
	if (p)
		set_canary(p, cls);
	return (void *)p;
}

/* The span of a hardened object, checked; its usable size in *usable. */
static struct mspan *checked(const char *api, uintptr_t p, size_t *usable)
{
	struct mspan *s = nh_checked_span(api, p);
	if (s->sizeclass) {
		if (*(uintptr_t *)(p + s->elemsize - 8) != canary_of(p))
			nh_report_bad_pointer(api, (void *)p, "heap overflow (the canary after the object was overwritten)");
		*usable = s->elemsize - 8;
	} else {
		*usable = s->guarded ? ((size_t)s->npages - 2) << NH_PAGE_SHIFT : (size_t)s->npages << NH_PAGE_SHIFT;
	}
	return s;
}

void hardened_free(uintptr_t p)
{
	size_t usable;
	struct mspan *s = checked("free", p, &usable);
	if (s->sizeclass || !s->guarded) {
		nh_free_unchecked(s, p);
		return;
	}
	os_protect((void *)s->base, (size_t)s->npages << NH_PAGE_SHIFT, true);
	s->guarded = 0;
	atomic_fetch_add_explicit(&heap_of_node(s->node)->large_frees, 1, memory_order_relaxed);
	mheap_free_span(heap_of_node(s->node), s);
}

size_t hardened_usable_size(uintptr_t p)
{
	size_t usable;
	checked("malloc_usable_size", p, &usable);
	return usable;
}

void *hardened_realloc(uintptr_t p, size_t n)
{
	size_t usable;
	struct mspan *s = checked("realloc", p, &usable);
	if (s->sizeclass && has_free_mark(p))
		nh_report_bad_pointer("realloc", (void *)p, "double free");
	void *q = hardened_alloc(n, 0, false);
	if (!q)
		return NULL;
	memcpy(q, (void *)p, NH_MIN(usable, n));
	hardened_free(p);
	return q;
}
