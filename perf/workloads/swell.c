/*
 * swell.c — a small heap that swells and shrinks with pauses between:
 * what stays resident (in the spirit of mimalloc-bench's rptest, whose
 * peak RSS showed what perf/'s larger workloads did not).
 *
 * Each round, every thread allocates blocks of 8..16000 bytes (uniform,
 * every byte written) until it holds 6 MiB, hands a tenth of them to the
 * next thread, frees 90% of what it holds at random, and then all threads
 * compute for 1.5 s without calling the allocator (long enough for a
 * background release to act), before the next round grows the heap back.
 * The survivors of a round are freed in the next, so the live heap stays
 * small (~1.2 MiB per thread between rounds, ~7 MiB at a round's peak):
 * an allocator that keeps, or faults in ahead, much more than that shows
 * it in the peak RSS, which is the figure this workload is for. Its time
 * is mostly the pauses; the throughput counts the allocating phases only.
 *
 * Work: max(2, 3 * SCALE) rounds.
 */
#include "common.h"

#define TARGET (6u << 20)
#define MAXB 4096
#define PAUSE_S 1.5

typedef struct {
	int id;
	uint64_t ops;
	double busy;
	uint64_t sum;
	char pad[WL_CACHELINE];
} worker;

static worker *ws;
static int nthreads, rounds;
static pthread_barrier_t barrier;

/* Blocks a thread holds, and the ones the previous thread handed it. */
typedef struct {
	void *p[MAXB];
	uint32_t n[MAXB];
	int count;
} blocks;

static blocks *held, *handed;

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)w->id + 7);
	blocks *b = &held[w->id], *out = &handed[(w->id + 1) % nthreads], *in = &handed[w->id];
	for (int round = 0; round < rounds; round++) {
		double t0 = wl_now();
		/* Last round's survivors and what the neighbour handed over go. */
		for (int i = 0; i < b->count; i++) {
			wl_check(b->p[i], b->n[i]);
			free(b->p[i]);
		}
		w->ops += (uint64_t)b->count;
		b->count = 0;
		pthread_barrier_wait(&barrier); /* in[] is complete */
		for (int i = 0; i < in->count; i++) {
			wl_check(in->p[i], in->n[i]);
			free(in->p[i]);
		}
		w->ops += (uint64_t)in->count;
		in->count = 0;
		pthread_barrier_wait(&barrier); /* out[] is empty again */
		size_t bytes = 0;
		while (bytes < TARGET && b->count < MAXB) {
			uint32_t n = (uint32_t)wl_range(&r, 8, 16000);
			void *p = wl_xmalloc(n);
			wl_fill(p, n);
			b->p[b->count] = p;
			b->n[b->count++] = n;
			bytes += n;
		}
		w->ops += (uint64_t)b->count;
		/* A tenth to the next thread, which frees them next round. */
		for (int i = b->count - 1; i >= 0 && out->count < b->count / 10; i -= 10) {
			out->p[out->count] = b->p[i];
			out->n[out->count++] = b->n[i];
			b->p[i] = NULL;
		}
		/* 90% of the rest freed at random; the survivors kept. */
		int kept = 0;
		for (int i = 0; i < b->count; i++) {
			if (!b->p[i])
				continue;
			if (wl_below(&r, 10) == 0) {
				b->p[kept] = b->p[i];
				b->n[kept++] = b->n[i];
			} else {
				wl_check(b->p[i], b->n[i]);
				free(b->p[i]);
				w->ops++;
			}
		}
		b->count = kept;
		w->busy += wl_now() - t0;
		/* The pause: computing over the survivors, no allocator call. */
		double end = wl_now() + PAUSE_S;
		uint64_t h = 0;
		while (wl_now() < end)
			for (int i = 0; i < b->count; i++)
				h = h * 31 + ((const unsigned char *)b->p[i])[b->n[i] / 2];
		w->sum += h;
		pthread_barrier_wait(&barrier);
	}
	for (int i = 0; i < b->count; i++)
		free(b->p[i]);
	w->ops += (uint64_t)b->count;
	b->count = 0;
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < in->count; i++)
		free(in->p[i]);
	w->ops += (uint64_t)in->count;
	in->count = 0;
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "swell", NULL);
	nthreads = a.threads;
	rounds = (int)wl_scaled(3, a.scale, 2);
	ws = wl_xcalloc((size_t)nthreads, sizeof(worker));
	held = wl_xcalloc((size_t)nthreads, sizeof(blocks));
	handed = wl_xcalloc((size_t)nthreads, sizeof(blocks));
	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++)
		ws[i].id = i;
	wl_run_threads(nthreads, work, ws, sizeof(worker));
	uint64_t ops = 0, sum = 0;
	double busy = 0;
	for (int i = 0; i < nthreads; i++) {
		ops += ws[i].ops;
		busy = ws[i].busy > busy ? ws[i].busy : busy;
		sum += ws[i].sum;
	}
	free(ws);
	free(held);
	free(handed);
	wl_result(&a, ops, busy, " rounds=%d sink=%llu", rounds, (unsigned long long)(sum & 0xff));
	return 0;
}
