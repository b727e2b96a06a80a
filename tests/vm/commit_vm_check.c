/*
 * commit_vm_check.c — numaheap under strict overcommit, for real: in the
 * VM (tests/vm, vm.commit2) it sets vm.overcommit_memory=2 with a commit
 * limit a few hundred MiB above what the system has committed, and runs
 * itself again under it (numaheap reserves its address space when it
 * starts, so the mode must be on before then). There the kernel charges
 * every private writable mapping in full, when it is mapped and again in
 * each forked child, and refuses what passes the limit. Checks:
 *
 *   charge   the process's private writable mappings (what the kernel
 *            charged it) stay small after some allocations
 *   fork     a server's pattern: NCHILD children alive at once, each
 *            allocating; every fork succeeds (it failed from the first
 *            one when numaheap mapped its tables writable: 630 MiB each)
 *   limit    1 MiB blocks until the limit: malloc gives NULL and ENOMEM,
 *            no signal, no OOM kill, a good share of the headroom used;
 *            after freeing them, calloc of 8 MiB works and reads zero
 *   small    64-byte objects until the limit: NULL and ENOMEM as well
 *
 * Lines "ok   [commit] ..." and "FAIL [commit] ..."; exit status 0 when
 * every check passed (vm.commit2 also fails on any "FAIL [").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <numa.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXN 8
#include "vm_check.h"
#include "../common/commit_charge.h"

#define HEADROOM_MIB 384 /* the commit limit above what is committed at start */
#define NCHILD 24

static long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static bool write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	bool good = fputs(s, f) >= 0;
	return fclose(f) == 0 && good;
}

static void check_charge(void)
{
	void *p[200];
	for (int i = 0; i < 200; i++)
		p[i] = malloc(16 + (size_t)i * 50);
	size_t mib = commit_charge_bytes() >> 20;
	check(mib <= 32, "charge: %zu MiB of private writable mappings after 200 allocations (at most 32)", mib);
	for (int i = 0; i < 200; i++)
		free(p[i]);
}

static void check_forks(void)
{
	int up[2], down[2];
	if (pipe(up) || pipe(down))
		die("pipe: %s", strerror(errno));
	pid_t kids[NCHILD];
	int forked = 0, err = 0;
	for (int i = 0; i < NCHILD; i++) {
		fflush(stdout);
		pid_t c = fork();
		if (c < 0) {
			err = errno;
			break;
		}
		if (c == 0) {
			close(down[1]); /* else the parent's close would not end the read below */
			close(up[0]);
			bool good = true;
			for (int k = 0; k < 100; k++) {
				char *q = malloc(1000 + (size_t)k * 100);
				good &= q != NULL;
				if (q)
					memset(q, k, 1000);
			}
			char b = good ? 'y' : 'n';
			if (write(up[1], &b, 1) != 1)
				_exit(3);
			if (read(down[0], &b, 1) < 0) /* held until every child is up */
				_exit(4);
			_exit(good ? 0 : 5);
		}
		kids[forked++] = c;
	}
	int good = 0;
	for (int i = 0; i < forked; i++) {
		char b;
		if (read(up[0], &b, 1) == 1 && b == 'y')
			good++;
	}
	close(down[1]); /* EOF: every child goes */
	int exited = 0;
	for (int i = 0; i < forked; i++) {
		int st;
		if (waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			exited++;
	}
	close(up[0]);
	close(up[1]);
	close(down[0]);
	check(forked == NCHILD, "fork: %d of %d children alive at once (%s)", forked, NCHILD,
	      err ? strerror(err) : "no error");
	check(good == forked && exited == forked, "fork: %d children allocated, %d exited cleanly", good, exited);
}

static void check_limit(void)
{
	enum { MAXB = 4096 };
	static void *b[MAXB];
	int n = 0;
	errno = 0;
	while (n < MAXB) {
		char *p = malloc(1 << 20);
		if (!p)
			break;
		for (size_t o = 0; o < (1 << 20); o += 4096)
			p[o] = 1; /* touched: the kernel must have what it promised */
		b[n++] = p;
	}
	int e = errno;
	check(n < MAXB && e == ENOMEM, "limit: malloc(1 MiB) gave NULL with ENOMEM after %d blocks (errno %d)", n, e);
	check(n >= HEADROOM_MIB / 3, "limit: %d MiB allocated before it (headroom %d MiB)", n, HEADROOM_MIB);
	for (int i = 0; i < n; i++)
		free(b[i]);
	unsigned char *z = calloc(1, 8 << 20);
	bool zero = z != NULL;
	for (size_t o = 0; z && o < (8 << 20); o += 512)
		zero &= z[o] == 0;
	check(zero, "limit: after freeing, calloc(8 MiB) works and reads zero");
	free(z);
}

static void check_small(void)
{
	long n = 0;
	errno = 0;
	while (n < 100000000) {
		char *p = malloc(64);
		if (!p)
			break;
		p[0] = 1;
		n++;
	}
	int e = errno;
	check(n < 100000000 && e == ENOMEM, "small: malloc(64) gave NULL with ENOMEM after %ld objects (errno %d)", n, e);
}

static int run(void)
{
	note("overcommit_memory %s, CommitLimit %ld kB, Committed_AS %ld kB", getenv("COMMIT_VM_MODE"),
	     meminfo_kb("CommitLimit"), meminfo_kb("Committed_AS"));
	check_charge();
	check_forks();
	check_limit();
	check_small();
	printf("%s [commit] %d passed, %d failed\n", nfail ? "FAIL" : "done", npass, nfail);
	return nfail ? 1 : 0;
}

int main(int argc, char **argv)
{
	(void)argc;
	mode_name = "commit";
	if (getenv("COMMIT_VM_CHILD"))
		return run();
	long committed = meminfo_kb("Committed_AS");
	char kb[32];
	snprintf(kb, sizeof kb, "%ld", committed + HEADROOM_MIB * 1024L);
	if (committed < 0 || !write_file("/proc/sys/vm/overcommit_kbytes", kb) ||
	    !write_file("/proc/sys/vm/overcommit_memory", "2"))
		die("cannot set strict overcommit (/proc/sys/vm): %s", strerror(errno));
	setenv("COMMIT_VM_CHILD", "1", 1);
	setenv("COMMIT_VM_MODE", "2", 1);
	return run_self_again(argv);
}
