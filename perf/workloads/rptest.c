/*
 * rptest.c — a realistic mixed workload (in the spirit of rpmalloc's test).
 *
 * Each thread runs a clock; at every tick it frees the objects whose
 * lifetime ends now and allocates one new object:
 *   size      70% 16..128 B, 20% 128 B..1 KiB, 8% 1..16 KiB, 2% 16..256 KiB
 *             (log-uniform inside each band); objects over 4 KiB have every
 *             page touched;
 *   lifetime  60% 1..16 ticks, 30% 16..1024, 10% 1024..65536, so the live
 *             set mixes a churning young generation with old objects;
 *   realloc   5% of new objects are grown to 1.5..3x right after creation
 *             (content checked across the move);
 *   remote    10% of expiring objects are not freed by their owner but sent,
 *             in batches of 32, to the next thread, which frees them.
 *
 * Work: 2,500,000 * SCALE ticks per thread.
 */
#include "common.h"

#define WHEEL 65536 /* > longest lifetime */
#define MAXREC (1 << 17)
#define OUTBATCH 32
#define INBOX_CAP 8192

typedef struct {
	void *p;
	uint32_t n;
	int32_t next;
} rec;

typedef struct {
	pthread_mutex_t mu;
	void *p[INBOX_CAP];
	uint32_t n[INBOX_CAP];
	int count;
} inbox;

typedef struct {
	int id;
	uint64_t remote_sent, reallocs, bytes;
	inbox *in;
	char pad[WL_CACHELINE];
} worker;

static worker *ws;
static int nthreads;
static uint64_t ticks;
static pthread_barrier_t done_barrier;

static uint32_t draw_size(wl_rng *r)
{
	uint64_t b = wl_below(r, 100);
	if (b < 70)
		return (uint32_t)wl_logrange(r, 16, 128);
	if (b < 90)
		return (uint32_t)wl_logrange(r, 129, 1024);
	if (b < 98)
		return (uint32_t)wl_logrange(r, 1025, 16384);
	return (uint32_t)wl_logrange(r, 16385, 262144);
}

static uint32_t draw_life(wl_rng *r)
{
	uint64_t b = wl_below(r, 100);
	if (b < 60)
		return (uint32_t)wl_range(r, 1, 16);
	if (b < 90)
		return (uint32_t)wl_range(r, 17, 1024);
	return (uint32_t)wl_range(r, 1025, WHEEL - 1);
}

/* Free everything in my inbox. */
static void drain(inbox *in)
{
	static __thread void *p[INBOX_CAP];
	static __thread uint32_t n[INBOX_CAP];
	pthread_mutex_lock(&in->mu);
	int c = in->count;
	memcpy(p, in->p, sizeof(void *) * (size_t)c);
	memcpy(n, in->n, sizeof(uint32_t) * (size_t)c);
	in->count = 0;
	pthread_mutex_unlock(&in->mu);
	for (int i = 0; i < c; i++) {
		wl_check(p[i], n[i]);
		free(p[i]);
	}
}

/* Send a batch to another thread's inbox; if it is full, free them here. */
static void send(inbox *to, void **p, uint32_t *n, int c)
{
	pthread_mutex_lock(&to->mu);
	int room = INBOX_CAP - to->count, k = c < room ? c : room;
	memcpy(to->p + to->count, p, sizeof(void *) * (size_t)k);
	memcpy(to->n + to->count, n, sizeof(uint32_t) * (size_t)k);
	to->count += k;
	pthread_mutex_unlock(&to->mu);
	for (int i = k; i < c; i++) {
		wl_check(p[i], n[i]);
		free(p[i]);
	}
}

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)w->id + 1);
	rec *recs = wl_xmalloc(sizeof(rec) * MAXREC);
	int32_t *wheel = wl_xmalloc(sizeof(int32_t) * WHEEL);
	int32_t freelist = 0;
	for (int i = 0; i < MAXREC; i++)
		recs[i].next = i + 1 < MAXREC ? i + 1 : -1;
	for (int i = 0; i < WHEEL; i++)
		wheel[i] = -1;
	inbox *peer = ws[(w->id + 1) % nthreads].in;
	void *outp[OUTBATCH];
	uint32_t outn[OUTBATCH];
	int outc = 0;

	for (uint64_t t = 0; t < ticks; t++) {
		int32_t *slot = &wheel[t % WHEEL];
		for (int32_t i = *slot; i >= 0;) {
			rec *e = &recs[i];
			int32_t nx = e->next;
			if (nthreads > 1 && wl_below(&r, 10) == 0) {
				outp[outc] = e->p;
				outn[outc] = e->n;
				if (++outc == OUTBATCH) {
					send(peer, outp, outn, outc);
					w->remote_sent += (uint64_t)outc;
					outc = 0;
				}
			} else {
				wl_check(e->p, e->n);
				free(e->p);
			}
			e->next = freelist;
			freelist = i;
			i = nx;
		}
		*slot = -1;

		uint32_t n = draw_size(&r);
		void *p = wl_xmalloc(n);
		wl_fill(p, n);
		if (n > 4096)
			wl_touch_pages((char *)p + 8, n - 16, (unsigned char)t);
		if (wl_below(&r, 20) == 0) {
			uint64_t old = wl_tag(p, n), got;
			uint32_t n2 = (uint32_t)(n + n / 2 + wl_below(&r, (uint64_t)n * 3 / 2 + 1));
			void *q = realloc(p, n2);
			if (!q)
				wl_fail("realloc(%u -> %u) returned NULL", n, n2);
			memcpy(&got, q, 8);
			if (got != old)
				wl_fail("realloc(%u -> %u) lost the object's content", n, n2);
			p = q;
			n = n2;
			wl_fill(p, n);
			w->reallocs++;
		}
		w->bytes += n;
		if (freelist < 0)
			wl_fail("more than %d live objects in one thread", MAXREC);
		int32_t i = freelist;
		freelist = recs[i].next;
		recs[i].p = p;
		recs[i].n = n;
		int32_t *dst = &wheel[(t + draw_life(&r)) % WHEEL];
		recs[i].next = *dst;
		*dst = i;

		if ((t & 255) == 0)
			drain(w->in);
	}
	/* Free whatever is still alive, hand over the last batch, then wait for
	 * every thread to finish sending before the final drain. */
	for (int k = 0; k < WHEEL; k++)
		for (int32_t i = wheel[k]; i >= 0; i = recs[i].next) {
			wl_check(recs[i].p, recs[i].n);
			free(recs[i].p);
		}
	if (outc) {
		send(peer, outp, outn, outc);
		w->remote_sent += (uint64_t)outc;
	}
	pthread_barrier_wait(&done_barrier);
	drain(w->in);
	free(recs);
	free(wheel);
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "rptest", NULL);
	nthreads = a.threads;
	ticks = wl_scaled(2.5e6, a.scale, 1000);
	pthread_barrier_init(&done_barrier, NULL, (unsigned)nthreads);
	ws = wl_xcalloc((size_t)nthreads, sizeof(worker));
	for (int i = 0; i < nthreads; i++) {
		ws[i].id = i;
		ws[i].in = wl_xcalloc(1, sizeof(inbox));
		pthread_mutex_init(&ws[i].in->mu, NULL);
	}
	double t0 = wl_now();
	wl_run_threads(nthreads, work, ws, sizeof(worker));
	double secs = wl_now() - t0;
	uint64_t remote = 0, reallocs = 0, bytes = 0;
	for (int i = 0; i < nthreads; i++) {
		remote += ws[i].remote_sent;
		reallocs += ws[i].reallocs;
		bytes += ws[i].bytes;
		free(ws[i].in);
	}
	free(ws);
	wl_result(&a, ticks * (uint64_t)nthreads, secs, " remote_frees=%llu reallocs=%llu mean_size=%.0f",
		  (unsigned long long)remote, (unsigned long long)reallocs,
		  (double)bytes / (double)(ticks * (uint64_t)nthreads));
	return 0;
}
