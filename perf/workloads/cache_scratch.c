/*
 * cache_scratch.c — passive false sharing.
 *
 * The main thread allocates one 8-byte object per worker, back to back (so
 * several share a cache line), and gives object i to worker i, which frees
 * it first thing. From then on each worker repeatedly allocates, writes and
 * frees its own 8-byte objects (falseshare.h). An allocator that reuses the
 * freed object, or its neighbours, for the worker's own allocations puts
 * several workers on one cache line although none of them asked for it.
 *
 * Work: 400,000 * SCALE objects per thread, 250 rounds of 8 byte writes each.
 */
#include "falseshare.h"

static pthread_barrier_t start;

typedef struct {
	int id;
	void *gift;
	char pad[WL_CACHELINE - sizeof(int) - sizeof(void *)];
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	free(w->gift);
	pthread_barrier_wait(&start);
	fs_loop();
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "cache-scratch", NULL);
	fs_iterations = wl_scaled(400000, a.scale, 100);
	pthread_barrier_init(&start, NULL, (unsigned)a.threads);
	worker *ws = wl_xcalloc((size_t)a.threads, sizeof(worker));
	for (int i = 0; i < a.threads; i++) {
		ws[i].id = i;
		ws[i].gift = wl_xmalloc(FS_OBJSIZE);
		memset(ws[i].gift, 0x5a, FS_OBJSIZE);
	}
	double t0 = wl_now();
	wl_run_threads(a.threads, work, ws, sizeof(worker));
	double secs = wl_now() - t0;
	free(ws);
	wl_result(&a, fs_writes_per_thread() * (uint64_t)a.threads, secs, " objects=%llu",
		  (unsigned long long)(fs_iterations * (uint64_t)a.threads));
	return 0;
}
