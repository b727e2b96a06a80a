/*
 * shim.c — plain-typed wrappers over numaheap's internal API for the C++
 * unit tests (see shim.h). Compiled as C with the allocator's own headers.
 */
#include "shim.h"

#include <string.h>

#include "options.h"
#include "os/os.h"

#include "numa.h"

#include "fixalloc.h"
#include "pagealloc.h"
#include "mspan.h"
#include "arena.h"

#include "mcache.h"
#include "sizeclass.h"

_Static_assert(sizeof(palloc_sum) == sizeof(uint64_t), "palloc_sum is 64 bits");

const uint64_t nht_page_size = NH_PAGE_SIZE;
const uint64_t nht_chunk_pages = NH_CHUNK_PAGES;
const uint64_t nht_chunk_bytes = NH_CHUNK_BYTES;
const unsigned nht_summary_levels = NH_SUMMARY_LEVELS;
const uint64_t nht_sum_limit = NH_SUM_MAX;
const uintptr_t nht_heap_base = NH_HEAP_BASE;
const uintptr_t nht_heap_end = NH_HEAP_END;
const unsigned nht_node_shift = NH_NODE_SHIFT;
const uint64_t nht_arena_bytes = NH_ARENA_BYTES;
const unsigned nht_max_span_objects = NH_MAX_SPAN_OBJECTS;
const uintptr_t nht_entry_fresh = NH_ENTRY_FRESH;
const int nht_span_inuse = SPAN_INUSE;

/* ---- pallocSum ----------------------------------------------------------- */
uint64_t nht_sum_pack(unsigned start, unsigned max, unsigned end) { return palloc_sum_pack(start, max, end); }
unsigned nht_sum_start(uint64_t s) { return palloc_sum_start(s); }
unsigned nht_sum_max(uint64_t s) { return palloc_sum_max(s); }
unsigned nht_sum_end(uint64_t s) { return palloc_sum_end(s); }

/* ---- pageAlloc ------------------------------------------------------------- */
struct nht_pa {
	struct mutex lock;
	struct page_alloc pa;
};

struct nht_pa *nht_pa_new(uintptr_t base, unsigned shift, int *err)
{
	struct nht_pa *t = os_map(sizeof *t, 0);
	if (!t) {
		*err = -12;
		return NULL;
	}
	mutex_init(&t->lock, LOCK_RANK_HEAP);
	int r = page_alloc_init(&t->pa, base, shift, 0, &t->lock);
	if (r) {
		*err = r;
		os_unmap(t, sizeof *t);
		return NULL;
	}
	*err = 0;
	return t;
}

void nht_pa_delete(struct nht_pa *t)
{
	/* The chunk bitmaps came from persistentalloc and stay (it never frees). */
	for (unsigned l = 0; l < NH_SUMMARY_LEVELS; l++) {
		size_t n = (size_t)1 << (t->pa.l0bits + NH_SUMMARY_LEVEL_BITS * l);
		os_unmap(t->pa.summary[l], n * sizeof(palloc_sum));
	}
	os_unmap(t->pa.chunks, t->pa.nchunks * sizeof(struct palloc_chunk *));
	os_unmap(t, sizeof *t);
}

#define LOCKED(t, expr)                                                                                    \
	({                                                                                                 \
		mutex_lock(&(t)->lock);                                                                    \
		__typeof__(expr) r_ = (expr);                                                              \
		mutex_unlock(&(t)->lock);                                                                  \
		r_;                                                                                        \
	})

int nht_pa_grow(struct nht_pa *t, uintptr_t addr, size_t bytes)
{
	return LOCKED(t, page_alloc_grow(&t->pa, addr, bytes));
}

uintptr_t nht_pa_alloc(struct nht_pa *t, size_t npages, size_t align_pages, size_t *scav)
{
	return LOCKED(t, page_alloc_alloc(&t->pa, npages, align_pages, scav));
}

void nht_pa_free(struct nht_pa *t, uintptr_t addr, size_t npages)
{
	mutex_lock(&t->lock);
	page_alloc_free(&t->pa, addr, npages);
	mutex_unlock(&t->lock);
}

bool nht_pa_alloc_at(struct nht_pa *t, uintptr_t addr, size_t npages, size_t *scav)
{
	return LOCKED(t, page_alloc_alloc_at(&t->pa, addr, npages, scav));
}

void nht_pa_mark_scavenged(struct nht_pa *t, uintptr_t addr, size_t npages)
{
	mutex_lock(&t->lock);
	page_alloc_mark_scavenged(&t->pa, addr, npages);
	mutex_unlock(&t->lock);
}

uintptr_t nht_pa_take_unscavenged(struct nht_pa *t, uintptr_t *limit, size_t min_pages, size_t max_pages,
				  size_t align_pages, size_t *npages)
{
	return LOCKED(t, page_alloc_take_unscavenged(&t->pa, limit, min_pages, max_pages, align_pages, npages));
}

uintptr_t nht_pa_take_sparse(struct nht_pa *t, uintptr_t *limit, unsigned max_used, uintptr_t *sparse_hp,
			      size_t *npages)
{
	struct scav_query q = {.limit = *limit, .min_pages = 1, .max_pages = (size_t)-1, .align_pages = 1,
			       .max_used = max_used, .sparse_hp = *sparse_hp};
	uintptr_t a = LOCKED(t, page_alloc_take_idle(&t->pa, &q, npages));
	*limit = q.limit;
	*sparse_hp = q.sparse_hp;
	return a;
}

void nht_pa_free_scavenged(struct nht_pa *t, uintptr_t addr, size_t npages)
{
	mutex_lock(&t->lock);
	page_alloc_free_scavenged(&t->pa, addr, npages);
	mutex_unlock(&t->lock);
}

int nht_pa_check(struct nht_pa *t) { return LOCKED(t, page_alloc_check(&t->pa)); }
uintptr_t nht_pa_base(const struct nht_pa *t) { return t->pa.base; }
uintptr_t nht_pa_search_addr(const struct nht_pa *t) { return t->pa.search_addr; }
uintptr_t nht_pa_grown_end(const struct nht_pa *t) { return t->pa.grown_end; }
size_t nht_pa_pages_grown(const struct nht_pa *t) { return t->pa.pages_grown; }
size_t nht_pa_pages_alloc(const struct nht_pa *t) { return t->pa.pages_alloc; }
size_t nht_pa_pages_scav(const struct nht_pa *t) { return t->pa.pages_scav; }

bool nht_pa_chunk_bits(const struct nht_pa *t, size_t ci, uint64_t *alloc, uint64_t *scav)
{
	if (ci >= t->pa.nchunks || !t->pa.chunks[ci])
		return false;
	memcpy(alloc, t->pa.chunks[ci]->alloc, sizeof t->pa.chunks[ci]->alloc);
	memcpy(scav, t->pa.chunks[ci]->scav, sizeof t->pa.chunks[ci]->scav);
	return true;
}

uint64_t nht_pa_summary(const struct nht_pa *t, unsigned l, size_t i) { return t->pa.summary[l][i]; }

/* The scavenger's subrelease and collapse searches, on a fake clock. */
static uint64_t fake_now;
static uint64_t fake_clock(void) { return fake_now; }
void nht_pa_use_fake_clock(struct nht_pa *t) { t->pa.clock = fake_clock; }
void nht_set_fake_now(uint64_t now) { fake_now = now; }

uintptr_t nht_pa_take_query(struct nht_pa *t, const struct nht_scav_q *in, uintptr_t *limit, uint64_t *next_idle,
			    size_t *npages)
{
	struct scav_query q = {.limit = *limit, .min_pages = in->min_pages, .max_pages = (size_t)-1,
			       .align_pages = in->align_pages, .idle_before = in->idle_before,
			       .allocs_too = in->allocs_too, .max_used = in->max_used};
	uintptr_t a = LOCKED(t, page_alloc_take_idle(&t->pa, &q, npages));
	*limit = q.limit;
	*next_idle = q.next_idle;
	return a;
}

unsigned nht_pa_note_broken(struct nht_pa *t, uintptr_t addr, size_t bytes, uintptr_t *out, unsigned max)
{
	return LOCKED(t, page_alloc_note_broken(&t->pa, addr, bytes, out, max));
}

uintptr_t nht_pa_next_collapse(struct nht_pa *t, uintptr_t *cursor, uintptr_t floor, unsigned max_scav,
			       unsigned min_used, unsigned *nscav)
{
	return LOCKED(t, page_alloc_next_collapse(&t->pa, cursor, floor, max_scav, min_used, nscav));
}

void nht_pa_collapse_begin(struct nht_pa *t, uintptr_t hp, uint64_t hold_until)
{
	mutex_lock(&t->lock);
	page_alloc_collapse_begin(&t->pa, hp, hold_until);
	mutex_unlock(&t->lock);
}

size_t nht_pa_broken(const struct nht_pa *t) { return t->pa.broken; }

bool nht_pa_chunk_idle(struct nht_pa *t, uintptr_t addr, uint64_t idle_before, uint64_t *tick)
{
	return page_alloc_chunk_idle(&t->pa, addr, idle_before, tick);
}

/* ---- mspan --------------------------------------------------------------- */
size_t nht_mspan_sizeof(void) { return sizeof(struct mspan); }
size_t nht_mspan_alignof(void) { return _Alignof(struct mspan); }

void nht_mspan_init(void *s, uintptr_t base, unsigned sizeclass)
{
	struct mspan *m = s;
	memset(m, 0, sizeof *m);
	m->base = base;
	m->npages = nh_class_to_npages[sizeclass];
	atomic_store_explicit(&m->state, SPAN_INUSE, memory_order_relaxed);
	mspan_init_small(m, sizeclass);
}

unsigned nht_mspan_take(void *s, uintptr_t *out, unsigned n) { return mspan_take(s, out, n); }
void nht_mcache_spread_lines(uintptr_t *v, unsigned n) { mcache_spread_lines(v, n); }
void nht_mspan_put(void *s, uintptr_t p, bool unmarked) { mspan_put(s, p, unmarked); }
unsigned nht_mspan_obj_index(const void *s, uintptr_t p) { return mspan_obj_index(s, p); }
unsigned nht_mspan_nelems(const void *s) { return ((const struct mspan *)s)->nelems; }
unsigned nht_mspan_nalloc(const void *s) { return ((const struct mspan *)s)->nalloc; }
unsigned nht_mspan_freeindex(const void *s) { return ((const struct mspan *)s)->freeindex; }
unsigned nht_mspan_elemsize(const void *s) { return ((const struct mspan *)s)->elemsize; }
unsigned nht_mspan_npages(const void *s) { return ((const struct mspan *)s)->npages; }

/* ---- fixalloc and persistentalloc ---------------------------------------- */
static _Atomic size_t fix_stat;

size_t nht_fixalloc_sizeof(void) { return sizeof(struct fixalloc); }
size_t nht_fixalloc_alignof(void) { return _Alignof(struct fixalloc); }
void nht_fixalloc_init(void *f, size_t size, int node, bool with_stat)
{
	fixalloc_init(f, size, node, with_stat ? &fix_stat : NULL);
}
void *nht_fixalloc_alloc(void *f) { return fixalloc_alloc(f); }
void nht_fixalloc_free(void *f, void *p) { fixalloc_free(f, p); }
size_t nht_fixalloc_size(const void *f) { return ((const struct fixalloc *)f)->size; }
size_t nht_fixalloc_inuse(const void *f) { return ((const struct fixalloc *)f)->inuse; }
size_t nht_fixalloc_stat(void) { return atomic_load(&fix_stat); }
void *nht_persistentalloc(size_t size, size_t align, int node) { return persistentalloc(size, align, node); }

/* ---- arena map ----------------------------------------------------------- */
bool nht_span_of(uintptr_t p, struct nht_span_info *out)
{
	struct mspan *s = span_of(p);
	if (!s)
		return false;
	out->base = s->base;
	out->npages = s->npages;
	out->elemsize = s->elemsize;
	out->nelems = s->nelems;
	out->sizeclass = s->sizeclass;
	out->node = s->node;
	out->state = atomic_load_explicit(&s->state, memory_order_relaxed);
	return true;
}

const void *nht_span_ptr(uintptr_t p) { return span_of(p); }

bool nht_page_entry(uintptr_t p, unsigned *entry)
{
	uintptr_t i = (p >> NH_PT_SHIFT) - nh_fast.page_lo;
	if (i >= nh_fast.page_count)
		return false;
	*entry = nh_fast.page_table[i];
	return true;
}
unsigned nht_hoff(unsigned node, unsigned cls) { return NH_HOFF(node, cls); }
const unsigned nht_pt_shift = NH_PT_SHIFT;
uint32_t nht_pt_phase(unsigned cls, unsigned q, unsigned shift) { return arena_pt_phase(cls, q, shift); }
bool nht_pt_ids(unsigned cls, unsigned shift, uint8_t *ids) { return arena_pt_ids(cls, shift, ids); }
unsigned nht_pt_entry(unsigned node, unsigned cls, uintptr_t q) { return arena_pt_entry(node, cls, q); }
bool nht_page_entry_is_object(unsigned e, uintptr_t p) { return page_entry_is_object(nh_fast.page_table, e, p); }
unsigned nht_chunk_slots(unsigned cls) { return arena_chunk_slots(cls); }
unsigned nht_chunk_entry(unsigned node, unsigned cls, unsigned j) { return arena_chunk_entry(node, cls, j); }
void nht_page_kind(unsigned e, uint32_t *mul, uint32_t *phase_mul)
{
	*mul = page_kinds(nh_fast.page_table)[e].mul;
	*phase_mul = page_kinds(nh_fast.page_table)[e].phase_mul;
}

const void *nht_arena_of(uintptr_t p, uintptr_t *base, int *node)
{
	struct heap_arena *ha = arena_of(p);
	if (ha) {
		if (base)
			*base = ha->base;
		if (node)
			*node = ha->node;
	}
	return ha;
}

int nht_numa_nnodes(void) { return numa_topo.nnodes; }

/* ---- options ------------------------------------------------------------- */
#define NH_OPT(name, type, def, lo, hi, choices, when, doc) #name,
static const char *const opt_names[NH_NUM_OPTIONS] = {
#include "options.def"
};
#undef NH_OPT
#define NH_OPT(name, type, def, lo, hi, choices, when, doc) def,
static const int64_t opt_defaults[NH_NUM_OPTIONS] = {
#include "options.def"
};
#undef NH_OPT

void nht_options_init(void) { options_init(); }
int nht_opt_count(void) { return NH_NUM_OPTIONS; }
int nht_opt_find(const char *name)
{
	for (int i = 0; i < NH_NUM_OPTIONS; i++)
		if (strcmp(opt_names[i], name) == 0)
			return i;
	return -1;
}
const char *nht_opt_name(int id) { return opt_names[id]; }
int64_t nht_opt_default(int id) { return opt_defaults[id]; }
int64_t nht_opt_value(int id) { return nh_opt.v[id]; }
bool nht_opt_is_set(int id) { return nh_opt.set[id]; }
const char *nht_opt_stats_file(void) { return nh_opt.stats_file; }
size_t nht_opt_stats_file_cap(void) { return sizeof nh_opt.stats_file; }

unsigned nht_pa_unscavenge_low(struct nht_pa *t, size_t window, uintptr_t *base, size_t *bytes, unsigned max_runs)
{
	return nht_pa_unscavenge_from(t, 0, window, SIZE_MAX, base, bytes, max_runs);
}

unsigned nht_pa_unscavenge_from(struct nht_pa *t, uintptr_t from, size_t window, size_t take, uintptr_t *base,
				size_t *bytes, unsigned max_runs)
{
	struct page_run run[16];
	if (max_runs > 16)
		max_runs = 16;
	unsigned n = LOCKED(t, page_alloc_unscavenge_low(&t->pa, from, UINTPTR_MAX, window, take, run, max_runs));
	for (unsigned i = 0; i < n; i++) {
		base[i] = run[i].base;
		bytes[i] = run[i].bytes;
	}
	return n;
}

int nht_interleave_turn(uint32_t mask, uintptr_t hp) { return numa_interleave_turn(mask, hp); }

/* ---- dating the last malloc (proc.c) -------------------------------------- */
uint64_t nht_cycles_time(uint64_t s, uint64_t last_ns, uint64_t last_cycles, uint64_t ns, uint64_t cycles)
{
	struct alloc_counts last = {.ns = last_ns, .cycles = last_cycles};
	return proc_cycles_time(s, &last, ns, cycles);
}

static struct alloc_counts counted;

uint64_t nht_count_allocs(void)
{
	struct alloc_counts last = counted;
	return proc_count_allocs(&counted, &last);
}
uint64_t nht_counted_since(unsigned cls) { return counted.since[cls]; }
uint64_t nht_counted_allocs(unsigned cls) { return counted.allocs[cls]; }
unsigned nht_size_class(size_t n) { return nh_size_to_class(n); }
uint64_t nht_nanotime(void) { return os_nanotime(); }
