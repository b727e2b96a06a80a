/*
 * static_check.c — a program linked with the static library (libnumaheap.a).
 *
 * Linked statically against numaheap, the program's own malloc and free
 * come from numaheap, and so do the C library's internal calls to them
 * (strdup, fopen, asprintf, getline...), since the executable's definitions
 * interpose on libc's (or, fully static, replace them). It checks that
 * numaheap serves every one of those allocations, that they work (threads
 * included), and that the statistics count them. Prints "static_check: ok"
 * and exits 0, or names each failure and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numaheap.h"

static int failures;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "static_check: %s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                                    \
			failures++;                                                  \
		}                                                                    \
	} while (0)

static unsigned long long json_number(const char *json, const char *key_path)
{
	/* Finds key_path (e.g. "\"totals\":{\"allocs\":") and reads the number after it. */
	const char *p = strstr(json, key_path);
	if (!p)
		return 0;
	return strtoull(p + strlen(key_path), NULL, 10);
}

static void *worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	void *keep[256] = {0};
	unsigned long sum = 0;
	for (int i = 0; i < 100000; i++) {
		int k = (int)((i * 7 + id) % 256);
		free(keep[k]);
		size_t n = 8 + (size_t)((i * 131 + id * 17) % 3000);
		keep[k] = malloc(n);
		if (!keep[k])
			return (void *)1;
		memset(keep[k], (int)id + 1, n);
		sum += ((unsigned char *)keep[k])[n - 1];
	}
	int bad = numaheap_node_of(keep[0]) < 0 && keep[0] != NULL;
	for (int k = 0; k < 256; k++)
		free(keep[k]);
	return (void *)(uintptr_t)(bad || sum == 0);
}

int main(void)
{
	int x = 0;
	/* The program's own allocations. */
	void *p = malloc(16);
	CHECK(p != NULL);
	CHECK(numaheap_node_of(p) == 0 || numaheap_node_of(p) > 0);
	int node = numaheap_node_of(p);
	CHECK(numaheap_node_of(&x) == -1);
	void *big = malloc(5 << 20);
	CHECK(big != NULL && numaheap_node_of(big) >= 0);
	void *z = calloc(1000, 8);
	CHECK(z != NULL && numaheap_node_of(z) >= 0 && ((char *)z)[7999] == 0);
	void *a = NULL;
	CHECK(posix_memalign(&a, 4096, 100) == 0 && ((uintptr_t)a & 4095) == 0 && numaheap_node_of(a) >= 0);
	void *r = realloc(p, 100000);
	CHECK(r != NULL && numaheap_node_of(r) >= 0 && malloc_usable_size(r) >= 100000);
	errno = 0;
	CHECK(malloc(SIZE_MAX / 2) == NULL && errno == ENOMEM);

	/* The C library's own allocations. */
	char *s = strdup("static numaheap");
	CHECK(s != NULL && numaheap_node_of(s) >= 0);
	char *msg = NULL;
	CHECK(asprintf(&msg, "%s %d %s", s, 42, "asprintf") > 0 && numaheap_node_of(msg) >= 0);
	FILE *f = tmpfile();
	CHECK(f != NULL);
	if (f) {
		for (int i = 0; i < 1000; i++)
			fprintf(f, "line %d of the temporary file %s\n", i, msg);
		rewind(f);
		char *line = NULL;
		size_t cap = 0;
		long lines = 0;
		while (getline(&line, &cap, f) > 0)
			lines++;
		CHECK(lines == 1000);
		CHECK(line != NULL && numaheap_node_of(line) >= 0);
		free(line);
		fclose(f);
	}
	free(msg);
	free(s);

	/* Threads. */
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
	for (int i = 0; i < 4; i++) {
		void *ret = (void *)1;
		pthread_join(t[i], &ret);
		CHECK(ret == NULL);
	}

	/* The statistics saw it all. */
	static char json[1 << 16];
	size_t need = numaheap_stats_json(json, sizeof json);
	CHECK(need > 0 && need < sizeof json);
	CHECK(strstr(json, "\"cpu_mode\":\"") != NULL);
	unsigned long long allocs = json_number(json, "\"totals\":{\"allocs\":");
	CHECK(allocs >= 400000);
	CHECK(json_number(json, "\"large\":{\"allocs\":") >= 1);
	CHECK(strcmp(numaheap_version(), NUMAHEAP_VERSION_STRING) == 0);

	free(r);
	free(a);
	free(z);
	free(big);
	printf("static_check: node %d, %llu allocations counted by numaheap\n", node, allocs);
	if (failures) {
		fprintf(stderr, "static_check: %d check(s) failed\n", failures);
		return 1;
	}
	printf("static_check: ok\n");
	return 0;
}
