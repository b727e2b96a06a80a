/*
 * bench.c — what the always-on checks and NUMAHEAP_HARDENED=1 cost.
 *
 *   bench CASE N      run N operations of CASE inside run_case() (for
 *                     callgrind --toggle-collect=run_case) and print
 *                     "CASE N ns_per_op" (process CPU time per operation)
 *
 * Cases (one operation = one malloc and one free, or one realloc step):
 *   pair16     malloc(16), write, free: the LIFO fast path
 *   pair256    the same at 256 B
 *   batch      256 objects of 16..1024 B, freed in a shuffled order
 *   medium     64 objects of 2..32 KiB, freed in reverse
 *   large      malloc(64 KiB), write a byte per page, free
 *   realloc    16 B grown by doubling to 64 KiB, then freed
 *
 * The allocator is whatever is loaded: LD_PRELOAD=libnumaheap.so (or
 * libnumaheap_unchecked.so); run.sh drives it.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *volatile sink;

static uint64_t rng = 88172645463325252ull;
static inline uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void pair(long n, size_t size)
{
	for (long i = 0; i < n; i++) {
		char *p = malloc(size);
		p[0] = (char)i;
		sink = p;
		free(p);
	}
}

static void batch(long n)
{
	enum { K = 256 };
	void *v[K];
	size_t sz[K];
	unsigned order[K];
	for (unsigned i = 0; i < K; i++) {
		sz[i] = 16 + next() % 1009;
		order[i] = i;
	}
	for (unsigned i = K - 1; i > 0; i--) {
		unsigned j = (unsigned)(next() % (i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (long done = 0; done < n; done += K) {
		for (unsigned i = 0; i < K; i++) {
			v[i] = malloc(sz[i]);
			*(char *)v[i] = 1;
		}
		for (unsigned i = 0; i < K; i++)
			free(v[order[i]]);
	}
}

static void medium(long n)
{
	enum { K = 64 };
	void *v[K];
	for (long done = 0; done < n; done += K) {
		for (unsigned i = 0; i < K; i++) {
			v[i] = malloc(2048 + (i * 7919) % 30720);
			*(char *)v[i] = 1;
		}
		for (int i = K - 1; i >= 0; i--)
			free(v[i]);
	}
}

static void large(long n)
{
	for (long i = 0; i < n; i++) {
		char *p = malloc(65536);
		for (int k = 0; k < 65536; k += 8192)
			p[k] = 1;
		sink = p;
		free(p);
	}
}

static void grow(long n)
{
	for (long done = 0; done < n;) {
		char *p = malloc(16);
		p[0] = 1;
		for (size_t s = 32; s <= 65536; s *= 2, done++) {
			p = realloc(p, s);
			p[s - 1] = 1;
		}
		free(p);
	}
}

__attribute__((noinline)) void run_case(const char *c, long n)
{
	if (!strcmp(c, "pair16"))
		pair(n, 16);
	else if (!strcmp(c, "pair256"))
		pair(n, 256);
	else if (!strcmp(c, "batch"))
		batch(n);
	else if (!strcmp(c, "medium"))
		medium(n);
	else if (!strcmp(c, "large"))
		large(n);
	else if (!strcmp(c, "realloc"))
		grow(n);
	else {
		fprintf(stderr, "bench: unknown case %s\n", c);
		exit(2);
	}
}

static double cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench pair16|pair256|batch|medium|large|realloc N\n");
		return 2;
	}
	long n = atol(argv[2]);
	run_case(argv[1], n / 10 + 1); /* warm up: caches, spans, arenas */
	double t0 = cpu_ns();
	run_case(argv[1], n);
	double t1 = cpu_ns();
	printf("%s %ld %.2f\n", argv[1], n, (t1 - t0) / n);
	return 0;
}
