/*
 * pexit_prog.c — a program whose main thread ends with pthread_exit: the
 * process must exit (status 0, atexit handlers run) once its last thread
 * has ended, though numaheap's background thread is still there (glibc
 * counts it among the threads). With an argument, a worker outlives main
 * by a second and allocates before it ends. Run by pexit_test.cc.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numaheap.h"

static void bye(void)
{
	printf("atexit ran\n");
	fflush(stdout);
}

/* Is numaheap's background thread among this process's threads? */
static int bg_running(void)
{
	DIR *d = opendir("/proc/self/task");
	int found = 0;
	for (struct dirent *e; d && !found && (e = readdir(d));) {
		char path[300], name[64] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f) {
			found = fgets(name, sizeof name, f) && !strncmp(name, "numaheap-bg", 11);
			fclose(f);
		}
	}
	if (d)
		closedir(d);
	return found;
}

static void *worker(void *arg)
{
	(void)arg;
	sleep(1);
	char *p = malloc(1 << 20);
	memset(p, 1, 1 << 20);
	free(p);
	printf("worker done\n");
	fflush(stdout);
	return NULL;
}

int main(int argc, char **argv)
{
	(void)argv;
	atexit(bye);
	/* Grow the heap past its first arena, then take slow paths: the
	 * background thread starts. */
	char *q = malloc(160 << 20);
	memset(q, 1, 160 << 20);
	free(q);
	for (int i = 0; i < 100; i++) {
		char *p = malloc(1 << 20);
		memset(p, 1, 1 << 20);
		free(p);
	}
	for (int i = 0; i < 100 && !bg_running(); i++)
		usleep(10000);
	printf("numaheap %s: %s\n", numaheap_version(), bg_running() ? "background thread running" : "no background thread");
	if (argc > 1) {
		pthread_t t;
		pthread_create(&t, NULL, worker, NULL);
		pthread_detach(t);
	} else {
		usleep(300000); /* the background thread runs its rounds meanwhile */
	}
	printf("main ends with pthread_exit\n");
	fflush(stdout);
	pthread_exit(NULL);
}
