/*
 * stats_prog.c — a small workload for the docs and tool tests: small objects
 * of every class and large ones, from two threads, some freed by the other
 * thread, some kept, then malloc_trim. Run under `numaheap run` (LD_PRELOAD);
 * it is not linked with numaheap itself. Exits 0 when its checks pass.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4000

static void *objs[2][N];

static void *work(void *arg)
{
	void **o = arg;
	for (int i = 0; i < N; i++) {
		size_t size = i % 10 == 0 ? 40000 + (size_t)i * 16 : (size_t)(i % 400) * 80 + 1;
		o[i] = malloc(size);
		if (!o[i])
			return (void *)1;
		memset(o[i], i & 0xff, size < 64 ? size : 64);
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	void *r1 = NULL;
	if (pthread_create(&t, NULL, work, objs[1]) != 0)
		return 1;
	void *r0 = work(objs[0]);
	pthread_join(t, &r1);
	if (r0 || r1) {
		fprintf(stderr, "stats_prog: malloc failed\n");
		return 1;
	}
	/* Free three quarters: the other thread's objects too (cross-thread frees). */
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < N; i++)
			if (i % 4 != 0) {
				if (((unsigned char *)objs[k][i])[0] != (unsigned char)(i & 0xff)) {
					fprintf(stderr, "stats_prog: object %d of thread %d corrupted\n", i, k);
					return 1;
				}
				free(objs[k][i]);
				objs[k][i] = NULL;
			}
	malloc_trim(0);
	void *c = calloc(1000, 8);
	if (!c)
		return 1;
	free(c);
	printf("stats_prog: ok\n");
	return 0;
}
