/*
 * walk.c — objects of one kind walked in the order they were made.
 *
 * What an interpreter or a database does between its allocations: each
 * thread builds records of three blocks, made one after the other (a
 * 64-byte head, a key of 16..64 B and a value of 32..512 B, log-uniform),
 * 128 MiB * SCALE in all, then walks its heads in the order it made them,
 * again and again (a dict's records, a table scan), reading a word of
 * each, and its keys likewise (a sort's comparisons). No allocation in the
 * timed part: the time is set by how the allocator laid the heads out. By
 * size class, a thread's heads sit side by side (a walk reads every byte
 * of the lines it loads, and the prefetcher follows); in allocation order,
 * each head has its key and value between it and the next.
 *
 * Reported secs cover the walks only; build_secs is the allocation.
 * Work: 24 passes over the heads and 8 over the keys.
 */
#include "common.h"

typedef struct head {
	char *key, *val;
	uint64_t tag, n;
	uint64_t pad[4];
} head;

typedef struct {
	int id;
	head **heads;
	size_t count;
	uint64_t bytes_goal, sum;
	char pad[WL_CACHELINE];
} worker;

#define HEAD_PASSES 24
#define KEY_PASSES 8

static void *build(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	wl_rng r;
	wl_rng_seed(&r, (uint64_t)w->id + 7);
	size_t cap = w->bytes_goal / (sizeof(head) + 48) + 1;
	w->heads = wl_xmalloc(sizeof(head *) * cap);
	uint64_t got = 0;
	while (got < w->bytes_goal && w->count < cap) {
		head *h = wl_xmalloc(sizeof(head));
		uint32_t kn = (uint32_t)wl_logrange(&r, 16, 64), vn = (uint32_t)wl_logrange(&r, 32, 512);
		h->key = wl_xmalloc(kn);
		h->val = wl_xmalloc(vn);
		h->tag = wl_tag(h, 0);
		h->n = kn;
		memset(h->key, (int)(w->count & 0x7f), kn);
		memset(h->val, 1, vn);
		w->heads[w->count++] = h;
		got += sizeof(head) + kn + vn;
	}
	return NULL;
}

static void *walk(void *arg)
{
	worker *w = arg;
	wl_maybe_pin(w->id);
	uint64_t sum = 0;
	for (int pass = 0; pass < HEAD_PASSES; pass++)
		for (size_t i = 0; i < w->count; i++) {
			const head *h = w->heads[i];
			if (WL_UNLIKELY(h->tag != wl_tag(h, 0)))
				wl_fail("record %zu was overwritten", i);
			sum += h->n;
		}
	for (int pass = 0; pass < KEY_PASSES; pass++)
		for (size_t i = 0; i < w->count; i++)
			sum += (unsigned char)w->heads[i]->key[0];
	w->sum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	wl_args a = wl_parse(argc, argv, "walk", NULL);
	uint64_t heap = wl_scaled(128.0 * (1 << 20), a.scale, 4 << 20);
	worker *ws = wl_xcalloc((size_t)a.threads, sizeof(worker));
	for (int i = 0; i < a.threads; i++) {
		ws[i].id = i;
		ws[i].bytes_goal = heap / (uint64_t)a.threads;
	}
	double t0 = wl_now();
	wl_run_threads(a.threads, build, ws, sizeof(worker));
	double build_secs = wl_now() - t0;
	double t1 = wl_now();
	wl_run_threads(a.threads, walk, ws, sizeof(worker));
	double secs = wl_now() - t1;
	uint64_t records = 0, sum = 0;
	for (int i = 0; i < a.threads; i++) {
		records += ws[i].count;
		sum += ws[i].sum;
		for (size_t j = 0; j < ws[i].count; j++) {
			free(ws[i].heads[j]->key);
			free(ws[i].heads[j]->val);
			free(ws[i].heads[j]);
		}
		free(ws[i].heads);
	}
	free(ws);
	wl_result(&a, records * (HEAD_PASSES + KEY_PASSES), secs, " records=%llu heap_mib=%llu build_secs=%.3f chk=%llu",
		  (unsigned long long)records, (unsigned long long)(heap >> 20), build_secs,
		  (unsigned long long)(sum & 0xffff));
	return 0;
}
