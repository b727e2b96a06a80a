/*
 * stats_text.c — the statistics as a person reads them (NUMAHEAP_STATS=1).
 *
 * Owns the text layout only; the figures come from one snapshot (stats.c).
 * Made for tuning: the nodes, the size classes that matter (the others are
 * counted in one line; the JSON has every class), the two "in use" figures
 * told apart (bytes of live objects, bytes of pages held by spans) with
 * their peaks, the process's resident memory and its peak, and how much of
 * malloc and free the caches served without a lock. docs/stats.md explains
 * every line. Allocation-free, like all of numaheap's output.
 */
#include "statsview.h"
#include "ordered.h"

#include <stdlib.h>
#include <string.h>

#include "mcache.h"
#include "options.h"
#include "os/os.h"
#include "proc.h"
#include "scavenger.h"

#include "numaheap.h"

static void put_bytes(struct nh_buf *b, uint64_t v, int width)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	uint64_t scaled = v * 10;
	while (scaled >= 10240 && u < 4) {
		scaled /= 1024;
		u++;
	}
	char tmp[32];
	struct nh_buf t = {tmp, 0, sizeof tmp, -1, 0};
	if (u == 0)
		buf_printf(&t, "%llu B", (unsigned long long)v);
	else
		buf_printf(&t, "%llu.%llu %s", (unsigned long long)(scaled / 10), (unsigned long long)(scaled % 10),
			   unit[u]);
	buf_printf(b, "%*s", width, tmp);
}

/* Does class k matter: 1% or more of the allocations, or 5% of the spans
 * or of the bytes in use? The others are counted in one line (the JSON has
 * them all). */
static bool class_matters(const struct snapshot *s, unsigned k, const uint64_t tot[3])
{
	const struct class_stats *c = &s->cls[k];
	return c->allocs * 100 >= tot[0] || c->spans * 20 >= tot[1] ||
	       in_use_objects(c) * nh_class_to_size[k] * 20 >= tot[2];
}

static void emit_text_classes(struct nh_buf *b, const struct snapshot *s)
{
	uint64_t tot[3] = {1, 1, 1}, hidden = 0;
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		tot[0] += s->cls[k].allocs;
		tot[1] += s->cls[k].spans;
		tot[2] += in_use_objects(&s->cls[k]) * nh_class_to_size[k];
	}
	buf_puts(b, "class   size   spans  objects in use        allocs         frees\n");
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		const struct class_stats *c = &s->cls[k];
		if (!c->allocs && !c->spans)
			continue;
		if (!class_matters(s, k, tot)) {
			hidden++;
			continue;
		}
		buf_printf(b, "%5u %6u %7llu %15llu %13llu %13llu\n", k, nh_class_to_size[k],
			   (unsigned long long)c->spans, (unsigned long long)in_use_objects(c),
			   (unsigned long long)c->allocs, (unsigned long long)frees_of(c));
	}
	if (hidden)
		buf_printf(b, "  (%llu more classes, each under 1%% of the allocations and 5%% of the spans and bytes in use: "
			   "NUMAHEAP_STATS=json lists them all)\n", (unsigned long long)hidden);
}

/* part / whole as a percentage with one decimal (the formatter has no %f). */
static void put_share(struct nh_buf *b, uint64_t part, uint64_t whole)
{
	uint64_t t = whole ? (part * 1000 + whole / 2) / whole : 1000;
	buf_printf(b, "%llu.%llu%%", (unsigned long long)(t / 10), (unsigned long long)(t % 10));
}

/* The process's resident memory now and at its peak (VmRSS, VmHWM), bytes. */
static void process_rss(uint64_t *now, uint64_t *peak)
{
	char buf[4096];
	*now = *peak = 0;
	if (os_read_file("/proc/self/status", buf, sizeof buf) <= 0)
		return;
	const char *r = strstr(buf, "VmRSS:"), *h = strstr(buf, "VmHWM:");
	*now = r ? strtoull(r + 6, NULL, 10) * 1024 : 0;
	*peak = h ? strtoull(h + 6, NULL, 10) * 1024 : 0;
}

/* The header and the node table. */
static void emit_text_nodes(struct nh_buf *b, const struct snapshot *s)
{
	int nnodes = 0;
	for (int n = 0; n < NH_MAX_NODES; n++)
		nnodes += s->node[n].present;
	buf_printf(b, "numaheap %s statistics: cpu_mode %s%s, %d node%s, %llu cache%s\n", NUMAHEAP_VERSION_STRING,
		   cpu_mode_name(), os_basic_syscalls ? " (basic system calls)" : "", nnodes, nnodes == 1 ? "" : "s",
		   (unsigned long long)s->caches,
		   s->caches == 1 ? "" : "s");
	buf_puts(b, "node       mapped     in spans   huge pages     released     metadata  remote frees  local\n");
	for (int n = 0; n < NH_MAX_NODES; n++) {
		const struct node_stats *ns = &s->node[n];
		if (!ns->present)
			continue;
		buf_printf(b, "%4d ", n);
		put_bytes(b, ns->mapped, 12);
		put_bytes(b, ns->inuse, 13);
		put_bytes(b, ns->huge, 13);
		put_bytes(b, ns->released, 13);
		put_bytes(b, ns->metadata, 13);
		uint64_t placed = 0;
		for (int m = 0; m < NH_MAX_NODES; m++)
			placed += ns->placed[m];
		buf_printf(b, " %13llu", (unsigned long long)ns->remote_frees);
		if (placed)
			buf_printf(b, " %5llu%%\n", (unsigned long long)(ns->placed[n] * 100 / placed));
		else
			buf_puts(b, "     -\n");
	}
}

void stats_emit_text(struct nh_buf *b, const struct snapshot *s)
{
	emit_text_nodes(b, s);
	emit_text_classes(b, s);
	buf_printf(b, "large: %llu allocs, %llu frees, in use ", (unsigned long long)s->cls[0].allocs,
		   (unsigned long long)s->large_frees);
	put_bytes(b, s->large_inuse, 0);
	buf_printf(b, ", %llu allocs from the large-span cache", (unsigned long long)s->large_cache_hits);
	if (nh_ordered_hi) {
		buf_printf(b, "\nordered (up to %u B): %llu spans, ", nh_class_to_size[nh_ordered_hi],
			   (unsigned long long)s->ordered_spans);
		put_bytes(b, s->ordered_bytes, 0);
		buf_puts(b, ", released inside them ");
		put_bytes(b, s->ordered_released, 0);
	}
	struct totals t = totals_of(s);
	buf_printf(b, "\ntotals: %llu allocs, %llu frees, in use ", (unsigned long long)t.allocs,
		   (unsigned long long)t.frees);
	put_bytes(b, t.inuse, 0);
	buf_puts(b, " (objects), mapped ");
	put_bytes(b, t.mapped, 0);
	uint64_t spans = 0, rss, hwm;
	for (int n = 0; n < NH_MAX_NODES; n++)
		spans += s->node[n].inuse;
	buf_puts(b, "\nmemory: in spans ");
	put_bytes(b, spans, 0);
	buf_puts(b, " (peak ");
	put_bytes(b, s->peak_spans, 0);
	process_rss(&rss, &hwm);
	buf_puts(b, "); process resident ");
	put_bytes(b, rss, 0);
	buf_puts(b, " (peak ");
	put_bytes(b, hwm, 0);
	uint64_t small_allocs = t.allocs - s->cls[0].allocs, small_frees = t.frees - s->large_frees;
	buf_printf(b, ")\ncaches: %llu refills, %llu flushes, %llu rseq aborts; served without a lock: malloc ",
		   (unsigned long long)s->refills, (unsigned long long)s->flushes, (unsigned long long)s->aborts);
	put_share(b, small_allocs - NH_MIN(s->refills, small_allocs), small_allocs);
	buf_puts(b, ", free ");
	put_share(b, small_frees - NH_MIN(s->flushes, small_frees), small_frees);
	buf_putc(b, '\n');
	buf_printf(b, "scavenger: %s, released ", nh_scav.backend);
	put_bytes(b, nh_scav.bg_released_bytes + nh_scav.sync_released_bytes, 0);
	if (nh_scav.retained_released_bytes) {
		buf_puts(b, " (");
		put_bytes(b, nh_scav.retained_released_bytes, 0);
		buf_puts(b, " of it idle for the retain time, whatever the goal)");
	}
	buf_printf(b, " in %llu passes, %llu system calls, %llu ms working\n", (unsigned long long)nh_scav.passes,
		   (unsigned long long)(nh_scav.syscalls + nh_scav.bg_syscalls),
		   (unsigned long long)(nh_scav.cpu_ns / 1000000));
	if (nh_scav.subreleased_bytes || nh_scav.span_released_bytes || nh_scav.collapses) {
		uint64_t now_in_spans = 0;
		for (int n = 0; n < NH_MAX_NODES; n++)
			now_in_spans += s->node[n].span_released;
		buf_puts(b, "subrelease: ");
		put_bytes(b, nh_scav.subreleased_bytes, 0);
		buf_puts(b, " from huge pages in use, ");
		put_bytes(b, __atomic_load_n(&nh_scav.span_released_bytes, __ATOMIC_RELAXED), 0);
		buf_puts(b, " inside spans in use (");
		put_bytes(b, now_in_spans, 0);
		buf_printf(b, " now); %llu huge pages made whole again\n", (unsigned long long)(nh_scav.collapses - nh_scav.base_collapses));
	}
	if (nh_scav.churn_events)
		buf_printf(b, "churn: %llu regrowths soon after a release; background delays now %ux\n",
			   (unsigned long long)nh_scav.churn_events, 1u << nh_scav.delay_shift);
	if (nh_scav.trims_paced)
		buf_printf(b, "trims: %llu releases of everything; %llu malloc_trim calls paced (came too often: released nothing)\n",
			   (unsigned long long)nh_scav.sync_releases, (unsigned long long)nh_scav.trims_paced);
	if (nh_scav.prefault_episodes) {
		buf_printf(b, "pre-faulted ");
		put_bytes(b, s->prefaulted, 0);
		buf_printf(b, " ahead of a growing heap in %llu episode%s, %llu ms; %llu us of CPU per huge page",
			   (unsigned long long)nh_scav.prefault_episodes, nh_scav.prefault_episodes == 1 ? "" : "s",
			   (unsigned long long)(nh_scav.prefault_ns / 1000000),
			   (unsigned long long)(nh_scav.prefault_huge_ns / 1000));
		if (nh_scav.prefault_fresh_offs)
			buf_printf(b, " (fresh growth left to the program %llu time%s: it faults in quickly)",
				   (unsigned long long)nh_scav.prefault_fresh_offs, nh_scav.prefault_fresh_offs == 1 ? "" : "s");
		buf_printf(b, "\n");
	}
	if (atomic_load(&nh_scav.base_arena_bytes)) {
		buf_printf(b, "arenas put on base pages: ");
		put_bytes(b, atomic_load(&nh_scav.base_arena_bytes), 0);
		buf_printf(b, " (%s); %llu huge pages of them made whole since (growth slowed below 2 MiB/s)\n",
			   NH_OPTION(THP_ADAPT) == THP_ADAPT_BASE ? "NUMAHEAP_THP_ADAPT=base"
								 : "fresh huge pages slow here, the CPUs busy",
			   (unsigned long long)nh_scav.base_collapses);
	}
	buf_printf(b, "kernel calls: mmap %llu, munmap %llu, mprotect %llu, madvise %llu, mbind %llu, move_pages %llu, "
		      "io_uring %llu, futex wait %llu, wake %llu\n",
		   (unsigned long long)nh_kstats.mmap, (unsigned long long)nh_kstats.munmap,
		   (unsigned long long)nh_kstats.mprotect, (unsigned long long)nh_kstats.madvise,
		   (unsigned long long)nh_kstats.mbind, (unsigned long long)nh_kstats.move_pages,
		   (unsigned long long)nh_kstats.io_uring_enter,
		   (unsigned long long)nh_kstats.futex_wait, (unsigned long long)nh_kstats.futex_wake);
}

