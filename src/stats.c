/*
 * stats.c — statistics: gathered on demand, printed as text or JSON.
 *
 * Nothing is counted twice on the fast paths: the only per-operation counter
 * is the M's per-class malloc count (M-local, no atomics). Everything else
 * is derived when statistics are read:
 *
 *   objects in use (class) = objects out of spans (mcentral, exact, under
 *                            its lock) - objects sitting in P caches
 *   frees (class)          = mallocs - objects in use
 *   huge-page bytes        = AnonHugePages of the heap's mappings, read from
 *                            /proc/self/smaps (what the kernel says, not an
 *                            estimate)
 *   released bytes         = free pages whose memory the heap gave back to
 *                            the OS, or never touched (Go's HeapReleased)
 *
 * Reads of other threads' caches are racy snapshots; a total read while
 * threads allocate can be off by the objects in flight. docs/stats.md
 * explains every field.
 */

#include "options.h"
#include "os/os.h"

#include "numa.h"
#include "report.h"
#include "ordered.h"

#include "arena.h"

#include "mheap.h"
#include "mcache.h"
#include "proc.h"
#include "alloc.h"
#include "scavenger.h"
#include "stats.h"
#include "statsview.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "numaheap.h"

/* What a line of a /proc file adds to: the snapshot, and in smaps the heap
 * whose slice the current mapping is in (-1: none). */
struct proc_reader {
	struct snapshot *s;
	int node;
};

/* A line's leading hex number; *end gets what follows it. */
static uintptr_t leading_hex(const char *c, const char **end)
{
	uintptr_t v = 0;
	while ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')) {
		v = v * 16 + (uintptr_t)(*c <= '9' ? *c - '0' : *c - 'a' + 10);
		c++;
	}
	*end = c;
	return v;
}

static uint64_t decimal(const char *c)
{
	uint64_t v = 0;
	for (; *c >= '0' && *c <= '9'; c++)
		v = v * 10 + (uint64_t)(*c - '0');
	return v;
}

/* smaps: a mapping's header line, then its fields. */
static void smaps_line(char *line, void *arg)
{
	struct proc_reader *r = arg;
	const char *c;
	uintptr_t start = leading_hex(line, &c);
	if (c != line && *c == '-') {
		r->node = start - NH_HEAP_BASE < NH_HEAP_RANGE ? node_of_addr(start) : -1;
	} else if (r->node >= 0 && !strncmp(line, "AnonHugePages:", 14)) {
		c = line + 14;
		while (*c == ' ')
			c++;
		r->s->node[r->node].huge += decimal(c) * 1024;
	}
}

/* numa_maps: per mapping, "N<node>=<pages>" and the size of those pages. */
static void numa_maps_line(char *line, void *arg)
{
	struct snapshot *s = ((struct proc_reader *)arg)->s;
	const char *c;
	uintptr_t start = leading_hex(line, &c);
	if (start - NH_HEAP_BASE >= NH_HEAP_RANGE)
		return;
	int heap = node_of_addr(start);
	uint64_t pages[NH_MAX_NODES] = {0}, kb = 4;
	for (const char *t = c; *t; t++) {
		if (t[0] == ' ' && t[1] == 'N' && t[2] >= '0' && t[2] <= '9') {
			int n = 0;
			const char *u = t + 2;
			while (*u >= '0' && *u <= '9')
				n = n * 10 + (*u++ - '0');
			if (*u == '=' && n < NH_MAX_NODES)
				pages[n] += decimal(u + 1);
		} else if (!strncmp(t, " kernelpagesize_kB=", 19)) {
			kb = decimal(t + 19);
		}
	}
	for (int n = 0; n < NH_MAX_NODES; n++)
		s->node[heap].placed[n] += pages[n] * kb * 1024;
}

/* Huge-page coverage and NUMA placement of the heap, as the kernel says. */
static void read_kernel_view(struct snapshot *s)
{
	char buf[8192];
	struct proc_reader r = {s, -1};
	os_read_lines("/proc/self/smaps", buf, sizeof buf, smaps_line, &r);
	r.node = -1;
	os_read_lines("/proc/self/numa_maps", buf, sizeof buf, numa_maps_line, &r);
}

/* Add an mcentral's spans, objects out and transfer-cache objects to cs. */
static void add_central(struct class_stats *cs, struct mcentral *c)
{
	mutex_lock(&c->lock);
	cs->spans += c->nspans;
	cs->empty += c->nempty;
	cs->out += c->objects_out;
	cs->released += c->released_bytes;
	mutex_unlock(&c->lock);
	cs->transfer += mcentral_transfer_objects(c);
	cs->out += ordered_objects_out(c->node, c->sizeclass);
}

static void snapshot(struct snapshot *s)
{
	memset(s, 0, sizeof *s);
	for_each_heap(h) {
		struct node_stats *ns = &s->node[h->node];
		ns->present = true;
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
			uint64_t before = s->cls[k].released;
			add_central(&s->cls[k], &h->central[k]);
			ns->span_released += s->cls[k].released - before;
		}
		size_t ospans, obytes, oreleased;
		ordered_stats(h->node, &ospans, &obytes, &oreleased);
		ns->span_released += oreleased;
		s->ordered_spans += ospans;
		s->ordered_bytes += obytes;
		s->ordered_released += oreleased;
		mutex_lock(&h->lock);
		ns->broken = h->pages.broken;
		ns->mapped = h->mapped_bytes;
		ns->inuse = h->inuse_bytes;
		s->peak_spans += h->peak_inuse_bytes;
		ns->released = (uint64_t)h->pages.pages_scav << NH_PAGE_SHIFT;
		/* Spans in the large-span cache are free objects, not in use. */
		ns->large_inuse = h->large_inuse_bytes - NH_MIN(h->large_inuse_bytes, h->lcache_bytes);
		ns->large_frees = atomic_load_explicit(&h->large_frees, memory_order_relaxed);
		ns->reused = h->released_reused_bytes;
		ns->prefaulted = h->prefault_bytes;
		ns->grows = h->grow_calls;
		mutex_unlock(&h->lock);
		ns->metadata = atomic_load_explicit(&nh_metadata_bytes[h->node], memory_order_relaxed);
		ns->scav_released = h->scav_released_bytes;
		ns->remote_frees = atomic_load_explicit(&h->remote_frees, memory_order_relaxed);
		s->large_frees += ns->large_frees;
		s->prefaulted += ns->prefaulted;
		s->large_inuse += ns->large_inuse;
		mutex_lock(&h->lcache_lock);
		s->large_cache_hits += h->lcache_hits;
		mutex_unlock(&h->lcache_lock);
	}
	uint64_t allocs[NH_NUM_CLASSES], cached[NH_NUM_CLASSES];
	proc_sum_allocs(allocs, NULL);
	proc_sum_cached(cached, -1);
	proc_sum_cache_stats(&s->refills, &s->flushes, &s->caches, &s->aborts);
	for (unsigned k = 0; k < NH_NUM_CLASSES; k++) {
		s->cls[k].allocs = allocs[k] + atomic_load_explicit(&nh_direct_allocs[k], memory_order_relaxed);
		s->cls[k].cached = cached[k] + s->cls[k].transfer;
	}
	read_kernel_view(s);
}

struct totals totals_of(const struct snapshot *s)
{
	struct totals t = {0, 0, 0, 0};
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		t.allocs += s->cls[k].allocs;
		t.frees += frees_of(&s->cls[k]);
		t.inuse += in_use_objects(&s->cls[k]) * nh_class_to_size[k];
	}
	t.allocs += s->cls[0].allocs;
	t.frees += s->large_frees;
	t.inuse += s->large_inuse;
	for (int n = 0; n < NH_MAX_NODES; n++)
		t.mapped += s->node[n].mapped;
	return t;
}

const char *cpu_mode_name(void) { return nh_fast.cpu_mode == CPU_MODE_RSEQ ? "rseq" : "per-thread"; }

/* JSON: "nodes":[...], one object per heap. */
static void emit_json_nodes(struct nh_buf *b, const struct snapshot *s)
{
	buf_puts(b, "\"nodes\":[");
	bool first = true;
	for (int n = 0; n < NH_MAX_NODES; n++) {
		const struct node_stats *ns = &s->node[n];
		if (!ns->present)
			continue;
		buf_printf(b,
			   "%s{\"node\":%d,\"mapped_bytes\":%llu,\"in_use_bytes\":%llu,\"huge_page_bytes\":%llu,"
			   "\"released_bytes\":%llu,\"released_reused_bytes\":%llu,\"prefaulted_bytes\":%llu,"
			   "\"metadata_bytes\":%llu,\"large_in_use_bytes\":%llu,\"arena_grows\":%llu,\"scavenged_bytes\":%llu,"
			   "\"remote_frees\":%llu,\"span_released_bytes\":%llu,\"broken_huge_pages\":%llu,"
			   "\"resident_on_node\":{",
			   first ? "" : ",", n, (unsigned long long)ns->mapped, (unsigned long long)ns->inuse,
			   (unsigned long long)ns->huge, (unsigned long long)ns->released,
			   (unsigned long long)ns->reused, (unsigned long long)ns->prefaulted,
			   (unsigned long long)ns->metadata,
			   (unsigned long long)ns->large_inuse, (unsigned long long)ns->grows,
			   (unsigned long long)ns->scav_released, (unsigned long long)ns->remote_frees,
			   (unsigned long long)ns->span_released, (unsigned long long)ns->broken);
		bool f2 = true;
		for (int m = 0; m < NH_MAX_NODES; m++)
			if (ns->placed[m] || (numa_topo.node_mask >> m & 1)) {
				buf_printf(b, "%s\"%d\":%llu", f2 ? "" : ",", m, (unsigned long long)ns->placed[m]);
				f2 = false;
			}
		buf_puts(b, "}}");
		first = false;
	}
	buf_puts(b, "],");
}

/* JSON: "classes":[...] and "large":{...}. */
static void emit_json_classes(struct nh_buf *b, const struct snapshot *s)
{
	buf_puts(b, "\"classes\":[");
	for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
		const struct class_stats *c = &s->cls[k];
		buf_printf(b,
			   "%s{\"class\":%u,\"size\":%u,\"spans\":%llu,\"empty_spans\":%llu,\"objects_in_use\":%llu,"
			   "\"objects_cached\":%llu,\"allocs\":%llu,\"frees\":%llu,\"span_released_bytes\":%llu}",
			   k == 1 ? "" : ",", k, nh_class_to_size[k], (unsigned long long)c->spans,
			   (unsigned long long)c->empty, (unsigned long long)in_use_objects(c), (unsigned long long)c->cached,
			   (unsigned long long)c->allocs, (unsigned long long)frees_of(c), (unsigned long long)c->released);
	}
	buf_printf(b, "],\"large\":{\"allocs\":%llu,\"frees\":%llu,\"in_use_bytes\":%llu,\"cache_hits\":%llu},",
		   (unsigned long long)s->cls[0].allocs, (unsigned long long)s->large_frees,
		   (unsigned long long)s->large_inuse, (unsigned long long)s->large_cache_hits);
	buf_printf(b, "\"ordered\":{\"max_size\":%llu,\"spans\":%llu,\"span_bytes\":%llu,\"released_bytes\":%llu},",
		   (unsigned long long)(nh_ordered_hi ? nh_class_to_size[nh_ordered_hi] : 0),
		   (unsigned long long)s->ordered_spans, (unsigned long long)s->ordered_bytes,
		   (unsigned long long)s->ordered_released);
}

/* JSON: "caches":{...}, with per CPU what each slab served from itself
 * (hits) and how often it missed (refills), and what it holds now. */
static void emit_json_caches(struct nh_buf *b, const struct snapshot *s)
{
	buf_printf(b, "\"caches\":{\"count\":%llu,\"refills\":%llu,\"flushes\":%llu,\"rseq_aborts\":%llu,\"cpus\":[",
		   (unsigned long long)s->caches, (unsigned long long)s->refills, (unsigned long long)s->flushes,
		   (unsigned long long)s->aborts);
	bool firstc = true;
	for (uint32_t cpu = 0; cpu < nh_fast.pcpu_count; cpu++) {
		struct mcache *c = pcpu_slab(cpu);
		if (!c->ready)
			continue;
		uint64_t allocs = 0, refills = 0, flushes = 0, held = 0;
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
			allocs += mcache_allocs(c, k);
			refills += c->stats[k].refills;
			flushes += c->stats[k].flushes;
			held += mcache_cached_objects(c, k) * nh_class_to_size[k];
		}
		buf_printf(b,
			   "%s{\"cpu\":%u,\"node\":%u,\"hits\":%llu,\"misses\":%llu,\"flushes\":%llu,"
			   "\"bytes_held\":%llu,\"capacity_bytes\":%llu}",
			   firstc ? "" : ",", cpu, c->node, (unsigned long long)(allocs > refills ? allocs - refills : 0),
			   (unsigned long long)refills, (unsigned long long)flushes, (unsigned long long)held,
			   (unsigned long long)c->cap_bytes);
		firstc = false;
	}
	buf_puts(b, "]},");
}

/* JSON: "scavenger":{...} and "kernel_calls":{...}. */
static void emit_json_kernel(struct nh_buf *b, const struct snapshot *s)
{
	buf_printf(b,
		   "\"scavenger\":{\"backend\":\"%s\",\"running\":%s,\"passes\":%llu,\"released_bytes\":%llu,"
		   "\"sync_released_bytes\":%llu,\"submissions\":%llu,\"syscalls\":%llu,\"cpu_ns\":%llu,"
		   "\"limit_hits\":%llu,\"cache_drained_objects\":%llu,\"prefault\":\"%s\",\"prefault_episodes\":%llu,"
		   "\"prefaulted_bytes\":%llu,\"prefault_ns\":%llu,\"prefault_huge_ns\":%llu,\"prefault_fresh_offs\":%llu,"
		   "\"fresh_base_switches\":%llu,\"base_arena_bytes\":%llu,"
		   "\"subreleased_bytes\":%llu,\"retained_released_bytes\":%llu,"
		   "\"span_released_bytes\":%llu,\"budget_cuts\":%llu,\"collapse\":\"%s\",\"collapses\":%llu,"
		   "\"base_collapses\":%llu,\"collapse_failures\":%llu,\"collapse_moves\":%llu,\"delay_shift\":%u,\"churn_events\":%llu,\"trims\":%llu,"
		   "\"trims_paced\":%llu,\"evacuations\":%llu,\"evacuated\":%llu,\"evac_stalls\":%llu},",
		   nh_scav.backend, nh_scav.running ? "true" : "false", (unsigned long long)nh_scav.passes,
		   (unsigned long long)nh_scav.bg_released_bytes, (unsigned long long)nh_scav.sync_released_bytes,
		   (unsigned long long)nh_scav.submissions,
		   (unsigned long long)(nh_scav.syscalls + nh_scav.bg_syscalls), (unsigned long long)nh_scav.cpu_ns,
		   (unsigned long long)nh_scav.limit_hits, (unsigned long long)nh_scav.cache_drained_objects,
		   nh_scav.prefault, (unsigned long long)nh_scav.prefault_episodes,
		   (unsigned long long)s->prefaulted, (unsigned long long)nh_scav.prefault_ns,
		   (unsigned long long)nh_scav.prefault_huge_ns, (unsigned long long)nh_scav.prefault_fresh_offs,
		   (unsigned long long)nh_scav.fresh_base_switches, (unsigned long long)atomic_load(&nh_scav.base_arena_bytes),
		   (unsigned long long)nh_scav.subreleased_bytes, (unsigned long long)nh_scav.retained_released_bytes,
		   (unsigned long long)nh_scav.span_released_bytes,
		   (unsigned long long)nh_scav.budget_cuts, nh_scav.collapse ? nh_scav.collapse : "off",
		   (unsigned long long)nh_scav.collapses, (unsigned long long)nh_scav.base_collapses,
		   (unsigned long long)nh_scav.collapse_failures, (unsigned long long)nh_scav.collapse_moves,
		   nh_scav.delay_shift, (unsigned long long)nh_scav.churn_events,
		   (unsigned long long)nh_scav.sync_releases, (unsigned long long)nh_scav.trims_paced,
		   (unsigned long long)__atomic_load_n(&nh_scav.evacuations, __ATOMIC_RELAXED),
		   (unsigned long long)__atomic_load_n(&nh_scav.evacuated, __ATOMIC_RELAXED),
		   (unsigned long long)__atomic_load_n(&nh_scav.evac_stalls, __ATOMIC_RELAXED));
	buf_printf(b,
		   "\"kernel_calls\":{\"mmap\":%llu,\"munmap\":%llu,\"madvise\":%llu,\"mbind\":%llu,"
		   "\"move_pages\":%llu,\"mprotect\":%llu,\"futex_wait\":%llu,\"futex_wake\":%llu,\"io_uring_enter\":%llu}",
		   (unsigned long long)nh_kstats.mmap, (unsigned long long)nh_kstats.munmap,
		   (unsigned long long)nh_kstats.madvise, (unsigned long long)nh_kstats.mbind,
		   (unsigned long long)nh_kstats.move_pages, (unsigned long long)nh_kstats.mprotect, (unsigned long long)nh_kstats.futex_wait,
		   (unsigned long long)nh_kstats.futex_wake, (unsigned long long)nh_kstats.io_uring_enter);
}

/* The whole snapshot as one JSON object (docs/stats.md). */
static void emit_json(struct nh_buf *b, const struct snapshot *s)
{
	buf_printf(b, "{\"version\":\"%s\",\"cpu_mode\":\"%s\",\"syscalls\":\"%s\",\"page_size\":%d,",
		   NUMAHEAP_VERSION_STRING, cpu_mode_name(), os_basic_syscalls ? "basic" : "all", NH_PAGE_SIZE);
	emit_json_nodes(b, s);
	emit_json_classes(b, s);
	emit_json_caches(b, s);
	struct totals t = totals_of(s);
	buf_printf(b, "\"totals\":{\"allocs\":%llu,\"frees\":%llu,\"in_use_bytes\":%llu,\"mapped_bytes\":%llu},",
		   (unsigned long long)t.allocs, (unsigned long long)t.frees, (unsigned long long)t.inuse,
		   (unsigned long long)t.mapped);
	emit_json_kernel(b, s);
	buf_puts(b, "}");
}

/* "12.3 MiB" */
void stats_print(int fd, bool json)
{
	struct snapshot s;
	snapshot(&s);
	char mem[4096];
	struct nh_buf b = {mem, 0, sizeof mem, fd, 0};
	if (json) {
		emit_json(&b, &s);
		buf_putc(&b, '\n');
	} else {
		stats_emit_text(&b, &s);
	}
	buf_flush(&b);
}

size_t stats_json(char *buf, size_t cap)
{
	struct snapshot s;
	snapshot(&s);
	char dummy[1];
	struct nh_buf b = {cap ? buf : dummy, 0, cap ? cap : 1, -1, 0};
	b.p[0] = 0;
	emit_json(&b, &s);
	return b.total;
}

static bool stats_file_started; /* the exit dump truncates only an unused file */
static int stderr_copy = -1;

/*
 * Programs may close stderr before numaheap's exit dump (coreutils do, in an
 * atexit handler): keep a close-on-exec copy of it, out of the way of the
 * low descriptors programs use, when statistics go to stderr.
 */
void stats_init(void)
{
	if (NH_OPTION(STATS) || NH_OPTION(STATS_INTERVAL) || NH_OPTION(STATS_SIGNAL))
		if (!nh_opt.stats_file[0])
			stderr_copy = fcntl(2, F_DUPFD_CLOEXEC, 100);
}

void stats_dump(bool periodic)
{
	int fd = stderr_copy >= 0 ? stderr_copy : 2;
	if (nh_opt.stats_file[0]) {
		/* "%p": the process id, so that the processes of a pipeline (which
		 * inherit the setting) each write their own file. */
		char path[NH_PATH_MAX];
		nh_path_expand(nh_opt.stats_file, path, sizeof path);
		int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (periodic || stats_file_started ? O_APPEND : O_TRUNC);
		fd = os_open(path, flags, 0644);
		if (fd < 0) {
			nh_warn("cannot open NUMAHEAP_STATS_FILE %s; statistics go to stderr", path);
			fd = 2;
		} else if (!periodic && !stats_file_started) {
			stats_file_started = true;
		}
		if (periodic && !stats_file_started && fd != 2) {
			/* First periodic dump: start the file afresh. */
			if (ftruncate(fd, 0) == 0)
				stats_file_started = true;
		}
	}
	stats_print(fd, NH_OPTION(STATS) == 2);
	if (fd != 2 && fd != stderr_copy)
		os_close(fd);
}

void stats_at_exit(void)
{
	if (atomic_load(&nh_initialized) != 2 || !NH_OPTION(STATS))
		return;
	stats_dump(false);
}

/* ---- glibc's statistics API, from the same snapshot ---------------------- */

NH_API struct mallinfo2 NH_NAME(mallinfo2)(void)
{
	nh_ensure_init();
	struct snapshot s;
	snapshot(&s);
	struct totals t = totals_of(&s);
	struct mallinfo2 mi;
	memset(&mi, 0, sizeof mi);
	uint64_t released = 0;
	for (int n = 0; n < NH_MAX_NODES; n++)
		released += s.node[n].released;
	mi.arena = t.mapped;		/* bytes the heap has mapped */
	mi.uordblks = t.inuse;		/* bytes in objects handed out */
	mi.fordblks = t.mapped > t.inuse ? t.mapped - t.inuse : 0;
	mi.keepcost = released;		/* free and already given back */
	mi.hblkhd = s.large_inuse;	/* large objects (page runs) */
	mi.usmblks = 0;
	return mi;
}

NH_API struct mallinfo NH_NAME(mallinfo)(void)
{
	struct mallinfo2 m2 = NH_NAME(mallinfo2)();
	struct mallinfo mi;
	memset(&mi, 0, sizeof mi);
#define CLAMP(x) ((int)((x) > 0x7fffffff ? 0x7fffffff : (x)))
	mi.arena = CLAMP(m2.arena);
	mi.uordblks = CLAMP(m2.uordblks);
	mi.fordblks = CLAMP(m2.fordblks);
	mi.keepcost = CLAMP(m2.keepcost);
	mi.hblkhd = CLAMP(m2.hblkhd);
#undef CLAMP
	return mi;
}

NH_API void NH_NAME(malloc_stats)(void)
{
	nh_ensure_init();
	stats_print(2, false);
}

/* glibc's malloc_info: XML of the same figures. Called by the program, not
 * from inside the allocator, so stdio (which may malloc) is fine here. */
NH_API int NH_NAME(malloc_info)(int options, FILE *fp)
{
	if (options != 0 || !fp) {
		errno = EINVAL; /* as glibc */
		return -1;
	}
	nh_ensure_init();
	struct snapshot s;
	snapshot(&s);
	struct totals t = totals_of(&s);
	fprintf(fp, "<malloc version=\"numaheap-%s\">\n", NUMAHEAP_VERSION_STRING);
	for_each_heap(h) {
		int n = h->node;
		const struct node_stats *ns = &s.node[n];
		if (!ns->present)
			continue;
		/* This heap's objects: out of its mcentrals, less those in its
		 * node's caches and transfer caches (a cache holds its node's
		 * objects only). */
		uint64_t cached[NH_NUM_CLASSES];
		proc_sum_cached(cached, n);
		fprintf(fp, "<heap nr=\"%d\">\n<sizes>\n", n);
		for (unsigned k = 1; k < NH_NUM_CLASSES; k++) {
			struct class_stats cs = {0};
			add_central(&cs, &h->central[k]);
			cs.cached = cached[k] + cs.transfer;
			if (cs.spans || cs.out)
				fprintf(fp, "<size from=\"%u\" to=\"%u\" total=\"%llu\" count=\"%llu\"/>\n",
					k > 1 ? nh_class_to_size[k - 1] + 1 : 1, nh_class_to_size[k],
					(unsigned long long)(in_use_objects(&cs) * nh_class_to_size[k]),
					(unsigned long long)in_use_objects(&cs));
		}
		fprintf(fp, "</sizes>\n");
		fprintf(fp, "<system type=\"current\" size=\"%llu\"/>\n", (unsigned long long)ns->mapped);
		fprintf(fp, "<aspace type=\"total\" size=\"%llu\"/>\n", (unsigned long long)ns->mapped);
		fprintf(fp, "</heap>\n");
	}
	fprintf(fp, "<total type=\"inuse\" size=\"%llu\"/>\n", (unsigned long long)t.inuse);
	fprintf(fp, "<system type=\"current\" size=\"%llu\"/>\n", (unsigned long long)t.mapped);
	fprintf(fp, "</malloc>\n");
	return 0;
}
