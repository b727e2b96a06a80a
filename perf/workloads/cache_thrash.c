/*
 * cache_thrash.c — active false sharing.
 *
 * All threads start together and each repeatedly allocates an 8-byte object,
 * writes it many times and frees it (falseshare.h). An allocator that hands
 * concurrently running threads objects on the same cache line makes the
 * threads fight over it; one that keeps each thread's small objects apart
 * lets them run at full speed.
 *
 * Work: 400,000 * SCALE objects per thread, 250 rounds of 8 byte writes each.
 */
#include "falseshare.h"

static pthread_barrier_t start;

typedef struct {
	int id;
	char pad[WL_CACHELINE - sizeof(int)];
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	pthread_barrier_wait(&start);
	fs_loop();
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "cache-thrash", NULL);
	fs_iterations = wl_scaled(400000, a.scale, 100);
	pthread_barrier_init(&start, NULL, (unsigned)a.threads);
	worker *ws = wl_xcalloc((size_t)a.threads, sizeof(worker));
	for (int i = 0; i < a.threads; i++)
		ws[i].id = i;
	double t0 = wl_now();
	wl_run_threads(a.threads, work, ws, sizeof(worker));
	double secs = wl_now() - t0;
	free(ws);
	wl_result(&a, fs_writes_per_thread() * (uint64_t)a.threads, secs, " objects=%llu",
		  (unsigned long long)(fs_iterations * (uint64_t)a.threads));
	return 0;
}
