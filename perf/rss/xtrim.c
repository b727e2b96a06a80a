/*
 * xtrim.c — malloc_trim(0) right after other threads freed most of what
 * they allocated: does the memory they freed come back?
 *
 *   xtrim [MIB] [THREADS]            defaults: 256 MiB, 2 threads
 *
 * THREADS threads allocate MIB MiB between them of blocks of 16-512 B
 * (log-uniform, every byte written), then each keeps the first tenth it
 * allocated and frees the rest in random order. While they wait, the main thread
 * calls malloc_trim(0) at once, then again after 3 s of idling. An
 * allocator with per-thread or per-CPU caches holds some of the freed
 * blocks there, and with them the pages they sit on, unless the trim
 * empties the caches of the other threads or CPUs too. Each point is
 * announced on stdout as "mark <name> <CLOCK_MONOTONIC s> <live bytes>";
 * xtrim.py reads VmRSS from outside at the marks.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_barrier_t filled, freed, done;
static size_t per_thread;
static _Atomic size_t live_bytes;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void mark(const char *name)
{
	printf("mark %s %.6f %zu\n", name, now(), (size_t)live_bytes);
	fflush(stdout);
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *worker(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	size_t cap = 1 << 16, n = 0, bytes = 0;
	unsigned char **v = malloc(cap * sizeof *v);
	size_t *len = malloc(cap * sizeof *len);
	while (bytes < per_thread) {
		double u = (double)(next(&s) >> 11) / 9007199254740992.0;
		size_t sz = (size_t)exp(log(16.0) + u * (log(512.0) - log(16.0)));
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof *v);
			len = realloc(len, cap * sizeof *len);
		}
		v[n] = malloc(sz);
		memset(v[n], (int)(n & 0xff), sz);
		len[n++] = sz;
		bytes += sz;
	}
	pthread_barrier_wait(&filled);
	/* The first tenth stays (a region of the heap in use); the rest goes,
	 * in random order, so what a cache keeps is spread over its pages. */
	size_t keep = n / 10, kept = 0;
	for (size_t i = n - 1; i > keep; i--) {
		size_t j = keep + next(&s) % (i - keep + 1);
		unsigned char *t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	for (size_t i = keep; i < n; i++)
		free(v[i]);
	for (size_t i = 0; i < keep; i++)
		kept += len[i];
	live_bytes += kept + cap * (sizeof *v + sizeof *len); /* the arrays live in the heap too */
	pthread_barrier_wait(&freed);
	pthread_barrier_wait(&done); /* alive until the main thread is done */
	for (size_t i = 0; i < keep; i++)
		free(v[i]);
	free(v);
	free(len);
	return NULL;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 256;
	int threads = argc > 2 ? atoi(argv[2]) : 2;
	if (threads < 1)
		threads = 1;
	per_thread = (mib << 20) / (size_t)threads;
	pthread_barrier_init(&filled, NULL, (unsigned)threads + 1);
	pthread_barrier_init(&freed, NULL, (unsigned)threads + 1);
	pthread_barrier_init(&done, NULL, (unsigned)threads + 1);
	pthread_t *t = malloc((size_t)threads * sizeof *t);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
	pthread_barrier_wait(&filled);
	mark("full");
	pthread_barrier_wait(&freed);
	mark("freed");
	malloc_trim(0);
	usleep(200000);
	mark("trimmed");
	sleep(3);
	mark("idle");
	malloc_trim(0);
	usleep(200000);
	mark("trimmed_idle");
	pthread_barrier_wait(&done);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	mark("end");
	return 0;
}
