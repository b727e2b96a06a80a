/*
 * frag.c — fragmentation and RSS across the phases of a program.
 *
 *   A  fill: the threads allocate small objects (16..512 B, log-uniform)
 *      until they hold 256 MiB * SCALE in total;
 *   B  thin out: each thread frees a random 90% of its objects, leaving a
 *      sparse 10% scattered over all the pages;
 *   C  change of phase: the threads allocate medium objects (1..8 KiB) for
 *      half of A's volume: a heap that cannot reuse the holes B left (they
 *      belong to other size classes) must grow instead;
 *   D  free everything;
 *   trim  after the worker threads have exited (their caches go back),
 *      malloc_trim(0), looked up at run time (the allocator's own if it has
 *      one, glibc's otherwise).
 *
 * The RSS is read from /proc/self/statm after each phase, with all threads
 * parked. Reported: rss_{a,b,c,d,trim}_kib, live_c_kib (bytes the program
 * holds during C), and overhead_c = rss_c / live_c. Lower is better.
 *
 * Work: 256 MiB * SCALE of small objects, then the frees and 128 MiB * SCALE
 * of medium objects, split over the threads.
 */
#include "common.h"

#include <dlfcn.h>

typedef struct {
	void *p;
	uint32_t n;
} obj;

typedef struct {
	int id;
	obj *small, *medium;
	size_t nsmall, nmedium;
	uint64_t live_c, ops;
	char pad[WL_CACHELINE];
} worker;

static pthread_barrier_t phase;
static uint64_t small_bytes_per_thread, medium_bytes_per_thread;

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)w->id + 1);
	/* A */
	size_t cap = small_bytes_per_thread / 16 + 1;
	w->small = wl_xmalloc(sizeof(obj) * cap);
	uint64_t got = 0;
	while (got < small_bytes_per_thread && w->nsmall < cap) {
		uint32_t n = (uint32_t)wl_logrange(&r, 16, 512);
		obj *o = &w->small[w->nsmall++];
		o->p = wl_xmalloc(n);
		o->n = n;
		wl_fill(o->p, n);
		got += n;
	}
	w->ops += w->nsmall;
	pthread_barrier_wait(&phase);
	pthread_barrier_wait(&phase);
	/* B */
	size_t kept = 0;
	for (size_t i = 0; i < w->nsmall; i++) {
		obj o = w->small[i];
		wl_check(o.p, o.n);
		if (wl_below(&r, 10) == 0) {
			w->small[kept++] = o;
			w->live_c += o.n;
		} else {
			free(o.p);
			w->ops++;
		}
	}
	w->nsmall = kept;
	pthread_barrier_wait(&phase);
	pthread_barrier_wait(&phase);
	/* C */
	cap = medium_bytes_per_thread / 1024 + 1;
	w->medium = wl_xmalloc(sizeof(obj) * cap);
	got = 0;
	while (got < medium_bytes_per_thread && w->nmedium < cap) {
		uint32_t n = (uint32_t)wl_logrange(&r, 1024, 8192);
		obj *o = &w->medium[w->nmedium++];
		o->p = wl_xmalloc(n);
		o->n = n;
		wl_fill(o->p, n);
		wl_touch_pages(o->p, n, 1);
		wl_fill(o->p, n);
		got += n;
	}
	w->live_c += got;
	w->ops += w->nmedium;
	pthread_barrier_wait(&phase);
	pthread_barrier_wait(&phase);
	/* D */
	for (size_t i = 0; i < w->nsmall; i++) {
		wl_check(w->small[i].p, w->small[i].n);
		free(w->small[i].p);
	}
	for (size_t i = 0; i < w->nmedium; i++) {
		wl_check(w->medium[i].p, w->medium[i].n);
		free(w->medium[i].p);
	}
	w->ops += w->nsmall + w->nmedium;
	free(w->small);
	free(w->medium);
	pthread_barrier_wait(&phase);
	return NULL;
}

typedef struct {
	int n;
	worker *ws;
} team;

static void *starter(void *arg)
{
	team *t = arg;
	wl_run_threads(t->n, work, t->ws, sizeof(worker));
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "frag", NULL);
	uint64_t small_total = wl_scaled(256.0 * (1 << 20), a.scale, 1 << 20);
	small_bytes_per_thread = small_total / (uint64_t)a.threads;
	medium_bytes_per_thread = small_bytes_per_thread / 2;
	pthread_barrier_init(&phase, NULL, (unsigned)a.threads + 1);
	worker *ws = wl_xcalloc((size_t)a.threads, sizeof(worker));
	for (int i = 0; i < a.threads; i++)
		ws[i].id = i;
	team t = {a.threads, ws};
	long rss0 = wl_rss_kib(), rss[4];
	double t0 = wl_now(), busy = 0, ts = t0;
	pthread_t st;
	pthread_create(&st, NULL, starter, &t);
	for (int ph = 0; ph < 4; ph++) {
		pthread_barrier_wait(&phase); /* phase ph done, threads parked */
		busy += wl_now() - ts;
		rss[ph] = wl_rss_kib();
		ts = wl_now();
		if (ph < 3)
			pthread_barrier_wait(&phase); /* release into the next phase */
	}
	pthread_join(st, NULL);
	double secs = busy;
	int (*trim)(size_t) = (int (*)(size_t))dlsym(RTLD_DEFAULT, "malloc_trim");
	if (trim)
		trim(0);
	long rss_trim = wl_rss_kib();
	uint64_t ops = 0, live_c = 0;
	for (int i = 0; i < a.threads; i++) {
		ops += ws[i].ops;
		live_c += ws[i].live_c;
	}
	free(ws);
	(void)t0;
	wl_result(&a, ops, secs,
		  " rss_start_kib=%ld rss_a_kib=%ld rss_b_kib=%ld rss_c_kib=%ld rss_d_kib=%ld rss_trim_kib=%ld"
		  " live_c_kib=%llu overhead_c=%.2f",
		  rss0, rss[0], rss[1], rss[2], rss[3], rss_trim, (unsigned long long)(live_c / 1024),
		  (double)rss[2] / ((double)live_c / 1024.0));
	return 0;
}
