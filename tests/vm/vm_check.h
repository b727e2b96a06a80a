/*
 * vm_check.h — what the multi-node VM checks share (numa_vm_check.c, commit_vm_check.c,
 * prof_vm_check.c, evac_vm_check.c): "ok" and "FAIL" lines tagged with the mode under test,
 * a fatal exit, bookkeeping in mmap'd memory (never in the heap the checks
 * measure), the nodes' CPUs, pinning a thread to them, and numaheap's
 * statistics read into mmap'd memory. Include after the system headers, with
 * MAXN (the most nodes a check handles) defined.
 */
#ifndef NUMAHEAP_TESTS_VM_CHECK_H
#define NUMAHEAP_TESTS_VM_CHECK_H

static int npass, nfail;
static const char *mode_name = "";

static inline bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline bool check(bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s [%s] ", ok ? "ok  " : "FAIL", mode_name);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
	if (ok)
		npass++;
	else
		nfail++;
	return ok;
}

static inline void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("     [%s] ", mode_name);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
}

static inline void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FAIL [%s] fatal: ", mode_name);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
	exit(2);
}

static inline double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline void *xmap(size_t n)
{
	void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		die("mmap(%zu): %s", n, strerror(errno));
	return p;
}

static inline void xunmap(void *p, size_t n) { munmap(p, n ? n : 1); }

/* Run this program again, as a child, and return its status (1 if a
 * signal killed it): numaheap reads its settings when it starts, so a
 * check that changes them (the environment, a sysctl) runs in a process
 * started after the change. */
static inline int run_self_again(char **argv)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		execv("/proc/self/exe", argv);
		printf("FAIL [%s] exec /proc/self/exe: %s\n", mode_name, strerror(errno));
		_exit(2);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid: %s", strerror(errno));
	if (WIFSIGNALED(st)) {
		printf("FAIL [%s] the child was killed by signal %d\n", mode_name, WTERMSIG(st));
		return 1;
	}
	return WEXITSTATUS(st);
}

/* ---- topology ------------------------------------------------------------------------------ */

static int nnodes; /* nodes 0..nnodes-1, each with CPUs and memory */
static cpu_set_t node_cpus[MAXN];

static inline void topology(void)
{
	if (numa_available() < 0)
		die("libnuma: NUMA is not available on this kernel");
	int maxn = numa_max_node();
	if (maxn + 1 > MAXN)
		die("%d nodes: this test handles at most %d", maxn + 1, MAXN);
	nnodes = maxn + 1;
	int ncpu = numa_num_configured_cpus();
	for (int n = 0; n < nnodes; n++) {
		CPU_ZERO(&node_cpus[n]);
		for (int c = 0; c < ncpu && c < CPU_SETSIZE; c++)
			if (numa_node_of_cpu(c) == n)
				CPU_SET(c, &node_cpus[n]);
		long long free_b = 0;
		long long size = numa_node_size64(n, &free_b);
		if (CPU_COUNT(&node_cpus[n]) == 0 || size <= 0)
			die("node %d has %d CPUs and %lld bytes: every node needs both", n, CPU_COUNT(&node_cpus[n]),
			    size);
	}
}

/* Pin the calling thread to the CPUs of node n and make sure it runs there. */
static inline bool pin_self(int n)
{
	if (sched_setaffinity(0, sizeof node_cpus[n], &node_cpus[n]) != 0) {
		check(false, "sched_setaffinity to node %d: %s", n, strerror(errno));
		return false;
	}
	for (int i = 0; i < 1000; i++) {
		int cpu = sched_getcpu();
		if (cpu >= 0 && numa_node_of_cpu(cpu) == n)
			return true;
		sched_yield();
	}
	check(false, "thread pinned to node %d still runs on CPU %d", n, sched_getcpu());
	return false;
}

/* ---- numaheap's statistics ---------------------------------------------------------------- */

#include "numaheap.h"

static char *stats_buf;
static size_t stats_cap;

/* numaheap_stats_json into an mmap'd buffer (no heap allocation here). */
static inline const char *stats_now(void)
{
	for (;;) {
		if (!stats_buf) {
			stats_cap = 1 << 20;
			stats_buf = xmap(stats_cap);
		}
		size_t need = numaheap_stats_json(stats_buf, stats_cap);
		if (need < stats_cap)
			return stats_buf;
		xunmap(stats_buf, stats_cap);
		stats_cap = need + 4096;
		stats_buf = xmap(stats_cap);
	}
}

/* A counter of the statistics, by its key with the quotes and colon
 * ("\"base_collapses\":"); 0 if absent. */
static inline uint64_t stats_counter(const char *key)
{
	const char *f = strstr(stats_now(), key);
	return f ? strtoull(f + strlen(key), NULL, 10) : 0;
}

#endif /* NUMAHEAP_TESTS_VM_CHECK_H */
