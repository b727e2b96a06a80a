/*
 * large.c — large allocations and realloc growth.
 *
 * Phase 1 (large): each thread keeps 8 large blocks and repeatedly replaces
 * a random one with a new block of 64 KiB..8 MiB (log-uniform), writing one
 * byte in every 4 KiB page of it, as a program filling buffers does. An
 * allocator that returns such blocks to the kernel at every free pays a page
 * fault per page on each reuse; one that keeps them pays in RSS.
 *
 * Phase 2 (growth): each thread grows buffers with realloc, the way string
 * builders and vectors do: geometric growth (x1.125 + 16 B) from 16 B to
 * 16 MiB, then linear growth by 4 KiB steps from 4 KiB to 2 MiB. The byte at
 * the end of the old size is written before every realloc and checked after,
 * and the first word is checked all along.
 *
 * Work: 2,000 * SCALE large blocks and 20 * SCALE growth sequences (of each
 * kind) per thread.
 */
#include "common.h"

#include <malloc.h>

#define KEEP 8
#define MINL (64u << 10)
#define MAXL (8u << 20)
#define GROW_MAX (16u << 20)
#define LIN_STEP 4096u
#define LIN_MAX (2u << 20)

static uint64_t large_ops, grow_seqs;
static const uint64_t MAGIC = 0x6c617267652d6e68ULL;

typedef struct {
	int id;
	uint64_t reallocs, moves;
	double large_secs, grow_secs;
	char pad[WL_CACHELINE];
} worker;

static void *grow(void *p, size_t oldn, size_t newn, worker *w)
{
	unsigned char mark = (unsigned char)(oldn * 31 + 7);
	((unsigned char *)p)[oldn - 1] = mark;
	void *q = realloc(p, newn);
	if (!q)
		wl_fail("realloc(%zu -> %zu) returned NULL", oldn, newn);
	uint64_t m;
	memcpy(&m, q, 8);
	if (m != MAGIC || ((unsigned char *)q)[oldn - 1] != mark)
		wl_fail("realloc(%zu -> %zu) lost the content", oldn, newn);
	if (malloc_usable_size(q) < newn)
		wl_fail("realloc(%zu -> %zu) gave a block of %zu usable bytes", oldn, newn, malloc_usable_size(q));
	((unsigned char *)q)[newn - 1] = mark; /* the whole new size must be writable */
	w->reallocs++;
	w->moves += q != p;
	return q;
}

static void *work(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)w->id + 1);

	double t0 = wl_now();
	void *p[KEEP] = {0};
	size_t n[KEEP] = {0};
	for (uint64_t i = 0; i < large_ops; i++) {
		unsigned s = (unsigned)wl_below(&r, KEEP);
		if (p[s]) {
			wl_check(p[s], n[s]);
			free(p[s]);
		}
		n[s] = (size_t)wl_logrange(&r, MINL, MAXL);
		p[s] = wl_xmalloc(n[s]);
		if (malloc_usable_size(p[s]) < n[s])
			wl_fail("malloc(%zu) gave a block of %zu usable bytes", n[s], malloc_usable_size(p[s]));
		wl_touch_pages(p[s], n[s], (unsigned char)i);
		wl_fill(p[s], n[s]);
	}
	for (int s = 0; s < KEEP; s++)
		if (p[s]) {
			wl_check(p[s], n[s]);
			free(p[s]);
		}
	double t1 = wl_now();
	w->large_secs = t1 - t0;

	for (uint64_t g = 0; g < grow_seqs; g++) {
		size_t cur = 16;
		void *b = wl_xmalloc(cur);
		memcpy(b, &MAGIC, 8);
		while (cur < GROW_MAX) {
			size_t next = cur + cur / 8 + 16;
			b = grow(b, cur, next, w);
			cur = next;
		}
		free(b);
		cur = LIN_STEP;
		b = wl_xmalloc(cur);
		memcpy(b, &MAGIC, 8);
		while (cur < LIN_MAX) {
			b = grow(b, cur, cur + LIN_STEP, w);
			cur += LIN_STEP;
		}
		free(b);
	}
	w->grow_secs = wl_now() - t1;
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "large", NULL);
	large_ops = wl_scaled(2000, a.scale, 50);
	grow_seqs = wl_scaled(20, a.scale, 2);
	worker *ws = wl_xcalloc((size_t)a.threads, sizeof(worker));
	for (int i = 0; i < a.threads; i++)
		ws[i].id = i;
	double t0 = wl_now();
	wl_run_threads(a.threads, work, ws, sizeof(worker));
	double secs = wl_now() - t0;
	uint64_t reallocs = 0, moves = 0;
	double ls = 0, gs = 0;
	for (int i = 0; i < a.threads; i++) {
		reallocs += ws[i].reallocs;
		moves += ws[i].moves;
		ls = ws[i].large_secs > ls ? ws[i].large_secs : ls;
		gs = ws[i].grow_secs > gs ? ws[i].grow_secs : gs;
	}
	free(ws);
	wl_result(&a, (large_ops + reallocs / (uint64_t)a.threads) * (uint64_t)a.threads, secs,
		  " large_allocs=%llu reallocs=%llu realloc_moves=%llu large_phase_secs=%.3f grow_phase_secs=%.3f",
		  (unsigned long long)(large_ops * (uint64_t)a.threads), (unsigned long long)reallocs,
		  (unsigned long long)moves, ls, gs);
	return 0;
}
