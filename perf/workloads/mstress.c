/*
 * mstress.c — thread churn with long-lived objects.
 *
 * The program runs ROUNDS rounds; each round starts T fresh threads and
 * joins them, so threads are born and die all the time. A global table holds
 * long-lived objects in T partitions. In round r, thread i takes partition
 * (i + r) % T, frees about a quarter of its objects (allocated by threads of
 * earlier rounds that have since exited) and puts new ones in their place,
 * which outlive the thread. Then it does a burst of short-lived work:
 * batches of BATCH objects of 16 B..4 KiB, allocated, written, and freed in
 * random order. An allocator must hand a dead thread's cached memory back
 * and keep the heap bounded although no thread lives long.
 *
 * Work: 40 * SCALE rounds (at least 4), each thread doing 4,096 long-lived
 * replacements' worth of scan plus 150,000 short-lived objects per round.
 */
#include "common.h"

#define LPER 4096
#define BATCH 256
#define SHORT_OPS 150000

typedef struct {
	void *p;
	uint32_t n;
} obj;

static obj *table; /* T * LPER */
static int nthreads, round_no;

typedef struct {
	int id;
	uint64_t ops;
	char pad[WL_CACHELINE - sizeof(int) - sizeof(uint64_t)];
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)round_no * 7919 + (uint64_t)w->id + 1);
	obj *part = table + (size_t)((w->id + round_no) % nthreads) * LPER;
	uint64_t ops = 0;
	for (int s = 0; s < LPER; s++) {
		if (part[s].p && wl_below(&r, 4) != 0)
			continue;
		if (part[s].p) {
			wl_check(part[s].p, part[s].n);
			free(part[s].p);
		}
		part[s].n = (uint32_t)wl_logrange(&r, 16, 4096);
		part[s].p = wl_xmalloc(part[s].n);
		wl_fill(part[s].p, part[s].n);
		ops++;
	}
	obj batch[BATCH];
	for (int done = 0; done < SHORT_OPS; done += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			batch[i].n = (uint32_t)wl_logrange(&r, 16, 4096);
			batch[i].p = wl_xmalloc(batch[i].n);
			wl_fill(batch[i].p, batch[i].n);
		}
		for (int i = BATCH - 1; i > 0; i--) { /* free in random order */
			int j = (int)wl_below(&r, (uint64_t)i + 1);
			obj t = batch[i];
			batch[i] = batch[j];
			batch[j] = t;
		}
		for (int i = 0; i < BATCH; i++) {
			wl_check(batch[i].p, batch[i].n);
			free(batch[i].p);
		}
		ops += BATCH;
	}
	w->ops += ops;
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "mstress", NULL);
	nthreads = a.threads;
	int rounds = (int)wl_scaled(40, a.scale, 4);
	table = wl_xcalloc((size_t)nthreads * LPER, sizeof(obj));
	worker *ws = wl_xcalloc((size_t)nthreads, sizeof(worker));
	for (int i = 0; i < nthreads; i++)
		ws[i].id = i;
	double t0 = wl_now();
	long rss_max_live = 0;
	for (round_no = 0; round_no < rounds; round_no++) {
		wl_run_threads(nthreads, work, ws, sizeof(worker));
		long rss = wl_rss_kib();
		if (rss > rss_max_live)
			rss_max_live = rss;
	}
	double secs = wl_now() - t0;
	uint64_t ops = 0, live = 0;
	for (int i = 0; i < nthreads; i++)
		ops += ws[i].ops;
	for (size_t s = 0; s < (size_t)nthreads * LPER; s++)
		if (table[s].p) {
			wl_check(table[s].p, table[s].n);
			live += table[s].n;
			free(table[s].p);
		}
	free(table);
	free(ws);
	wl_result(&a, ops, secs, " rounds=%d thread_starts=%d live_kib=%llu rss_between_rounds_kib=%ld", rounds,
		  rounds * nthreads, (unsigned long long)(live / 1024), rss_max_live);
	return 0;
}
