/*
 * topology.c — `numaheap topology`: the machine as numaheap sees it.
 *
 * It runs the allocator's own start-up code (options_init, numa_init,
 * numa_policy_init) to show what numaheap would do, not a re-implementation
 * of it. Re-running the start-up code inside a live allocator is safe here
 * because the results are copied out and the allocator's state (nh_opt,
 * numa_topo, numa_pol) is restored at once, with no allocation in between.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "commands.h"
#include "format.h"
#include "internal.h"
#include "options.h"
#include "report.h"
#include "numa.h"
#include "os/os.h"
#include "mcache.h"
#include "proc.h"
#include "rseq.h"
#include "numaheap.h"
#include "optinfo.h"
#include "table.h"
#include "tool.h"

extern char **environ;

const char topology_help[] =
	"usage: numaheap topology [--set NAME=VALUE]... [--cpus]\n"
	"\n"
	"Show the machine as numaheap sees it: NUMA nodes with their CPUs, memory\n"
	"and distances (hwloc), huge pages (transparent and hugetlb), the CPUs and\n"
	"cgroup limits of this process, the heap node numaheap gives each CPU, and\n"
	"whether it would use per-CPU caches (rseq) or per-thread caches.\n"
	"\n"
	"numaheap's own start-up code decides, honouring the NUMAHEAP_* variables\n"
	"of the environment; --set adds or overrides one (as `numaheap run` would).\n"
	"\n"
	"  -s, --set NAME=VALUE  as if NUMAHEAP_NAME=VALUE were set\n"
	"  --cpus                one row per CPU (default: CPUs alike are grouped)\n";

struct sim {
	struct nh_options opt;
	struct numa_topology topo;
	struct numa_policy pol;
	size_t cache_budget;
	char warnings[2048]; /* what start-up printed (warnings) with these settings */
};

/* Run the allocator's start-up decisions over environ plus sets, then restore. */
static void simulate(const struct setting *sets, int nsets, struct sim *out)
{
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	char **env = xmalloc(sizeof(char *) * (n + (size_t)nsets + 1));
	char **owned = xmalloc(sizeof(char *) * ((size_t)nsets + 1));
	size_t m = 0;
	for (char **e = environ; *e; e++) {
		bool overridden = false;
		for (int k = 0; k < nsets; k++) {
			const char *nm = opts[sets[k].opt].name;
			size_t l = strlen(nm);
			if (!strncmp(*e, "NUMAHEAP_", 9) && !strncmp(*e + 9, nm, l) && (*e)[9 + l] == '=')
				overridden = true;
		}
		if (!overridden)
			env[m++] = *e;
	}
	for (int k = 0; k < nsets; k++)
		env[m++] = owned[k] = xasprintf("NUMAHEAP_%s=%s", opts[sets[k].opt].name, sets[k].value);
	env[m] = NULL;

	static struct nh_options saved_opt;
	static struct numa_topology saved_topo;
	static struct numa_policy saved_pol;
	/* Start-up warnings go to a temporary file, shown in the report. */
	FILE *tf = tmpfile();
	int saved_err = stderr_redirect(tf ? fileno(tf) : -1);
	saved_opt = nh_opt;
	saved_topo = numa_topo;
	saved_pol = numa_pol;
	char **saved_env = environ;
	environ = env;
	options_init();
	numa_init();
	if (numa_policy_init((int)NH_OPTION(NUMA), NH_OPTION(NUMA_BIND) == 1, (uint32_t)NH_OPTION(NODES)) < 0)
		nh_warn("NUMAHEAP_NODES names no node with memory; using all nodes");
	out->cache_budget = numa_cpu_budget((size_t)NH_OPTION(CACHE_BYTES));
	out->opt = nh_opt;
	out->topo = numa_topo;
	out->pol = numa_pol;
	environ = saved_env;
	numa_pol = saved_pol;
	numa_topo = saved_topo;
	nh_opt = saved_opt;
	stderr_restore(saved_err);
	out->warnings[0] = 0;
	if (tf) {
		rewind(tf);
		size_t got = fread(out->warnings, 1, sizeof out->warnings - 1, tf);
		out->warnings[got] = 0;
		fclose(tf);
	}
	for (int k = 0; k < nsets; k++)
		free(owned[k]);
	free(owned);
	free(env);
}

/* Test registration of a restartable-sequence area, on a fresh thread. */
struct rseq_probe {
	int result; /* 0 registered, else errno */
	bool glibc_registered;
};

static void *rseq_probe_thread(void *arg)
{
	struct rseq_probe *p = arg;
	p->result = nh_rseq_probe(&p->glibc_registered);
	return NULL;
}

static void section(const char *title) { printf("\n%s\n", title); }

/* One row per NUMA node: memory, CPUs, page sizes. */
static void show_numa_nodes(hwloc_topology_t t, int nnuma)
{
	struct table tb;
	table_init(&tb, 4);
	tb.left[2] = tb.left[3] = true;
	table_header(&tb, "node", "memory", "CPUs", "page sizes", NULL);
	for (int i = 0; i < nnuma; i++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i);
		char mem[32], *cpus = NULL, pages[256] = "";
		fmt_bytes(mem, sizeof mem, (unsigned long long)o->attr->numanode.local_memory);
		if (o->cpuset)
			hwloc_bitmap_list_asprintf(&cpus, o->cpuset);
		size_t len = 0;
		for (unsigned k = 0; k < o->attr->numanode.page_types_len; k++) {
			char sz[32];
			if (!o->attr->numanode.page_types[k].size)
				continue;
			fmt_size_exact(sz, sizeof sz, (long long)o->attr->numanode.page_types[k].size);
			int w = snprintf(pages + len, sizeof pages - len, "%s%s", len ? ", " : "", sz);
			if (w > 0 && (size_t)w < sizeof pages - len)
				len += (size_t)w;
		}
		int r = table_row(&tb);
		table_set(&tb, r, 0, "%u", o->os_index);
		table_set(&tb, r, 1, "%s", mem);
		table_set(&tb, r, 2, "%s", cpus && *cpus ? cpus : "(none)");
		table_set(&tb, r, 3, "%s", pages);
		free(cpus);
	}
	table_print(&tb, stdout, "  ");
	table_free(&tb);
}

/* The node distance matrix, as hwloc has it. */
static void show_distances(hwloc_topology_t t, int nnuma)
{
	unsigned nr = 1;
	struct hwloc_distances_s *d = NULL;
	if (nnuma > 1 && hwloc_distances_get_by_type(t, HWLOC_OBJ_NUMANODE, &nr, &d, 0, 0) == 0 && nr >= 1) {
		printf("  distances (relative latency, 10 = local):\n");
		struct table tb;
		table_init(&tb, (int)d->nbobjs + 1);
		int r = table_row(&tb);
		table_set(&tb, r, 0, "node");
		for (unsigned j = 0; j < d->nbobjs; j++)
			table_set(&tb, r, (int)j + 1, "%u", d->objs[j]->os_index);
		for (unsigned i = 0; i < d->nbobjs; i++) {
			r = table_row(&tb);
			table_set(&tb, r, 0, "%u", d->objs[i]->os_index);
			for (unsigned j = 0; j < d->nbobjs; j++)
				table_set(&tb, r, (int)j + 1, "%llu",
					  (unsigned long long)d->values[i * d->nbobjs + j]);
		}
		table_print(&tb, stdout, "    ");
		table_free(&tb);
		hwloc_distances_release(t, d);
	} else if (nnuma > 1) {
		printf("  distances: hwloc has none\n");
	} else {
		printf("  distances: one node (10, local)\n");
	}
}

static void show_hwloc(void)
{
	hwloc_topology_t t;
	if (hwloc_topology_init(&t) != 0 || hwloc_topology_load(t) != 0) {
		printf("  hwloc: cannot load the topology\n");
		return;
	}
	int npkg = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
	int ncore = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
	int npu = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
	int nnuma = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
	printf("  %d package%s, %d core%s, %d hardware thread%s, %d NUMA node%s (hwloc %s)\n", npkg,
	       npkg == 1 ? "" : "s", ncore, ncore == 1 ? "" : "s", npu, npu == 1 ? "" : "s", nnuma,
	       nnuma == 1 ? "" : "s", HWLOC_VERSION);
	show_numa_nodes(t, nnuma);
	show_distances(t, nnuma);
	hwloc_topology_destroy(t);
}

static void show_hugepages(const struct sim *s)
{
	char buf[256];
	if (read_small("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf)) {
		char mode[64] = "?";
		char *a = strchr(buf, '['), *b = a ? strchr(a, ']') : NULL;
		if (a && b)
			snprintf(mode, sizeof mode, "%.*s", (int)(b - a - 1), a + 1);
		const char *what = !strcmp(mode, "always")	? "for every anonymous mapping"
				   : !strcmp(mode, "madvise") ? "for mappings that ask, as numaheap's arenas do"
				   : !strcmp(mode, "never")   ? "none: arenas use 4 KiB pages"
							      : "?";
		printf("  transparent huge pages: %s (%s)\n", mode, what);
		if (read_small("/sys/kernel/mm/transparent_hugepage/defrag", buf, sizeof buf)) {
			a = strchr(buf, '[');
			b = a ? strchr(a, ']') : NULL;
			if (a && b)
				printf("  THP defrag: %.*s\n", (int)(b - a - 1), a + 1);
		}
	} else {
		printf("  transparent huge pages: not available (no /sys/kernel/mm/transparent_hugepage)\n");
	}
	printf("  numaheap: NUMAHEAP_THP=%lld (%s), NUMAHEAP_HUGETLB=%lld\n", (long long)s->opt.v[NH_OPTID_THP],
	       s->opt.v[NH_OPTID_THP] ? "MADV_HUGEPAGE on arenas" : "MADV_NOHUGEPAGE", (long long)s->opt.v[NH_OPTID_HUGETLB]);

	struct table tb;
	table_init(&tb, 4);
	table_header(&tb, "node", "page size", "reserved", "free", NULL);
	for (int n = 0; n < 64; n++) {
		char dir[128];
		snprintf(dir, sizeof dir, "/sys/devices/system/node/node%d/hugepages", n);
		if (access(dir, R_OK) != 0)
			continue;
		static const char *sizes[] = {"2048kB", "1048576kB"};
		for (int k = 0; k < 2; k++) {
			char p[192], nr[32], fr[32];
			snprintf(p, sizeof p, "%s/hugepages-%s/nr_hugepages", dir, sizes[k]);
			if (!read_small(p, nr, sizeof nr))
				continue;
			snprintf(p, sizeof p, "%s/hugepages-%s/free_hugepages", dir, sizes[k]);
			if (!read_small(p, fr, sizeof fr))
				snprintf(fr, sizeof fr, "?");
			int r = table_row(&tb);
			table_set(&tb, r, 0, "%d", n);
			table_set(&tb, r, 1, "%s", k ? "1 GiB" : "2 MiB");
			table_set(&tb, r, 2, "%s", nr);
			table_set(&tb, r, 3, "%s", fr);
		}
	}
	if (tb.nrows > 1) {
		printf("  hugetlb pages (NUMAHEAP_HUGETLB=1 uses the 2 MiB ones):\n");
		table_print(&tb, stdout, "    ");
	} else {
		printf("  hugetlb pages: no per-node counts in sysfs\n");
	}
	table_free(&tb);
}

static void show_process(const struct sim *s, cpu_set_t *aff, bool have_aff)
{
	char list[4096];
	if (have_aff) {
		bool in[NUMA_MAX_CPUS];
		for (int c = 0; c < NUMA_MAX_CPUS; c++)
			in[c] = c < CPU_SETSIZE && CPU_ISSET(c, aff);
		fmt_idlist(list, sizeof list, in, NUMA_MAX_CPUS);
		printf("  allowed CPUs: %s (%d of %d)\n", list, CPU_COUNT(aff), s->topo.ncpus);
	} else {
		printf("  allowed CPUs: unknown (sched_getaffinity failed)\n");
	}
	char buf[256];
	if (read_small("/sys/fs/cgroup/cpu.max", buf, sizeof buf)) {
		if (s->pol.cgroup_cpus_x100)
			printf("  cgroup CPU limit: %u.%02u CPUs (cpu.max \"%s\")\n", s->pol.cgroup_cpus_x100 / 100,
			       s->pol.cgroup_cpus_x100 % 100, buf);
		else
			printf("  cgroup CPU limit: none (cpu.max \"%s\")\n", buf);
	} else {
		char q[64], p[64];
		if (read_small("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", q, sizeof q) &&
		    read_small("/sys/fs/cgroup/cpu/cpu.cfs_period_us", p, sizeof p) && atoll(q) > 0 && atoll(p) > 0)
			printf("  cgroup CPU limit: %.2f CPUs (cgroup v1 quota %s/%s; numaheap reads only cgroup v2 cpu.max)\n",
			       (double)atoll(q) / (double)atoll(p), q, p);
		else
			printf("  cgroup CPU limit: none found (no cgroup v2 cpu.max at /sys/fs/cgroup)\n");
	}
	if (read_small("/sys/fs/cgroup/memory.max", buf, sizeof buf)) {
		if (!strcmp(buf, "max"))
			printf("  cgroup memory limit: none (memory.max \"max\")\n");
		else {
			char b[32];
			fmt_bytes(b, sizeof b, strtoull(buf, NULL, 10));
			printf("  cgroup memory limit: %s (memory.max; consider NUMAHEAP_MEMORY_LIMIT a little below it)\n", b);
		}
	}
	if (read_small("/sys/fs/cgroup/cpuset.cpus.effective", buf, sizeof buf) && *buf)
		printf("  cgroup cpuset: CPUs %s\n", buf);
}

/* The heap node numaheap gives CPU c. */
static int heap_of(const struct sim *s, int c)
{
	return s->pol.cpu_heap[c] >= 0 ? s->pol.cpu_heap[c] : __builtin_ctz(s->pol.heap_mask);
}

static bool cpu_allowed(const cpu_set_t *aff, bool have_aff, int c)
{
	return !have_aff || (c < CPU_SETSIZE && CPU_ISSET(c, aff));
}

/* CPU -> node -> heap node; CPUs alike grouped unless per_cpu_rows. */
static void show_cpu_heaps(const struct sim *s, cpu_set_t *aff, bool have_aff, bool per_cpu_rows)
{
	printf("  CPU -> heap node (a per-CPU P uses its CPU's heap; a per-thread P the heap of\n"
	       "  the CPU its thread first allocated on):\n");
	struct table tb;
	table_init(&tb, 4);
	tb.left[0] = true;
	table_header(&tb, "CPUs", "node", "heap node", "allowed", NULL);
	int n = s->topo.ncpus;
	for (int c = 0; c < n;) {
		int node = s->topo.cpu_node[c];
		int heap = heap_of(s, c);
		bool allowed = cpu_allowed(aff, have_aff, c);
		int e = c;
		while (!per_cpu_rows && e + 1 < n && s->topo.cpu_node[e + 1] == node && heap_of(s, e + 1) == heap &&
		       cpu_allowed(aff, have_aff, e + 1) == allowed)
			e++;
		int r = table_row(&tb);
		if (e == c)
			table_set(&tb, r, 0, "%d", c);
		else
			table_set(&tb, r, 0, "%d-%d", c, e);
		table_set(&tb, r, 1, "%d", node);
		table_set(&tb, r, 2, "%d", heap);
		table_set(&tb, r, 3, "%s", allowed ? "yes" : "no");
		c = e + 1;
	}
	table_print(&tb, stdout, "    ");
	table_free(&tb);
}

static void show_policy(const struct sim *s, cpu_set_t *aff, bool have_aff, bool per_cpu_rows)
{
	static const char *modes[] = {"local", "interleave", "off"};
	char b1[128], b2[128], b3[32];
	fmt_mask(b1, sizeof b1, s->topo.node_mask);
	printf("  nodes with memory: %s; CPUs possible: %d\n", b1, s->topo.ncpus);
	fmt_mask(b1, sizeof b1, s->pol.heap_mask);
	fmt_mask(b2, sizeof b2, s->pol.interleave_mask);
	int mode = s->pol.mode >= 0 && s->pol.mode <= 2 ? s->pol.mode : 0;
	printf("  NUMAHEAP_NUMA=%s, NUMAHEAP_NUMA_BIND=%s\n", modes[mode], s->pol.strict ? "strict" : "preferred");
	if (mode == NUMA_INTERLEAVE)
		printf("  one heap (node %s), its arenas interleaved over nodes %s\n", b1, b2);
	else if (mode == NUMA_OFF)
		printf("  one heap (node %s), no binding: the kernel places pages on first touch\n", b1);
	else if (s->topo.nnodes <= 1)
		printf("  one heap (node %s): a single node has memory, nothing to bind\n", b1);
	else
		printf("  heaps on nodes %s, each bound %s to its node\n", b1,
		       s->pol.strict ? "strictly (MPOL_BIND)" : "preferably (MPOL_PREFERRED)");
	if (s->warnings[0]) {
		printf("  start-up warnings with these settings:\n");
		for (const char *l = s->warnings; *l;) {
			size_t n = strcspn(l, "\n");
			printf("    %.*s\n", (int)n, l);
			l += n + (l[n] == '\n');
		}
	}
	fmt_bytes(b3, sizeof b3, s->cache_budget);
	fmt_bytes(b1, sizeof b1, (unsigned long long)s->opt.v[NH_OPTID_CACHE_BYTES]);
	if (s->cache_budget != (size_t)s->opt.v[NH_OPTID_CACHE_BYTES])
		printf("  cache budget per P: %s (NUMAHEAP_CACHE_BYTES %s scaled by the cgroup CPU limit over %d allowed CPUs)\n",
		       b3, b1, s->pol.allowed_cpus);
	else
		printf("  cache budget per P: %s (NUMAHEAP_CACHE_BYTES)\n", b3);

	show_cpu_heaps(s, aff, have_aff, per_cpu_rows);
}

static void show_cpu_mode(const struct sim *s)
{
	ptrdiff_t off = 0;
	unsigned size = 0;
	if (nh_rseq_glibc(&off, &size))
		printf("  glibc rseq: __rseq_size %u, __rseq_offset %td%s\n", size, off,
		       size ? "" : " (registration off, e.g. GLIBC_TUNABLES=glibc.pthread.rseq=0)");
	else
		printf("  glibc rseq: this glibc does not register rseq areas (before 2.35)\n");
	struct rseq_probe p = {ENOSYS, false};
	pthread_t th;
	if (pthread_create(&th, NULL, rseq_probe_thread, &p) == 0)
		pthread_join(th, NULL);
	else
		p.result = EAGAIN;
	if (p.glibc_registered)
		printf("  rseq registration: glibc's, on every thread\n");
	else if (p.result == 0)
		printf("  rseq registration: works (numaheap registers its own area per thread)\n");
	else
		printf("  rseq registration: fails (%s)%s\n", strerror(p.result),
		       p.result == ENOSYS ? ": the kernel (or valgrind) has no rseq" : "");
	bool percpu = s->opt.v[NH_OPTID_PERCPU] != 0;
	bool would = NH_RSEQ_SUPPORTED && percpu && p.result == 0;
	printf("  cpu_mode numaheap would choose: %s", would ? "rseq (one cache per CPU)" : "per-thread (one cache per thread)");
	if (!would)
		printf(" — %s", !percpu ? "NUMAHEAP_PERCPU=0" : "no restartable sequences");
	printf("\n  cpu_mode of this process: %s\n", nh_fast.cpu_mode == CPU_MODE_RSEQ ? "rseq" : "per-thread");
}

int cmd_topology(int argc, char **argv)
{
	struct setting *sets = xmalloc(sizeof *sets * (size_t)(argc + 1));
	int nsets = 0;
	bool per_cpu = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(topology_help, stdout);
			return 0;
		} else if (take_set_option("topology", argc, argv, &i, sets, &nsets)) {
			continue;
		} else if (!strcmp(a, "--cpus")) {
			per_cpu = true;
		} else {
			die_usage("topology", "unknown argument '%s'", a);
		}
	}
	static struct sim s;
	simulate(sets, nsets, &s);
	cpu_set_t aff;
	CPU_ZERO(&aff);
	bool have_aff = sched_getaffinity(0, sizeof aff, &aff) == 0;

	printf("numaheap %s topology", numaheap_version());
	for (int k = 0; k < nsets; k++)
		printf("%s NUMAHEAP_%s=%s", k ? "," : " with", opts[sets[k].opt].name, sets[k].value);
	printf("\n");
	section("Machine (hwloc)");
	show_hwloc();
	section("Huge pages");
	show_hugepages(&s);
	section("This process");
	show_process(&s, &aff, have_aff);
	section("Heaps (numaheap's NUMA policy)");
	show_policy(&s, &aff, have_aff, per_cpu);
	section("Caches");
	show_cpu_mode(&s);
	free(sets);
	return 0;
}

