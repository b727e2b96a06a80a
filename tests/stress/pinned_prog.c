/*
 * pinned_prog.c — a program that pins its main thread to one CPU before
 * anything of numaheap's starts (so the background thread, started from
 * it, inherits that one CPU), and a worker to another that frees what it
 * allocated there and then sleeps. It prints each thread's CPU list, then
 * the objects cached in every cache 0.3 s after the frees and 3.5 s after:
 * by then the worker's CPU has been idle past NUMAHEAP_CACHE_IDLE (2 s).
 * Run by pinned_test.cc.
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numaheap.h"
#include "../common/cpu_pin.h"

static int cpu_a = -1, cpu_b = -1;

__attribute__((constructor(101))) static void pin_main(void)
{
	if (first_two_cpus(&cpu_a, &cpu_b))
		pin_to_cpu(cpu_a);
}

static void *worker(void *arg)
{
	(void)arg;
	pin_to_cpu(cpu_b);
	enum { N = 20000 };
	void **v = malloc(N * sizeof *v);
	for (int i = 0; i < N; i++)
		v[i] = malloc(64);
	for (int i = 0; i < N; i++)
		free(v[i]);
	free(v);
	sleep(5);
	return NULL;
}

static long cached(void)
{
	static char buf[1 << 20];
	numaheap_stats_json(buf, sizeof buf);
	long n = 0;
	for (char *p = buf; (p = strstr(p, "\"objects_cached\":")); p += 17)
		n += atol(p + 17);
	return n;
}

int main(void)
{
	if (cpu_b < 0) {
		printf("one CPU\n");
		return 0;
	}
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	usleep(300000);
	DIR *d = opendir("/proc/self/task");
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], line[256], name[64] = "", cpus[64] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof line, f)) {
			if (!strncmp(line, "Name:", 5))
				sscanf(line + 5, "%63s", name);
			if (!strncmp(line, "Cpus_allowed_list:", 18))
				sscanf(line + 18, "%63s", cpus);
		}
		fclose(f);
		printf("thread %s cpus %s\n", name, cpus);
	}
	if (d)
		closedir(d);
	printf("main cpu %d worker cpu %d\n", cpu_a, cpu_b);
	printf("cached early %ld\n", cached());
	sleep(3);
	printf("cached late %ld\n", cached());
	pthread_join(t, NULL);
	return 0;
}
