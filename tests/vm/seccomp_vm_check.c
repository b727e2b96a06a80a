/*
 * seccomp_vm_check.c — numaheap under a seccomp filter that kills the
 * process at mbind, set_mempolicy, move_pages, migrate_pages and io_uring
 * (as systemd's SystemCallFilter= does by default), on a multi-node kernel,
 * where numaheap would otherwise bind every arena to its node with mbind.
 * Run inside a QEMU VM with several NUMA nodes (tools/numa-vm; ctest
 * vm.seccomp2).
 *
 * numaheap starts before main, so the program installs the filter and runs
 * itself again under it. The child: one thread per node, pinned to that
 * node's CPUs, allocates 24 MiB of 16 B-4 KiB blocks and 8 blocks of
 * 256 KiB-1 MiB, writing a pattern into each; then
 *
 *   alive   the child ran to the end (a forbidden call kills it: SIGSYS)
 *   basic   its statistics say "syscalls":"basic"
 *   node    get_mempolicy (allowed) puts >= 90% of each thread's pages on
 *           its node: with no mbind, the first touch places them, and the
 *           background thread faults nothing in ahead (prefault off)
 *   intact  every block reads back its pattern
 *   release after the frees and the scavenger's delay, memory went back
 *           (madvise; no io_uring)
 *
 * Lines "ok   [seccomp] ..." and "FAIL [seccomp] ..."; exit status 0 when
 * every check passed.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "numaheap.h"

#define MAXN 8
#include "vm_check.h"
#include "../common/seccomp_filter.h"

#define SMALL_BYTES ((size_t)24 << 20)
#define NLARGE 8

/* An error, not a kill, for set_mempolicy: libnuma (this program's, for
 * the topology) probes MPOL_PREFERRED_MANY with it when it loads. */
static void install_filter(void)
{
	static const long kill[] = {__NR_mbind,		__NR_move_pages,	 __NR_migrate_pages,
				    __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register};
	static const long deny[] = {__NR_set_mempolicy};
	if (!nh_seccomp_install(kill, sizeof kill / sizeof kill[0], deny, 1, EPERM, NULL, 0))
		die("seccomp filter: %s", strerror(errno));
}

struct worker {
	int node;
	pthread_t t;
	uint64_t **blocks;
	size_t *words;
	size_t n;
	size_t pages, on_node, unknown;
	bool intact;
};

static uint64_t pattern(size_t i, size_t w) { return (i * 0x9e3779b97f4a7c15ull) ^ w; }

/* The node of each page the blocks cover (each page once per block). */
static void count_pages(struct worker *w)
{
	long ps = sysconf(_SC_PAGESIZE);
	for (size_t i = 0; i < w->n; i++) {
		uintptr_t a = (uintptr_t)w->blocks[i] & ~(uintptr_t)(ps - 1);
		uintptr_t end = (uintptr_t)w->blocks[i] + w->words[i] * 8;
		for (; a < end; a += (uintptr_t)ps) {
			int node = -1;
			if (get_mempolicy(&node, NULL, 0, (void *)a, MPOL_F_NODE | MPOL_F_ADDR) != 0)
				w->unknown++;
			else if (node == w->node)
				w->on_node++;
			w->pages++;
		}
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	if (!pin_self(w->node))
		return NULL;
	size_t cap = SMALL_BYTES / 16 + NLARGE;
	w->blocks = xmap(cap * sizeof *w->blocks);
	w->words = xmap(cap * sizeof *w->words);
	uint64_t seed = 0x12345u + (uint64_t)w->node;
	size_t bytes = 0;
	while (bytes < SMALL_BYTES && w->n < cap - NLARGE) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		size_t sz = 16 + (size_t)(seed >> 33) % 4081;
		uint64_t *p = malloc(sz);
		if (!p)
			die("malloc(%zu) failed", sz);
		size_t nw = sz / 8;
		for (size_t k = 0; k < nw; k++)
			p[k] = pattern(w->n, k);
		w->blocks[w->n] = p;
		w->words[w->n++] = nw;
		bytes += sz;
	}
	for (int j = 0; j < NLARGE; j++) {
		size_t sz = ((size_t)256 << 10) << (j % 3);
		uint64_t *p = malloc(sz);
		if (!p)
			die("malloc(%zu) failed", sz);
		for (size_t k = 0; k < sz / 8; k++)
			p[k] = pattern(w->n, k);
		w->blocks[w->n] = p;
		w->words[w->n++] = sz / 8;
	}
	count_pages(w);
	w->intact = true;
	for (size_t i = 0; i < w->n; i++)
		for (size_t k = 0; k < w->words[i]; k++)
			if (w->blocks[i][k] != pattern(i, k))
				w->intact = false;
	for (size_t i = 0; i < w->n; i++)
		free(w->blocks[i]);
	return NULL;
}

static int child(void)
{
	mode_name = "seccomp";
	topology();
	struct worker w[MAXN];
	memset(w, 0, sizeof w);
	for (int n = 0; n < nnodes; n++) {
		w[n].node = n;
		if (pthread_create(&w[n].t, NULL, work, &w[n]) != 0)
			die("pthread_create: %s", strerror(errno));
	}
	for (int n = 0; n < nnodes; n++)
		pthread_join(w[n].t, NULL);
	for (int n = 0; n < nnodes; n++) {
		check(w[n].intact, "node %d: every block read back its pattern", n);
		check(w[n].pages > 0 && w[n].on_node * 10 >= w[n].pages * 9,
		      "node %d: %zu of %zu pages on the thread's node (%zu unknown; >= 90%%)", n, w[n].on_node, w[n].pages,
		      w[n].unknown);
	}
	check(strstr(stats_now(), "\"syscalls\":\"basic\"") != NULL, "the statistics say \"syscalls\":\"basic\"");
	double t0 = now();
	uint64_t released = 0;
	while (now() - t0 < 30 && (released = stats_counter("\"scavenged_bytes\":")) == 0)
		usleep(200000);
	check(released > 0, "the scavenger released %llu bytes after the frees (madvise)", (unsigned long long)released);
	check(true, "alive: no forbidden system call (a call would have killed the process)");
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "child") == 0)
		return child();
	mode_name = "seccomp";
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		install_filter();
		char *args[] = {argv[0], "child", NULL};
		execv("/proc/self/exe", args);
		printf("FAIL [seccomp] exec /proc/self/exe: %s\n", strerror(errno));
		_exit(2);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid: %s", strerror(errno));
	if (WIFSIGNALED(st)) {
		printf("FAIL [seccomp] the child was killed by signal %d (%s)\n", WTERMSIG(st), strsignal(WTERMSIG(st)));
		return 1;
	}
	return WEXITSTATUS(st);
}
