/*
 * prof_prog.c — allocations from known call sites in known proportions, for
 * checking numaheap's heap profile against the truth (prof_check.py).
 *
 *   prof_prog OUT [threads]
 *
 * Live at the dump, by in-use bytes: site_small 50% (64 B blocks), site_medium
 * 30% (1 KiB blocks), site_large 20% (96 KiB blocks), 96 MiB in all; site_churn
 * allocates as much again and frees it all (alloc_space only). Three more
 * sites, 37 MiB, take the other ways to a size class: site_calloc (calloc
 * of 100 B, a size between classes) 16 MiB, site_aligned (aligned_alloc of
 * 192 B at 64) 12 MiB, site_mid (malloc of 3000 B, a class past malloc's
 * fast path) 9 MiB. With a thread
 * count, each thread allocates its share (the VM test pins the threads to
 * different nodes). Prints the live bytes of each site, then dumps the profile
 * with numaheap_prof_dump (or, under another allocator, does nothing more).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Weak: the program also runs under other allocators (gperftools' heap
 * profiler), where it only allocates and exits. */
extern int numaheap_prof_dump(const char *path) __attribute__((weak));

#define TOTAL ((size_t)96 << 20)

static void *volatile sink;

__attribute__((noinline)) static void *site_small(void) { return malloc(64); }
__attribute__((noinline)) static void *site_medium(void) { return malloc(1024); }
__attribute__((noinline)) static void *site_large(void) { return malloc(96 << 10); }
__attribute__((noinline)) static void *site_calloc(void) { return calloc(1, 100); }
__attribute__((noinline)) static void *site_aligned(void) { return aligned_alloc(64, 192); }
__attribute__((noinline)) static void *site_mid(void) { return malloc(3000); }
#define CALLOC_BYTES ((size_t)16 << 20)
#define ALIGNED_BYTES ((size_t)12 << 20)
#define MID_BYTES ((size_t)9 << 20)
__attribute__((noinline)) static void site_churn(size_t bytes)
{
	for (size_t done = 0; done < bytes; done += 512) {
		sink = malloc(512);
		free(sink);
	}
}

struct share {
	int cpu;
	unsigned nthreads;
};

static void fill(void *(*site)(void), size_t size, size_t bytes)
{
	for (size_t done = 0; done < bytes; done += size) {
		char *p = site();
		if (!p) {
			fprintf(stderr, "prof_prog: malloc failed\n");
			exit(1);
		}
		memset(p, 1, size); /* resident, and kept: never freed */
	}
}

static void *worker(void *arg)
{
	struct share *s = arg;
	if (s->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(s->cpu, &set);
		sched_setaffinity(0, sizeof set, &set);
	}
	size_t part = TOTAL / s->nthreads;
	fill(site_small, 64, part / 10 * 5);
	fill(site_medium, 1024, part / 10 * 3);
	fill(site_large, 96 << 10, part / 10 * 2);
	fill(site_calloc, 100, CALLOC_BYTES / s->nthreads);
	fill(site_aligned, 192, ALIGNED_BYTES / s->nthreads);
	fill(site_mid, 3000, MID_BYTES / s->nthreads);
	site_churn(part);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: prof_prog OUT [threads]\n");
		return 2;
	}
	unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
	pthread_t t[64];
	struct share sh[64];
	for (unsigned i = 0; i < n && i < 64; i++) {
		sh[i] = (struct share){n > 1 ? (int)i : -1, n};
		pthread_create(&t[i], NULL, worker, &sh[i]);
	}
	for (unsigned i = 0; i < n && i < 64; i++)
		pthread_join(t[i], NULL);
	/* What fill allocated: whole blocks up to the share. */
#define LIVE(bytes, size) (((bytes) / n + (size) - 1) / (size) * (size) * n)
	printf("site_small %zu\nsite_medium %zu\nsite_large %zu\n", TOTAL / 10 * 5, TOTAL / 10 * 3, TOTAL / 10 * 2);
	printf("site_calloc %zu\nsite_aligned %zu\nsite_mid %zu\n", LIVE(CALLOC_BYTES, 100), LIVE(ALIGNED_BYTES, 192),
	       LIVE(MID_BYTES, 3000));
	if (numaheap_prof_dump && numaheap_prof_dump(argv[1]) != 0) {
		perror("numaheap_prof_dump");
		return 1;
	}
	return 0;
}
