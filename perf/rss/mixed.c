/*
 * mixed.c — a server-shaped heap, mostly freed: what stays resident?
 *
 *   mixed [MIB] [runs|runs:LEN|scattered] [IDLE_SECONDS]
 *                                       defaults: 1024 MiB, runs, 3 s
 *
 * Allocates MIB MiB of blocks of mixed sizes, writing every byte: most of
 * the blocks small (90% of them, 16-512 B), some of a few KiB (9%, 1-8 KiB),
 * a few large (1%, 64 KiB-1 MiB); by bytes that is about 4%, 10% and 86%,
 * log-uniform within each band. Then frees 90% of the
 * blocks:
 *   runs       the survivors are runs of 32 consecutive allocations, one
 *              run in ten (a cache keeping whole batches of related rows);
 *              runs:LEN, runs of LEN (the shorter, the nearer to scattered)
 *   scattered  every block survives alone, with probability 1/10 (the hard
 *              case: one live block pins its page)
 * then computes for IDLE_SECONDS without calling the allocator, then calls
 * malloc_trim(0). Each phase is announced on stdout as
 *   "mark <name> <CLOCK_MONOTONIC s> <live bytes>"
 * (live bytes: the surviving blocks' requested sizes plus the bookkeeping
 * array, which lives in the measured heap too); mixed.py samples VmRSS from
 * outside and reads RSS / live at the marks.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NHB_RNG_SEED 0x2545f4914f6cdd1dULL
#include "../lib/rng.h"
#include "blocks.h"


static void mark(const char *name)
{
	printf("mark %s %.6f %zu\n", name, now(), live + cap * sizeof *v);
	fflush(stdout);
}

static void fill(size_t target)
{
	while (live < target) {
		size_t s = mixed_size();
		unsigned char *p = malloc(s);
		if (!p) {
			fprintf(stderr, "mixed: malloc(%zu) failed\n", s);
			exit(1);
		}
		memset(p, (int)(s & 0xff), s);
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			v = realloc(v, cap * sizeof *v);
			if (!v) {
				fprintf(stderr, "mixed: out of memory\n");
				exit(1);
			}
		}
		v[n++] = (struct blk){p, s};
		live += s;
	}
}

int main(int argc, char **argv)
{
	size_t target = (size_t)(argc > 1 ? atol(argv[1]) : 1024) << 20;
	const char *pattern = argc > 2 ? argv[2] : "runs";
	size_t run_len = 0; /* scattered */
	if (!strcmp(pattern, "runs"))
		run_len = MIXED_RUN_LEN;
	else if (!strncmp(pattern, "runs:", 5))
		run_len = strtoul(pattern + 5, NULL, 10);
	if (!run_len && strcmp(pattern, "scattered")) {
		fprintf(stderr, "mixed: pattern %s: runs, runs:LEN (LEN > 0) or scattered\n", pattern);
		return 2;
	}
	double idle_s = argc > 3 ? atof(argv[3]) : 3.0;
	mark("start");
	fill(target);
	mark("full");
	free_most(run_len);
	mark("freed");
	uint64_t h = compute(idle_s);
	mark("idle");
	malloc_trim(0);
	usleep(200000);
	mark("trimmed");
	usleep(300000);
	mark("end");
	printf("done blocks=%zu live=%zu hash=%llu\n", n, live, (unsigned long long)(h & 0xff));
	return 0;
}
