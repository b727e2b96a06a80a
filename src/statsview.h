/*
 * statsview.h — one snapshot of the statistics, shared by the files that
 * gather it (stats.c) and print it as text (stats_text.c). Private to them.
 */
#ifndef NUMAHEAP_STATSVIEW_H
#define NUMAHEAP_STATSVIEW_H

#include "internal.h"
#include "report.h"

struct class_stats {
	uint64_t spans, empty, out, cached, allocs, transfer, released;
};

struct node_stats {
	bool present;
	uint64_t placed[NH_MAX_NODES]; /* resident bytes of this heap on each node (numa_maps) */
	uint64_t remote_frees;
	uint64_t mapped, inuse, released, huge, metadata, large_inuse, large_frees, reused, grows, scav_released, prefaulted;
	uint64_t span_released, broken;
};

struct snapshot {
	struct class_stats cls[NH_NUM_CLASSES];
	struct node_stats node[NH_MAX_NODES];
	uint64_t refills, flushes, caches, aborts;
	uint64_t large_frees, large_inuse, large_cache_hits;
	uint64_t ordered_spans, ordered_bytes, ordered_released; /* NUMAHEAP_ORDERED's spans (orelease.c) */
	uint64_t prefaulted; /* sum of the nodes' */
	uint64_t peak_spans; /* sum of the nodes' peaks of bytes in spans (each at its own time) */
};

static inline uint64_t in_use_objects(const struct class_stats *c)
{
	return c->out > c->cached ? c->out - c->cached : 0;
}

static inline uint64_t frees_of(const struct class_stats *c)
{
	uint64_t u = in_use_objects(c);
	return c->allocs > u ? c->allocs - u : 0;
}

struct totals {
	uint64_t allocs, frees, inuse, mapped;
};

struct totals totals_of(const struct snapshot *s);
const char *cpu_mode_name(void);
/* The text form of a snapshot (stats_text.c). */
void stats_emit_text(struct nh_buf *b, const struct snapshot *s);

#endif /* NUMAHEAP_STATSVIEW_H */
