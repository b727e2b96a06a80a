/*
 * larson.c — a server-style workload: threads exchange and free each other's
 * objects.
 *
 * The heap holds 2*T "connections", each an array of SLOTS live objects of
 * 16..512 bytes. A worker takes a connection from a shared FIFO, serves it
 * for ROUND operations (free a random slot's object, allocate a new one of a
 * random size in its place), and puts it back at the tail; the next worker to
 * take it frees objects the previous one allocated. So nearly every free is
 * remote (made by a thread other than the allocating one) while the live
 * heap stays constant, as in a server whose requests move between threads.
 *
 * Work: 15,000,000 * SCALE operations per thread (one free + one malloc each).
 */
#include "common.h"

#define SLOTS 4096
#define ROUND 8192
#define MINSZ 16
#define MAXSZ 512

typedef struct {
	void *p[SLOTS];
	uint32_t n[SLOTS];
} conn;

static conn *conns;
static int nconn;
static int *fifo; /* ring of connection indices */
static int fifo_head, fifo_count;
static pthread_mutex_t fifo_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t ops_per_thread;

static int take(void)
{
	pthread_mutex_lock(&fifo_mu);
	int c = fifo[fifo_head];
	fifo_head = (fifo_head + 1) % nconn;
	fifo_count--;
	pthread_mutex_unlock(&fifo_mu);
	return c;
}

static void give(int c)
{
	pthread_mutex_lock(&fifo_mu);
	fifo[(fifo_head + fifo_count) % nconn] = c;
	fifo_count++;
	pthread_mutex_unlock(&fifo_mu);
}

typedef struct {
	int id;
	char pad[WL_CACHELINE - sizeof(int)];
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)w->id + 1);
	uint64_t done = 0;
	while (done < ops_per_thread) {
		conn *c = &conns[take()];
		uint64_t n = ops_per_thread - done < ROUND ? ops_per_thread - done : ROUND;
		for (uint64_t i = 0; i < n; i++) {
			unsigned s = (unsigned)wl_below(&r, SLOTS);
			wl_check(c->p[s], c->n[s]);
			free(c->p[s]);
			uint32_t sz = (uint32_t)wl_range(&r, MINSZ, MAXSZ);
			c->p[s] = wl_xmalloc(sz);
			c->n[s] = sz;
			wl_fill(c->p[s], sz);
		}
		done += n;
		give((int)(c - conns));
	}
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "larson", NULL);
	ops_per_thread = wl_scaled(15e6, a.scale, ROUND);
	nconn = 2 * a.threads;
	conns = wl_xmalloc(sizeof(conn) * (size_t)nconn);
	fifo = wl_xmalloc(sizeof(int) * (size_t)nconn);
	wl_rng r;
	wl_rng_seed(&r, 0);
	for (int c = 0; c < nconn; c++) {
		for (int s = 0; s < SLOTS; s++) {
			uint32_t sz = (uint32_t)wl_range(&r, MINSZ, MAXSZ);
			conns[c].p[s] = wl_xmalloc(sz);
			conns[c].n[s] = sz;
			wl_fill(conns[c].p[s], sz);
		}
		fifo[c] = c;
	}
	fifo_count = nconn;

	worker *ws = wl_xcalloc((size_t)a.threads, sizeof(worker));
	for (int i = 0; i < a.threads; i++)
		ws[i].id = i;
	double t0 = wl_now();
	wl_run_threads(a.threads, work, ws, sizeof(worker));
	double secs = wl_now() - t0;

	for (int c = 0; c < nconn; c++)
		for (int s = 0; s < SLOTS; s++) {
			wl_check(conns[c].p[s], conns[c].n[s]);
			free(conns[c].p[s]);
		}
	free(conns);
	free(fifo);
	free(ws);
	wl_result(&a, ops_per_thread * (uint64_t)a.threads, secs, " live_objects=%d", nconn * SLOTS);
	return 0;
}
