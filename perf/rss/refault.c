/*
 * refault.c — what it costs to get memory back from the kernel after giving
 * it away, right away and after an idle spell: the price a program pays
 * (or the scavenger's pre-faulting pays for it) when it grows back into
 * memory the scavenger released.
 *
 *   refault [MIB] [IDLE_SECONDS...]     defaults: 1024 MiB; 0 and 3 s
 *
 * Maps MIB MiB (2 MiB aligned, MADV_HUGEPAGE), faults it in with
 * MADV_POPULATE_WRITE (fresh memory), then for each idle time: releases it
 * with MADV_DONTNEED, sleeps that long, and faults it in again. Prints the
 * rate of each fault-in in GiB/s.
 *
 * On a bare machine the kernel zeroes the pages again at memory speed
 * whatever the idle time. In a virtual machine whose guest reports free
 * pages to the host (virtio-balloon free page reporting:
 * /sys/module/page_reporting), memory that stayed free for a couple of
 * seconds went back to the host, and faulting it in again makes the host
 * back it anew, which is several times slower (docs/performance.md).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double fault_in(char *p, size_t n)
{
	double t = now_s();
	if (madvise(p, n, MADV_POPULATE_WRITE) != 0) {
		perror("refault: madvise(MADV_POPULATE_WRITE)");
		exit(1);
	}
	return now_s() - t;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	size_t n = mib << 20, huge = (size_t)2 << 20;
	char *m = mmap(NULL, n + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("refault: mmap");
		return 1;
	}
	char *p = (char *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
	madvise(p, n, MADV_HUGEPAGE);
	double gib = (double)n / (double)(1 << 30);
	double t = fault_in(p, n);
	printf("fresh memory          %6.3f s  %5.2f GiB/s\n", t, gib / t);
	int nidle = argc > 2 ? argc - 2 : 2;
	for (int i = 0; i < nidle; i++) {
		double idle = argc > 2 ? atof(argv[2 + i]) : (i == 0 ? 0 : 3);
		madvise(p, n, MADV_DONTNEED);
		usleep((useconds_t)(idle * 1e6));
		t = fault_in(p, n);
		printf("released, %4.1f s idle %6.3f s  %5.2f GiB/s\n", idle, t, gib / t);
	}
	return 0;
}
