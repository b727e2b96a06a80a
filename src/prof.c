/*
 * prof.c — the heap profile: sampled blocks, their stacks, their nodes.
 *
 * Go's memory profile (mprof.go), carried over to explicit free:
 *
 *   sampling  the bytes allocated are counted down to the next sample,
 *             the intervals drawn from an exponential distribution with a
 *             mean of NUMAHEAP_PROF_RATE bytes, so every byte has the same
 *             chance of being sampled whatever the sizes around it. Small
 *             blocks count on their class's header on the P (Go's per-P
 *             nextSample, per class: mcache.c, the clock), in pops of the
 *             class's size; the others on the thread's countdown
 *             (nh_prof_countdown), in bytes.
 *   buckets   a sampled block's stack (its return addresses, found with
 *             libgcc's unwinder) and node select a bucket, which counts its
 *             allocations and frees, scaled by the inverse of the chance a
 *             block of that size had of being sampled,
 *             1 / (1 - exp(-size / rate)), as Go's pprof output does.
 *   blocks    a sampled block lives alone on a large span (its page's size
 *             class is 0), whose prof field points at its bucket: free
 *             reaches it on the large-object path and calls prof_free. At
 *             the default rate the extra page costs at most ~1.6% of the
 *             heap.
 *   output    pprof's profile.proto, gzipped (pprof.c), or gperftools' text
 *             format, at exit, on the statistics signal, every
 *             NUMAHEAP_PROF_INTERVAL, and from numaheap_prof_dump.
 *
 * Why libgcc's unwinder (_Unwind_Backtrace): programs built without frame
 * pointers (Debian's are) cannot be walked by following %rbp; the DWARF
 * unwinder reads .eh_frame, which every C and C++ binary has, finds it
 * through _dl_find_object (glibc 2.35 on: no lock, no malloc), and keeps
 * its state on the stack. It runs with no allocator lock held; should it
 * call malloc after all (frames registered by a JIT through
 * __register_frame_info are sorted on first use), that malloc is not
 * sampled (prof_walking) and takes the ordinary path.
 *
 * Entry: with profiling on, malloc's first compare sends every call to its
 * profiling entry (api.c, malloc_other), a jump and a compare that every
 * malloc pays. The program's and libraries' PLT slots for malloc are
 * pointed at that entry instead (os/plt.c), at the 1st, 2nd, 4th, 8th ...
 * sample: a slot is changed only once it is bound to numaheap's malloc,
 * which lazy binding does at an object's first call, so the walk is
 * repeated for the slots bound since, and for objects loaded since.
 *
 * Locking: prof_lock (rank PROF) protects the buckets; it is taken with no
 * other allocator lock held. A dump copies the buckets out under the lock
 * and encodes them after dropping it.
 */
#define _GNU_SOURCE 1
#include "prof.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <sys/auxv.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>

#include "alloc.h"
#include "api.h"
#include "hardened.h"
#include "mcache.h"
#include "lock.h"
#include "mspan.h"
#include "options.h"
#include "os/os.h"
#include "pprof.h"
#include "sizeclass.h"
#include "report.h"
#include "stackwalk.h"

bool nh_prof_on;
__thread int64_t nh_prof_countdown __attribute__((tls_model("initial-exec")));
static __thread bool prof_armed;   /* this thread has drawn its first countdown */
static __thread bool prof_walking; /* inside the unwinder: mallocs there are not sampled */
static __thread uint64_t prof_rng;

static double prof_rate; /* mean bytes between samples */
/* numaheap's own code, when it is a library of its own: leading frames in
 * it are the allocator's, not the program's. Empty when linked statically. */
static uintptr_t own_lo, own_hi;
static struct mutex prof_lock;
static uint64_t prof_start_ns, prof_last_dump_ns;

/* ---- buckets ---------------------------------------------------------------------------- */

#define PROF_BUCKETS (1u << 16)		   /* slots of the hash table (open addressing) */
#define PROF_MAX_BUCKETS (PROF_BUCKETS / 4 * 3) /* buckets it may hold */

struct bucket {
	uint64_t hash;
	int node;
	unsigned npc;
	double alloc_objects, alloc_bytes, free_objects, free_bytes; /* scaled */
	uintptr_t pcs[PPROF_MAX_DEPTH];
};

/*
 * The buckets fill an array in order (reserved at init, PROF_MAX_BUCKETS
 * of them, ~27 MiB of address space, and made writable 64 KiB at a time
 * as it fills: under strict overcommit a writable mapping is charged in
 * full, and a profiled program rarely has more than a few thousand
 * sites); the hash table over stack hash and node holds their numbers
 * plus one (0: an empty slot), 256 KiB. Only the buckets in use and the
 * slots probed are ever touched: a dump reads buckets[0..nbuckets), not
 * the whole table (reading every slot of a table of buckets faulted in
 * ~9,000 pages at exit, 20-30 ms).
 */
#define PROF_COMMIT_STEP ((size_t)64 << 10)
static struct bucket *buckets;
static uint32_t *bucket_slots;
static size_t nbuckets;
static size_t buckets_ready; /* bytes of buckets[] made writable */

/* Make room for bucket number nbuckets; false if the commit limit refuses
 * (the sample is then counted nowhere, as when the table is full). Lock
 * held. */
static bool bucket_room(void)
{
	size_t end = (nbuckets + 1) * sizeof(struct bucket);
	if (end <= buckets_ready)
		return true;
	size_t to = (end + PROF_COMMIT_STEP - 1) & ~(PROF_COMMIT_STEP - 1);
	if (os_commit((char *)buckets + buckets_ready, to - buckets_ready) != 0)
		return false;
	buckets_ready = to;
	return true;
}

static uint64_t stack_hash(const uintptr_t *pcs, unsigned n, int node)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)(node + 1);
	for (unsigned i = 0; i < n; i++)
		h = (h ^ pcs[i]) * 0x100000001b3ULL;
	return h | 1;
}

/* The bucket of this stack and node; NULL when the table is full. Lock held. */
static struct bucket *bucket_of(const uintptr_t *pcs, unsigned n, int node)
{
	uint64_t h = stack_hash(pcs, n, node);
	for (size_t i = h & (PROF_BUCKETS - 1), k = 0; k < PROF_BUCKETS; i = (i + 1) & (PROF_BUCKETS - 1), k++) {
		uint32_t slot = bucket_slots[i];
		if (slot == 0) {
			if (nbuckets >= PROF_MAX_BUCKETS || !bucket_room())
				return NULL;
			struct bucket *b = &buckets[nbuckets++];
			b->hash = h;
			b->node = node;
			b->npc = n;
			memcpy(b->pcs, pcs, n * sizeof *pcs);
			bucket_slots[i] = (uint32_t)nbuckets;
			return b;
		}
		struct bucket *b = &buckets[slot - 1];
		if (b->hash == h && b->node == node && b->npc == n && !memcmp(b->pcs, pcs, n * sizeof *pcs))
			return b;
	}
	return NULL;
}

/* ---- sampling intervals ---------------------------------------------------------------------- */

static uint64_t rng_next(void)
{
	if (!prof_rng)
		prof_rng = (nh_cookie ^ (uint64_t)(uintptr_t)&prof_rng) | 1;
	prof_rng ^= prof_rng << 13;
	prof_rng ^= prof_rng >> 7;
	prof_rng ^= prof_rng << 17;
	return prof_rng;
}

/*
 * -ln(u) for u in (0, 1), without libm's call (a sample draws one or two):
 * u = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) for
 * s = (m - 1) / (m + 1), |s| < 0.172, whose series to s^9 is within 1e-9
 * of it. Go's fastexprand takes a table of log2 instead; an interval needs
 * neither precision.
 */
static double neg_log(double u)
{
	uint64_t b;
	memcpy(&b, &u, sizeof b);
	int e = (int)(b >> 52) - 1023; /* u is a positive normal number */
	b = (b & ((1ull << 52) - 1)) | (1023ull << 52);
	double m;
	memcpy(&m, &b, sizeof m); /* [1, 2) */
	if (m > 1.4142135623730951) {
		m *= 0.5;
		e++;
	}
	double s = (m - 1) / (m + 1), s2 = s * s;
	double lm = 2 * s * (1 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9)))));
	return -((double)e * 0.6931471805599453 + lm);
}

/* An exponential draw with mean prof_rate, in bytes. */
static double exp_bytes(void)
{
	double u = ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
	return neg_log(u) * prof_rate;
}

/* Bytes to the thread's next sample. */
static int64_t next_interval(void) { return (int64_t)exp_bytes() + 1; }

/* The chance that a block of n bytes was sampled, inverted: its weight;
 * the classes' sizes, which nearly every sample has, from a table. */
static double class_weight[NH_NUM_CLASSES];
static double weight_of(size_t n) { return 1.0 / (1.0 - exp(-(double)n / prof_rate)); }
static double weight(size_t n)
{
	if (n <= NH_MAX_SMALL_SIZE) {
		unsigned c = nh_size_to_class(n);
		if (nh_class_to_size[c] == n)
			return class_weight[c];
	}
	return weight_of(n);
}

/*
 * A countdown crossed zero at a block of n bytes: its next value in *next,
 * and whether this block is the sample. A first countdown (first: the
 * thread's was never drawn) is drawn now, and this block is inside it
 * unless the interval drawn is shorter than the block.
 */
static bool crossed(bool first, size_t n, int64_t *next)
{
	if (first) {
		*next = next_interval() - (int64_t)n;
		if (*next >= 0)
			return false;
	}
	*next = next_interval();
	return true;
}

bool prof_should_sample(size_t n)
{
	if (prof_walking)
		return false;
	bool first = !prof_armed;
	prof_armed = true;
	return crossed(first, n, &nh_prof_countdown);
}

uint64_t prof_clock_draw(unsigned cls)
{
	/* Pops until the interval's end: floor(E / size) + 1 for E
	 * exponential, so each pop ends it with chance 1 - e^(-size/rate). */
	double k = floor(exp_bytes() / (double)nh_class_to_size[cls]) + 1;
	return k < (double)(NH_RSEQ_CLOCK_DUE / 2) ? (uint64_t)k : NH_RSEQ_CLOCK_DUE / 2;
}

/*
 * A counted pop of class cls crossed (its header's clock, mcache.c): is
 * this block the sample? Yes if the clock is still due on this thread's P,
 * which starts the next interval. No if another thread on the P took the
 * sample first, or this one moved to another CPU, or it is walking a
 * stack: the block then comes from the cache uncounted (api.c), and a due
 * clock samples the P's next counted pop.
 */
bool prof_clock_crossed(unsigned cls)
{
	if (prof_walking)
		return false;
	struct pctx x;
	if (!proc_acquire_p(&x))
		return false;
	int r = mcache_clock_rearm(&x, cls, prof_clock_draw(cls));
	proc_release_p(&x);
	return r == 1;
}

/* ---- stacks ------------------------------------------------------------------------------------ */

struct walk {
	uintptr_t pcs[PPROF_MAX_DEPTH + 8];
	unsigned n;
};

static _Unwind_Reason_Code walk_frame(struct _Unwind_Context *ctx, void *arg)
{
	struct walk *w = arg;
	uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
	if (!ip || w->n == sizeof w->pcs / sizeof w->pcs[0])
		return _URC_END_OF_STACK;
	w->pcs[w->n++] = ip;
	return _URC_NO_REASON;
}

/*
 * The stack above the allocator: from the frame that returns to ret (the
 * return address of the API function the program called) outwards, as
 * call-site addresses (return address - 1, inside the call instruction).
 */
static unsigned walk_stack(uintptr_t ret, uintptr_t *out)
{
	struct walk w;
	w.n = 0;
	/* stackwalk.c's walk, with its rules kept from sample to sample (under
	 * the lock, which is its table's); libgcc's where it declines. The
	 * count of unloads first, with no lock held (stackwalk.h). */
	uint64_t unloads = nh_unwind_unloads();
	mutex_lock(&prof_lock);
	int fast = nh_unwind(w.pcs, sizeof w.pcs / sizeof w.pcs[0], unloads);
	mutex_unlock(&prof_lock);
	if (fast >= 0) {
		w.n = (unsigned)fast;
	} else {
		prof_walking = true;
		_Unwind_Backtrace(walk_frame, &w);
		prof_walking = false;
	}
	unsigned first = w.n;
	for (unsigned i = 0; i < w.n; i++)
		if (w.pcs[i] == ret) {
			first = i;
			break;
		}
	if (first == w.n)
		first = w.n > 2 ? 2 : 0;
	/* realloc's and operator new's own call into malloc: still ours. */
	while (first + 1 < w.n && w.pcs[first] >= own_lo && w.pcs[first] < own_hi)
		first++;
	unsigned n = 0;
	for (unsigned i = first; i < w.n && n < PPROF_MAX_DEPTH; i++)
		out[n++] = w.pcs[i] - 1;
	return n;
}

/* ---- the sampled allocation and its free ---------------------------------------------------------- */

static _Atomic uint64_t prof_samples_taken;

/* At the 1st, 2nd, 4th ... sample: the PLT slots bound to malloc since the
 * last time go to its profiling entry (see the top of this file). No lock
 * held. */
static void redirect_malloc_slots(void)
{
	uint64_t k = atomic_fetch_add_explicit(&prof_samples_taken, 1, memory_order_relaxed) + 1;
	if (k & (k - 1))
		return;
	os_plt_redirect("malloc", (void *)nh_malloc, api_malloc_prof_entry());
}

void *prof_alloc(size_t n, size_t counted, size_t align, bool zero, uintptr_t ret)
{
	uintptr_t pcs[PPROF_MAX_DEPTH];
	unsigned npc = walk_stack(ret, pcs);
	redirect_malloc_slots();
	struct mspan *s = alloc_large_span(n ? n : 1, align, false);
	if (!s)
		return NULL;
	void *p = (void *)s->base;
	if (zero && s->needzero) /* the usable size, as calloc's others */
		memset(p, 0, (size_t)s->npages << NH_PAGE_SHIFT);
	double w = weight(counted ? counted : 1);
	mutex_lock(&prof_lock);
	struct bucket *b = bucket_of(pcs, npc, s->node);
	if (b) {
		b->alloc_objects += w;
		b->alloc_bytes += w * (double)n;
	}
	mutex_unlock(&prof_lock);
	s->prof = b;
	s->prof_size = n;
	s->prof_weight = w;
	return p;
}

void prof_free(struct mspan *s)
{
	struct bucket *b = s->prof;
	size_t n = s->prof_size;
	s->prof = NULL;
	double w = s->prof_weight;
	mutex_lock(&prof_lock);
	b->free_objects += w;
	b->free_bytes += w * (double)n;
	mutex_unlock(&prof_lock);
}

/* ---- initialisation ------------------------------------------------------------------------------- */

/* The executable segment of the object holding this code, unless that
 * object is the program itself (numaheap linked statically). */
static void own_text_range(void)
{
	Dl_info info;
	if (!dladdr((void *)own_text_range, &info) || !info.dli_fbase)
		return;
	const char *exe = (const char *)getauxval(AT_EXECFN);
	if (exe && info.dli_fname && !strcmp(exe, info.dli_fname))
		return;
	const ElfW(Ehdr) *eh = info.dli_fbase;
	const ElfW(Phdr) *ph = (const void *)((const char *)eh + eh->e_phoff);
	for (unsigned i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X)) {
			own_lo = (uintptr_t)eh + ph[i].p_vaddr;
			own_hi = own_lo + ph[i].p_memsz;
		}
}

bool prof_init(void)
{
	mutex_init(&prof_lock, LOCK_RANK_PROF);
	if (!NH_OPTION(PROF))
		return false;
	if (nh_hardened) {
		nh_warn("NUMAHEAP_PROF=1: not available in hardened mode; profiling off");
		return false;
	}
	prof_rate = (double)NH_OPTION(PROF_RATE);
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++)
		class_weight[c] = weight_of(nh_class_to_size[c]);
	if (!nh_opt.prof_file[0])
		memcpy(nh_opt.prof_file, "numaheap.%p.pb.gz", sizeof "numaheap.%p.pb.gz");
	/* Whole steps, so that bucket_room never reaches past the reservation. */
	buckets = os_reserve(((size_t)PROF_MAX_BUCKETS * sizeof(struct bucket) + PROF_COMMIT_STEP - 1) &
			     ~(PROF_COMMIT_STEP - 1));
	bucket_slots = os_map((size_t)PROF_BUCKETS * sizeof(uint32_t), 0);
	if (!buckets || !bucket_slots) {
		nh_warn("NUMAHEAP_PROF=1: cannot map the profile's tables; profiling off");
		return false;
	}
	own_text_range();
	nh_unwind_init(); /* without it, every walk is libgcc's */
	prof_start_ns = prof_last_dump_ns = os_nanotime();
	nh_prof_on = true;
	return true;
}

/* ---- dumps ------------------------------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* The buckets as samples, copied under the lock into mapped memory. */
static struct pprof_sample *snapshot(size_t *n, size_t *bytes)
{
	mutex_lock(&prof_lock);
	size_t cap = nbuckets ? nbuckets : 1;
	*bytes = cap * (sizeof(struct pprof_sample) + PPROF_MAX_DEPTH * sizeof(uintptr_t));
	struct pprof_sample *s = os_map((*bytes + 4095) & ~(size_t)4095, 0);
	*n = 0;
	if (s) {
		uintptr_t *pcs = (uintptr_t *)(s + cap);
		for (size_t i = 0; i < nbuckets && *n < cap; i++) {
			const struct bucket *b = &buckets[i];
			struct pprof_sample *o = &s[(*n)++];
			memcpy(pcs, b->pcs, b->npc * sizeof *pcs);
			o->pcs = pcs;
			o->npc = b->npc;
			o->node = b->node;
			o->v[0] = (int64_t)(b->alloc_objects + 0.5);
			o->v[1] = (int64_t)(b->alloc_bytes + 0.5);
			o->v[2] = (int64_t)(b->alloc_objects - b->free_objects + 0.5);
			o->v[3] = (int64_t)(b->alloc_bytes - b->free_bytes + 0.5);
			pcs += PPROF_MAX_DEPTH;
		}
	}
	mutex_unlock(&prof_lock);
	return s;
}

int prof_dump(const char *path)
{
	if (!nh_prof_on) {
		errno = EINVAL;
		return -1;
	}
	char file[NH_PATH_MAX];
	nh_path_expand(path ? path : nh_opt.prof_file, file, sizeof file);
	size_t n, bytes;
	struct pprof_sample *s = snapshot(&n, &bytes);
	if (!s) {
		errno = ENOMEM;
		return -1;
	}
	int fd = os_open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r = -1;
	if (fd >= 0) {
		uint64_t now = os_nanotime();
		r = ends_with(file, ".heap") ? pprof_write_text(fd, s, n, (uint64_t)prof_rate)
					     : pprof_write(fd, s, n, (uint64_t)prof_rate, os_realtime_ns(),
							   now - prof_start_ns);
		if (os_close(fd) != 0)
			r = -1;
	}
	os_unmap(s, (bytes + 4095) & ~(size_t)4095);
	return r;
}

bool prof_interval_due(uint64_t now_ns)
{
	uint64_t every = (uint64_t)NH_OPTION(PROF_INTERVAL);
	if (!nh_prof_on || !every || now_ns - prof_last_dump_ns < every)
		return false;
	prof_last_dump_ns = now_ns;
	return true;
}

void prof_fork_lock(bool lock)
{
	if (lock)
		mutex_lock(&prof_lock);
	else
		mutex_unlock(&prof_lock);
}

void prof_fork_child(void) { mutex_reset(&prof_lock); }
