/*
 * xmalloc.c — producer/consumer with asymmetric frees.
 *
 * Half the threads (at least one) only allocate; the other half (at least
 * one) only free. A producer fills a batch of BATCH objects of 8..256 bytes,
 * each tagged, and hands the batch (itself a malloc'd block) to a consumer's
 * bounded queue, round robin over the consumers; the consumer checks and
 * frees every object. Allocation always happens on one set of threads and
 * freeing on another, so an allocator's remote-free path and the way memory
 * flows back to the producers carry the whole load.
 *
 * Work: 30,000,000 * SCALE objects per producer.
 */
#include "common.h"

#define BATCH 64
#define QCAP 64
#define MINSZ 8
#define MAXSZ 256

typedef struct {
	void *p[BATCH];
	uint32_t n[BATCH];
} batch;

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t nonempty, nonfull;
	batch *q[QCAP];
	int head, count;
	uint64_t freed;
	char pad[WL_CACHELINE];
} queue;

static queue *queues;
static int nprod, ncons;
static uint64_t per_producer;
static int producers_left;
static pthread_mutex_t left_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
	int id;
	char pad[WL_CACHELINE - sizeof(int)];
} role;

static void push(queue *q, batch *b)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == QCAP)
		pthread_cond_wait(&q->nonfull, &q->mu);
	q->q[(q->head + q->count) % QCAP] = b;
	q->count++;
	pthread_cond_signal(&q->nonempty);
	pthread_mutex_unlock(&q->mu);
}

static void *producer(void *arg)
{
	role *me = arg;
	wl_maybe_pin(me->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)me->id + 1);
	uint64_t made = 0;
	int next = me->id % ncons;
	while (made < per_producer) {
		batch *b = wl_xmalloc(sizeof *b);
		for (int i = 0; i < BATCH; i++) {
			uint32_t sz = (uint32_t)wl_range(&r, MINSZ, MAXSZ);
			b->p[i] = wl_xmalloc(sz);
			b->n[i] = sz;
			wl_fill(b->p[i], sz);
		}
		made += BATCH;
		push(&queues[next], b);
		next = (next + 1) % ncons;
	}
	pthread_mutex_lock(&left_mu);
	int last = --producers_left == 0;
	pthread_mutex_unlock(&left_mu);
	if (last)
		for (int c = 0; c < ncons; c++) {
			pthread_mutex_lock(&queues[c].mu);
			pthread_cond_broadcast(&queues[c].nonempty);
			pthread_mutex_unlock(&queues[c].mu);
		}
	return NULL;
}

static int all_produced(void)
{
	pthread_mutex_lock(&left_mu);
	int done = producers_left == 0;
	pthread_mutex_unlock(&left_mu);
	return done;
}

static void *consumer(void *arg)
{
	role *me = arg;
	wl_maybe_pin(nprod + me->id);
	queue *q = &queues[me->id];
	for (;;) {
		pthread_mutex_lock(&q->mu);
		while (q->count == 0) {
			pthread_mutex_unlock(&q->mu);
			if (all_produced()) {
				pthread_mutex_lock(&q->mu);
				if (q->count == 0) {
					pthread_mutex_unlock(&q->mu);
					return NULL;
				}
				break;
			}
			pthread_mutex_lock(&q->mu);
			if (q->count == 0) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 1000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&q->nonempty, &q->mu, &ts);
			}
		}
		batch *b = q->q[q->head];
		q->head = (q->head + 1) % QCAP;
		q->count--;
		pthread_cond_signal(&q->nonfull);
		pthread_mutex_unlock(&q->mu);
		for (int i = 0; i < BATCH; i++) {
			wl_check(b->p[i], b->n[i]);
			free(b->p[i]);
		}
		free(b);
		q->freed += BATCH;
	}
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "xmalloc", NULL);
	nprod = a.threads / 2 > 0 ? a.threads / 2 : 1;
	ncons = a.threads - nprod > 0 ? a.threads - nprod : 1;
	a.threads = nprod + ncons;
	per_producer = wl_scaled(30e6, a.scale, BATCH) / BATCH * BATCH;
	producers_left = nprod;
	queues = wl_xcalloc((size_t)ncons, sizeof(queue));
	for (int c = 0; c < ncons; c++) {
		pthread_mutex_init(&queues[c].mu, NULL);
		pthread_cond_init(&queues[c].nonempty, NULL);
		pthread_cond_init(&queues[c].nonfull, NULL);
	}
	role *pr = wl_xcalloc((size_t)nprod, sizeof(role)), *cr = wl_xcalloc((size_t)ncons, sizeof(role));
	pthread_t *pt = wl_xmalloc(sizeof(pthread_t) * (size_t)nprod), *ct = wl_xmalloc(sizeof(pthread_t) * (size_t)ncons);
	double t0 = wl_now();
	for (int c = 0; c < ncons; c++) {
		cr[c].id = c;
		if (pthread_create(&ct[c], NULL, consumer, &cr[c]))
			wl_fail("pthread_create");
	}
	for (int p = 0; p < nprod; p++) {
		pr[p].id = p;
		if (pthread_create(&pt[p], NULL, producer, &pr[p]))
			wl_fail("pthread_create");
	}
	for (int p = 0; p < nprod; p++)
		pthread_join(pt[p], NULL);
	for (int c = 0; c < ncons; c++)
		pthread_join(ct[c], NULL);
	double secs = wl_now() - t0;
	uint64_t freed = 0;
	for (int c = 0; c < ncons; c++)
		freed += queues[c].freed;
	if (freed != per_producer * (uint64_t)nprod)
		wl_fail("consumers freed %llu objects, producers made %llu", (unsigned long long)freed,
			(unsigned long long)(per_producer * (uint64_t)nprod));
	wl_result(&a, freed, secs, " producers=%d consumers=%d", nprod, ncons);
	free(pr);
	free(cr);
	free(pt);
	free(ct);
	free(queues);
	return 0;
}
