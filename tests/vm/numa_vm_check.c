/*
 * numa_vm_check.c — does numaheap put memory where it says, on a real
 * multi-node kernel? Run inside a QEMU VM with several NUMA nodes
 * (tools/numa-vm; see tests/vm/CMakeLists.txt). Every placement claim is
 * checked against what the kernel reports: move_pages(2) with a NULL node
 * list on every 4 KiB page of the objects, and /proc/self/pagemap +
 * /proc/kpageflags for huge pages.
 *
 *   numa_vm_check MODE...      MODE: local | interleave
 *
 * Each MODE runs in a child process (this program again) started with
 * NUMAHEAP_NUMA=MODE and NUMAHEAP_STATS=json into a file, so numaheap
 * initialises under that policy. Checks, in "local" mode:
 *
 *   thp        a steady heap of 200 MiB of 64-256 B objects on one node is
 *              >= 90% backed by transparent huge pages (per page, from
 *              kpageflags; and numaheap's huge_page_bytes vs the heap's
 *              resident bytes)
 *   placement  a thread pinned to each node gets >= 99% of the pages of its
 *              small, medium and large objects on that node
 *   stats      NUMAHEAP_STATS resident_on_node equals what move_pages says
 *              for every page of the heap's mappings (in process, and in
 *              the JSON printed at exit)
 *   migrate    a thread frees on node k, moves to node k+1 with
 *              sched_setaffinity and allocates: node k+1 memory
 *   remote     objects of node L freed by a thread on node 0 go home: node 0
 *              does not hand them out, node L reuses them, remote_frees
 *              counts them
 *   onnode     numaheap_malloc_onnode(size, n) lands on node n, for every n,
 *              small and large, from threads on different nodes
 *   malloc_info objects allocated by a thread on the last node are counted
 *              under that node's <heap>, not the others'
 *   prefault   a heap on the last node released whole and grown back: the
 *              background thread, pinned to another node, faults the
 *              released memory in ahead (prefaulted_bytes grows), and the
 *              objects then carved from it are on the heap's node
 *
 * and in "interleave" mode: pages of small and large objects allocated by
 * a thread on node 0 are spread over all nodes (each node >= 3/4 of a fair
 * share), and the statistics agree with move_pages; with
 * NUMAHEAP_THP_ADAPT=base, also after the background thread collapsed
 * the heap into huge pages (>= 80% of the small objects' pages huge).
 *
 * Prints one "ok"/"FAIL" line per check and "N passed, N failed" at the end;
 * exits 0 only if every check passed.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "numaheap.h"

/* numaheap's address space (src/internal.h): node n's heap is the 2 TiB
 * slice starting at HEAP_BASE + n * 2 TiB. Checked against
 * numaheap_node_of() at start-up. */
#define HEAP_BASE ((uintptr_t)0x100000000000ULL)
#define NODE_SHIFT 41
#define MAXN 16
#define HEAP_END (HEAP_BASE + ((uintptr_t)MAXN << NODE_SHIFT))

#define PG 4096UL
#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#include "vm_check.h"

/* ---- running on a node ----------------------------------------------------------------------- */

struct job {
	int node;
	void (*fn)(void *);
	void *arg;
};

static void *job_main(void *p)
{
	struct job *j = p;
	if (pin_self(j->node))
		j->fn(j->arg);
	return NULL;
}

/* Run fn(arg) on a new thread pinned to node n; wait for it. */
static void on_node(int n, void (*fn)(void *), void *arg)
{
	struct job j = {n, fn, arg};
	pthread_t t;
	int e = pthread_create(&t, NULL, job_main, &j);
	if (e)
		die("pthread_create: %s", strerror(e));
	pthread_join(t, NULL);
}

/* ---- batches of objects ------------------------------------------------------------------- */

struct batch {
	void **p;
	size_t *sz;
	size_t n, cap;
};

static void batch_init(struct batch *b, size_t cap)
{
	b->p = xmap(cap * sizeof *b->p);
	b->sz = xmap(cap * sizeof *b->sz);
	b->n = 0;
	b->cap = cap;
}

static void batch_destroy(struct batch *b)
{
	xunmap(b->p, b->cap * sizeof *b->p);
	xunmap(b->sz, b->cap * sizeof *b->sz);
	memset(b, 0, sizeof *b);
}

static uint8_t tag_of(const void *p, size_t size) { return (uint8_t)(((uintptr_t)p >> 4) * 31 + size); }

/* Store p (filled with its tag: every page is touched) in the batch. */
static void batch_put(struct batch *b, void *p, size_t size)
{
	if (b->n == b->cap)
		die("batch full (%zu)", b->cap);
	memset(p, tag_of(p, size), size);
	b->p[b->n] = p;
	b->sz[b->n] = size;
	b->n++;
}

/* count objects of `size` bytes: malloc, or numaheap_malloc_onnode when node >= 0 */
static bool batch_alloc(struct batch *b, size_t size, size_t count, int node)
{
	for (size_t i = 0; i < count; i++) {
		void *p = node < 0 ? malloc(size) : numaheap_malloc_onnode(size, node);
		if (!p) {
			check(false, "%s(%zu%s) returned NULL (errno %d) after %zu objects",
			      node < 0 ? "malloc" : "numaheap_malloc_onnode", size, node < 0 ? "" : ", node", errno, i);
			return false;
		}
		batch_put(b, p, size);
	}
	return true;
}

/* Free every object, checking its contents first. Returns the damaged count. */
static size_t batch_release(struct batch *b)
{
	size_t bad = 0;
	for (size_t i = 0; i < b->n; i++) {
		uint8_t *p = b->p[i], t = tag_of(p, b->sz[i]);
		if (p[0] != t || p[b->sz[i] / 2] != t || p[b->sz[i] - 1] != t)
			bad++;
		free(p);
	}
	b->n = 0;
	return bad;
}

static int cmp_uptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* The distinct 4 KiB pages covered by objects [from, to) of a batch, sorted. */
struct pages {
	uintptr_t *v;
	size_t n, cap;
};

static void pages_of(const struct batch *b, size_t from, size_t to, struct pages *out)
{
	size_t cap = 1024;
	for (size_t i = from; i < to; i++)
		cap += b->sz[i] / PG + 2;
	out->v = xmap(cap * sizeof *out->v);
	out->cap = cap;
	size_t n = 0;
	for (size_t i = from; i < to; i++) {
		uintptr_t a = (uintptr_t)b->p[i] & ~(PG - 1), e = (uintptr_t)b->p[i] + b->sz[i];
		for (; a < e; a += PG)
			if (n == 0 || out->v[n - 1] != a)
				out->v[n++] = a;
	}
	qsort(out->v, n, sizeof *out->v, cmp_uptr);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || out->v[k - 1] != out->v[i])
			out->v[k++] = out->v[i];
	out->n = k;
}

static void pages_destroy(struct pages *p) { xunmap(p->v, p->cap * sizeof *p->v); }

/*
 * Where the kernel has the pages: move_pages(2) with nodes == NULL. A page
 * reported with a negative status is counted as on no node: -ENOENT (not
 * present), -EFAULT (zero page, or a page the kernel's automatic NUMA
 * balancing made PROT_NONE to sample accesses; balancing does that only in
 * mappings with the default memory policy, never in numaheap's mbind'ed
 * arenas, so it shows up only with NUMAHEAP_NUMA=off).
 */
struct tally {
	size_t total;
	size_t node[MAXN];
	size_t absent; /* negative status: not present (-ENOENT), zero page (-EFAULT)... */
	int first_err;
};

static void tally_pages(const uintptr_t *pg, size_t n, struct tally *t)
{
	memset(t, 0, sizeof *t);
	enum { CHUNK = 8192 };
	static __thread void *addrs[CHUNK];
	static __thread int status[CHUNK];
	for (size_t i = 0; i < n; i += CHUNK) {
		size_t k = n - i < CHUNK ? n - i : CHUNK;
		for (size_t j = 0; j < k; j++) {
			addrs[j] = (void *)pg[i + j];
			status[j] = -12345;
		}
		if (move_pages(0, k, addrs, NULL, status, 0) != 0)
			die("move_pages(%zu pages): %s", k, strerror(errno));
		for (size_t j = 0; j < k; j++) {
			t->total++;
			if (status[j] >= 0 && status[j] < MAXN)
				t->node[status[j]]++;
			else {
				t->absent++;
				if (!t->first_err)
					t->first_err = status[j];
			}
		}
	}
}

static const char *tally_str(const struct tally *t, char *buf, size_t cap)
{
	int len = snprintf(buf, cap, "%zu pages:", t->total);
	for (int n = 0; n < nnodes && len < (int)cap; n++)
		len += snprintf(buf + len, cap - (size_t)len, " node%d %zu", n, t->node[n]);
	if (t->absent && len < (int)cap)
		snprintf(buf + len, cap - (size_t)len, ", %zu with no node (first status %d)", t->absent, t->first_err);
	return buf;
}

/* Check that >= 99% of the pages of objects [from, to) are on node n and
 * that numaheap_node_of() names node n for each of them. */
static bool expect_on_node(const char *what, const struct batch *b, size_t from, size_t to, int n)
{
	size_t wrong_heap = 0;
	int seen = -2;
	for (size_t i = from; i < to; i++) {
		int h = numaheap_node_of(b->p[i]);
		if (h != n) {
			wrong_heap++;
			seen = h;
		}
	}
	struct pages pg;
	pages_of(b, from, to, &pg);
	struct tally t;
	tally_pages(pg.v, pg.n, &t);
	pages_destroy(&pg);
	char buf[512];
	bool ok = t.total > 0 && t.node[n] * 100 >= t.total * 99;
	check(ok, "%s on node %d: %.2f%% (%s)", what, n, t.total ? 100.0 * t.node[n] / t.total : 0.0,
	      tally_str(&t, buf, sizeof buf));
	check(wrong_heap == 0, "%s: numaheap_node_of() is %d for all %zu objects%s", what, n, to - from,
	      wrong_heap ? "" : "");
	if (wrong_heap)
		note("  %zu objects report another heap (e.g. %d)", wrong_heap, seen);
	return ok && !wrong_heap;
}

/* ---- statistics ----------------------------------------------------------------------------- */


/* The object of heap node h in the "nodes" array: [*begin, *end). */
static bool stats_node_obj(const char *json, int h, const char **begin, const char **end)
{
	char key[32];
	snprintf(key, sizeof key, "{\"node\":%d,", h);
	const char *b = strstr(json, key);
	if (!b)
		return false;
	const char *e = strstr(b + 1, "{\"node\":");
	const char *c = strstr(b, "\"classes\"");
	if (!e || (c && c < e))
		e = c ? c : b + strlen(b);
	*begin = b;
	*end = e;
	return true;
}

static bool stats_u64(const char *json, int h, const char *field, uint64_t *out)
{
	const char *b, *e;
	if (!stats_node_obj(json, h, &b, &e))
		return false;
	char key[64];
	snprintf(key, sizeof key, "\"%s\":", field);
	const char *f = strstr(b, key);
	if (!f || f >= e)
		return false;
	*out = strtoull(f + strlen(key), NULL, 10);
	return true;
}

/* resident_on_node of heap h: bytes per memory node. */
static bool stats_placed(const char *json, int h, uint64_t placed[MAXN])
{
	memset(placed, 0, MAXN * sizeof *placed);
	const char *b, *e;
	if (!stats_node_obj(json, h, &b, &e))
		return false;
	const char *f = strstr(b, "\"resident_on_node\":{");
	if (!f || f >= e)
		return false;
	f += strlen("\"resident_on_node\":{");
	while (*f == '"') {
		char *q;
		long m = strtol(f + 1, &q, 10);
		if (*q != '"' || q[1] != ':')
			return false;
		uint64_t v = strtoull(q + 2, &q, 10);
		if (m >= 0 && m < MAXN)
			placed[m] = v;
		f = q;
		if (*f == ',')
			f++;
	}
	return *f == '}';
}

static bool stats_has_heap(const char *json, int h)
{
	const char *b, *e;
	return stats_node_obj(json, h, &b, &e);
}

/*
 * What move_pages says about every page of the heap's mappings: bytes of
 * heap h (by the address slice a mapping starts in, as the statistics
 * count) resident on node m. Reads /proc/self/maps with read(2) into
 * mmap'd memory, so the scan itself does not touch the heap.
 */
struct scan {
	uint64_t bytes[MAXN][MAXN];
	uint64_t mapped[MAXN];
};

static void scan_heap(struct scan *s)
{
	memset(s, 0, sizeof *s);
	size_t cap = 4 << 20, len = 0;
	char *buf = xmap(cap);
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open /proc/self/maps: %s", strerror(errno));
	for (;;) {
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == cap - 1)
			die("/proc/self/maps is larger than %zu bytes", cap);
	}
	close(fd);
	buf[len] = 0;
	size_t pcap = 1 << 16;
	uintptr_t *pg = xmap(pcap * sizeof *pg);
	uintptr_t seen = 0;
	for (char *line = buf; *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		uintptr_t lo = 0, hi = 0;
		bool got = sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2;
		/* The kernel gives the file in several reads, each taken up at
		 * the end of the last mapping given: one that grew meanwhile
		 * (the background thread making arena pages ready) comes
		 * again from its start. Lines are in address order; only what
		 * lies past the last one counts. */
		if (got && lo < seen)
			lo = seen;
		if (got && hi > seen)
			seen = hi;
		if (got && lo < hi && lo >= HEAP_BASE && lo < HEAP_END) {
			int h = (int)((lo - HEAP_BASE) >> NODE_SHIFT);
			s->mapped[h] += hi - lo;
			if (hi - lo > ((uintptr_t)64 << 30))
				die("a %zu GiB heap mapping at %#lx: too large to scan page by page",
				    (size_t)((hi - lo) >> 30), (unsigned long)lo);
			for (uintptr_t a = lo; a < hi;) {
				size_t k = 0;
				for (; a < hi && k < pcap; a += PG)
					pg[k++] = a;
				struct tally t;
				tally_pages(pg, k, &t);
				for (int m = 0; m < MAXN; m++)
					s->bytes[h][m] += (uint64_t)t.node[m] * PG;
			}
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	xunmap(pg, pcap * sizeof *pg);
	xunmap(buf, cap);
}

static bool scan_equal(const struct scan *a, const struct scan *b)
{
	return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

static void print_matrix(const char *label, uint64_t (*get)(const void *, int, int), const void *src)
{
	for (int h = 0; h < MAXN; h++) {
		bool any = false;
		for (int m = 0; m < MAXN; m++)
			any |= get(src, h, m) != 0;
		if (!any)
			continue;
		char line[512];
		int len = snprintf(line, sizeof line, "  %s heap %d:", label, h);
		for (int m = 0; m < nnodes && len < (int)sizeof line; m++)
			len += snprintf(line + len, sizeof line - (size_t)len, " node%d=%" PRIu64 " KiB", m,
					get(src, h, m) >> 10);
		note("%s", line);
	}
}

static uint64_t get_scan(const void *s, int h, int m) { return ((const struct scan *)s)->bytes[h][m]; }

struct placed_all {
	uint64_t b[MAXN][MAXN];
};
static uint64_t get_placed(const void *s, int h, int m) { return ((const struct placed_all *)s)->b[h][m]; }

static bool placed_from_json(const char *json, struct placed_all *pa)
{
	memset(pa, 0, sizeof *pa);
	bool any = false;
	for (int h = 0; h < MAXN; h++)
		if (stats_has_heap(json, h)) {
			if (!stats_placed(json, h, pa->b[h]))
				return false;
			any = true;
		}
	return any;
}

/* The in-process check: numaheap_stats_json's resident_on_node == move_pages. */
static struct scan last_scan;
static bool have_last_scan;

static void check_stats_agree(const char *when)
{
	struct scan s1, s2;
	struct placed_all pa;
	bool parsed = false, stable = false, equal = false;
	/* The background thread may be releasing pages, or collapsing a heap
	 * grown on base pages (NUMAHEAP_THP_ADAPT=base), which under TCG on a
	 * busy host goes on for seconds: a comparison counts only when nothing
	 * moved during it, and that is waited for, up to 30 s. */
	int tries = 0;
	double until = now() + 30;
	do {
		if (tries++)
			usleep(250 * 1000);
		scan_heap(&s1);
		parsed = placed_from_json(stats_now(), &pa);
		scan_heap(&s2);
		stable = scan_equal(&s1, &s2);
		equal = parsed && memcmp(pa.b, s1.bytes, sizeof pa.b) == 0;
	} while (parsed && !(stable && equal) && now() < until);
	uint64_t total = 0;
	for (int h = 0; h < MAXN; h++)
		for (int m = 0; m < MAXN; m++)
			total += s1.bytes[h][m];
	check(parsed, "%s: statistics have nodes[].resident_on_node", when);
	check(parsed && stable && equal,
	      "%s: resident_on_node equals move_pages over every heap page (%" PRIu64 " KiB resident, %d tries)",
	      when, total >> 10, tries);
	if (!(parsed && stable && equal)) {
		print_matrix("move_pages", get_scan, &s1);
		if (!stable)
			print_matrix("move_pages again", get_scan, &s2);
		print_matrix("statistics", get_placed, &pa);
	}
	last_scan = s1;
	have_last_scan = true;
}

/* ---- huge pages -------------------------------------------------------------------------------- */

#define KPF_THP 22
#define KPF_ZERO_PAGE 24 /* the huge zero page is "THP" too: not counted */

/* Of the pages pg[0..n), how many are backed by a transparent huge page
 * (pagemap -> PFN -> kpageflags). Returns false if the files cannot be read. */
static bool count_thp(const uintptr_t *pg, size_t n, size_t *thp, size_t *present)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int kf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (pm < 0 || kf < 0) {
		check(false, "open /proc/self/pagemap or /proc/kpageflags: %s", strerror(errno));
		if (pm >= 0)
			close(pm);
		if (kf >= 0)
			close(kf);
		return false;
	}
	*thp = *present = 0;
	bool pfn_seen = false;
	for (size_t i = 0; i < n; i++) {
		uint64_t e = 0, flags = 0;
		if (pread(pm, &e, 8, (off_t)(pg[i] / PG * 8)) != 8)
			continue;
		if (!(e >> 63 & 1))
			continue;
		(*present)++;
		uint64_t pfn = e & ((1ULL << 55) - 1);
		if (!pfn)
			continue;
		pfn_seen = true;
		if (pread(kf, &flags, 8, (off_t)(pfn * 8)) == 8 && (flags >> KPF_THP & 1) && !(flags >> KPF_ZERO_PAGE & 1))
			(*thp)++;
	}
	close(pm);
	close(kf);
	if (!pfn_seen && *present) {
		check(false, "pagemap shows no page frame numbers (needs CAP_SYS_ADMIN)");
		return false;
	}
	return true;
}

/* NUMAHEAP_THP_ADAPT=base: wait until the background thread has collapsed
 * the heap grown on base pages (the count of collapses nonzero and
 * unchanged for 2 s; at most 120 s). Returns that count. */
static uint64_t wait_base_collapses(void)
{
	uint64_t seen = 0, n = 0;
	double t1 = now(), still_since = now();
	while (now() - t1 < 120) {
		usleep(250 * 1000);
		n = stats_counter("\"base_collapses\":");
		if (n != seen) {
			seen = n;
			still_since = now();
		} else if (n > 0 && now() - still_since >= 2) {
			break;
		}
	}
	return n;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

struct thp_arg {
	int node;
};

static void thp_job(void *argp)
{
	struct thp_arg *a = argp;
	const size_t target = 200 * MiB;
	struct batch b;
	batch_init(&b, target / 64 + 1);
	size_t bytes = 0;
	double t0 = now();
	while (bytes < target) {
		size_t sz = 64 + (rnd() % 193); /* 64..256 */
		void *p = malloc(sz);
		if (!p) {
			check(false, "thp: malloc(%zu) failed after %zu MiB", sz, bytes >> 20);
			batch_release(&b);
			batch_destroy(&b);
			return;
		}
		batch_put(&b, p, sz);
		bytes += sz;
	}
	/* steady state: replace a quarter of the objects, twice */
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < b.n; i++)
			if (rnd() % 4 == 0) {
				uint8_t *p = b.p[i];
				if (p[0] != tag_of(p, b.sz[i]))
					check(false, "thp: object %p was changed while in use", (void *)p);
				free(p);
				size_t sz = 64 + (rnd() % 193);
				p = malloc(sz);
				if (!p)
					die("thp: malloc(%zu) failed", sz);
				memset(p, tag_of(p, sz), sz);
				b.p[i] = p;
				b.sz[i] = sz;
			}
	note("thp: %zu objects, %zu MiB, allocated and churned in %.1f s", b.n, bytes >> 20, now() - t0);

	/* NUMAHEAP_THP_ADAPT=base (vm.base2): the heap grew on base pages, and
	 * the background thread collapses it once growth stops; the counts
	 * below are then taken after it is done (collapses unchanged for 2 s). */
	const char *adapt = getenv("NUMAHEAP_THP_ADAPT");
	if (adapt && !strcmp(adapt, "base")) {
		double t1 = now();
		uint64_t n = wait_base_collapses();
		check(n >= 50, "thp: the heap grown on base pages was collapsed once it stopped growing: %" PRIu64
		      " huge pages in %.1f s", n, now() - t1);
	}

	struct pages pg;
	pages_of(&b, 0, b.n, &pg);
	size_t thp = 0, present = 0;
	if (count_thp(pg.v, pg.n, &thp, &present))
		check(pg.n > 0 && thp * 100 >= pg.n * 90,
		      "thp: %.1f%% of the %zu pages holding %zu MiB of 64-256 B objects on node %d are huge pages "
		      "(kpageflags THP: %zu, present %zu)",
		      pg.n ? 100.0 * thp / pg.n : 0.0, pg.n, bytes >> 20, a->node, thp, present);
	pages_destroy(&pg);

	expect_on_node("thp: 200 MiB of small objects", &b, 0, b.n, a->node);

	const char *js = stats_now();
	uint64_t huge = 0, placed[MAXN] = {0}, resident = 0;
	bool ok = stats_u64(js, a->node, "huge_page_bytes", &huge) && stats_placed(js, a->node, placed);
	for (int m = 0; m < MAXN; m++)
		resident += placed[m];
	check(ok && resident > 0 && huge * 100 >= resident * 90,
	      "thp: statistics: node %d huge_page_bytes %" PRIu64 " MiB = %.1f%% of its resident heap (%" PRIu64
	      " MiB)",
	      a->node, huge >> 20, resident ? 100.0 * huge / resident : 0.0, resident >> 20);

	size_t nobj = b.n, bad = batch_release(&b);
	check(bad == 0, "thp: the %zu objects intact when freed (%zu damaged)", nobj, bad);
	batch_destroy(&b);
}

/* ---- placement ----------------------------------------------------------------------------- */

struct sizes {
	const char *name;
	size_t size, count;
};

/* small, medium and large: ~2.5 MiB, ~3.5 MiB and 27 MiB per node */
static const struct sizes SMALL[] = {{"small 16 B", 16, 16384}, {"small 64 B", 64, 16384}, {"small 256 B", 256, 4096}, {"small 1 KiB", 1024, 512}};
static const struct sizes MEDIUM[] = {{"medium 8 KiB", 8 * KiB, 64}, {"medium 16 KiB", 16 * KiB, 64}, {"medium 32 KiB", 32 * KiB, 64}};
static const struct sizes LARGE[] = {{"large 1 MiB", 1 * MiB, 3}, {"large 4 MiB", 4 * MiB, 2}, {"large 16 MiB", 16 * MiB, 1}};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct placement_arg {
	int node;
	struct batch b;
};

static bool alloc_group(struct batch *b, const struct sizes *s, size_t k, int onnode, size_t *from)
{
	*from = b->n;
	for (size_t i = 0; i < k; i++)
		if (!batch_alloc(b, s[i].size, s[i].count, onnode))
			return false;
	return true;
}

static void placement_job(void *argp)
{
	struct placement_arg *a = argp;
	const struct {
		const char *name;
		const struct sizes *s;
		size_t k;
	} groups[] = {{"small", SMALL, COUNT(SMALL)}, {"medium", MEDIUM, COUNT(MEDIUM)}, {"large", LARGE, COUNT(LARGE)}};
	for (size_t g = 0; g < COUNT(groups); g++) {
		size_t from;
		if (!alloc_group(&a->b, groups[g].s, groups[g].k, -1, &from))
			return;
		char what[96];
		snprintf(what, sizeof what, "placement: %s objects of a thread on node %d", groups[g].name, a->node);
		expect_on_node(what, &a->b, from, a->b.n, a->node);
	}
}

static void check_placement(void)
{
	static struct placement_arg args[MAXN];
	for (int n = 0; n < nnodes; n++) {
		args[n].node = n;
		batch_init(&args[n].b, 64 * 1024);
		on_node(n, placement_job, &args[n]);
	}
	/* With every node's objects alive: do the statistics agree? */
	check_stats_agree("stats with objects on every node");
	/* And nothing moved while the other nodes' threads worked. */
	for (int n = 0; n < nnodes; n++) {
		char what[96];
		snprintf(what, sizeof what, "placement: all objects of node %d, after the other nodes allocated", n);
		expect_on_node(what, &args[n].b, 0, args[n].b.n, n);
		size_t bad = batch_release(&args[n].b);
		check(bad == 0, "placement: node %d's objects intact when freed (%zu damaged)", n, bad);
		batch_destroy(&args[n].b);
	}
}

/* ---- migration ------------------------------------------------------------------------------ */

struct migrate_arg {
	int from, to;
};

static void migrate_job(void *argp)
{
	struct migrate_arg *a = argp;
	struct batch b;
	batch_init(&b, 64 * 1024);
	size_t f1, f2, f3;
	if (!alloc_group(&b, SMALL, COUNT(SMALL), -1, &f1) || !alloc_group(&b, MEDIUM, COUNT(MEDIUM), -1, &f2) ||
	    !alloc_group(&b, LARGE, COUNT(LARGE), -1, &f3))
		return;
	expect_on_node("migrate: objects before the move", &b, 0, b.n, a->from);
	/* remember what was freed on the old node */
	size_t nold = b.n;
	uintptr_t *old = xmap(nold * sizeof *old);
	for (size_t i = 0; i < nold; i++)
		old[i] = (uintptr_t)b.p[i];
	qsort(old, nold, sizeof *old, cmp_uptr);
	size_t bad = batch_release(&b);
	check(bad == 0, "migrate: objects intact when freed on node %d", a->from);

	if (!pin_self(a->to))
		return;
	check(true, "migrate: thread moved from node %d to node %d (now on CPU %d)", a->from, a->to, sched_getcpu());
	if (!alloc_group(&b, SMALL, COUNT(SMALL), -1, &f1) || !alloc_group(&b, MEDIUM, COUNT(MEDIUM), -1, &f2) ||
	    !alloc_group(&b, LARGE, COUNT(LARGE), -1, &f3))
		return;
	char what[128];
	snprintf(what, sizeof what, "migrate: small objects after moving %d -> %d", a->from, a->to);
	expect_on_node(what, &b, f1, f2, a->to);
	snprintf(what, sizeof what, "migrate: medium objects after moving %d -> %d", a->from, a->to);
	expect_on_node(what, &b, f2, f3, a->to);
	snprintf(what, sizeof what, "migrate: large objects after moving %d -> %d", a->from, a->to);
	expect_on_node(what, &b, f3, b.n, a->to);
	size_t reused = 0;
	for (size_t i = 0; i < b.n; i++) {
		uintptr_t p = (uintptr_t)b.p[i];
		if (bsearch(&p, old, nold, sizeof *old, cmp_uptr))
			reused++;
	}
	check(reused == 0, "migrate: none of the %zu objects freed on node %d came back on node %d (%zu did)", nold,
	      a->from, a->to, reused);
	xunmap(old, nold * sizeof *old);
	bad = batch_release(&b);
	check(bad == 0, "migrate: objects intact when freed on node %d", a->to);
	batch_destroy(&b);
}

static void check_migrate(void)
{
	for (int n = 0; n + 1 < nnodes; n++) {
		struct migrate_arg a = {n, n + 1};
		on_node(n, migrate_job, &a);
	}
}

/* ---- remote frees ----------------------------------------------------------------------------- */

static const struct sizes REMOTE[] = {{"64 B", 64, 8192}, {"256 B", 256, 2048}, {"16 KiB", 16 * KiB, 64}, {"2 MiB", 2 * MiB, 4}};

struct remote_arg {
	struct batch b;
	int node;
	uintptr_t *freed; /* sorted addresses of the owner's objects, freed remotely */
	size_t nfreed, nsmall_freed;
};

static void remote_alloc_job(void *argp)
{
	struct remote_arg *a = argp;
	size_t from;
	if (alloc_group(&a->b, REMOTE, COUNT(REMOTE), -1, &from)) {
		char what[96];
		snprintf(what, sizeof what, "remote: objects of a thread on node %d", a->node);
		expect_on_node(what, &a->b, from, a->b.n, a->node);
	}
}

static void remote_free_job(void *argp)
{
	struct remote_arg *a = argp;
	size_t bad = batch_release(&a->b);
	check(bad == 0, "remote: objects intact when freed on node %d", a->node);
}

static size_t count_in(const struct batch *b, size_t from, size_t to, const uintptr_t *set, size_t n)
{
	size_t k = 0;
	for (size_t i = from; i < to; i++) {
		uintptr_t p = (uintptr_t)b->p[i];
		if (bsearch(&p, set, n, sizeof *set, cmp_uptr))
			k++;
	}
	return k;
}

static void check_remote(void)
{
	const int owner = nnodes - 1, freer = 0;
	struct remote_arg own = {.node = owner}, other = {.node = freer};
	batch_init(&own.b, 64 * 1024);
	batch_init(&other.b, 64 * 1024);

	on_node(owner, remote_alloc_job, &own);
	own.nfreed = own.b.n;
	own.freed = xmap(own.nfreed * sizeof *own.freed);
	for (size_t i = 0; i < own.b.n; i++) {
		own.freed[i] = (uintptr_t)own.b.p[i];
		if (own.b.sz[i] <= 32 * KiB)
			own.nsmall_freed++;
	}
	qsort(own.freed, own.nfreed, sizeof *own.freed, cmp_uptr);

	uint64_t rf0 = 0, rf1 = 0;
	bool have = stats_u64(stats_now(), owner, "remote_frees", &rf0);
	/* the owner's objects are freed by a thread on another node */
	struct remote_arg freeing = own;
	freeing.node = freer;
	on_node(freer, remote_free_job, &freeing);
	own.b.n = 0;
	have = have && stats_u64(stats_now(), owner, "remote_frees", &rf1);
	/* up to one remote buffer (64 objects) may still wait on the freeing CPU */
	check(have && rf1 - rf0 + 64 >= own.nsmall_freed,
	      "remote: node %d's remote_frees grew by %" PRIu64 " for %zu small objects freed on node %d", owner,
	      rf1 - rf0, own.nsmall_freed, freer);

	/* the freeing node allocates the same sizes: none of the owner's objects */
	on_node(freer, remote_alloc_job, &other);
	size_t stolen = count_in(&other.b, 0, other.b.n, own.freed, own.nfreed);
	check(stolen == 0, "remote: node %d handed out none of the %zu objects it freed for node %d (%zu)", freer,
	      own.nfreed, owner, stolen);

	/* the owner allocates again: its own memory, and the freed objects back */
	on_node(owner, remote_alloc_job, &own);
	size_t back = count_in(&own.b, 0, own.b.n, own.freed, own.nfreed);
	check(back > 0, "remote: node %d got %zu of its %zu remotely freed objects back", owner, back, own.nfreed);

	uint64_t rf2 = 0;
	if (stats_u64(stats_now(), owner, "remote_frees", &rf2))
		note("remote: node %d remote_frees = %" PRIu64, owner, rf2);
	check(rf2 > 0, "remote: statistics report remote_frees > 0 for node %d (%" PRIu64 ")", owner, rf2);

	size_t bad = batch_release(&own.b) + batch_release(&other.b);
	check(bad == 0, "remote: objects intact at the end (%zu damaged)", bad);
	xunmap(own.freed, own.nfreed * sizeof *own.freed);
	batch_destroy(&own.b);
	batch_destroy(&other.b);
}

/* ---- numaheap_malloc_onnode ------------------------------------------------------------------- */

/* ---- pre-faulting: released memory faulted in by the background thread ----------------- */

/* Pin numaheap's background thread (comm "numaheap-bg") to node n's CPUs.
 * The task directory is read with getdents64: no allocation (opendir
 * would malloc, and this file keeps its own bookkeeping off the heap). */
static bool pin_bg_thread(int n)
{
	char path[64], buf[4096];
	int found = 0;
	snprintf(path, sizeof path, "/proc/%d/task", (int)getpid());
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return false;
	long nread;
	while ((nread = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
		for (long off = 0; off < nread;) {
			struct dirent64_raw {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *de = (struct dirent64_raw *)(buf + off);
			off += de->reclen;
			if (de->name[0] < '0' || de->name[0] > '9')
				continue;
			char cpath[96], comm[32];
			snprintf(cpath, sizeof cpath, "%s/%s/comm", path, de->name);
			int cfd = open(cpath, O_RDONLY | O_CLOEXEC);
			if (cfd < 0)
				continue;
			ssize_t k = read(cfd, comm, sizeof comm - 1);
			close(cfd);
			if (k <= 0)
				continue;
			comm[k] = 0;
			if (!strncmp(comm, "numaheap-bg", 11) &&
			    sched_setaffinity((pid_t)atoi(de->name), sizeof node_cpus[n], &node_cpus[n]) == 0)
				found++;
		}
	}
	close(dfd);
	return found > 0;
}

static void prefault_job(void *argp)
{
	int n = *(int *)argp, other = n == 0 ? 1 : 0;
	struct batch b;
	batch_init(&b, 4096);
	/* 48 MiB of 32 KiB objects on this node, all freed and released. */
	if (!batch_alloc(&b, 32 * KiB, 1536, -1))
		return;
	check(batch_release(&b) == 0, "prefault: objects intact before the release");
	numaheap_release();
	/* The background thread runs on another node: what it faults in must
	 * still land on this node (the arena's mbind policy decides). */
	if (!check(pin_bg_thread(other), "prefault: numaheap's background thread found and pinned to node %d", other))
		return;
	uint64_t before = 0, after = 0;
	stats_u64(stats_now(), n, "prefaulted_bytes", &before);
	/* Grow back, 2 MiB at a time, until the thread faults something in
	 * (at most 32 MiB of the 48 released): the released pages taken wake
	 * it, and its window is as long as the regrowth it follows, never
	 * closer than two huge pages past the program's front (prefault.c),
	 * so 2 MiB alone may need nothing faulted in (CI: 0 KiB after 30 s). */
	size_t steps = 0;
	double t0 = now();
	while (steps < 16 && after <= before) {
		if (!batch_alloc(&b, 32 * KiB, 64, -1))
			return;
		steps++;
		usleep(200 * 1000);
		stats_u64(stats_now(), n, "prefaulted_bytes", &after);
	}
	/* Seconds, not a measure: the thread's wake-up under QEMU's emulation
	 * on a loaded host took over 5 s (a CI-like run at load 20). */
	while (after <= before && now() - t0 < 30.0) {
		usleep(10000);
		stats_u64(stats_now(), n, "prefaulted_bytes", &after);
	}
	check(after > before,
	      "prefault: the background thread faulted in %" PRIu64 " KiB of node %d's released memory (%zu MiB grown back)",
	      (after - before) >> 10, n, steps * 2);
	if (after <= before)
		note("  statistics: %s", stats_now());
	/* Give it time to fill its window, then take objects from there. */
	usleep(100000);
	size_t from = b.n;
	if (!batch_alloc(&b, 32 * KiB, 256, -1))
		return;
	char what[128];
	snprintf(what, sizeof what, "prefault: objects in pages faulted in from node %d, for a heap on node %d", other, n);
	expect_on_node(what, &b, from, b.n, n);
	check(batch_release(&b) == 0, "prefault: objects intact when freed");
	batch_destroy(&b);
}

static void check_prefault(void)
{
	static int n;
	n = nnodes - 1;
	on_node(n, prefault_job, &n);
}

static const struct sizes ONNODE[] = {{"64 B", 64, 2048}, {"1 KiB", 1024, 256}, {"16 KiB", 16 * KiB, 32}, {"1 MiB", 1 * MiB, 2}, {"4 MiB", 4 * MiB, 1}};

static void onnode_job(void *argp)
{
	int caller = *(int *)argp;
	for (int n = 0; n < nnodes; n++) {
		struct batch b;
		batch_init(&b, 8192);
		size_t f1 = 0, f2 = 0;
		bool ok = alloc_group(&b, ONNODE, 2, n, &f1) && alloc_group(&b, ONNODE + 2, COUNT(ONNODE) - 2, n, &f2);
		if (ok) {
			char what[128];
			snprintf(what, sizeof what, "onnode: small/medium numaheap_malloc_onnode(.., %d) from node %d", n,
				 caller);
			expect_on_node(what, &b, f1, f2, n);
			snprintf(what, sizeof what, "onnode: large numaheap_malloc_onnode(.., %d) from node %d", n, caller);
			expect_on_node(what, &b, f2, b.n, n);
		}
		size_t bad = batch_release(&b);
		check(bad == 0, "onnode: node %d objects intact when freed (%zu damaged)", n, bad);
		batch_destroy(&b);
	}
	errno = 0;
	void *p = numaheap_malloc_onnode(64, nnodes);
	check(p == NULL && errno == EINVAL, "onnode: numaheap_malloc_onnode(64, %d) (no such node) is NULL/EINVAL", nnodes);
	free(p);
}

static void check_onnode(void)
{
	int callers[2] = {0, nnodes - 1};
	for (int i = 0; i < 2; i++)
		on_node(callers[i], onnode_job, &callers[i]);
}

/* ---- malloc_info ----------------------------------------------------------------------------- */

/* The count="..." of heap nr's <size> line for n-byte objects; 0 if none. */
static unsigned long long info_count(const char *xml, int nr, unsigned n)
{
	char tag[32];
	snprintf(tag, sizeof tag, "<heap nr=\"%d\">", nr);
	const char *h = strstr(xml, tag);
	if (!h)
		return 0;
	const char *end = strstr(h, "</heap>");
	for (const char *p = h; (p = strstr(p, "<size from=\"")) && (!end || p < end); p++) {
		unsigned from, to;
		unsigned long long total, count;
		if (sscanf(p, "<size from=\"%u\" to=\"%u\" total=\"%llu\" count=\"%llu\"/>", &from, &to, &total,
			   &count) == 4 &&
		    from <= n && n <= to)
			return count;
	}
	return 0;
}

static void malloc_info_job(void *argp)
{
	int n = *(int *)argp;
	enum { K = 4000, SZ = 200 };
	void **v = malloc(K * sizeof *v);
	for (int i = 0; i < K; i++) {
		v[i] = malloc(SZ);
		memset(v[i], 1, SZ);
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int r = f ? malloc_info(0, f) : -1;
	if (f)
		fclose(f);
	unsigned long long here = 0, other = 0;
	if (r == 0 && buf) {
		here = info_count(buf, n, SZ);
		for (int m = 0; m < nnodes; m++)
			if (m != n)
				other += info_count(buf, m, SZ);
	}
	check(r == 0 && here >= K && other < K,
	      "malloc_info: %d objects of %d B from node %d: its heap counts %llu of that size, the other heaps %llu",
	      K, SZ, n, here, other);
	for (int i = 0; i < K; i++)
		free(v[i]);
	free(v);
	free(buf);
}

static void check_malloc_info(void)
{
	static int n;
	n = nnodes - 1;
	on_node(n, malloc_info_job, &n);
}

/* ---- interleave ------------------------------------------------------------------------------ */

static void spread_check(const char *what, const struct batch *b, size_t from, size_t to)
{
	struct pages pg;
	pages_of(b, from, to, &pg);
	struct tally t;
	tally_pages(pg.v, pg.n, &t);
	pages_destroy(&pg);
	size_t least = (size_t)-1;
	int leastn = 0;
	for (int n = 0; n < nnodes; n++)
		if (t.node[n] < least) {
			least = t.node[n];
			leastn = n;
		}
	/* each node holds at least 3/4 of a fair share: node[n] >= 0.75 * total / nnodes */
	char buf[512];
	check(t.total > 0 && least * 4 * (size_t)nnodes >= 3 * t.total,
	      "interleave: %s spread over %d nodes, least on node %d: %.1f%% (fair share %.1f%%; %s)", what, nnodes,
	      leastn, t.total ? 100.0 * least / t.total : 0.0, 100.0 / nnodes, tally_str(&t, buf, sizeof buf));
}

static void interleave_job(void *argp)
{
	(void)argp;
	struct batch b;
	batch_init(&b, 1 << 20);
	size_t f1 = b.n;
	if (!batch_alloc(&b, 64, 512 * 1024, -1)) /* 32 MiB of 64 B objects */
		return;
	size_t f2 = b.n;
	if (!batch_alloc(&b, 16 * KiB, 1024, -1)) /* 16 MiB of 16 KiB objects */
		return;
	size_t f3 = b.n;
	if (!batch_alloc(&b, 4 * MiB, 16, -1)) /* 64 MiB of 4 MiB objects */
		return;
	spread_check("64 B objects (32 MiB) of a thread on node 0", &b, f1, f2);
	spread_check("16 KiB objects (16 MiB) of a thread on node 0", &b, f2, f3);
	spread_check("4 MiB objects (64 MiB) of a thread on node 0", &b, f3, b.n);
	check_stats_agree("stats with interleaved objects");
	/* NUMAHEAP_THP_ADAPT=base (vm.ibase2): the heap grew on base pages,
	 * which the interleave alternates page by page, and the background
	 * thread collapses it once growth stops; the kernel would put every
	 * collapsed huge page on the first node (a tie in each), so numaheap
	 * moves each to the node whose turn it is. After the collapses the
	 * small objects must still be spread, on huge pages. */
	const char *adapt = getenv("NUMAHEAP_THP_ADAPT");
	if (adapt && !strcmp(adapt, "base")) {
		double t1 = now();
		uint64_t n = wait_base_collapses();
		uint64_t moves = stats_counter("\"collapse_moves\":");
		check(n >= 8, "interleave: the heap grown on base pages was collapsed: %" PRIu64
		      " huge pages in %.1f s, %" PRIu64 " moved to their node", n, now() - t1, moves);
		spread_check("64 B objects (32 MiB) after the collapses", &b, f1, f2);
		struct pages pg;
		pages_of(&b, f1, f2, &pg);
		size_t thp = 0, present = 0;
		if (count_thp(pg.v, pg.n, &thp, &present))
			check(pg.n > 0 && thp * 100 >= pg.n * 80,
			      "interleave: %.1f%% of the %zu pages of the 64 B objects are huge pages after the collapses",
			      pg.n ? 100.0 * thp / pg.n : 0.0, pg.n);
		pages_destroy(&pg);
	}
	size_t bad = batch_release(&b);
	check(bad == 0, "interleave: objects intact when freed (%zu damaged)", bad);
	batch_destroy(&b);
}

/* ---- driver ------------------------------------------------------------------------------------ */

/* objects that stay allocated until exit */
static void keep_job(void *argp)
{
	struct batch *b = argp;
	batch_alloc(b, 64, 16384, -1);
	batch_alloc(b, 4 * MiB, 1, -1);
}

struct child_result {
	uint32_t magic;
	int npass, nfail;
	int have_scan;
	struct scan scan;
};
#define RESULT_MAGIC 0x4e554d41u

static void report_env(void)
{
	char buf[256] = "";
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY);
	if (fd >= 0) {
		ssize_t r = read(fd, buf, sizeof buf - 1);
		buf[r > 0 ? r : 0] = 0;
		close(fd);
		char *nl = strchr(buf, '\n');
		if (nl)
			*nl = 0;
	}
	char bal[16] = "?";
	fd = open("/proc/sys/kernel/numa_balancing", O_RDONLY);
	if (fd >= 0) {
		ssize_t r = read(fd, bal, sizeof bal - 1);
		bal[r > 0 ? r : 0] = 0;
		close(fd);
		char *nl = strchr(bal, '\n');
		if (nl)
			*nl = 0;
	}
	const char *js = stats_now();
	const char *cm = strstr(js, "\"cpu_mode\":\"");
	char cpu_mode[32] = "?";
	if (cm)
		sscanf(cm + strlen("\"cpu_mode\":\""), "%31[^\"]", cpu_mode);
	char cpus[256];
	int len = 0;
	for (int n = 0; n < nnodes; n++)
		len += snprintf(cpus + len, sizeof cpus - (size_t)len, "%s%d", n ? "/" : "", CPU_COUNT(&node_cpus[n]));
	note("%d nodes, CPUs per node %s, THP '%s', numa_balancing %s, numaheap %s, cpu_mode %s, NUMAHEAP_NUMA=%s",
	     nnodes, cpus, buf, bal, numaheap_version(), cpu_mode,
	     getenv("NUMAHEAP_NUMA") ? getenv("NUMAHEAP_NUMA") : "(unset)");
	check(strcmp(cpu_mode, "rseq") == 0, "numaheap runs per-CPU caches on rseq (cpu_mode %s)", cpu_mode);
	void *p = malloc(100);
	int h = numaheap_node_of(p);
	uintptr_t a = (uintptr_t)p;
	check(a >= HEAP_BASE && a < HEAP_END && (int)((a - HEAP_BASE) >> NODE_SHIFT) == h,
	      "the test's idea of the heap layout matches numaheap_node_of (%p: node %d)", p, h);
	free(p);
}

static int run_child(const char *mode, const char *result_path)
{
	mode_name = mode;
	setvbuf(stdout, NULL, _IOLBF, 0);
	topology();
	if (nnodes < 2)
		die("only %d NUMA node: run this inside a multi-node VM (tools/numa-vm --nodes 2)", nnodes);
	report_env();
	double t0 = now();
	if (!strcmp(mode, "local")) {
		/* first, while memory is unfragmented: the huge-page check, on the last node */
		struct thp_arg ta = {nnodes - 1};
		on_node(nnodes - 1, thp_job, &ta);
		note("thp done at %.1f s", now() - t0);
		check_placement();
		check_migrate();
		check_remote();
		check_onnode();
		check_malloc_info();
		check_prefault();
	} else if (!strcmp(mode, "interleave")) {
		on_node(0, interleave_job, NULL);
	} else {
		die("unknown mode '%s' (local, interleave)", mode);
	}
	/* The last word, for the comparison with the statistics printed at exit:
	 * objects left alive on every node, free pages given back now (so that
	 * the background scavenger has nothing left to change), then a scan
	 * that stays the same for half a second. */
	static struct batch keep[MAXN];
	for (int n = 0; n < nnodes; n++) {
		batch_init(&keep[n], 32768);
		on_node(n, keep_job, &keep[n]);
	}
	numaheap_release();
	struct scan again;
	scan_heap(&last_scan);
	for (int i = 0; i < 20; i++) {
		usleep(500 * 1000);
		scan_heap(&again);
		if (scan_equal(&again, &last_scan))
			break;
		last_scan = again;
	}
	/* reading them does not change what is resident (a missing page would
	 * map the zero page, which neither side counts) */
	size_t kept = 0, bad = 0;
	for (int n = 0; n < nnodes; n++) {
		for (size_t i = 0; i < keep[n].n; i++) {
			const uint8_t *p = keep[n].p[i];
			size_t sz = keep[n].sz[i];
			uint8_t t = tag_of(p, sz);
			kept += sz;
			for (size_t off = 0; off < sz; off += PG / 2)
				if (p[off] != t) {
					bad++;
					break;
				}
		}
	}
	check(bad == 0, "%zu KiB of objects left alive on every node survived numaheap_release() (%zu damaged)",
	      kept >> 10, bad);
	print_matrix("final move_pages", get_scan, &last_scan);
	note("%s checks took %.1f s", mode, now() - t0);
	struct child_result r = {RESULT_MAGIC, npass, nfail, 1, last_scan};
	int fd = open(result_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, &r, sizeof r) != (ssize_t)sizeof r)
		die("cannot write %s: %s", result_path, strerror(errno));
	close(fd);
	return nfail ? 1 : 0;
}

/* Read a whole file into mmap'd memory. */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return NULL;
	}
	char *buf = xmap((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = 0;
	*len = (size_t)st.st_size + 1;
	return buf;
}

static void run_mode(const char *self, const char *mode)
{
	char stats_path[256], result_path[256];
	snprintf(stats_path, sizeof stats_path, "/tmp/numa_vm_check.%s.%d.stats.json", mode, (int)getpid());
	snprintf(result_path, sizeof result_path, "/tmp/numa_vm_check.%s.%d.result", mode, (int)getpid());
	unlink(stats_path);
	unlink(result_path);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		setenv("NUMAHEAP_NUMA", mode, 1);
		setenv("NUMAHEAP_STATS", "json", 1);
		setenv("NUMAHEAP_STATS_FILE", stats_path, 1);
		execl(self, self, "--child", mode, result_path, (char *)NULL);
		printf("FAIL [%s] exec %s: %s\n", mode, self, strerror(errno));
		_exit(127);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	mode_name = mode;
	struct child_result r;
	size_t len = 0;
	char *rb = slurp(result_path, &len);
	bool have = rb && len == sizeof r + 1 && memcpy(&r, rb, sizeof r) && r.magic == RESULT_MAGIC;
	if (rb)
		xunmap(rb, len);
	if (have) {
		npass += r.npass;
		nfail += r.nfail;
	}
	check(WIFEXITED(st) && have,
	      "the %s run finished (%s %d)", mode, WIFEXITED(st) ? "exit status" : "killed by signal",
	      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	if (!have)
		return;

	/* The statistics numaheap printed at exit (NUMAHEAP_STATS=json) against
	 * the child's last move_pages scan: within one huge page per cell. */
	char *js = slurp(stats_path, &len);
	struct placed_all pa;
	bool parsed = js && placed_from_json(js, &pa);
	check(parsed, "NUMAHEAP_STATS=json at exit wrote nodes[].resident_on_node to %s", stats_path);
	if (parsed) {
		bool agree = true;
		uint64_t total = 0;
		for (int h = 0; h < MAXN; h++)
			for (int m = 0; m < MAXN; m++) {
				uint64_t x = pa.b[h][m], y = r.scan.bytes[h][m];
				total += y;
				if ((x > y ? x - y : y - x) > 2 * MiB)
					agree = false;
			}
		check(agree,
		      "exit statistics' resident_on_node match move_pages just before exit (%" PRIu64
		      " KiB resident, within 2 MiB per node)",
		      total >> 10);
		if (!agree) {
			print_matrix("move_pages", get_scan, &r.scan);
			print_matrix("exit statistics", get_placed, &pa);
		}
	}
	if (js)
		xunmap(js, len);
	unlink(stats_path);
	unlink(result_path);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--child"))
		return run_child(argv[2], argv[3]);
	if (argc < 2) {
		fprintf(stderr, "usage: %s MODE...   (MODE: local | interleave)\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = 0;
	topology();
	double t0 = now();
	for (int i = 1; i < argc; i++)
		run_mode(self, argv[i]);
	mode_name = "all";
	printf("numa_vm_check: %.1f s in the VM\n", now() - t0);
	printf("numa_vm_check: %d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}
