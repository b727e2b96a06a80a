/*
 * fork_probe.c — fork where glibc's own malloc survives it (issue 18).
 *
 *   fork_probe signal  a single-threaded program whose SIGCHLD handler forks
 *                      while the main thread is inside fork() or malloc;
 *                      numaheap's background thread runs all along and must
 *                      not make the program multi-threaded in glibc's eyes
 *   fork_probe stdio   thread A forks, thread B calls fflush(NULL), thread C
 *                      reads lines with getline (which reallocs its buffer),
 *                      thread D allocates: nobody may wait for anybody for good
 *
 * A watchdog (SIGALRM) reports a deadlock and exits 2; any other failure
 * exits 1. Plain C, linked with numaheap, so the program is exactly what
 * the issue describes: no test harness threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "numaheap.h"

static const char *phase = "start";

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

static void on_alarm(int sig)
{
	(void)sig;
	say("fork_probe: DEADLOCK (watchdog fired) during: ");
	say(phase);
	say("\n");
	_exit(2);
}

static void fail(const char *what)
{
	fprintf(stderr, "fork_probe: FAIL: %s\n", what);
	exit(1);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Reap children without blocking; returns how many failed. */
static int reap(int options)
{
	int bad = 0, st;
	pid_t p;
	while ((p = waitpid(-1, &st, options)) > 0 || (p < 0 && errno == EINTR))
		if (p > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			bad++;
	return bad;
}

/* ---- signal: fork from a SIGCHLD handler ------------------------------------ */

static volatile sig_atomic_t handler_forks, handler_limit;

static void on_chld(int sig)
{
	(void)sig;
	int e = errno;
	if (handler_forks < handler_limit) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p > 0)
			handler_forks++;
	}
	errno = e;
}

static bool scavenger_running(void)
{
	char buf[1 << 16];
	numaheap_stats_json(buf, sizeof buf);
	const char *s = strstr(buf, "\"scavenger\":{");
	return s && strstr(s, "\"running\":true") && strstr(s, "\"running\":true") - s < 200;
}

static int probe_signal(int rounds)
{
	/* Grow the heap so the background thread starts before the forks. */
	for (int i = 0; i < 64; i++)
		free(malloc((size_t)1 << 20));
	void *grow = malloc(64 << 20);
	free(grow);
	double t0 = now();
	while (!scavenger_running() && now() - t0 < 5)
		free(malloc(1 << 20));
	const char *scav = getenv("NUMAHEAP_SCAVENGER");
	bool want_bg = !(scav && strcmp(scav, "off") == 0);
	if (want_bg && !scavenger_running())
		fail("numaheap's background thread is not running: the test would prove nothing");
	if (!__libc_single_threaded)
		fail("numaheap's background thread made the program multi-threaded (__libc_single_threaded is 0)");

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	handler_limit = rounds;
	void *keep[64] = {0};
	phase = "fork() and malloc in the main thread, fork() in its SIGCHLD handler";
	for (int i = 0; i < rounds; i++) {
		pid_t p = fork();
		if (p < 0)
			fail("fork");
		if (p == 0) {
			/* The child uses the heap it inherited. */
			void *q = malloc(100 + (size_t)i);
			free(q);
			_exit(0);
		}
		/* Slow paths too (large objects, new spans), where locks are held. */
		for (int j = 0; j < 400; j++) {
			int k = (i * 7 + j) & 63;
			free(keep[k]);
			keep[k] = malloc(j % 7 == 0 ? (size_t)40000 + (size_t)j * 64 : 16 + (size_t)(j * 37) % 4000);
			if (!keep[k])
				fail("malloc");
		}
		if (reap(WNOHANG))
			fail("a child failed");
	}
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	if (reap(0))
		fail("a child failed");
	for (int k = 0; k < 64; k++)
		free(keep[k]);
	printf("fork_probe signal: %d forks, %d from the SIGCHLD handler; single-threaded with the "
	       "background thread %s\n",
	       rounds, (int)handler_forks, scavenger_running() ? "running" : "off");
	if (handler_forks == 0)
		fail("the handler never forked");
	return 0;
}

/* ---- stdio: fork against fflush(NULL) and getline ------------------------------ */

static atomic_int stop;
static atomic_long forks, flushes, lines, allocs;

static void *thread_fork(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		pid_t p = fork();
		if (p == 0) {
			void *q = malloc(1000);
			free(q);
			fflush(NULL);
			_exit(0);
		}
		if (p < 0)
			fail("fork");
		if (reap(0))
			fail("a child failed");
		atomic_fetch_add(&forks, 1);
	}
	return NULL;
}

static void *thread_flush(void *arg)
{
	FILE *f = arg;
	while (!atomic_load(&stop)) {
		fputs("x", f); /* a dirty stream for fflush(NULL) to visit */
		fflush(NULL);
		atomic_fetch_add(&flushes, 1);
	}
	return NULL;
}

static void *thread_getline(void *arg)
{
	FILE *f = arg;
	while (!atomic_load(&stop)) {
		rewind(f);
		char *line = NULL;
		size_t cap = 0;
		/* A new buffer for every line: getline's malloc and reallocs. */
		while (getline(&line, &cap, f) > 0) {
			free(line);
			line = NULL;
			cap = 0;
			atomic_fetch_add(&lines, 1);
		}
		free(line);
	}
	return NULL;
}

static void *thread_alloc(void *arg)
{
	(void)arg;
	void *keep[256] = {0};
	unsigned i = 0;
	while (!atomic_load(&stop)) {
		unsigned k = (i * 13) & 255;
		free(keep[k]);
		keep[k] = malloc(i % 11 == 0 ? 50000 + (i % 64) * 4096 : 16 + (i * 37) % 3000);
		i++;
		atomic_fetch_add(&allocs, 1);
	}
	for (int k = 0; k < 256; k++)
		free(keep[k]);
	return NULL;
}

static int probe_stdio(double seconds)
{
	FILE *text = tmpfile(), *sink = tmpfile();
	if (!text || !sink)
		fail("tmpfile");
	/* Lines from 10 bytes to 60 KiB: getline's buffer grows through small
	 * classes into large objects. */
	for (int i = 0; i < 200; i++) {
		int n = 10 + (i * 7919) % 60000;
		for (int j = 0; j < n; j++)
			fputc('a' + j % 26, text);
		fputc('\n', text);
	}
	fflush(text);
	phase = "fork() against fflush(NULL) and getline()";
	pthread_t t[4];
	void *(*fn[4])(void *) = {thread_fork, thread_flush, thread_getline, thread_alloc};
	void *args[4] = {NULL, sink, text, NULL};
	for (int i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, fn[i], args[i]) != 0)
			fail("pthread_create");
	double t0 = now();
	while (now() - t0 < seconds)
		usleep(10000);
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("fork_probe stdio: %ld forks, %ld fflush(NULL), %ld lines read, %ld mallocs in %.1f s\n",
	       atomic_load(&forks), atomic_load(&flushes), atomic_load(&lines), atomic_load(&allocs),
	       seconds);
	if (atomic_load(&forks) == 0 || atomic_load(&lines) == 0 || atomic_load(&flushes) == 0)
		fail("a thread made no progress");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fork_probe signal [rounds] | stdio [seconds]\n");
		return 1;
	}
	signal(SIGALRM, on_alarm);
	alarm(90);
	if (strcmp(argv[1], "signal") == 0)
		return probe_signal(argc > 2 ? atoi(argv[2]) : 400);
	if (strcmp(argv[1], "stdio") == 0)
		return probe_stdio(argc > 2 ? atof(argv[2]) : 5.0);
	fprintf(stderr, "fork_probe: unknown probe %s\n", argv[1]);
	return 1;
}
