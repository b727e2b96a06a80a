/*
 * micro.c — the cost of a malloc/free pair, for whichever malloc is loaded
 * (run it under LD_PRELOAD=<allocator>.so; perf/micro/micro.py does).
 *
 *   micro lifo K SIZE PAIRS        allocate K objects of SIZE bytes, free them
 *                                  in reverse order; repeat until PAIRS pairs
 *   micro random N LO HI STEPS     N slots of live objects of LO..HI bytes;
 *                                  each step frees a random slot and puts a
 *                                  new object of a random size in it
 *   micro prodcons LO HI PAIRS     thread A mallocs (LO..HI bytes), passes the
 *                                  pointer through a ring to thread B, which
 *                                  frees it
 *
 * Every object gets one byte written (programs touch what they allocate, and
 * it keeps the compiler from pairing malloc with free away). Prints one line:
 * "<CPU ns per pair> <wall ns per pair> <pairs>". The instruction-count mode of micro.py runs
 * "lifo 1 64 N" under callgrind for two N and takes the difference, less the
 * instructions of bench_lifo itself (kept out of line for that).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Both clocks: CPU time is what the single-threaded benchmarks report (it does
 * not count time the process spent preempted on a busy machine); wall time is
 * what producer/consumer reports (two threads, one waiting on the other). */
struct stamp {
	double wall, cpu;
};
static struct stamp now(void)
{
	return (struct stamp){clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_PROCESS_CPUTIME_ID)};
}
static void report(struct stamp t0, double pairs)
{
	struct stamp t1 = now();
	printf("%.3f %.3f %.0f\n", (t1.cpu - t0.cpu) / pairs, (t1.wall - t0.wall) / pairs, pairs);
}

#include "../lib/rng.h"

static inline size_t rand_size(size_t lo, size_t hi)
{
	return lo + (size_t)((rng() >> 32) % (hi - lo + 1));
}

static inline __attribute__((always_inline)) void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fprintf(stderr, "micro: malloc(%zu) failed\n", n);
		exit(1);
	}
	*(volatile char *)p = 1;
	return p;
}

/* ---- (a) LIFO batches -------------------------------------------------------- */

static __attribute__((noinline)) void bench_lifo(long k, size_t size, long pairs)
{
	void **v = calloc((size_t)k, sizeof *v);
	long rounds = pairs / k;
	if (rounds < 1)
		rounds = 1;
	/* warm-up: one round primes the caches of every allocator */
	for (long j = 0; j < k; j++)
		v[j] = xmalloc(size);
	for (long j = k - 1; j >= 0; j--)
		free(v[j]);
	struct stamp t0 = now();
	if (k == 1) {
		for (long r = 0; r < rounds; r++) {
			void *p = xmalloc(size);
			__asm__ volatile("" : : "r"(p) : "memory");
			free(p);
		}
	} else {
		for (long r = 0; r < rounds; r++) {
			for (long j = 0; j < k; j++)
				v[j] = xmalloc(size);
			for (long j = k - 1; j >= 0; j--)
				free(v[j]);
		}
	}
	report(t0, (double)rounds * (double)k);
	free(v);
}

/* ---- (b) random working set ---------------------------------------------------- */

static void bench_random(long n, size_t lo, size_t hi, long steps)
{
	void **slot = malloc((size_t)n * sizeof *slot);
	for (long i = 0; i < n; i++)
		slot[i] = xmalloc(rand_size(lo, hi));
	/* warm-up: one pass of n steps, so that the measured part is steady state */
	for (long s = 0; s < n; s++) {
		long i = (long)((rng() >> 32) % (uint64_t)n);
		free(slot[i]);
		slot[i] = xmalloc(rand_size(lo, hi));
	}
	struct stamp t0 = now();
	for (long s = 0; s < steps; s++) {
		uint64_t r = rng();
		long i = (long)((r >> 32) % (uint64_t)n);
		size_t sz = lo + (size_t)((r & 0xffffffffu) % (hi - lo + 1));
		free(slot[i]);
		slot[i] = xmalloc(sz);
	}
	report(t0, (double)steps);
	for (long i = 0; i < n; i++)
		free(slot[i]);
	free(slot);
}

/* ---- (c) producer/consumer ---------------------------------------------------- */

#define RING 1024 /* power of two */
static struct {
	_Alignas(64) _Atomic uint64_t head; /* written by the producer */
	_Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
	_Alignas(64) void *slot[RING];
} ring;
static long pc_pairs;
static size_t pc_lo, pc_hi;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* Spin a little, then give the CPU away: with two threads on a machine of few
 * CPUs, the one waiting must not burn the time slice the other one needs. */
static inline void wait_a_bit(unsigned *spins)
{
	if (++*spins < 128) {
		cpu_relax();
	} else {
		*spins = 0;
		sched_yield();
	}
}

static void *consumer(void *arg)
{
	uint64_t tail = 0, total = (uint64_t)pc_pairs;
	while (tail < total) {
		uint64_t head;
		unsigned spins = 0;
		while ((head = atomic_load_explicit(&ring.head, memory_order_acquire)) == tail)
			wait_a_bit(&spins);
		for (; tail < head; tail++)
			free(ring.slot[tail & (RING - 1)]);
		atomic_store_explicit(&ring.tail, tail, memory_order_release);
	}
	return arg;
}

static void bench_prodcons(size_t lo, size_t hi, long pairs)
{
	pc_pairs = pairs;
	pc_lo = lo;
	pc_hi = hi;
	pthread_t t;
	struct stamp t0 = now();
	if (pthread_create(&t, NULL, consumer, NULL) != 0) {
		fprintf(stderr, "micro: pthread_create failed\n");
		exit(1);
	}
	uint64_t head = 0, tail_seen = 0;
	for (long i = 0; i < pairs; i++) {
		unsigned spins = 0;
		while (head - tail_seen >= RING) {
			tail_seen = atomic_load_explicit(&ring.tail, memory_order_acquire);
			if (head - tail_seen >= RING)
				wait_a_bit(&spins);
		}
		ring.slot[head & (RING - 1)] = xmalloc(lo == hi ? lo : rand_size(lo, hi));
		head++;
		atomic_store_explicit(&ring.head, head, memory_order_release);
	}
	pthread_join(t, NULL);
	report(t0, (double)pairs);
}

static void usage(void)
{
	fprintf(stderr, "usage: micro lifo K SIZE PAIRS | random N LO HI STEPS | prodcons LO HI PAIRS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "lifo") && argc == 5)
		bench_lifo(atol(argv[2]), (size_t)atol(argv[3]), atol(argv[4]));
	else if (!strcmp(argv[1], "random") && argc == 6)
		bench_random(atol(argv[2]), (size_t)atol(argv[3]), (size_t)atol(argv[4]), atol(argv[5]));
	else if (!strcmp(argv[1], "prodcons") && argc == 5)
		bench_prodcons((size_t)atol(argv[2]), (size_t)atol(argv[3]), atol(argv[4]));
	else
		usage();
	return 0;
}
