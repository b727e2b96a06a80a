/*
 * arena.c — heap arenas and the arena map.
 *
 * See malloc.c for the overview. Heap memory is mapped in arenas of 64 MiB
 * (Go's heapArena), at fixed addresses inside the owning node's slice of the
 * address space (internal.h), upwards from the slice's start. Each arena has
 * metadata — the page-to-span map that lets free() find a pointer's span in
 * O(1) — allocated on the arena's node, outside the heap.
 *
 * The arena map nh_arena_map[(p - NH_HEAP_BASE) >> 26] leads from an
 * address to its heapArena, whose spans[] leads to the page's span: a
 * two-level map (arena, then page), as in Go. Entries are published once
 * with a release store, after the metadata is ready, and never change
 * again; lockless readers use acquire loads.
 *
 * Commit charge (Go's Reserved and Ready states, mem.go). Under strict
 * overcommit (vm.overcommit_memory=2) the kernel charges every writable
 * private mapping in full when it is mapped, and again in a forked child,
 * however little of it is used: a heap that mapped its tables and arenas
 * writable cost 630 MiB of commit for a program that allocated 100 bytes,
 * and a shell under it could not fork. So everything sparse starts
 * reserved: the arena map and the page table readable (they read as
 * zeros: lockless readers may index them anywhere), each part made
 * writable when its arena is published; under strict overcommit, an
 * arena PROT_NONE, made ready in NH_COMMIT_STEP pieces as the pages handed
 * out reach into them (heapArena.ready). A commit past the limit fails
 * like any mapping: ENOMEM, nothing lost. In the other modes the kernel
 * does not charge a MAP_NORESERVE mapping, so arenas are mapped ready:
 * each step's mprotect takes the mmap lock for writing with the heap lock
 * held (172 us a call in frag under strace; frag, large and rptest ran
 * 4-10% slower with steps everywhere). (hugetlbfs
 * arenas are mapped ready too: the kernel charges their pages to the
 * hugetlb pool, not to the commit limit.)
 *
 * Arena growth and commits run under the node's heap lock.
 */

#include "options.h"
#include "os/os.h"

#include "numa.h"

#include "mspan.h"
#include "arena.h"

#include "mheap.h"
#include "mcache.h"

#include "scavenger.h"

#include <errno.h>
#include <string.h>

struct heap_arena *_Atomic *nh_arena_map;
static bool hugetlb_failed, bind_warned;
/* Strict overcommit (os_commit_strict, read at start-up) or
 * NUMAHEAP_COMMIT=reserve: arenas are reserved and made ready as they are
 * used; otherwise mapped ready. */
static bool commit_strict;

/* The page table (arena.h): written under the heap locks, read by free. */
static _Atomic uint16_t *page_table;
static uintptr_t page_table_entries;

_Static_assert(NH_HOFF(NH_MAX_NODES - 1, NH_NUM_CLASSES - 1) + 15 < 65536, "an entry fits 16 bits");
_Static_assert(NH_HEAP_BASE % NH_PAGE_SIZE == 0, "page_lo is exact");
_Static_assert(NH_MAX_SMALL_SIZE <= 15 * NH_PAGE_SIZE, "spans have fewer than 15 pages: kind 15 is free for the size");

static void page_table_init(int max_node);
static void pt_kinds_init(void);

bool arena_init(int max_node)
{
	commit_strict = NH_OPTION(COMMIT) == COMMIT_RESERVE || (NH_OPTION(COMMIT) == COMMIT_AUTO && os_commit_strict());
	pt_kinds_init(); /* before ordered_init, which asks for the classes' chunks */
	nh_arena_map = os_reserve_zero(NH_ARENA_MAP_ENTRIES * sizeof *nh_arena_map, 4096);
	if (!nh_arena_map)
		return false;
	page_table_init(max_node);
	return true;
}

/*
 * The kind of each table slot of a class's span (NH_PT_SHIFT, arena.h): with
 * one slot a page, the page's index in its span; with finer slots, one id
 * per distinct phase, one of them for every slot where no object starts (a
 * slot inside one larger object). 0xff: more kinds than the entry's 4 bits
 * hold (15; kind 15 is page_entry_size's), so the class's slots get entry 0
 * and its frees the general path.
 */
#define PT_PER_PAGE ((unsigned)(NH_PAGE_SIZE >> NH_PT_SHIFT))
#define PT_SPAN_SLOTS (NH_PT_MAX_SPAN_PAGES * PT_PER_PAGE)
static uint8_t pt_kind[NH_NUM_CLASSES][PT_SPAN_SLOTS];

uint32_t arena_pt_phase(unsigned c, unsigned q, unsigned shift)
{
	uint32_t size = nh_class_to_size[c], slot = (uint32_t)1 << shift;
	uint32_t tail = (uint32_t)(((uintptr_t)nh_class_to_npages[c] << NH_PAGE_SHIFT) % size);
	uint32_t phase = (uint32_t)(((uintptr_t)q * slot + size - tail) % size);
	/* (slot start - first object) mod size, the first object being tail
	 * bytes into the span (mspan.h); where no object starts in the slot,
	 * size - slot, which no offset in it completes to a multiple. */
	if (shift < NH_PAGE_SHIFT && size > slot && phase != 0 && phase <= size - slot)
		phase = size - slot;
	return phase;
}

bool arena_pt_ids(unsigned c, unsigned shift, uint8_t *ids)
{
	unsigned slots = (unsigned)nh_class_to_npages[c] << (NH_PAGE_SHIFT - shift), nids = 0;
	uint32_t phases[15];
	for (unsigned q = 0; q < slots; q++) {
		uint32_t phase = arena_pt_phase(c, q, shift);
		unsigned id = shift == NH_PAGE_SHIFT ? q : 0;
		while (shift < NH_PAGE_SHIFT && id < nids && phases[id] != phase)
			id++;
		if (id >= 15)
			return false;
		if (id == nids)
			phases[nids++] = phase;
		ids[q] = (uint8_t)id;
	}
	return true;
}

/* The table entry of slot q of a span of class c on node (0: none). */
static uint16_t pt_entry(unsigned node, unsigned c, uintptr_t q)
{
	return c && q < PT_SPAN_SLOTS && pt_kind[c][q] != 0xff ? (uint16_t)(NH_HOFF(node, c) | pt_kind[c][q]) : 0;
}

uint16_t arena_pt_entry(unsigned node, unsigned c, uintptr_t q) { return pt_entry(node, c, q); }

/*
 * Chunks (ordered.c): a class's objects cut one after the other from a
 * slot boundary, over whole slots. Slot j of a chunk has the phase of slot
 * chunk_q0[c] + j of the class's span, the span's first slot where an
 * object starts on the boundary, so the chunk's slots take the span's
 * kinds and no kind is added. A chunk has at most chunk_slots[c] slots:
 * the class's period (the fewest slots its objects fill exactly: at most
 * 16 objects), or what the span has from q0 on. 0: no chunks (slots of a
 * page, or kinds that do not fit).
 */
static uint16_t chunk_q0[NH_NUM_CLASSES], chunk_slots[NH_NUM_CLASSES];

static void chunk_kinds_init(void)
{
	for (unsigned c = 1; c < NH_NUM_CLASSES && NH_PT_FINE; c++) {
		uint32_t size = nh_class_to_size[c];
		unsigned span = nh_class_to_npages[c] * PT_PER_PAGE;
		if (pt_kind[c][0] == 0xff)
			continue;
		/* the slot being a power of two, gcd(size, slot) is size's
		 * lowest bit or the slot */
		unsigned period = (unsigned)(size >> NH_MIN((unsigned)nh_ctz64(size), (unsigned)NH_PT_SHIFT));
		for (unsigned q = 0; q < span; q++)
			if (arena_pt_phase(c, q, NH_PT_SHIFT) == 0) {
				unsigned n = NH_MIN(period, span - q);
				if (((uintptr_t)n << NH_PT_SHIFT) >= size) {
					chunk_q0[c] = (uint16_t)q;
					chunk_slots[c] = (uint16_t)n;
				}
				break;
			}
	}
}

unsigned arena_chunk_slots(unsigned c) { return chunk_slots[c]; }

uint16_t arena_chunk_entry(unsigned node, unsigned c, unsigned j) { return pt_entry(node, c, chunk_q0[c] + j); }

void arena_set_chunk(uintptr_t base, unsigned slots, unsigned node, unsigned c)
{
	uintptr_t t = (base - NH_HEAP_BASE) >> NH_PT_SHIFT;
	for (unsigned j = 0; j < slots && page_table && t + j < page_table_entries; j++)
		atomic_store_explicit(&page_table[t + j], arena_chunk_entry(node, c, j), memory_order_relaxed);
}

/* Class 0's entries are all 0 (pt_entry). */
void arena_clear_slots(uintptr_t base, unsigned n) { arena_set_chunk(base, n, 0, 0); }

static void pt_kinds_init(void)
{
	_Static_assert(NH_PT_SHIFT <= NH_PAGE_SHIFT && NH_PT_SHIFT >= 4, "a table slot is at most a page");
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++)
		if (nh_class_to_npages[c] > NH_PT_MAX_SPAN_PAGES || !arena_pt_ids(c, NH_PT_SHIFT, pt_kind[c]))
			memset(pt_kind[c], 0xff, sizeof pt_kind[c]);
	chunk_kinds_init();
}

static void page_table_init(int max_node)
{
	uintptr_t n = (uintptr_t)(max_node + 1) << (NH_NODE_SHIFT - NH_PT_SHIFT);
	size_t kinds = NH_PAGE_KINDS * sizeof(struct nh_pagekind);
	size_t bytes = kinds + n * sizeof(uint16_t);
	/* The table only speeds free up, and it is big (512 MiB of address
	 * space per node). Under an address-space limit (RLIMIT_AS) it must
	 * not take the room the heap needs: left out when it would take more
	 * than half of the limit. */
	if (bytes > os_address_space_limit() / 2)
		return; /* free takes the general path */
	char *m = os_reserve_zero(bytes, 4096);
	if (!m)
		return; /* free takes the general path */
	if (os_commit_range(m, kinds) != 0) {
		os_unmap(m, bytes);
		return;
	}
	struct nh_pagekind *kind = (struct nh_pagekind *)m;
	for (int node = 0; node <= max_node; node++)
		for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
			uint32_t size = nh_class_to_size[c];
			uint32_t mul = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
			for (unsigned q = 0; q < nh_class_to_npages[c] * PT_PER_PAGE; q++) {
				uint16_t e = pt_entry((unsigned)node, c, q);
				if (e)
					kind[e] = (struct nh_pagekind){mul, arena_pt_phase(c, q, NH_PT_SHIFT) * mul};
			}
			kind[NH_HOFF(node, c) | 15] = (struct nh_pagekind){size, 0}; /* page_entry_size */
		}
	page_table = (_Atomic uint16_t *)(m + kinds);
	page_table_entries = n;
}

void arena_publish_page_table(void)
{
	if (!page_table)
		return;
	nh_fast.page_lo = NH_HEAP_BASE >> NH_PT_SHIFT;
	nh_fast.page_table = (const uint16_t *)page_table;
	nh_fast.page_count = page_table_entries;
}

void arena_set_spans(uintptr_t base, size_t npages, struct mspan *s)
{
	uintptr_t a = base;
	while (npages) {
		struct heap_arena *ha = arena_of(a);
		size_t i = (a >> NH_PAGE_SHIFT) & (NH_PAGES_PER_ARENA - 1);
		size_t k = NH_MIN((size_t)(NH_PAGES_PER_ARENA - i), npages);
		uintptr_t t = (a - NH_HEAP_BASE) >> NH_PT_SHIFT;
		for (size_t j = 0; j < k; j++) {
			/* A free page's entries are 0, and stay 0 under a large
			 * span (and an ordered one's without chunks): only a small
			 * span's are written, and cleared when it goes (32 a page
			 * with 256-byte slots). */
			struct mspan *old = atomic_load_explicit(&ha->spans[i + j], memory_order_relaxed);
			bool entries = s ? s->sizeclass != 0 : old && (old->sizeclass || (NH_PT_FINE && old->ordered));
			for (unsigned r = 0; r < PT_PER_PAGE && page_table && entries; r++) {
				uintptr_t slot = t + j * PT_PER_PAGE + r;
				if (slot >= page_table_entries)
					break;
				uint16_t e = 0;
				if (s && s->sizeclass)
					e = pt_entry(s->node, s->sizeclass,
						     ((a + ((uintptr_t)j << NH_PAGE_SHIFT) - s->base) >> NH_PT_SHIFT) + r);
				atomic_store_explicit(&page_table[slot], e, memory_order_relaxed);
			}
			atomic_store_explicit(&ha->spans[i + j], s, memory_order_release);
		}
		a += (uintptr_t)k << NH_PAGE_SHIFT;
		npages -= k;
	}
}

void arena_set_page_entries(const struct mspan *s, bool cached)
{
	if (!page_table)
		return;
	uintptr_t t = (s->base - NH_HEAP_BASE) >> NH_PT_SHIFT;
	for (uintptr_t q = 0; q < (uintptr_t)s->npages * PT_PER_PAGE && t + q < page_table_entries; q++)
		atomic_store_explicit(&page_table[t + q], cached ? pt_entry(s->node, s->sizeclass, q) : 0,
				      memory_order_relaxed);
}

void arena_release_table(uintptr_t base, size_t bytes)
{
	if (!NH_PT_FINE || !page_table)
		return; /* a table of page slots is 1/4096 of the heap: kept */
	uintptr_t lo = (uintptr_t)&page_table[(base - NH_HEAP_BASE) >> NH_PT_SHIFT];
	uintptr_t hi = (uintptr_t)&page_table[(base + bytes - NH_HEAP_BASE) >> NH_PT_SHIFT];
	uintptr_t ps = os_page_size();
	lo = (lo + ps - 1) & ~(ps - 1);
	hi &= ~(ps - 1);
	if (hi > lo)
		os_release((void *)lo, hi - lo, RELEASE_DONTNEED);
}

#define NH_COMMIT_AHEAD 2u /* steps made ready ahead of a growing heap (arena_commit) */

int arena_commit(uintptr_t base, size_t bytes)
{
	uintptr_t end = base + bytes;
	for (uintptr_t a = base; a < end;) {
		struct heap_arena *ha = arena_of(a);
		uintptr_t aend = NH_MIN(end, ha->base + NH_ARENA_BYTES);
		uint32_t want = arena_steps(ha, a, aend) & ~ha->ready;
		while (want) {
			/* One mprotect for each run of steps not yet ready. A run
			 * that extends a ready run below it (a heap growing up
			 * through its arena) takes up to NH_COMMIT_AHEAD steps
			 * more beyond it, as many as that ready run has: an arena
			 * is made ready in 4, 8, 12, 12, ... MiB (7 calls, not 16),
			 * and at most 8 MiB more than the heap reached is charged.
			 * Steps reached out of order take no more than they need.
			 * Refused (near the commit limit), the run alone is
			 * tried. */
			unsigned i = (unsigned)__builtin_ctz(want), n = (unsigned)__builtin_ctz(~(want >> i));
			unsigned below = i ? (unsigned)__builtin_clz(~(ha->ready << (32 - i))) : 0;
			unsigned more = 0;
			while (more < NH_MIN(below, NH_COMMIT_AHEAD) && i + n + more < NH_COMMIT_STEPS &&
			       !(ha->ready >> (i + n + more) & 1))
				more++;
			void *at = (void *)(ha->base + ((uintptr_t)i << NH_COMMIT_SHIFT));
			if (more && os_commit(at, (uintptr_t)(n + more) << NH_COMMIT_SHIFT) == 0)
				n += more;
			else if (os_commit(at, (uintptr_t)n << NH_COMMIT_SHIFT) != 0)
				return -ENOMEM;
			uint32_t run = (uint32_t)(((1ull << n) - 1) << i);
			ha->ready |= run;
			want &= ~run;
		}
		a = aend;
	}
	return 0;
}

/*
 * Map bytes (a multiple of the arena size) at the first free place from
 * *addr up, inside h's slice: hugetlbfs pages if NUMAHEAP_HUGETLB asks and
 * the kernel has them, else plain pages, ready (*ready) unless the kernel
 * runs strict overcommit, then reserved. Moves *addr to where the mapping
 * landed; NULL if the slice has no room or the kernel refuses (the hint
 * then stays where it refused).
 */
static void *map_arenas(struct mheap *h, uintptr_t *addr, size_t bytes, uintptr_t slice_end, bool *ready)
{
	uintptr_t a = *addr;
	while (a + bytes <= slice_end && a + bytes > a) {
		void *p = NULL;
		if (NH_OPTION(HUGETLB) && !hugetlb_failed) {
			p = os_map_hugetlb_at(a, bytes);
			*ready = p != NULL;
			if (!p && errno != EEXIST && errno != EBUSY) {
				hugetlb_failed = true;
				nh_warn("NUMAHEAP_HUGETLB=1 but no hugetlbfs pages could be mapped (reserve them in "
					"/proc/sys/vm/nr_hugepages); using transparent huge pages");
			}
		}
		if (!p) {
			p = commit_strict ? os_reserve_at(a, bytes) : os_map_at(a, bytes);
			*ready = p && !commit_strict;
		}
		if (p) {
			*addr = a;
			return p;
		}
		if (errno != EEXIST && errno != EBUSY) {
			h->arena_hint = a;
			return NULL;
		}
		/* Something else lives here: move past it, one arena at a time. */
		a += NH_ARENA_BYTES;
	}
	return NULL;
}

/*
 * THP, node binding: advice only, a failure costs speed, not memory
 * (strict binding fails later, at first touch, as the kernel decides).
 */
static void advise_arenas(struct mheap *h, void *p, uintptr_t addr, size_t bytes, uintptr_t slice, uintptr_t *base_lo,
			  uintptr_t *base_hi)
{
	if (!(NH_OPTION(HUGETLB) && !hugetlb_failed)) {
		/*
		 * The first NH_SMALL_HEAP_BYTES of a node's heap stay on base
		 * pages: a small program should not pay 2 MiB of RSS for its
		 * first object. Up to NH_SMALL_HEAP_BASE_BYTES, base pages too,
		 * made huge once the heap stops growing where the program fills
		 * them (hugepages.c): a heap of a few MiB does not pay for the
		 * holes of half-used huge pages, a big one gets them back. The
		 * heap packs low, so everything past them — all of a big heap
		 * but a sliver — gets huge pages from the start. Not in
		 * interleave mode: a collapse puts the huge page on the node
		 * that holds most of its 4 KiB pages (the first, when they are
		 * interleaved evenly), where a huge page faulted in takes its
		 * turn in the interleave (vm.numa4 saw 3 MiB move to node 0;
		 * hugepages.c moves a collapsed huge page back to its turn's
		 * node, but that is a second 2 MiB copy).
		 */
		uintptr_t from = addr, huge_from = addr;
		if (NH_OPTION(THP) && addr == slice) {
			from = addr + NH_SMALL_HEAP_BYTES;
			huge_from = numa_pol.mode == NUMA_INTERLEAVE ? from
								  : NH_MIN(addr + NH_SMALL_HEAP_BASE_BYTES, addr + bytes);
		}
		if (from > addr)
			os_hugepage(p, from - addr, false);
		/* Base pages where huge ones cost more than they give (prefault.c). */
		bool base = NH_OPTION(THP) && prefault_fresh_on_base();
		if (base) {
			atomic_fetch_add_explicit(&nh_scav.base_arena_bytes, bytes, memory_order_relaxed);
			huge_from = addr + bytes;
		}
		*base_lo = from;
		*base_hi = huge_from;
		if (huge_from > from)
			os_hugepage((void *)from, huge_from - from, false);
		if (addr + bytes > huge_from)
			os_hugepage((void *)huge_from, addr + bytes - huge_from, NH_OPTION(THP));
	}
	if (numa_bind_heap(p, bytes, h->node) != 0 && !bind_warned) {
		bind_warned = true;
		nh_warn("cannot bind heap memory to node %d (mbind failed); the kernel's policy applies", h->node);
	}
}

/*
 * Give each arena of [addr, addr + *bytes) its metadata (on h's node) and
 * publish it in the arena map. If metadata runs out, the arenas not
 * published go back to the OS and *bytes shrinks to those that were.
 * Returns them as a list, last first.
 */
/* The arena map's OS pages made writable, a bit each (4 KiB pages or
 * larger): an arena's entry is 8 bytes, so most new arenas find theirs
 * ready and need no mprotect. Two nodes' heaps may grow at once (each
 * under its own lock); both then make the same page writable, which is
 * harmless. */
static _Atomic uint64_t map_pages_ready[(NH_ARENA_MAP_ENTRIES * sizeof(void *) / 4096 + 63) / 64];

static int commit_map_entry(size_t i)
{
	size_t pg = (i * sizeof *nh_arena_map) / os_page_size();
	uint64_t bit = (uint64_t)1 << (pg % 64);
	if (atomic_load_explicit(&map_pages_ready[pg / 64], memory_order_relaxed) & bit)
		return 0;
	int r = os_commit_range(&nh_arena_map[i], sizeof *nh_arena_map);
	if (r == 0)
		atomic_fetch_or_explicit(&map_pages_ready[pg / 64], bit, memory_order_relaxed);
	return r;
}

static struct heap_arena *publish_arenas(struct mheap *h, uintptr_t addr, size_t *bytes, bool ready)
{
	struct heap_arena *list = NULL;
	for (uintptr_t a = addr; a < addr + *bytes; a += NH_ARENA_BYTES) {
		struct heap_arena *ha = persistentalloc(sizeof *ha, 64, h->node);
		_Atomic uint16_t *pt = page_table ? &page_table[(a - NH_HEAP_BASE) >> NH_PT_SHIFT] : NULL;
		size_t i = (a - NH_HEAP_BASE) >> NH_ARENA_SHIFT;
		if (!ha || commit_map_entry(i) != 0 ||
		    (pt && os_commit_range(pt, (NH_ARENA_BYTES >> NH_PT_SHIFT) * sizeof *pt) != 0)) {
			/* Arenas already published stay; the rest goes back. */
			os_unmap((void *)a, addr + *bytes - a);
			*bytes = a - addr;
			break;
		}
		ha->base = a;
		ha->zeroed_base = a;
		ha->ready = ready ? NH_COMMIT_ALL : 0;
		ha->node = h->node;
		ha->next = list;
		list = ha;
		atomic_store_explicit(&nh_arena_map[i], ha, memory_order_release);
	}
	return list;
}

/*
 * Map at least `bytes` of new arenas for heap h (a multiple of the arena
 * size), register them and hand their pages to h's pageAlloc. Returns 0 or
 * -ENOMEM. Heap lock held.
 */
int arena_grow(struct mheap *h, size_t bytes)
{
	uintptr_t slice = NH_HEAP_BASE + ((uintptr_t)h->node << NH_NODE_SHIFT);
	uintptr_t slice_end = slice + ((uintptr_t)1 << NH_NODE_SHIFT);
	bytes = (bytes + NH_ARENA_BYTES - 1) & ~(NH_ARENA_BYTES - 1);
	uintptr_t addr = h->arena_hint ? h->arena_hint : slice;
	bool ready = false;
	void *p = map_arenas(h, &addr, bytes, slice_end, &ready);
	if (!p)
		return -ENOMEM;
	uintptr_t base_lo = 0, base_hi = 0;
	advise_arenas(h, p, addr, bytes, slice, &base_lo, &base_hi);
	struct heap_arena *list = publish_arenas(h, addr, &bytes, ready);
	if (bytes == 0)
		return -ENOMEM;
	if (page_alloc_grow(&h->pages, addr, bytes) != 0)
		return -ENOMEM;
	base_hi = NH_MIN(base_hi, addr + bytes); /* publish_arenas may have shrunk bytes */
	if (base_lo < base_hi) /* made huge once the heap stops growing (hugepages.c) */
		page_alloc_note_base(&h->pages, base_lo, base_hi - base_lo);
	while (list) {
		struct heap_arena *next = list->next;
		list->next = h->arenas;
		h->arenas = list;
		list = next;
	}
	h->arena_hint = addr + bytes;
	h->mapped_bytes += bytes;
	h->grow_calls++;
	scavenger_heap_grew();
	return 0;
}
