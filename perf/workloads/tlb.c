/*
 * tlb.c — random access over a large heap (TLB and cache misses).
 *
 * The threads allocate 256 MiB * SCALE of small nodes (32..256 B,
 * log-uniform, interleaved with each other), then the main thread links
 * every node into one cycle in random order. Each thread then follows the
 * cycle from its own starting node for STEPS steps, checking each node's
 * tag as it goes. Nearly every step misses the caches, so the time is set by
 * how the allocator laid the nodes out: how densely (bytes of pages per
 * node) and on which page size (a heap on 2 MiB pages needs 512 times fewer
 * TLB entries than one on 4 KiB pages).
 *
 * Reported secs cover the chase only; build_secs is the allocation and
 * linking. Work: 3,000,000 * SCALE steps per thread (at least 500,000).
 */
#include "common.h"

typedef struct node {
	struct node *next;
	uint64_t tag;
} node;

typedef struct {
	int id;
	node **nodes; /* this thread's allocations */
	size_t count;
	uint64_t bytes_goal, sum;
	node *start;
	char pad[WL_CACHELINE];
} worker;

static uint64_t steps;
static pthread_barrier_t sync_b;

static void *build(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)w->id + 1);
	size_t cap = w->bytes_goal / 32 + 1;
	w->nodes = wl_xmalloc(sizeof(node *) * cap);
	uint64_t got = 0;
	while (got < w->bytes_goal && w->count < cap) {
		uint32_t n = (uint32_t)wl_logrange(&r, 32, 256);
		node *p = wl_xmalloc(n);
		p->next = NULL;
		p->tag = wl_tag(p, 0);
		w->nodes[w->count++] = p;
		got += n;
	}
	return NULL;
}

static void *chase(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	pthread_barrier_wait(&sync_b);
	node *p = w->start;
	uint64_t sum = 0;
	for (uint64_t i = 0; i < steps; i++) {
		if (WL_UNLIKELY(p->tag != wl_tag(p, 0)))
			wl_fail("node %p was overwritten", (void *)p);
		sum += (uintptr_t)p & 0xfff;
		p = p->next;
	}
	w->sum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "tlb", NULL);
	uint64_t heap = wl_scaled(256.0 * (1 << 20), a.scale, 8 << 20);
	steps = wl_scaled(3e6, a.scale, 500000);
	worker *ws = wl_xcalloc((size_t)a.threads, sizeof(worker));
	for (int i = 0; i < a.threads; i++) {
		ws[i].id = i;
		ws[i].bytes_goal = heap / (uint64_t)a.threads;
	}
	double t0 = wl_now();
	wl_run_threads(a.threads, build, ws, sizeof(worker));
	size_t total = 0;
	for (int i = 0; i < a.threads; i++)
		total += ws[i].count;
	node **all = wl_xmalloc(sizeof(node *) * total);
	size_t k = 0;
	for (int i = 0; i < a.threads; i++) {
		memcpy(all + k, ws[i].nodes, sizeof(node *) * ws[i].count);
		k += ws[i].count;
		free(ws[i].nodes);
	}
	wl_rng r;
	wl_rng_seed(&r, 0);
	for (size_t i = total - 1; i > 0; i--) { /* Fisher-Yates */
		size_t j = (size_t)wl_below(&r, i + 1);
		node *t = all[i];
		all[i] = all[j];
		all[j] = t;
	}
	for (size_t i = 0; i < total; i++)
		all[i]->next = all[(i + 1) % total];
	for (int i = 0; i < a.threads; i++)
		ws[i].start = all[(total / (size_t)a.threads) * (size_t)i];
	double build_secs = wl_now() - t0;

	pthread_barrier_init(&sync_b, NULL, (unsigned)a.threads);
	double t1 = wl_now();
	wl_run_threads(a.threads, chase, ws, sizeof(worker));
	double secs = wl_now() - t1;

	/* check the cycle is intact: one full lap from all[0] comes back */
	node *p = all[0];
	for (size_t i = 0; i < total; i++)
		p = p->next;
	if (p != all[0])
		wl_fail("the cycle of %zu nodes is broken", total);
	for (size_t i = 0; i < total; i++)
		free(all[i]);
	free(all);
	uint64_t sum = 0;
	for (int i = 0; i < a.threads; i++)
		sum += ws[i].sum;
	free(ws);
	wl_result(&a, steps * (uint64_t)a.threads, secs, " nodes=%zu heap_mib=%llu build_secs=%.3f ns_per_step=%.1f chk=%llu",
		  total, (unsigned long long)(heap >> 20), build_secs, secs * 1e9 / (double)steps,
		  (unsigned long long)(sum & 0xffff));
	return 0;
}
