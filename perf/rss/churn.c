/*
 * churn.c — a busy server after a mass delete: does the memory come back
 * while the program keeps allocating?
 *
 *   churn [MIB] [SECONDS] [KEEP_PERCENT]   defaults: 1024 MiB, 12 s, 20%
 *
 * Fills MIB MiB with blocks of 16 B-1 KiB (log-uniform, every byte
 * written: a cache of small values), frees all but KEEP_PERCENT of them at
 * random (a mass delete), then, for SECONDS, replaces a random live block
 * with a new one of a random size as fast as it can: the live heap stays
 * the same size, the program never idles and never calls malloc_trim.
 * perf/rss/mixed.c's idle phase is where an allocator's background release
 * shows; here only what its allocation policy does shows: which free
 * slots new blocks go to, and so whether the sparse spans (pages, slabs)
 * the delete left ever empty out. Prints, on stdout,
 *   "mark <name> <seconds since the churn began> <RSS KiB> <live bytes> <replacements>"
 * at "full", "deleted" and every second of the churn ("t1", "t2", ...);
 * RSS is the process's own (/proc/self/statm, read without stdio); live
 * bytes are the blocks' requested sizes plus the program's table of them.
 * churn.py runs it under numaheap and the peers.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NHB_RNG_SEED 0x6a09e667f3bcc909ULL
#include "../lib/rng.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident KiB, from /proc/self/statm's second field (pages). */
static long rss_kib(void)
{
	static char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t k = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (k <= 0)
		return -1;
	buf[k] = 0;
	char *p = strchr(buf, ' ');
	return p ? atol(p + 1) * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

static size_t block_size(void) { return (size_t)exp(log(16.0) + unit() * (log(1024.0) - log(16.0))); }

struct blk {
	unsigned char *p;
	size_t size;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fprintf(stderr, "churn: malloc(%zu) failed\n", n);
		exit(1);
	}
	return p;
}

static void mark(const char *name, double t, size_t live, long ops)
{
	printf("mark %s %.3f %ld %zu %ld\n", name, t, rss_kib(), live, ops);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	size_t target = (size_t)(argc > 1 ? atol(argv[1]) : 1024) << 20;
	double seconds = argc > 2 ? atof(argv[2]) : 12.0;
	unsigned keep_pct = argc > 3 ? (unsigned)atoi(argv[3]) : 20;
	/* Blocks average ~240 bytes: the fill ends long before cap. */
	size_t cap = target / 64 + 1, n = 0, live = 0;
	struct blk *v = xmalloc(cap * sizeof *v);
	while (live < target && n < cap) {
		size_t s = block_size();
		v[n].p = xmalloc(s);
		memset(v[n].p, (int)(n & 0xff), s);
		v[n].size = s;
		live += s;
		n++;
	}
	size_t table = n * sizeof *v; /* the part of v the program touched, counted as live */
	mark("full", 0, live + table, 0);
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (rng() % 100 < keep_pct) {
			v[kept++] = v[i];
		} else {
			free(v[i].p);
			live -= v[i].size;
		}
	}
	n = kept;
	mark("deleted", 0, live + table, 0);
	double t0 = now(), next = t0 + 1;
	long ops = 0;
	char name[16];
	for (int second = 1; second <= (int)seconds;) {
		for (int k = 0; k < 4096; k++, ops++) {
			struct blk *b = &v[rng() % n];
			free(b->p);
			live -= b->size;
			b->size = block_size();
			b->p = xmalloc(b->size);
			memset(b->p, (int)(ops & 0xff), b->size);
			live += b->size;
		}
		double t = now();
		if (t >= next) {
			snprintf(name, sizeof name, "t%d", second);
			mark(name, t - t0, live + table, ops);
			second++;
			next += 1;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].p);
	free(v);
	return 0;
}
