/*
 * rss.c — a workload whose memory use changes phase, for watching RSS from the
 * outside (perf/rss/rss.py samples /proc/<pid>/status every 50 ms).
 *
 *   rss [MIB] [IDLE_SECONDS] [random|oldest]    defaults: 1024 MiB, 3 s, random
 *
 * Phases, each announced on stdout as
 *   "mark <name> <CLOCK_MONOTONIC s> <process cpu s> <main thread cpu s>":
 *   grow1   allocate small and medium objects until MIB MiB are live and
 *           write every byte: half of the bytes in small objects (16 B..1 KiB),
 *           half in medium ones (1..64 KiB), log-uniform, interleaved
 *   free1   free 90% of the objects: a random 90% (the survivors are scattered
 *           over the whole heap, the hard case for giving memory back), or
 *           with "oldest" the 90% allocated first (whole regions fall free)
 *   idle1   compute for IDLE_SECONDS without calling the allocator (a hash
 *           over the surviving objects, again and again)
 *   grow2   allocate again until MIB MiB are live
 *   free2   free 90% of what is live, the same way
 *   idle2   compute again, to watch what the allocator gives back at rest
 *   end
 * then "done mallocs=N frees=N".
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../lib/rng.h"


static double clock_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double process_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

struct obj {
	unsigned char *p;
	size_t size;
};
static struct obj *live;
static size_t nlive, cap_live, live_bytes;

/* The fifth field is the live heap: the objects and the bookkeeping array. */
static void mark(const char *name)
{
	printf("mark %s %.6f %.6f %.6f %zu\n", name, clock_s(CLOCK_MONOTONIC), process_cpu(),
	       clock_s(CLOCK_THREAD_CPUTIME_ID), live_bytes + cap_live * sizeof(struct obj));
	fflush(stdout);
}
static uint64_t mallocs, frees;

static void grow(size_t target)
{
	size_t small = 0, medium = 0;
	while (live_bytes < target) {
		size_t s;
		if (small <= medium) {
			s = (size_t)exp(log(16.0) + unit() * (log(1024.0) - log(16.0)));
			small += s;
		} else {
			s = (size_t)exp(log(1024.0) + unit() * (log(65536.0) - log(1024.0)));
			medium += s;
		}
		unsigned char *p = malloc(s);
		if (!p) {
			fprintf(stderr, "rss: malloc(%zu) failed\n", s);
			exit(1);
		}
		memset(p, (int)s, s);
		mallocs++;
		if (nlive == cap_live) {
			cap_live = cap_live ? cap_live * 2 : 1 << 16;
			/* the bookkeeping array lives in the measured heap too */
			live = realloc(live, cap_live * sizeof *live);
			if (!live) {
				fprintf(stderr, "rss: out of memory\n");
				exit(1);
			}
		}
		live[nlive++] = (struct obj){p, s};
		live_bytes += s;
	}
}

static int oldest_first;

static void free_fraction(double frac)
{
	size_t keep = 0, cut = (size_t)((double)nlive * frac);
	for (size_t i = 0; i < nlive; i++) {
		if (oldest_first ? i < cut : unit() < frac) {
			free(live[i].p);
			frees++;
			live_bytes -= live[i].size;
		} else {
			live[keep++] = live[i];
		}
	}
	nlive = keep;
}

static uint64_t idle(double seconds)
{
	double end = clock_s(CLOCK_MONOTONIC) + seconds;
	uint64_t h = 1469598103934665603ULL;
	while (clock_s(CLOCK_MONOTONIC) < end)
		for (size_t i = 0; i < nlive && (i & 1023 || clock_s(CLOCK_MONOTONIC) < end); i++)
			h = (h ^ live[i].p[live[i].size - 1]) * 1099511628211ULL;
	return h;
}

int main(int argc, char **argv)
{
	size_t target = (size_t)(argc > 1 ? atol(argv[1]) : 1024) << 20;
	double idle_s = argc > 2 ? atof(argv[2]) : 3.0;
	oldest_first = argc > 3 && !strcmp(argv[3], "oldest");
	uint64_t h = 0;
	mark("grow1");
	grow(target);
	mark("free1");
	free_fraction(0.9);
	mark("idle1");
	h += idle(idle_s);
	mark("grow2");
	grow(target);
	mark("free2");
	free_fraction(0.9);
	mark("idle2");
	h += idle(idle_s);
	mark("end");
	printf("done mallocs=%llu frees=%llu live_bytes=%zu hash=%llu\n", (unsigned long long)mallocs,
	       (unsigned long long)frees, live_bytes, (unsigned long long)(h & 0xff));
	return 0;
}
