/*
 * placement.c — a design study, not a benchmark: how much of mixed.c's heap
 * stays resident after 90% of it is freed, for several ways of placing the
 * objects, computed rather than run (issue 21: the "runs" pattern).
 *
 *   placement [MIB]     default 512, as perf/rss/mixed.py --mib 512
 *
 * It draws the same blocks as mixed.c (same generator, same seed, same
 * sizes), lays them out in a model address space, frees the same 90%
 * (runs of 32 consecutive blocks surviving one in ten, or blocks surviving
 * one by one), and counts the 4 KiB pages that still hold a live byte: the
 * floor of RSS for that placement, with every free page returned. Only the
 * objects are counted (no metadata, no program), so the ratios sit below
 * what mixed.py measures (numaheap: 1.48 trimmed against 1.37 here).
 *
 * Placements:
 *   segregated   numaheap's size classes (sizeclasses.h): per class, spans
 *                of the class's pages filled in allocation order
 *   bands4       objects up to 8 KiB placed in allocation order, 16-byte
 *                aligned, in one region per band (<= 64 B, <= 256 B,
 *                <= 1 KiB, <= 8 KiB); larger ones as segregated
 *   bands2       the same with two bands (<= 512 B, <= 8 KiB)
 *   mixed        one region for everything up to 8 KiB (glibc-like)
 *   chunks256, chunks512
 *                objects up to 512 B in chunks of 256 (512) bytes of one
 *                size class each, the chunks taken in allocation order
 *                from one region; 1-8 KiB as bands2's second band. A page
 *                table of that granularity would give free the class of
 *                every chunk (its fast path unchanged), at 32 (16) times
 *                the table's size
 *   chunks256seg the same with 256-byte chunks, and 1-8 KiB in their size
 *                classes' spans: every object on free's fast path
 * Objects above 32 KiB are page-rounded blocks of their own in every
 * placement.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NHB_RNG_SEED 0x2545f4914f6cdd1dULL /* mixed.c's */
#include "../lib/rng.h"
#include "../../src/sizeclasses.h"
#include "mixedheap.h"

enum { SEGREGATED, BANDS4, BANDS2, MIXED, CHUNKS256, CHUNKS512, CHUNKS256SEG, NPLACEMENTS };
static const char *names[] = {"segregated", "bands4", "bands2", "mixed", "chunks256", "chunks512", "chunks256seg"};

struct blk {
	uint32_t size;
	uint8_t live;
};

/* Model addresses: each class, band and the large blocks get a region of
 * their own, 2^36 bytes apart. */
#define REGION(k) ((uint64_t)(k) << 36)

struct layout {
	uint64_t span[NH_NUM_CLASSES], next[NH_NUM_CLASSES], end[NH_NUM_CLASSES]; /* the class's current span */
	uint64_t band[4];
	uint64_t cnext[NH_NUM_CLASSES], cend[NH_NUM_CLASSES], chunk; /* chunks256/512 */
	uint64_t large;
};

static int class_of(size_t n)
{
	for (int c = 1; c < NH_NUM_CLASSES; c++)
		if (nh_class_to_size[c] >= n)
			return c;
	return 0;
}

static uint64_t place_in_span(struct layout *l, size_t n)
{
	int c = class_of(n);
	uint64_t size = nh_class_to_size[c], span = (uint64_t)nh_class_to_npages[c] * NH_PAGE_SIZE;
	if (l->next[c] + size > l->end[c]) { /* the next span: the first, or right after the last */
		l->span[c] = l->span[c] ? l->span[c] + span : REGION(c + 1);
		l->next[c] = l->span[c];
		l->end[c] = l->span[c] + span / size * size;
	}
	uint64_t a = l->next[c];
	l->next[c] += size;
	return a;
}

/* An object of up to 512 B in its class's current chunk of c bytes (or of
 * its own size, if larger). */
static uint64_t place_in_chunk(struct layout *l, size_t n, uint64_t c)
{
	int k = class_of(n);
	uint64_t size = nh_class_to_size[k];
	if (c < size) /* a class above the chunk size: a chunk of one object */
		c = size;
	if (l->cnext[k] + size > l->cend[k]) {
		l->cnext[k] = l->chunk;
		l->cend[k] = l->chunk + c / size * size;
		l->chunk += c;
	}
	uint64_t a = l->cnext[k];
	l->cnext[k] += size;
	return a;
}

static uint64_t place(struct layout *l, int how, size_t n)
{
	if (n > NH_MAX_SMALL_SIZE) {
		uint64_t a = l->large;
		l->large += (n + 4095) & ~(uint64_t)4095;
		return a;
	}
	if ((how == CHUNKS256 || how == CHUNKS512 || how == CHUNKS256SEG) && n <= 512)
		return place_in_chunk(l, n, how == CHUNKS512 ? 512 : 256);
	if (how == CHUNKS256SEG)
		return place_in_span(l, n);
	int b = -1;
	if (n <= 8192) {
		if (how == BANDS4)
			b = n <= 64 ? 0 : n <= 256 ? 1 : n <= 1024 ? 2 : 3;
		else if (how == BANDS2 || how == CHUNKS256 || how == CHUNKS512)
			b = n <= 512 ? 0 : 3;
		else if (how == MIXED)
			b = 0;
	}
	if (b < 0)
		return place_in_span(l, n);
	uint64_t a = (l->band[b] + 15) & ~(uint64_t)15;
	l->band[b] = a + n;
	return a;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
	size_t target = (size_t)(argc > 1 ? atol(argv[1]) : 512) << 20;
	printf("| placement | runs: resident / live | scattered: resident / live |\n|---|--:|--:|\n");
	double ratio[NPLACEMENTS][2];
	for (int pattern = 0; pattern < 2; pattern++) {
		/* The same blocks for every placement: mixed.c's sequence. */
		rng_state = NHB_RNG_SEED;
		size_t n = 0, cap = 1 << 16, live = 0;
		struct blk *v = malloc(cap * sizeof *v);
		while (live < target) {
			if (n == cap)
				v = realloc(v, (cap *= 2) * sizeof *v);
			size_t s = mixed_size();
			v[n++] = (struct blk){(uint32_t)s, 1};
			live += s;
		}
		for (size_t i = 0; i < n; i++) /* mixed.c's free_most() */
			if (!block_survives(i, pattern == 0 ? MIXED_RUN_LEN : 0)) {
				v[i].live = 0;
				live -= v[i].size;
			}
		for (int how = 0; how < NPLACEMENTS; how++) {
			struct layout l = {.band = {REGION(100), REGION(101), REGION(102), REGION(103)}, .large = REGION(104), .chunk = REGION(105)};
			size_t np = 0, pcap = 1 << 20;
			uint64_t *pages = malloc(pcap * sizeof *pages);
			for (size_t i = 0; i < n; i++) {
				uint64_t a = place(&l, how, v[i].size);
				if (!v[i].live)
					continue;
				for (uint64_t p = a >> 12; p <= (a + v[i].size - 1) >> 12; p++) {
					if (np == pcap)
						pages = realloc(pages, (pcap *= 2) * sizeof *pages);
					pages[np++] = p;
				}
			}
			qsort(pages, np, sizeof *pages, cmp_u64);
			size_t resident = 0;
			for (size_t i = 0; i < np; i++)
				resident += !i || pages[i] != pages[i - 1];
			ratio[how][pattern] = (double)resident * 4096 / (double)live;
			free(pages);
		}
		free(v);
	}
	for (int how = 0; how < NPLACEMENTS; how++)
		printf("| %s | %.3f | %.3f |\n", names[how], ratio[how][0], ratio[how][1]);
	return 0;
}
