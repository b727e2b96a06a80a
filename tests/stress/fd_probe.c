/*
 * fd_probe.c — numaheap's io_uring ring must stay out of the program's
 * descriptors (src/os/uring.c).
 *
 * ctest starts it through sh with descriptors 0, 1 and 2 closed, as a
 * daemon or a posix_spawn with POSIX_SPAWN_CLOSE can be. It allocates and
 * frees until the background thread has set its ring up (the statistics
 * name the scavenger's backend, io_uring or madvise, once its first pass
 * ran: the thread sets the ring up before), then
 * checks that 0, 1 and 2 are still closed — Python's test_posix found the
 * ring on descriptor 0, where the program's fstat(0) saw it — and, where
 * the kernel registers rings (Linux 5.18 on), that no descriptor at all
 * refers to an io_uring. With its output closed it answers by exit status:
 *   0       as it should be
 *   10 + fd descriptor fd (0-2) is open
 *   20      an io_uring descriptor is in the table although registered
 *           rings exist
 *   30      the background thread did not set its ring up within 20 s
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "numaheap.h"

static char json[1 << 16];

/* The background thread has set its ring up, or found it cannot: the
 * scavenger's backend is no longer "pending". *uring: it is io_uring. */
static int ring_settled(int *uring)
{
	static const char key[] = "\"scavenger\":{\"backend\":\"";
	numaheap_stats_json(json, sizeof json);
	const char *s = strstr(json, key);
	if (!s)
		return 0;
	s += sizeof key - 1;
	*uring = strncmp(s, "io_uring\"", 9) == 0;
	return *uring || strncmp(s, "madvise\"", 8) == 0;
}

/* Linux 5.18 or later: rings can be registered and their fd closed. */
static int registered_rings_exist(void)
{
	struct utsname u;
	int major = 0, minor = 0;
	if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return 0;
	return major > 5 || (major == 5 && minor >= 18);
}

int main(void)
{
	int uring = 0;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		/* Slow paths start the background thread (bgthread.c). */
		static void *v[4096];
		for (int i = 0; i < 4096; i++) {
			v[i] = malloc(16 + (size_t)i * 8);
			if (v[i])
				memset(v[i], 1, 16);
		}
		for (int i = 0; i < 4096; i++)
			free(v[i]);
		if (ring_settled(&uring))
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 20)
			return 30;
		usleep(10000);
	}
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			return 10 + fd;
	if (!uring || !registered_rings_exist())
		return 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	int seen = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[300], target[128];
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n > 0) {
			target[n] = 0;
			seen |= strstr(target, "io_uring") != NULL;
		}
	}
	closedir(d);
	return seen ? 20 : 0;
}
