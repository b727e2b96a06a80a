/*
 * trim.c — a program that calls malloc_trim all the time, in the shape of
 * stress-ng's malloc stressor (Debian 12's stress-ng 0.15: "--malloc N"),
 * which perf/'s other workloads did not show: there numaheap ran 0.27 M
 * operations a second against jemalloc's 2.3 M, the process's time going
 * to the trims and to faulting back in what each one released.
 *
 * Each thread keeps 8192 slots. A step picks a slot at random; a full
 * slot is freed or reallocated (half and half), an empty one is filled or
 * left (half and half) by malloc, or one time in eight by calloc,
 * posix_memalign or aligned_alloc. Sizes are 1 B - 32 KiB, uniform; every
 * page of a new or grown block is written, and its content checked when it
 * goes. After one step in eight the thread calls malloc_trim(0), as the
 * stressor does. The result counts steps.
 *
 * Work: 400,000 * SCALE steps per thread, or 3 * SCALE seconds (at least
 * 1) if that comes first: glibc, whose malloc_trim walks every arena,
 * managed 1,400-3,200 steps a second here, and would take minutes.
 */
#include "common.h"

#include <malloc.h>

#define SLOTS 8192
#define MAXSZ 32768

typedef struct {
	int id;
	uint64_t steps;
	uint64_t trims;
	char pad[WL_CACHELINE];
} worker;

static worker *ws;
static uint64_t steps_per_thread;
static double deadline;

static void *fresh(wl_rng *r, size_t n)
{
	void *p = NULL;
	size_t m = 1 + (size_t)wl_below(r, 16);
	switch (wl_below(r, 32)) {
	case 0:
		return calloc(m, (n + m - 1) / m);
	case 1:
		if (posix_memalign(&p, (size_t)64 << wl_below(r, 6), n) != 0)
			p = NULL;
		return p;
	case 2:
		return aligned_alloc(128, (n + 127) & ~(size_t)127);
	default:
		return malloc(n);
	}
}

/* Slot i gets q, sz bytes from what (a failure ends the run): every page
 * written, tagged for the check when it goes. */
static void store(void **p, size_t *n, size_t i, void *q, size_t sz, const char *what)
{
	if (!q)
		wl_fail("%s of %zu bytes failed", what, sz);
	p[i] = q;
	n[i] = sz;
	wl_touch_pages(q, sz, 1);
	wl_fill(q, sz);
}

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)w->id + 11);
	void **p = wl_xcalloc(SLOTS, sizeof *p);
	size_t *n = wl_xcalloc(SLOTS, sizeof *n);
	uint64_t s;
	for (s = 0; s < steps_per_thread; s++) {
		if ((s & 255) == 0 && wl_now() > deadline)
			break;
		uint64_t x = wl_rand(&r);
		size_t i = (size_t)(x % SLOTS);
		int half = (int)((x >> 20) & 1);
		size_t sz = 1 + (size_t)((x >> 32) % MAXSZ);
		if (p[i]) {
			wl_check(p[i], n[i]);
			if (half) {
				free(p[i]);
				p[i] = NULL;
			} else {
				store(p, n, i, realloc(p[i], sz), sz, "realloc");
			}
		} else if (half) {
			store(p, n, i, fresh(&r, sz), sz, "allocation");
		}
		if ((x & 7) == 0) {
			malloc_trim(0);
			w->trims++;
		}
	}
	for (size_t i = 0; i < SLOTS; i++)
		if (p[i]) {
			wl_check(p[i], n[i]);
			free(p[i]);
		}
	free(p);
	free(n);
	w->steps = s;
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "trim", NULL);
	steps_per_thread = wl_scaled(400000, a.scale, 20000);
	ws = wl_xcalloc((size_t)a.threads, sizeof(worker));
	for (int i = 0; i < a.threads; i++)
		ws[i].id = i;
	double t0 = wl_now();
	deadline = t0 + (a.scale * 3 > 1 ? a.scale * 3 : 1);
	wl_run_threads(a.threads, work, ws, sizeof(worker));
	double secs = wl_now() - t0;
	uint64_t steps = 0, trims = 0;
	for (int i = 0; i < a.threads; i++) {
		steps += ws[i].steps;
		trims += ws[i].trims;
	}
	free(ws);
	wl_result(&a, steps, secs, " trims=%llu", (unsigned long long)trims);
	return 0;
}
