/*
 * mheap.c — the page heap of one NUMA node.
 *
 * See malloc.c for the overview. Each node has one mheap: its arenas (in the
 * node's address slice), its pageAlloc, its span structs and its mcentrals.
 * The heap hands out spans — runs of whole 8 KiB pages — to mcentrals for
 * small objects and directly to malloc for large ones (> 32 KiB), and takes
 * them back when they are empty. When no run of free pages fits, it grows by
 * mapping whole arenas (arena.c).
 *
 * Invariants, under h->lock:
 *   - a page is allocated in h->pages iff spans[] maps it to an in-use span;
 *   - inuse_bytes is the total size of in-use spans;
 *   - pages at or above their arena's zeroed_base were never handed out, so
 *     they read as zero; so do pages scavenged with MADV_DONTNEED.
 *
 * Locking: h->lock (rank HEAP) protects everything here. Allocating a span
 * never holds a central lock (mcentral drops it first).
 */

#include "options.h"
#include "os/os.h"

#include "mspan.h"
#include "arena.h"

#include "mheap.h"
#include "mcache.h"

#include "scavenger.h"
#include "hardened.h"

#include <errno.h>
#include <string.h>

struct mheap *nh_heaps[NH_MAX_NODES];

int arena_grow(struct mheap *h, size_t bytes);

int mheap_init(int node)
{
	struct mheap *h = persistentalloc(sizeof *h, NH_CACHE_LINE, node);
	if (!h)
		return -ENOMEM;
	mutex_init(&h->lock, LOCK_RANK_HEAP);
	h->node = node;
	uintptr_t slice = NH_HEAP_BASE + ((uintptr_t)node << NH_NODE_SHIFT);
	int r = page_alloc_init(&h->pages, slice, NH_NODE_SHIFT, node, &h->lock);
	if (r)
		return r;
	h->pages.clock = os_nanotime;
	fixalloc_init(&h->spanalloc[0], mspan_struct_size(0), node, NULL);
	/* Small spans' two bitmaps (mspan.h); ordered spans' two maps. */
	fixalloc_init(&h->spanalloc[1], mspan_struct_size(2 * 4), node, NULL);
	fixalloc_init(&h->spanalloc[2], mspan_struct_size(NH_SPAN_BITMAP_WORDS), node, NULL);
	fixalloc_init(&h->spanalloc[3], mspan_struct_size(2 * NH_SPAN_BITMAP_WORDS), node, NULL);
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++)
		mcentral_init(&h->central[c], c, node);
	mutex_init(&h->lcache_lock, LOCK_RANK_LCACHE);
	nh_heaps[node] = h;
	return 0;
}

/* Which fixalloc holds span structs of this class. */
static unsigned spanalloc_index(unsigned sizeclass)
{
	if (sizeclass == 0)
		return 0;
	if (sizeclass >= NH_ORDERED_SPAN)
		return 2; /* the two maps of ordered.c take the whole bitmap */
	unsigned nelems = (unsigned)(((size_t)nh_class_to_npages[sizeclass] << NH_PAGE_SHIFT) / nh_class_to_size[sizeclass]);
	return nelems <= 256 ? 1 : 3;
}

/*
 * Does [base, base + npages) need zeroing before use as zeroed memory?
 * Also moves the arenas' zeroed_base past it, and counts in *fresh the
 * pages never handed out before. Heap lock held.
 */
static bool alloc_needs_zero(uintptr_t base, size_t npages, size_t scav, size_t *fresh)
{
	bool dirty = false;
	size_t nfresh = 0;
	uintptr_t end = base + (npages << NH_PAGE_SHIFT);
	for (uintptr_t a = base; a < end;) {
		struct heap_arena *ha = arena_of(a);
		uintptr_t aend = NH_MIN(end, ha->base + NH_ARENA_BYTES);
		if (NH_UNLIKELY(arena_steps(ha, a, aend) & ~ha->ready))
			nh_fatal("mheap: pages handed out at %p, where their arena is reserved, not ready", (void *)a);
		if (a < ha->zeroed_base)
			dirty = true;
		if (aend > ha->zeroed_base) {
			nfresh += (aend - NH_MAX(a, ha->zeroed_base)) >> NH_PAGE_SHIFT;
			ha->zeroed_base = aend;
		}
		a = aend;
	}
	if (fresh)
		*fresh = nfresh;
	/* Pages released with MADV_DONTNEED read as zero again. */
	if (dirty && scav == npages && NH_OPTION(RELEASE) == RELEASE_DONTNEED)
		dirty = false;
	return dirty;
}

/*
 * Fresh growth is pre-faulted too, once a heap has handed out this much
 * fresh memory: a growing program then finds its next huge pages resident
 * instead of zeroing each on its own thread (on a VM whose host backs guest
 * memory lazily a fresh 2 MiB page costs ~5 ms, 2.5 times the same memory
 * in base pages: docs/performance.md). Below it, a small program is not
 * given memory it never touches (the window's overshoot is at most what
 * the heap grew since the episode began, and NUMAHEAP_PREFAULT). Where
 * the kernel zeroes fresh memory quickly, pre-faulting it gains nothing
 * and takes a CPU from the program: prefault.c measures, and says.
 */
#define PF_FRESH_MIN ((uint64_t)64 << 20)

/*
 * A span took scav scavenged pages, fresh of them never handed out: count
 * the others as released and reused (fresh ones were never backed), and
 * tell the scavenger that the heap grows back into what it released, or
 * into fresh memory once it is large. Heap lock held.
 */
static void count_reused(struct mheap *h, uintptr_t end, size_t scav, size_t fresh)
{
	uint64_t grown = 0;
	if (scav > fresh) {
		h->released_reused_bytes += (scav - fresh) << NH_PAGE_SHIFT;
		grown += (scav - fresh) << NH_PAGE_SHIFT;
		h->regrow_released = true;
	}
	if (fresh) {
		size_t bytes = fresh << NH_PAGE_SHIFT;
		h->fresh_bytes += bytes;
		prefault_note_fresh(bytes);
		h->fresh_top = NH_MAX(h->fresh_top, end);
		if (h->fresh_bytes > PF_FRESH_MIN && prefault_fresh_wanted()) {
			grown += bytes;
			h->regrow_fresh = true;
		}
	}
	if (!grown)
		return;
	if (!h->regrow_front)
		h->regrow_base = h->regrowth_bytes; /* a regrowth begins (prefault.c) */
	h->regrowth_bytes += grown;
	if (end > h->regrow_front)
		h->regrow_front = end;
	scavenger_regrowing();
}

struct mspan *mheap_alloc_span(struct mheap *h, size_t npages, unsigned sizeclass, size_t align_pages)
{
	size_t scav = 0;
	/* Hardened: start small-object spans at a random page offset. */
	size_t skew = NH_UNLIKELY(nh_hardened) && sizeclass && align_pages <= 1 ? (size_t)(nh_random() % 16) : 0;
	mutex_lock(&h->lock);
	uintptr_t base = page_alloc_alloc(&h->pages, npages + skew, align_pages, &scav);
	if (base && skew) {
		page_alloc_free(&h->pages, base, skew);
		base += skew << NH_PAGE_SHIFT;
	}
	if (!base) {
		size_t need = npages + (align_pages > 1 ? align_pages - 1 : 0);
		if (need < npages || need > ((size_t)1 << (NH_NODE_SHIFT - NH_PAGE_SHIFT)) ||
		    arena_grow(h, need << NH_PAGE_SHIFT) != 0 ||
		    !(base = page_alloc_alloc(&h->pages, npages, align_pages, &scav))) {
			mutex_unlock(&h->lock);
			errno = ENOMEM;
			return NULL;
		}
	}
	/* Reserved pages are made ready before they are handed out (arena.c,
	 * commit charge); past the commit limit this allocation fails alone. */
	struct mspan *s = arena_commit(base, npages << NH_PAGE_SHIFT) == 0
				  ? fixalloc_alloc(&h->spanalloc[spanalloc_index(sizeclass)])
				  : NULL;
	if (!s) {
		page_alloc_free(&h->pages, base, npages);
		mutex_unlock(&h->lock);
		errno = ENOMEM;
		return NULL;
	}
	s->base = base;
	s->npages = (uint32_t)npages;
	s->node = (uint8_t)h->node;
	s->released = 0;
	size_t fresh;
	s->needzero = alloc_needs_zero(base, npages, scav, &fresh);
	s->ordered = 0;
	if (sizeclass >= NH_ORDERED_SPAN) {
		s->sizeclass = 0;
		s->ordered = (uint8_t)(sizeclass - NH_ORDERED_SPAN + 1);
		s->ogran = 0;
		s->elemsize = 0;
		s->nelems = 0;
		s->nalloc = 0;
		s->list = SPAN_LIST_NONE;
		memset(s->alloc_bits, 0, NH_SPAN_BITMAP_WORDS * sizeof(uint64_t));
	} else if (sizeclass) {
		mspan_init_small(s, sizeclass);
	} else {
		s->sizeclass = 0;
		s->elemsize = (uint32_t)NH_MIN(npages << NH_PAGE_SHIFT, (size_t)UINT32_MAX);
		s->nelems = 1;
		s->nalloc = 1;
		h->large_inuse_bytes += npages << NH_PAGE_SHIFT;
	}
	atomic_store_explicit(&s->state, SPAN_INUSE, memory_order_relaxed);
	arena_set_spans(base, npages, s);
	h->inuse_bytes += npages << NH_PAGE_SHIFT;
	h->peak_inuse_bytes = NH_MAX(h->peak_inuse_bytes, h->inuse_bytes);
	count_reused(h, base + (npages << NH_PAGE_SHIFT), scav, fresh);
	mutex_unlock(&h->lock);
	return s;
}

/*
 * The pages of a freed span whose OS pages all went back to the OS while
 * it was in use (mcentral.c, the in-span release) are released pages of
 * the pageAlloc now: marked scavenged, so the scavenger leaves them, and a
 * span made of them is known to be zero. Heap lock held; pages free.
 */
static void mark_released_pages(struct mheap *h, struct mspan *s)
{
	unsigned ushift = (unsigned)nh_ctz64(mcentral_unit_bytes());
	uintptr_t run = 0;
	size_t nrun = 0;
	for (unsigned k = 0; k <= s->npages; k++) {
		bool gone = false;
		if (k < s->npages) {
			unsigned j0 = (unsigned)(((uintptr_t)k << NH_PAGE_SHIFT) >> ushift);
			unsigned j1 = (unsigned)((((uintptr_t)k + 1) << NH_PAGE_SHIFT) - 1) >> ushift;
			uint32_t m = (uint32_t)((((uint64_t)2 << j1) - 1) & ~(((uint64_t)1 << j0) - 1));
			gone = (s->released & m) == m;
		}
		if (gone) {
			if (!nrun)
				run = s->base + ((uintptr_t)k << NH_PAGE_SHIFT);
			nrun++;
		} else if (nrun) {
			page_alloc_mark_scavenged(&h->pages, run, nrun);
			nrun = 0;
		}
	}
	s->released = 0;
}

void mheap_free_span(struct mheap *h, struct mspan *s)
{
	mutex_lock(&h->lock);
	size_t bytes = (size_t)s->npages << NH_PAGE_SHIFT;
	arena_set_spans(s->base, s->npages, NULL);
	page_alloc_free(&h->pages, s->base, s->npages);
	if (NH_UNLIKELY(s->released))
		mark_released_pages(h, s);
	h->inuse_bytes -= bytes;
	if (s->sizeclass == 0 && !s->ordered) {
		h->large_inuse_bytes -= bytes;
	}
	atomic_store_explicit(&s->state, SPAN_DEAD, memory_order_relaxed);
	fixalloc_free(&h->spanalloc[spanalloc_index(s->ordered ? NH_ORDERED_SPAN : s->sizeclass)], s);
	mutex_unlock(&h->lock);
}

bool mheap_grow_span(struct mheap *h, struct mspan *s, size_t npages)
{
	size_t extra = npages - s->npages, scav = 0;
	uintptr_t tail = s->base + ((uintptr_t)s->npages << NH_PAGE_SHIFT);
	mutex_lock(&h->lock);
	bool ok = page_alloc_alloc_at(&h->pages, tail, extra, &scav);
	if (ok && arena_commit(tail, extra << NH_PAGE_SHIFT) != 0) {
		page_alloc_free(&h->pages, tail, extra); /* past the commit limit: moved instead, or ENOMEM */
		ok = false;
	}
	if (ok) {
		size_t fresh;
		alloc_needs_zero(tail, extra, scav, &fresh);
		arena_set_spans(tail, extra, s);
		s->npages = (uint32_t)npages;
		s->elemsize = (uint32_t)NH_MIN(npages << NH_PAGE_SHIFT, (size_t)UINT32_MAX);
		h->inuse_bytes += extra << NH_PAGE_SHIFT;
		h->peak_inuse_bytes = NH_MAX(h->peak_inuse_bytes, h->inuse_bytes);
		h->large_inuse_bytes += extra << NH_PAGE_SHIFT;
		count_reused(h, tail + (extra << NH_PAGE_SHIFT), scav, fresh);
	}
	mutex_unlock(&h->lock);
	return ok;
}

void mheap_shrink_span(struct mheap *h, struct mspan *s, size_t npages)
{
	size_t extra = s->npages - npages;
	uintptr_t tail = s->base + ((uintptr_t)npages << NH_PAGE_SHIFT);
	mutex_lock(&h->lock);
	arena_set_spans(tail, extra, NULL);
	page_alloc_free(&h->pages, tail, extra);
	s->npages = (uint32_t)npages;
	s->elemsize = (uint32_t)(npages << NH_PAGE_SHIFT);
	h->inuse_bytes -= extra << NH_PAGE_SHIFT;
	h->large_inuse_bytes -= extra << NH_PAGE_SHIFT;
	mutex_unlock(&h->lock);
}

/* ---- the large-span cache ------------------------------------------------- */

struct mspan *mheap_large_cache_take(struct mheap *h, size_t npages)
{
	if (npages > NH_LARGE_CACHE_PAGES || !h->lcache_n[npages])
		return NULL; /* racy peek; checked again under the lock */
	mutex_lock(&h->lcache_lock);
	struct mspan *s = NULL;
	if (h->lcache_n[npages]) {
		s = h->lcache[npages][--h->lcache_n[npages]];
		h->lcache_bytes -= npages << NH_PAGE_SHIFT;
		h->lcache_gen++;
		h->lcache_hits++;
	}
	mutex_unlock(&h->lcache_lock);
	if (s) {
		s->needzero = 1; /* it held an object */
		atomic_store_explicit(&s->state, SPAN_INUSE, memory_order_release);
	}
	return s;
}

bool mheap_large_cache_put(struct mheap *h, struct mspan *s)
{
	size_t np = s->npages, bytes = np << NH_PAGE_SHIFT;
	if (np > NH_LARGE_CACHE_PAGES || s->guarded)
		return false;
	mutex_lock(&h->lcache_lock);
	bool ok = h->lcache_n[np] < NH_LARGE_CACHE_DEPTH && h->lcache_bytes + bytes <= NH_LARGE_CACHE_BYTES;
	if (ok) {
		/* A second free of this object now finds SPAN_CACHED: reported. */
		atomic_store_explicit(&s->state, SPAN_CACHED, memory_order_release);
		h->lcache[np][h->lcache_n[np]++] = s;
		h->lcache_bytes += bytes;
		h->lcache_gen++;
	}
	mutex_unlock(&h->lcache_lock);
	return ok;
}

size_t mheap_large_cache_drain(struct mheap *h, bool idle_only)
{
	if (!h->lcache_bytes)
		return 0;
	if (idle_only && h->lcache_gen != h->lcache_idle_gen) {
		h->lcache_idle_gen = h->lcache_gen; /* racy hint */
		return 0;
	}
	struct mspan *out[NH_LARGE_CACHE_PAGES * NH_LARGE_CACHE_DEPTH];
	unsigned n = 0;
	mutex_lock(&h->lcache_lock);
	for (unsigned np = 1; np <= NH_LARGE_CACHE_PAGES; np++)
		while (h->lcache_n[np])
			out[n++] = h->lcache[np][--h->lcache_n[np]];
	size_t bytes = h->lcache_bytes;
	h->lcache_bytes = 0;
	h->lcache_idle_gen = ++h->lcache_gen;
	mutex_unlock(&h->lcache_lock);
	for (unsigned i = 0; i < n; i++) {
		atomic_store_explicit(&out[i]->state, SPAN_INUSE, memory_order_relaxed);
		mheap_free_span(h, out[i]);
	}
	return bytes;
}

size_t mheap_drain_caches(bool idle_only)
{
	size_t moved = 0;
	for_each_heap(h) {
		moved += mcentral_drain(h, idle_only);
		mheap_large_cache_drain(h, idle_only);
	}
	return moved;
}

void mheap_fork_lock(bool lock)
{
	for_each_heap(h) {
		if (lock) {
			mutex_lock(&h->lcache_lock);
			mutex_lock(&h->lock);
		} else {
			mutex_unlock(&h->lock);
			mutex_unlock(&h->lcache_lock);
		}
	}
}

void mheap_fork_child(void)
{
	for_each_heap(h) {
		mutex_reset(&h->lock);
		mutex_reset(&h->lcache_lock);
	}
}
