/*
 * kbypass.c — repeat one allocation phase and let the kernel counters show
 * which allocators enter the kernel in steady state.
 *
 *   kbypass PHASES [MIB_IN_FLIGHT]
 *
 * A phase allocates a fixed sequence of objects (the same every phase, from a
 * fixed seed) until MIB_IN_FLIGHT (default 256) MiB are live, writes every
 * byte of every object, then frees them all in a shuffled order. A third of
 * the bytes are small objects (16 B..1 KiB), a third medium (1..32 KiB) and a
 * third large (32 KiB..1 MiB), log-uniform within each band, interleaved.
 *
 * perf/kbypass/kbypass.py runs it with 1 phase and with 21 and subtracts, so
 * that start-up, the first phase (which must fault its memory in once) and
 * exit cancel out: what is left is what 20 steady-state phases cost in system
 * calls and page faults. On exit it prints one line to stdout:
 *   phases=N objects=N bytes=N ms_per_phase=X minflt=N majflt=N
 * (minflt/majflt from getrusage, the fallback fault count when perf is absent).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define NHB_RNG_SEED 0x2545f4914f6cdd1dULL
#include "../lib/rng.h"


static size_t log_uniform(double lo, double hi)
{
	return (size_t)exp(log(lo) + unit() * (log(hi) - log(lo)));
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: kbypass PHASES [MIB_IN_FLIGHT]\n");
		return 2;
	}
	long phases = atol(argv[1]);
	size_t budget = (size_t)(argc > 2 ? atol(argv[2]) : 256) << 20;

	/* The phase's recipe: sizes, and the order of the frees. Built once, with
	 * the C library's allocator before any measured phase (its own memory is a
	 * constant of every run, cancelled by the subtraction). */
	size_t cap = 1 << 20, n = 0, band_bytes[3] = {0, 0, 0};
	size_t *size = malloc(cap * sizeof *size);
	const double lo[3] = {16, 1024, 32768}, hi[3] = {1024, 32768, 1048576};
	while (band_bytes[0] + band_bytes[1] + band_bytes[2] < budget) {
		/* pick the band that is furthest behind its third of the bytes */
		int b = 0;
		for (int i = 1; i < 3; i++)
			if (band_bytes[i] < band_bytes[b])
				b = i;
		size_t s = log_uniform(lo[b], hi[b]);
		band_bytes[b] += s;
		if (n == cap)
			size = realloc(size, (cap *= 2) * sizeof *size);
		size[n++] = s;
	}
	size_t *order = malloc(n * sizeof *order);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(rng() % (i + 1));
		size_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	char **obj = malloc(n * sizeof *obj);
	if (!size || !order || !obj) {
		fprintf(stderr, "kbypass: out of memory\n");
		return 1;
	}

	double t0 = now_ms(), first = 0;
	uint64_t sum = 0;
	for (long p = 0; p < phases; p++) {
		for (size_t i = 0; i < n; i++) {
			obj[i] = malloc(size[i]);
			if (!obj[i]) {
				fprintf(stderr, "kbypass: malloc(%zu) failed\n", size[i]);
				return 1;
			}
			memset(obj[i], (int)(i + (size_t)p), size[i]);
		}
		for (size_t i = 0; i < n; i++)
			sum += (unsigned char)obj[i][size[i] - 1];
		for (size_t i = 0; i < n; i++)
			free(obj[order[i]]);
		if (p == 0)
			first = now_ms() - t0;
	}
	double total = now_ms() - t0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	size_t bytes = band_bytes[0] + band_bytes[1] + band_bytes[2];
	printf("phases=%ld objects=%zu bytes=%zu first_ms=%.2f ms_per_later_phase=%.3f minflt=%ld majflt=%ld check=%llu\n",
	       phases, n, bytes, first, phases > 1 ? (total - first) / (double)(phases - 1) : 0.0, ru.ru_minflt,
	       ru.ru_majflt, (unsigned long long)(sum & 0xff));
	free(obj);
	free(order);
	free(size);
	return 0;
}
