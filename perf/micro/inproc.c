/*
 * inproc.c — the malloc/free pair of several allocators, alternated inside
 * one process (micro.py --inproc).
 *
 *   inproc [-k K] SIZE ROUNDS PAIRS LIB...
 *   inproc -r N SIZE ROUNDS PAIRS LIB...
 *
 * Each LIB (a shared object exporting malloc and free) is opened with
 * dlopen(RTLD_LOCAL | RTLD_DEEPBIND) and called through function pointers.
 * A round runs PAIRS malloc(SIZE)/free pairs (one byte of each object
 * written, as in micro.c's lifo k=1) under every library in turn, the
 * order rotating from round to round. On a shared machine whose speed
 * drifts by a third from one second to the next, runs of a few
 * milliseconds alternated this way see the same machine, which separate
 * processes a second apart do not.
 *
 * With -k K, a round makes its pairs in batches as micro.c's lifo K does:
 * K mallocs, then K frees, last allocated first (K objects live at once).
 *
 * With -r N, micro.c's random working set: each library keeps N live
 * objects of 16..SIZE bytes (its own, made before the first round), and a
 * pair frees a random one and puts a new object of a random size in its
 * slot. Every library sees the same sequence of slots and sizes in a
 * round (the generator restarts from the round's seed).
 *
 * Prints one line per library: "<lib> <min> <p25> <median>" (ns per pair,
 * wall time of each round). The process's own malloc (glibc's, for
 * printf) is none of these: the libraries serve only the calls made
 * through their pointers.
 *
 * Libraries built with initial-exec TLS (jemalloc) need room in glibc's
 * static TLS block: micro.py sets GLIBC_TUNABLES=glibc.rtld.optional_static_tls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *checked(void *p, size_t size)
{
	if (!p) {
		fprintf(stderr, "inproc: malloc(%zu) failed\n", size);
		exit(1);
	}
	return p;
}

static long batch = 1; /* -k */
static void **live;    /* batch objects */
static long nrandom;   /* -r: the working set's size, 0 for LIFO pairs */
static void ***sets;   /* -r: each library's working set */
#include "../lib/rng.h" /* rng_state is set at run time */

/* -r: n steps on working set v of nrandom objects of 16..size bytes. */
__attribute__((noinline)) static void steps(malloc_fn m, free_fn f, void **v, size_t size, long n)
{
	for (long s = 0; s < n; s++) {
		uint64_t r = rng();
		long i = (long)((r >> 32) % (uint64_t)nrandom);
		size_t sz = 16 + (size_t)((r & 0xffffffffu) % (size - 16 + 1));
		f(v[i]);
		v[i] = checked(m(sz), sz);
		*(volatile char *)v[i] = 1;
	}
}

/* Out of line, so that every library runs the same loop. */
__attribute__((noinline)) static void pairs(malloc_fn m, free_fn f, size_t size, long n)
{
	if (batch == 1) {
		for (long i = 0; i < n; i++) {
			void *p = checked(m(size), size);
			*(volatile char *)p = 1;
			f(p);
		}
		return;
	}
	for (long i = 0; i < n; i += batch) {
		for (long j = 0; j < batch; j++) {
			live[j] = checked(m(size), size);
			*(volatile char *)live[j] = 1;
		}
		for (long j = batch - 1; j >= 0; j--)
			f(live[j]);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "-k") == 0) {
		batch = atol(argv[2]);
		argv += 2;
		argc -= 2;
	} else if (argc > 2 && strcmp(argv[1], "-r") == 0) {
		nrandom = atol(argv[2]);
		argv += 2;
		argc -= 2;
		if (nrandom < 1)
			batch = 0;
	}
	if (argc < 5 || batch < 1) {
		fprintf(stderr, "usage: inproc [-k K | -r N] SIZE ROUNDS PAIRS LIB...\n");
		return 2;
	}
	live = calloc((size_t)batch, sizeof *live);
	size_t size = (size_t)atol(argv[1]);
	int rounds = atoi(argv[2]);
	long n = atol(argv[3]);
	int nlib = argc - 4;
	if (rounds < 1 || n < 1) {
		fprintf(stderr, "inproc: ROUNDS and PAIRS must be positive\n");
		return 2;
	}
	malloc_fn *m = calloc((size_t)nlib, sizeof *m);
	free_fn *f = calloc((size_t)nlib, sizeof *f);
	double *t = calloc((size_t)nlib * (size_t)rounds, sizeof *t);
	sets = calloc((size_t)nlib, sizeof *sets);
	if (!m || !f || !t || !live || !sets)
		return 1;
	if (nrandom && size < 16) {
		fprintf(stderr, "inproc: -r wants SIZE >= 16\n");
		return 2;
	}
	for (int i = 0; i < nlib; i++) {
		void *h = dlopen(argv[4 + i], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
		if (!h) {
			fprintf(stderr, "inproc: %s\n", dlerror());
			return 1;
		}
		m[i] = (malloc_fn)dlsym(h, "malloc");
		f[i] = (free_fn)dlsym(h, "free");
		if (!m[i] || !f[i]) {
			fprintf(stderr, "inproc: %s has no malloc or free\n", argv[4 + i]);
			return 1;
		}
		if (!nrandom) {
			pairs(m[i], f[i], size, n); /* warm up: caches filled, code resident */
			continue;
		}
		sets[i] = calloc((size_t)nrandom, sizeof(void *));
		if (!sets[i])
			return 1;
		rng_state = 0x9e3779b97f4a7c15ULL;
		for (long j = 0; j < nrandom; j++)
			sets[i][j] = checked(m[i](16 + (size_t)((rng() >> 32) % (size - 15))), size);
		steps(m[i], f[i], sets[i], size, nrandom); /* warm up: steady state */
	}
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < nlib; k++) {
			int i = (k + r) % nlib;
			rng_state = 0x2545f4914f6cdd1dULL * (uint64_t)(r + 1) | 1;
			double t0 = now_ns();
			if (nrandom)
				steps(m[i], f[i], sets[i], size, n);
			else
				pairs(m[i], f[i], size, n);
			t[(size_t)i * (size_t)rounds + (size_t)r] = (now_ns() - t0) / (double)n;
		}
	for (int i = 0; i < nlib; i++) {
		double *x = t + (size_t)i * (size_t)rounds;
		qsort(x, (size_t)rounds, sizeof *x, cmp_double);
		printf("%s %.3f %.3f %.3f\n", argv[4 + i], x[0], x[rounds / 4], x[rounds / 2]);
	}
	return 0;
}
