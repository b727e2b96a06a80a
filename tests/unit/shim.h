/*
 * shim.h — the internal API of numaheap, as the C++ unit tests see it.
 *
 * src/internal.h is C11 (it uses _Atomic and <stdatomic.h>), which C++17
 * cannot include. shim.c includes it and forwards each internal function the
 * tests need through a wrapper with plain types; structures stay opaque on
 * this side and are read through accessors. Constants come from the real
 * headers (shim.c), so the tests never restate them.
 */
#ifndef NUMAHEAP_TEST_SHIM_H
#define NUMAHEAP_TEST_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- constants from internal.h ------------------------------------------ */
extern const uint64_t nht_page_size;	  /* NH_PAGE_SIZE */
extern const uint64_t nht_chunk_pages;	  /* NH_CHUNK_PAGES */
extern const uint64_t nht_chunk_bytes;	  /* NH_CHUNK_BYTES */
extern const unsigned nht_summary_levels; /* NH_SUMMARY_LEVELS */
extern const uint64_t nht_sum_limit;	  /* NH_SUM_MAX */
extern const uintptr_t nht_heap_base;	  /* NH_HEAP_BASE */
extern const uintptr_t nht_heap_end;	  /* NH_HEAP_END */
extern const unsigned nht_node_shift;	  /* NH_NODE_SHIFT */
extern const uint64_t nht_arena_bytes;	  /* NH_ARENA_BYTES */
extern const unsigned nht_max_span_objects; /* NH_MAX_SPAN_OBJECTS */
extern const uintptr_t nht_entry_fresh;	  /* NH_ENTRY_FRESH */
extern const int nht_span_inuse;	  /* SPAN_INUSE */

/* ---- dating the last malloc (proc.c) -------------------------------------- */
/* proc_cycles_time with a last count at (last_ns, last_cycles). */
uint64_t nht_cycles_time(uint64_t s, uint64_t last_ns, uint64_t last_cycles, uint64_t ns, uint64_t cycles);
/* proc_count_allocs against the previous call's count; returns its time. */
uint64_t nht_count_allocs(void);
uint64_t nht_counted_since(unsigned cls); /* of the last count */
uint64_t nht_counted_allocs(unsigned cls);
unsigned nht_size_class(size_t n);
uint64_t nht_nanotime(void);

/* ---- NUMA (numa/policy.c) ------------------------------------------------ */
int nht_interleave_turn(uint32_t mask, uintptr_t hp);

/* ---- pallocSum ----------------------------------------------------------- */
uint64_t nht_sum_pack(unsigned start, unsigned max, unsigned end);
unsigned nht_sum_start(uint64_t s);
unsigned nht_sum_max(uint64_t s);
unsigned nht_sum_end(uint64_t s);

/* ---- pageAlloc: a private instance (its own lock), never touching the
 * memory it manages ------------------------------------------------------- */
struct nht_pa;
/* NULL and *err = the init error on failure. */
struct nht_pa *nht_pa_new(uintptr_t base, unsigned shift, int *err);
void nht_pa_delete(struct nht_pa *t); /* unmaps the summaries and chunk index */
int nht_pa_grow(struct nht_pa *t, uintptr_t addr, size_t bytes);
uintptr_t nht_pa_alloc(struct nht_pa *t, size_t npages, size_t align_pages, size_t *scav);
void nht_pa_free(struct nht_pa *t, uintptr_t addr, size_t npages);
bool nht_pa_alloc_at(struct nht_pa *t, uintptr_t addr, size_t npages, size_t *scav);
void nht_pa_mark_scavenged(struct nht_pa *t, uintptr_t addr, size_t npages);
uintptr_t nht_pa_take_unscavenged(struct nht_pa *t, uintptr_t *limit, size_t min_pages, size_t max_pages,
				  size_t align_pages, size_t *npages);
/* The scavenger's sparse pass: free runs of huge pages with at most max_used
 * allocated pages, never across a huge page's edge. *sparse_hp carries the
 * query's state from one call to the next, as a pass does (start with 0). */
uintptr_t nht_pa_take_sparse(struct nht_pa *t, uintptr_t *limit, unsigned max_used, uintptr_t *sparse_hp,
			      size_t *npages);
void nht_pa_free_scavenged(struct nht_pa *t, uintptr_t addr, size_t npages);
/* page_alloc_unscavenge_low; at most 16 runs, written to base[] and bytes[]. */
unsigned nht_pa_unscavenge_low(struct nht_pa *t, size_t window, uintptr_t *base, size_t *bytes, unsigned max_runs);
/* The same with its from and take: released pages below from are left (and
 * counted in the window); stops at a huge page once take pages are taken. */
unsigned nht_pa_unscavenge_from(struct nht_pa *t, uintptr_t from, size_t window, size_t take, uintptr_t *base,
				size_t *bytes, unsigned max_runs);
int nht_pa_check(struct nht_pa *t);
uintptr_t nht_pa_base(const struct nht_pa *t);
uintptr_t nht_pa_search_addr(const struct nht_pa *t);
uintptr_t nht_pa_grown_end(const struct nht_pa *t);
size_t nht_pa_pages_grown(const struct nht_pa *t);
size_t nht_pa_pages_alloc(const struct nht_pa *t);
size_t nht_pa_pages_scav(const struct nht_pa *t);
/* Copy chunk ci's bitmaps (NH_CHUNK_PAGES bits each); false if never grown. */
bool nht_pa_chunk_bits(const struct nht_pa *t, size_t ci, uint64_t *alloc, uint64_t *scav);
/* The summary at level l, index i. */
uint64_t nht_pa_summary(const struct nht_pa *t, unsigned l, size_t i);

/* The scavenger's subrelease and collapse searches (pagescav.c). The
 * pageAlloc's clock becomes a fake one the test sets. */
void nht_pa_use_fake_clock(struct nht_pa *t);
void nht_set_fake_now(uint64_t now);
struct nht_scav_q {
	size_t min_pages, align_pages;
	uint64_t idle_before;
	bool allocs_too;
	unsigned max_used;
};
/* page_alloc_take_idle with a query built from *in; *limit and *next_idle
 * come back as the query left them. */
uintptr_t nht_pa_take_query(struct nht_pa *t, const struct nht_scav_q *in, uintptr_t *limit, uint64_t *next_idle,
			    size_t *npages);
unsigned nht_pa_note_broken(struct nht_pa *t, uintptr_t addr, size_t bytes, uintptr_t *out, unsigned max);
uintptr_t nht_pa_next_collapse(struct nht_pa *t, uintptr_t *cursor, uintptr_t floor, unsigned max_scav,
			       unsigned min_used, unsigned *nscav);
void nht_pa_collapse_begin(struct nht_pa *t, uintptr_t hp, uint64_t hold_until);
size_t nht_pa_broken(const struct nht_pa *t);
bool nht_pa_chunk_idle(struct nht_pa *t, uintptr_t addr, uint64_t idle_before, uint64_t *tick);

/* ---- mspan --------------------------------------------------------------- */
size_t nht_mspan_sizeof(void);
size_t nht_mspan_alignof(void);
/* Zero *s, set base, npages from the class table, then mspan_init_small. */
void nht_mspan_init(void *s, uintptr_t base, unsigned sizeclass);
unsigned nht_mspan_take(void *s, uintptr_t *out, unsigned n);
/* mcache.c: the order a refill of objects smaller than a line is pushed in. */
void nht_mcache_spread_lines(uintptr_t *v, unsigned n);
/* mspan_put: back with its free mark, or unmarked (a fresh entry). */
void nht_mspan_put(void *s, uintptr_t p, bool unmarked);
unsigned nht_mspan_obj_index(const void *s, uintptr_t p);
unsigned nht_mspan_nelems(const void *s);
unsigned nht_mspan_nalloc(const void *s);
unsigned nht_mspan_freeindex(const void *s);
unsigned nht_mspan_elemsize(const void *s);
unsigned nht_mspan_npages(const void *s);

/* ---- fixalloc and persistentalloc ---------------------------------------- */
size_t nht_fixalloc_sizeof(void);
size_t nht_fixalloc_alignof(void);
/* with_stat: charge a counter private to the shim (nht_fixalloc_stat). */
void nht_fixalloc_init(void *f, size_t size, int node, bool with_stat);
void *nht_fixalloc_alloc(void *f);
void nht_fixalloc_free(void *f, void *p);
size_t nht_fixalloc_size(const void *f);
size_t nht_fixalloc_inuse(const void *f);
size_t nht_fixalloc_stat(void);
void *nht_persistentalloc(size_t size, size_t align, int node);

/* ---- arena map ----------------------------------------------------------- */
struct nht_span_info {
	uintptr_t base;
	unsigned npages;
	unsigned elemsize;
	unsigned nelems;
	unsigned sizeclass;
	unsigned node;
	int state;
};
/* The span of p (span_of); false if none. */
bool nht_span_of(uintptr_t p, struct nht_span_info *out);
/* The raw span pointer, to compare identity. */
const void *nht_span_ptr(uintptr_t p);
/* arena_of(p): NULL or the arena; *base gets the arena's base. */
const void *nht_arena_of(uintptr_t p, uintptr_t *base, int *node);

/* ---- free's page table (arena.h) ----------------------------------------- */
/* The entry of p's page; false if p is outside the table (or it is off). */
bool nht_page_entry(uintptr_t p, unsigned *entry);
/* NH_HOFF(node, cls): an entry without its page index. */
unsigned nht_hoff(unsigned node, unsigned cls);
/* The table's slot (NH_PT_SHIFT) and arena.c's kinds for slots of 2^shift
 * bytes: a slot's phase, the ids of a span's slots, a slot's entry. */
extern const unsigned nht_pt_shift;
uint32_t nht_pt_phase(unsigned cls, unsigned q, unsigned shift);
bool nht_pt_ids(unsigned cls, unsigned shift, uint8_t *ids);
unsigned nht_pt_entry(unsigned node, unsigned cls, uintptr_t q);
/* free's interior-pointer check: p (only p % page counts) is an object's
 * start on a page with entry e. */
bool nht_page_entry_is_object(unsigned e, uintptr_t p);
/* Chunks (arena.c): the most slots a chunk of cls has (0: none), and the
 * entry of a chunk's slot j. */
unsigned nht_chunk_slots(unsigned cls);
unsigned nht_chunk_entry(unsigned node, unsigned cls, unsigned j);
/* The kind of entry e: the multiplier and phase * multiplier. */
void nht_page_kind(unsigned e, uint32_t *mul, uint32_t *phase_mul);

/* Nodes with memory (numa_topo.nnodes). */
int nht_numa_nnodes(void);

/* ---- options ------------------------------------------------------------- */
void nht_options_init(void);
int nht_opt_count(void);
/* Option index by name without the NUMAHEAP_ prefix, or -1. */
int nht_opt_find(const char *name);
const char *nht_opt_name(int id);
int64_t nht_opt_default(int id); /* from options.def */
int64_t nht_opt_value(int id);
bool nht_opt_is_set(int id);
const char *nht_opt_stats_file(void);
size_t nht_opt_stats_file_cap(void);

#ifdef __cplusplus
}
#endif

#endif
