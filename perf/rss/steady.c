/*
 * steady.c — a steady heap of small objects, released and grown back:
 * does it keep its huge pages?
 *
 *   steady [MIB] [CHURN_SECONDS] [IDLE_SECONDS]   defaults: 512 MiB, 3 s, 4 s
 *
 * Phases, each announced on stdout as
 *   "mark <name> <CLOCK_MONOTONIC s> <live bytes> <Anonymous KiB> <AnonHugePages KiB> <Rss KiB>"
 * (the memory figures from /proc/self/smaps_rollup, read by the program
 * itself at the mark):
 *   grown     MIB MiB of objects of 16 B-1 KiB (log-uniform), every byte written
 *   steady1   CHURN_SECONDS of churn: a random object freed and a new one of
 *             a random size allocated, over and over (a server in steady use)
 *   freed     90% of the objects freed at random
 *   idle      IDLE_SECONDS of computing without an allocator call
 *   regrown   allocated back up to MIB MiB
 *   steady2   CHURN_SECONDS of churn again
 * Huge-page coverage is AnonHugePages / Anonymous; steady.py prints it for
 * every allocator side by side.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/rng.h"
#include "blocks.h"
static size_t next_size(void) { return (size_t)exp(log(16.0) + unit() * (log(1024.0) - log(16.0))); }


static long rollup(const char *key)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	if (!f)
		return -1;
	char line[256];
	long kb = -1;
	size_t k = strlen(key);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, k) && line[k] == ':')
			kb = strtol(line + k + 1, NULL, 10);
	fclose(f);
	return kb;
}

static void mark(const char *name)
{
	printf("mark %s %.6f %zu %ld %ld %ld\n", name, now(), live + cap * sizeof *v, rollup("Anonymous"),
	       rollup("AnonHugePages"), rollup("Rss"));
	fflush(stdout);
}

static unsigned char *alloc_one(size_t s)
{
	unsigned char *p = malloc(s);
	if (!p) {
		fprintf(stderr, "steady: malloc(%zu) failed\n", s);
		exit(1);
	}
	memset(p, (int)(s & 0xff), s);
	return p;
}

static void grow(size_t target)
{
	while (live < target) {
		size_t s = next_size();
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			v = realloc(v, cap * sizeof *v);
			if (!v) {
				fprintf(stderr, "steady: out of memory\n");
				exit(1);
			}
		}
		v[n++] = (struct blk){alloc_one(s), s};
		live += s;
	}
}

static void churn(double seconds)
{
	double end = now() + seconds;
	while (now() < end)
		for (int k = 0; k < 4096; k++) {
			size_t i = rng() % n, s = next_size();
			free(v[i].p);
			live -= v[i].size;
			v[i] = (struct blk){alloc_one(s), s};
			live += s;
		}
}

int main(int argc, char **argv)
{
	size_t target = (size_t)(argc > 1 ? atol(argv[1]) : 512) << 20;
	double churn_s = argc > 2 ? atof(argv[2]) : 3.0;
	double idle_s = argc > 3 ? atof(argv[3]) : 4.0;
	mark("start");
	grow(target);
	mark("grown");
	churn(churn_s);
	mark("steady1");
	free_most(0);
	mark("freed");
	uint64_t h = compute(idle_s);
	mark("idle");
	grow(target);
	mark("regrown");
	churn(churn_s);
	mark("steady2");
	printf("done objects=%zu live=%zu hash=%llu\n", n, live, (unsigned long long)(h & 0xff));
	return 0;
}
