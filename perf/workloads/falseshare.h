/*
 * falseshare.h — the loop shared by cache_scratch.c and cache_thrash.c.
 *
 * A thread repeatedly allocates a small object, writes every byte of it
 * FS_WRITES times, checks it and frees it. Each thread touches only its own
 * objects, so with an allocator that never puts two threads' objects on one
 * cache line the threads run independently; when it does, the line bounces
 * between the CPUs' caches (false sharing) and the writes slow down many
 * times over.
 */
#include "common.h"

#define FS_OBJSIZE 8
#define FS_WRITES 250

static uint64_t fs_iterations;

static void fs_loop(void)
{
	for (uint64_t it = 0; it < fs_iterations; it++) {
		volatile unsigned char *p = wl_xmalloc(FS_OBJSIZE);
		for (int k = 0; k < FS_OBJSIZE; k++)
			p[k] = (unsigned char)k;
		for (int w = 0; w < FS_WRITES; w++)
			for (int k = 0; k < FS_OBJSIZE; k++)
				p[k] = (unsigned char)(p[k] + 1);
		for (int k = 0; k < FS_OBJSIZE; k++)
			if (p[k] != (unsigned char)(k + FS_WRITES))
				wl_fail("object %p byte %d changed under us", (void *)p, k);
		free((void *)p);
	}
}

/* Total byte writes done by one thread. */
static uint64_t fs_writes_per_thread(void) { return fs_iterations * (uint64_t)FS_WRITES * FS_OBJSIZE; }
