/*
 * prof_vm_check.c — do the heap profile's numa_node labels say where the
 * memory is? Run inside a QEMU VM with several NUMA nodes (tools/numa-vm;
 * tests/vm/CMakeLists.txt, ctest vm.prof2 and vm.prof4).
 *
 * The program runs itself again with NUMAHEAP_PROF=1 and a small rate
 * (NUMAHEAP_PROF_RATE=16K, about 500 samples per thread). Then:
 *
 *   1. one thread per node, pinned to that node's CPUs, allocates 8 MiB
 *      from a call site of its own (prof_vm_site0, 1...: site k asks for
 *      SIZE(k) bytes, a size no other code here asks for), writes every
 *      block and keeps them all; one more thread, from a site of its own,
 *      allocates half its blocks on node 0, then moves to the last node
 *      (sched_setaffinity) and allocates the other half there, so one
 *      site's samples are split between two labels;
 *   2. the program asks the kernel where the memory is: move_pages(2) on
 *      every block, and in particular on the sampled ones, which it can
 *      tell apart (a sampled block has a span of its own: its
 *      malloc_usable_size is a whole page, not the class size);
 *   3. it writes its profile with numaheap_prof_dump, reads it back (a
 *      small gzip-stored-block and protobuf reader below: the VM has no
 *      pprof) and checks, for each site:
 *        - the sample's stack starts in the site's function (dladdr; the
 *          program is linked with -rdynamic);
 *        - the number of sampled blocks the profile has under each
 *          numa_node label (inuse_objects divided by the block's weight,
 *          1 / (1 - exp(-size / rate)), size its class's, which the
 *          sample clock counts: an unsampled block's usable size) equals
 *          the number move_pages finds on that node, node by node;
 *        - all of them carry the label of a node the thread ran on, and
 *          move_pages puts >= 99% of the thread's blocks where it ran
 *          when it allocated them;
 *      and that every sample of the profile carries a numa_node label.
 *
 * Prints one "ok"/"FAIL" line per check and "N passed, N failed" at the
 * end; exits 0 only if every check passed.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include "numaheap.h"

#define MAXN 16
#define RATE 16384
#define PER_THREAD ((size_t)8 << 20) /* bytes each thread allocates */
#define PG 4096UL
/* Node k's request size: no other code in this program asks for these. */
#define SIZE(k) ((size_t)328 + 56 * (size_t)(k))

#include "vm_check.h"

/* ---- the sites ----------------------------------------------------------------------------------- */

struct thread {
	int site;
	int node, node2; /* where it runs: its first half on node, then node2 */
	bool pinned;
	size_t n;
	char **p;
};

/* One function per node, so each thread's samples have a stack of their
 * own; the block is written right after malloc, so the call is not a tail
 * call and the site's frame is the stack's first. Not static: dladdr
 * names them (-rdynamic). */
#define SITE(k)                                                                                            \
	__attribute__((noinline)) char *prof_vm_site##k(size_t n)                                          \
	{                                                                                                  \
		char *p = malloc(n);                                                                       \
		if (p)                                                                                     \
			memset(p, 0x5a + k, n);                                                            \
		__asm__ volatile("" ::: "memory");                                                        \
		return p;                                                                                  \
	}
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
SITE(8) SITE(9) SITE(10) SITE(11) SITE(12) SITE(13) SITE(14) SITE(15) SITE(16)
static char *(*const sites[MAXN + 1])(size_t) = {
	prof_vm_site0,	prof_vm_site1,	prof_vm_site2,	prof_vm_site3,	prof_vm_site4,	prof_vm_site5,
	prof_vm_site6,	prof_vm_site7,	prof_vm_site8,	prof_vm_site9,	prof_vm_site10, prof_vm_site11,
	prof_vm_site12, prof_vm_site13, prof_vm_site14, prof_vm_site15, prof_vm_site16};

static void *thread_main(void *arg)
{
	struct thread *t = arg;
	size_t size = SIZE(t->site), want = PER_THREAD / size;
	t->p = xmap(want * sizeof *t->p);
	t->pinned = pin_self(t->node);
	for (t->n = 0; t->pinned && t->n < want; t->n++) {
		if (t->n == want / 2 && t->node2 != t->node)
			t->pinned = pin_self(t->node2);
		if (!(t->p[t->n] = sites[t->site](size)))
			break;
	}
	return NULL;
}

/* ---- the kernel's view: move_pages ------------------------------------------------------------------ */

/* Where the page holding each of addrs[0..n) is (node, or -errno). */
static void where(void **addrs, int *status, size_t n)
{
	for (size_t i = 0; i < n; i += 4096) {
		size_t k = n - i < 4096 ? n - i : 4096;
		if (move_pages(0, k, addrs + i, NULL, status + i, 0) != 0)
			die("move_pages: %s", strerror(errno));
	}
}

/* ---- the profile: gzip with stored blocks, then profile.proto ------------------------------------- */

struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t varint(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned s = 0; s < 64; s += 7) {
		if (r->p >= r->end) {
			r->bad = true;
			return 0;
		}
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

/* The next field of the message in r: its number, wire type, and either
 * its varint (*v) or its bytes (*sub). false at the end or on bad input. */
static bool field(struct rd *r, unsigned *num, unsigned *wire, uint64_t *v, struct rd *sub)
{
	if (r->bad || r->p >= r->end)
		return false;
	uint64_t key = varint(r);
	*num = (unsigned)(key >> 3);
	*wire = (unsigned)(key & 7);
	if (*wire == 0) {
		*v = varint(r);
	} else if (*wire == 2) {
		uint64_t n = varint(r);
		if (n > (uint64_t)(r->end - r->p)) {
			r->bad = true;
			return false;
		}
		sub->p = r->p;
		sub->end = r->p + n;
		sub->bad = false;
		r->p += n;
	} else if (*wire == 1 && r->end - r->p >= 8) {
		r->p += 8;
	} else if (*wire == 5 && r->end - r->p >= 4) {
		r->p += 4;
	} else {
		r->bad = true;
	}
	return !r->bad;
}

/* A repeated uint64 field, packed (wire 2) or not, into out[] (at most max). */
static unsigned repeated(unsigned wire, uint64_t v, struct rd *sub, uint64_t *out, unsigned n, unsigned max)
{
	if (wire == 0) {
		if (n < max)
			out[n++] = v;
		return n;
	}
	while (sub->p < sub->end && !sub->bad) {
		uint64_t x = varint(sub);
		if (n < max)
			out[n++] = x;
	}
	return n;
}

/* The gzip file's payload: numaheap writes stored deflate blocks only. */
static uint8_t *gunzip_stored(const uint8_t *in, size_t len, size_t *outlen)
{
	if (len < 18 || in[0] != 0x1f || in[1] != 0x8b || in[2] != 8 || in[3] != 0)
		return NULL;
	uint8_t *out = xmap(len);
	size_t o = 0, i = 10;
	for (;;) {
		if (i + 5 > len)
			return NULL;
		uint8_t h = in[i];
		if ((h >> 1) != 0) /* not a stored block */
			return NULL;
		size_t n = in[i + 1] | (size_t)in[i + 2] << 8, nn = in[i + 3] | (size_t)in[i + 4] << 8;
		if ((n ^ 0xffff) != nn || i + 5 + n > len)
			return NULL;
		memcpy(out + o, in + i + 5, n);
		o += n;
		i += 5 + n;
		if (h & 1)
			break;
	}
	*outlen = o;
	return out;
}

#define MAXS 4096 /* samples */
#define MAXSTR 65536
#define MAXLOC 65536

struct sample {
	uint64_t loc[8];
	unsigned nloc;
	uint64_t v[4];
	int64_t label_key, label_str; /* -1: none */
	unsigned nlabels;
};

static struct sample *samples;
static size_t nsamples;
static struct rd strs[MAXSTR];
static size_t nstrs;
static uint64_t loc_id[MAXLOC], loc_addr[MAXLOC];
static size_t nlocs;

static bool str_is(int64_t i, const char *s)
{
	return i >= 0 && (size_t)i < nstrs && (size_t)(strs[i].end - strs[i].p) == strlen(s) &&
	       !memcmp(strs[i].p, s, strlen(s));
}

static uint64_t loc_address(uint64_t id)
{
	for (size_t i = 0; i < nlocs; i++)
		if (loc_id[i] == id)
			return loc_addr[i];
	return 0;
}

static bool read_profile(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
		check(false, "cannot read the profile %s: %s", path, strerror(errno));
		return false;
	}
	uint8_t *gz = xmap((size_t)st.st_size);
	if (read(fd, gz, (size_t)st.st_size) != st.st_size)
		die("read %s: %s", path, strerror(errno));
	close(fd);
	size_t len = 0;
	uint8_t *pb = gunzip_stored(gz, (size_t)st.st_size, &len);
	if (!check(pb != NULL, "the profile is gzip with stored blocks (%lld bytes)", (long long)st.st_size))
		return false;
	samples = xmap(MAXS * sizeof *samples);
	uint64_t types[4][2];
	unsigned ntypes = 0;
	struct rd r = {pb, pb + len, false}, sub, sub2;
	unsigned num, wire, n2, w2;
	uint64_t v, v2;
	while (field(&r, &num, &wire, &v, &sub)) {
		if (num == 1 && wire == 2 && ntypes < 4) { /* sample_type */
			types[ntypes][0] = types[ntypes][1] = 0;
			while (field(&sub, &n2, &w2, &v2, &sub2))
				if (n2 <= 2 && w2 == 0)
					types[ntypes][n2 - 1] = v2;
			ntypes++;
		} else if (num == 2 && wire == 2 && nsamples < MAXS) {
			struct sample *s = &samples[nsamples++];
			s->label_key = s->label_str = -1;
			unsigned nv = 0;
			while (field(&sub, &n2, &w2, &v2, &sub2)) {
				if (n2 == 1)
					s->nloc = repeated(w2, v2, &sub2, s->loc, s->nloc, 8);
				else if (n2 == 2)
					nv = repeated(w2, v2, &sub2, s->v, nv, 4);
				else if (n2 == 3 && w2 == 2) {
					struct rd lab = sub2, x;
					unsigned n3, w3;
					uint64_t v3;
					s->nlabels++;
					while (field(&lab, &n3, &w3, &v3, &x))
						if (n3 == 1 && w3 == 0)
							s->label_key = (int64_t)v3;
						else if (n3 == 2 && w3 == 0)
							s->label_str = (int64_t)v3;
				}
			}
		} else if (num == 4 && wire == 2 && nlocs < MAXLOC) { /* location: id, address */
			uint64_t id = 0, addr = 0;
			while (field(&sub, &n2, &w2, &v2, &sub2))
				if (n2 == 1 && w2 == 0)
					id = v2;
				else if (n2 == 3 && w2 == 0)
					addr = v2;
			loc_id[nlocs] = id;
			loc_addr[nlocs++] = addr;
		} else if (num == 6 && wire == 2 && nstrs < MAXSTR) {
			strs[nstrs++] = sub;
		}
	}
	if (!check(!r.bad && nsamples > 0 && nsamples < MAXS, "the profile parses: %zu samples, %zu locations, %zu strings",
		   nsamples, nlocs, nstrs))
		return false;
	static const char *const want[4] = {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"};
	bool types_ok = ntypes == 4;
	for (unsigned k = 0; k < ntypes; k++)
		types_ok = types_ok && str_is((int64_t)types[k][0], want[k]);
	return check(types_ok, "its sample types are alloc_objects, alloc_space, inuse_objects, inuse_space");
}

/* The node a sample's label names, or -1. */
static int label_node(const struct sample *s)
{
	if (!str_is(s->label_key, "numa_node") || s->label_str < 0 || (size_t)s->label_str >= nstrs)
		return -1;
	const struct rd *t = &strs[s->label_str];
	int n = 0;
	if (t->p == t->end || t->end - t->p > 2)
		return -1;
	for (const uint8_t *c = t->p; c < t->end; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		n = n * 10 + (*c - '0');
	}
	return n;
}

/* The site whose function holds address a (the stack's first frame), or -1. */
static int site_of(uint64_t a)
{
	Dl_info info;
	if (!a || !dladdr((void *)(uintptr_t)a, &info) || !info.dli_sname)
		return -1;
	int k;
	char end;
	if (sscanf(info.dli_sname, "prof_vm_site%d%c", &k, &end) != 1 || k < 0 || k > MAXN)
		return -1;
	return k;
}

/* ---- the test -------------------------------------------------------------------------------------- */

static int run(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	topology();
	if (nnodes < 2)
		die("only %d NUMA node: run this inside a multi-node VM (tools/numa-vm --nodes 2)", nnodes);
	printf("     [prof] %d nodes, NUMAHEAP_PROF_RATE=%s, %zu MiB per thread\n", nnodes,
	       getenv("NUMAHEAP_PROF_RATE"), PER_THREAD >> 20);

	/* Sites 0..nnodes-1: a thread on each node. Site nnodes: a thread
	 * that allocates half its blocks on node 0, then moves to the last
	 * node for the other half: its samples must be split between the
	 * two labels as its memory is. */
	int nsites = nnodes + 1;
	static struct thread th[MAXN + 1];
	pthread_t tid[MAXN + 1];
	for (int k = 0; k < nsites; k++) {
		th[k].site = k;
		th[k].node = k < nnodes ? k : 0;
		th[k].node2 = k < nnodes ? k : nnodes - 1;
	}
	for (int k = 0; k < nsites; k++)
		if (pthread_create(&tid[k], NULL, thread_main, &th[k]) != 0)
			die("pthread_create: %s", strerror(errno));
	for (int k = 0; k < nsites; k++)
		pthread_join(tid[k], NULL);
	for (int k = 0; k < nsites; k++)
		check(th[k].pinned && th[k].n == PER_THREAD / SIZE(k),
		      "site %d's thread ran on node %d%s%.0d and allocated %zu blocks of %zu B", k, th[k].node,
		      th[k].node2 != th[k].node ? ", then on node " : "", th[k].node2 != th[k].node ? th[k].node2 : 0,
		      th[k].n, SIZE(k));

	/* The kernel's view of every block, and of the sampled ones. */
	static size_t truth[MAXN + 1][MAXN]; /* [site][node]: sampled blocks */
	static size_t class_size[MAXN + 1]; /* [site]: its class's size (an unsampled block's usable size) */
	for (int k = 0; k < nsites; k++) {
		size_t n = th[k].n, home = 0, sampled = 0, bad = 0;
		void **addrs = xmap((n + 1) * sizeof *addrs);
		int *status = xmap((n + 1) * sizeof *status);
		for (size_t i = 0; i < n; i++)
			addrs[i] = th[k].p[i];
		where(addrs, status, n);
		for (size_t i = 0; i < n; i++) {
			/* blocks allocated while the thread ran on a node: there */
			home += status[i] == (i < PER_THREAD / SIZE(k) / 2 ? th[k].node : th[k].node2);
			if (malloc_usable_size(th[k].p[i]) < 4096) {
				class_size[k] = malloc_usable_size(th[k].p[i]);
				continue;
			}
			sampled++;
			if (status[i] >= 0 && status[i] < nnodes)
				truth[k][status[i]]++;
			else
				bad++;
		}
		check(home * 100 >= n * 99, "move_pages: %zu of site %d's %zu blocks are on the node its thread ran on",
		      home, k, n);
		check(sampled > 0 && bad == 0,
		      "site %d: %zu of its blocks were sampled (a span each), move_pages places every one", k, sampled);
		munmap(addrs, (n + 1) * sizeof *addrs);
		munmap(status, (n + 1) * sizeof *status);
	}

	char path[64];
	snprintf(path, sizeof path, "/tmp/prof_vm_check.%d.pb.gz", (int)getpid());
	if (access("/tmp", W_OK) != 0)
		snprintf(path, sizeof path, "prof_vm_check.%d.pb.gz", (int)getpid());
	if (!check(numaheap_prof_dump(path) == 0, "numaheap_prof_dump(%s)", path))
		return 1;
	bool ok = read_profile(path);
	unlink(path);
	if (!ok)
		return 1;

	/* The profile's view: sampled blocks per site and label. */
	static double prof[MAXN + 1][MAXN];
	size_t unlabelled = 0, ours = 0, wrong_stack = 0;
	for (size_t i = 0; i < nsamples; i++) {
		const struct sample *s = &samples[i];
		int node = label_node(s);
		if (node < 0 || node >= nnodes || s->nlabels != 1) {
			unlabelled++;
			continue;
		}
		if (s->v[0] == 0)
			continue;
		double size = (double)s->v[1] / (double)s->v[0];
		int k = -1;
		for (int j = 0; j < nsites; j++)
			if (fabs(size - (double)SIZE(j)) < 0.5)
				k = j;
		if (k < 0)
			continue; /* the program's other allocations (stdio...) */
		ours++;
		if (s->nloc == 0 || site_of(loc_address(s->loc[0])) != k) {
			wrong_stack++;
			continue;
		}
		double w = 1.0 / (1.0 - exp(-(double)class_size[k] / RATE));
		prof[k][node] += (double)s->v[2] / w;
	}
	check(unlabelled == 0, "every one of the profile's %zu samples carries one numa_node label naming a node (%zu do not)",
	      nsamples, unlabelled);
	check(ours > 0 && wrong_stack == 0,
	      "the %zu samples of the test's sizes have their site's function as first frame (%zu do not)", ours,
	      wrong_stack);
	for (int k = 0; k < nsites; k++) {
		char got[256], want[256];
		size_t g = 0, w = 0;
		bool same = true, home = true;
		for (int j = 0; j < nnodes; j++) {
			long long pk = llround(prof[k][j]);
			same = same && fabs(prof[k][j] - (double)truth[k][j]) < 0.25;
			home = home && (j == th[k].node || j == th[k].node2 || (pk == 0 && truth[k][j] == 0));
			g += (size_t)snprintf(got + g, sizeof got - g, " %d:%lld", j, pk);
			w += (size_t)snprintf(want + w, sizeof want - w, " %d:%zu", j, truth[k][j]);
		}
		check(same, "site %d: sampled blocks per numa_node label {%s } = per node from move_pages {%s }", k, got + 0,
		      want);
		if (th[k].node == th[k].node2)
			check(home && truth[k][th[k].node] > 0, "site %d: its samples are labelled node %d, where its thread ran",
			      k, th[k].node);
		else
			check(home && truth[k][th[k].node] > 0 && truth[k][th[k].node2] > 0,
			      "site %d: its samples are labelled nodes %d and %d, where its thread ran", k, th[k].node,
			      th[k].node2);
	}
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}

int main(int argc, char **argv)
{
	(void)argc;
	mode_name = "prof";
	if (getenv("PROF_VM_CHECK_CHILD"))
		return run();
	/* numaheap reads its options when it starts: run again with them. */
	setenv("PROF_VM_CHECK_CHILD", "1", 1);
	setenv("NUMAHEAP_PROF", "1", 1);
	char rate[32];
	snprintf(rate, sizeof rate, "%d", RATE);
	setenv("NUMAHEAP_PROF_RATE", rate, 1);
	setenv("NUMAHEAP_PROF_FILE", "/dev/null", 1); /* the dump at exit: not needed */
	setenv("NUMAHEAP_NUMA", "local", 1);
	return run_self_again(argv);
}
