/*
 * pareto.c — allocation sizes from a heavy-tailed (Pareto) distribution.
 *
 * Measured allocation sizes in real programs follow a power law: most
 * requests are tiny and a few are huge. Each thread keeps a working set of
 * SLOTS objects and repeatedly replaces a random one with a new object whose
 * size is drawn from a Pareto distribution (minimum 16 bytes, shape 1.1,
 * capped at 1 MiB): about 55% are under 32 bytes, 1 in 60 is over 1 KiB and
 * 1 in 2,000 is over 32 KiB, so the run crosses every small size class and
 * the large-object path. Every object is tagged and checked before its free.
 *
 * Work: 8,000,000 * SCALE replacements per thread.
 */
#include "common.h"

#include <math.h>

#define SLOTS 16384
#define XMIN 16.0
#define ALPHA 1.1
#define CAP (1u << 20)

static uint64_t ops_per_thread;

typedef struct {
	int id;
	uint64_t bytes;
	char pad[WL_CACHELINE - sizeof(int) - sizeof(uint64_t)];
} worker;

static uint32_t pareto_size(wl_rng *r)
{
	double u = 1.0 - wl_unit(r); /* (0, 1] */
	double s = XMIN * pow(u, -1.0 / ALPHA);
	return s >= CAP ? CAP : (uint32_t)s;
}

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)w->id + 1);
	void **p = wl_xmalloc(sizeof(void *) * SLOTS);
	uint32_t *n = wl_xmalloc(sizeof(uint32_t) * SLOTS);
	for (int s = 0; s < SLOTS; s++) {
		n[s] = pareto_size(&r);
		p[s] = wl_xmalloc(n[s]);
		wl_fill(p[s], n[s]);
	}
	uint64_t bytes = 0;
	for (uint64_t i = 0; i < ops_per_thread; i++) {
		unsigned s = (unsigned)wl_below(&r, SLOTS);
		wl_check(p[s], n[s]);
		free(p[s]);
		n[s] = pareto_size(&r);
		p[s] = wl_xmalloc(n[s]);
		wl_fill(p[s], n[s]);
		bytes += n[s];
	}
	for (int s = 0; s < SLOTS; s++) {
		wl_check(p[s], n[s]);
		free(p[s]);
	}
	free(p);
	free(n);
	w->bytes = bytes;
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "pareto", NULL);
	ops_per_thread = wl_scaled(8e6, a.scale, 1000);
	worker *ws = wl_xcalloc((size_t)a.threads, sizeof(worker));
	for (int i = 0; i < a.threads; i++)
		ws[i].id = i;
	double t0 = wl_now();
	wl_run_threads(a.threads, work, ws, sizeof(worker));
	double secs = wl_now() - t0;
	uint64_t bytes = 0;
	for (int i = 0; i < a.threads; i++)
		bytes += ws[i].bytes;
	free(ws);
	wl_result(&a, ops_per_thread * (uint64_t)a.threads, secs, " mean_size=%.1f",
		  (double)bytes / (double)(ops_per_thread * (uint64_t)a.threads));
	return 0;
}
