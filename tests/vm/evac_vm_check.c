/*
 * evac_vm_check.c — evacuation (src/evacuate.c) on a multi-node kernel:
 * objects of a span under evacuation freed by a thread on another node.
 * Run inside a QEMU VM with several NUMA nodes (tools/numa-vm; ctest
 * vm.evac2).
 *
 * One thread per node, pinned to that node's CPUs, fills 8 MiB with
 * 16-512 B blocks (each written with a pattern of its own), frees four in
 * five at random and then keeps replacing random survivors; one free in
 * four is handed to the next node's thread, so the background thread's
 * evacuated spans get frees from their own node and from the others (a
 * free whose page entry says "no class" goes straight back to the span,
 * under its node's central lock). After the first spans were emptied and a
 * few seconds more:
 *
 *   evac     spans were evacuated and emptied (otherwise nothing was
 *            checked)
 *   intact   every block read back its pattern before each free and at
 *            the end
 *   node     move_pages puts >= 99% of each thread's blocks on its node
 *            (the replacements came from the thread's own node, not from
 *            the remote objects freed into it)
 *
 * Lines "ok   [evac] ..." and "FAIL [evac] ..."; exit status 0 when every
 * check passed.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "numaheap.h"

#define MAXN 8
#include "vm_check.h"

#define FILL_BYTES ((size_t)8 << 20)
#define LIMIT_S 150.0 /* TCG runs some 20 times slower than the host */

struct block {
	uint64_t *p;
	uint32_t n; /* words */
	uint32_t id;
};

/* A handoff queue per thread: blocks another thread made, for this one to
 * check and free. In mmap'd memory, as is all bookkeeping here. */
struct queue {
	pthread_mutex_t mu;
	struct block *v;
	size_t n, cap;
};

static struct queue queues[MAXN];
static atomic_bool stop_churn;
static atomic_long bad_blocks, done_fill;

struct worker {
	int node;
	pthread_t th;
	struct block *v;
	size_t n;
	uint64_t rnd;
};
static struct worker workers[MAXN];

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t word(uint32_t id, uint32_t i) { return ((uint64_t)id << 32 | i) * 0x9E3779B97F4A7C15ull; }

static struct block make(struct worker *w, uint32_t id)
{
	uint32_t n = 2 + (uint32_t)(next(&w->rnd) % 63); /* 16-512 B */
	uint64_t *p = malloc((size_t)n * 8);
	if (!p)
		die("malloc(%u): %s", n * 8, strerror(errno));
	for (uint32_t i = 0; i < n; i++)
		p[i] = word(id, i);
	return (struct block){p, n, id};
}

static void destroy(struct block *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (b->p[i] != word(b->id, i)) {
			bad_blocks++;
			break;
		}
	free(b->p);
	b->p = NULL;
}

static void hand(int to, struct block b)
{
	struct queue *q = &queues[to];
	pthread_mutex_lock(&q->mu);
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 4096;
		struct block *v = xmap(cap * sizeof *v);
		memcpy(v, q->v, q->n * sizeof *v);
		xunmap(q->v, q->cap * sizeof *v);
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n++] = b;
	pthread_mutex_unlock(&q->mu);
}

static void drain(int me)
{
	struct queue *q = &queues[me];
	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < q->n; i++)
		destroy(&q->v[i]);
	q->n = 0;
	pthread_mutex_unlock(&q->mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	if (!pin_self(w->node))
		return NULL;
	uint32_t id = (uint32_t)w->node << 28;
	size_t cap = FILL_BYTES / 16, n = 0;
	struct block *all = xmap(cap * sizeof *all);
	for (size_t bytes = 0; bytes < FILL_BYTES; n++) {
		all[n] = make(w, id++);
		bytes += all[n].n * 8;
	}
	/* Four in five freed: the survivors keep every span sparse. */
	w->v = xmap(n * sizeof *w->v);
	for (size_t i = 0; i < n; i++) {
		if (next(&w->rnd) % 5 == 0)
			w->v[w->n++] = all[i];
		else
			destroy(&all[i]);
	}
	xunmap(all, cap * sizeof *all);
	done_fill++;
	int other = (w->node + 1) % nnodes;
	while (!atomic_load(&stop_churn)) {
		for (int k = 0; k < 1000; k++) {
			struct block *b = &w->v[next(&w->rnd) % w->n];
			if (next(&w->rnd) % 4 == 0)
				hand(other, *b);
			else
				destroy(b);
			*b = make(w, id++);
		}
		drain(w->node);
	}
	return NULL;
}

int main(void)
{
	mode_name = "evac";
	setvbuf(stdout, NULL, _IOLBF, 0);
	topology();
	if (nnodes < 2)
		die("%d node: the check needs two or more", nnodes);
	for (int i = 0; i < nnodes; i++) {
		pthread_mutex_init(&queues[i].mu, NULL);
		workers[i].node = i;
		workers[i].rnd = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
		if (pthread_create(&workers[i].th, NULL, worker_main, &workers[i]) != 0)
			die("pthread_create: %s", strerror(errno));
	}
	double t0 = now(), seen = 0;
	while (now() - t0 < LIMIT_S) {
		struct timespec ts = {0, 200000000};
		nanosleep(&ts, NULL);
		if (!seen && done_fill == nnodes && stats_counter("\"evacuated\":") > 0) {
			seen = now();
			note("first spans emptied %.1f s after the start", seen - t0);
		}
		if (seen && now() - seen > 4)
			break;
	}
	atomic_store(&stop_churn, true);
	for (int i = 0; i < nnodes; i++)
		pthread_join(workers[i].th, NULL);
	for (int i = 0; i < nnodes; i++)
		drain(i);
	unsigned long long evacuations = stats_counter("\"evacuations\":"), evacuated = stats_counter("\"evacuated\":");
	check(evacuated > 0, "evac: %llu spans evacuated, %llu of them emptied, in %.0f s", evacuations, evacuated,
	      now() - t0);

	/* Where each thread's blocks are, then the last pattern check. */
	for (int i = 0; i < nnodes; i++) {
		struct worker *w = &workers[i];
		void **addrs = xmap(w->n * sizeof *addrs);
		int *status = xmap(w->n * sizeof *status);
		for (size_t j = 0; j < w->n; j++)
			addrs[j] = w->v[j].p;
		for (size_t j = 0; j < w->n; j += 4096) {
			size_t k = w->n - j < 4096 ? w->n - j : 4096;
			if (move_pages(0, k, addrs + j, NULL, status + j, 0) != 0)
				die("move_pages: %s", strerror(errno));
		}
		size_t on = 0;
		for (size_t j = 0; j < w->n; j++)
			on += status[j] == i;
		check(on * 100 >= w->n * 99, "node: thread on node %d has %zu of its %zu blocks there", i, on, w->n);
		for (size_t j = 0; j < w->n; j++)
			destroy(&w->v[j]);
		xunmap(addrs, w->n * sizeof *addrs);
		xunmap(status, w->n * sizeof *status);
	}
	check(bad_blocks == 0, "intact: %ld blocks changed", (long)bad_blocks);
	printf("evac_vm_check: %d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}
