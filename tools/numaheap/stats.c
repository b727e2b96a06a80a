/*
 * stats.c — `numaheap stats`: find the JSON statistics dumps in a file (or
 * standard input), pick the ones asked for, and render them as tables
 * (render.c) or list their key paths.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "json.h"
#include "render.h"
#include "tool.h"

const char stats_help[] =
	"usage: numaheap stats [--all | --index N] [--keys] [FILE | -]\n"
	"\n"
	"Render numaheap's JSON statistics (NUMAHEAP_STATS=json, or `numaheap run\n"
	"--json`) as tables: nodes, size classes with activity, large objects,\n"
	"caches, the scavenger, kernel calls and totals. A file may hold several\n"
	"dumps, one per line (NUMAHEAP_STATS_INTERVAL, NUMAHEAP_STATS_SIGNAL, then\n"
	"the one at exit); other lines (program output, warnings) are skipped.\n"
	"docs/stats.md explains every field.\n"
	"\n"
	"  --all       every dump, oldest first (default: the last one)\n"
	"  --index N   dump N (1 = first; negative counts from the end)\n"
	"  --keys      list the key paths of the dump (e.g. nodes[].mapped_bytes)\n"
	"  FILE        the dump file; - or nothing: standard input\n";


/* Print key paths once each: "nodes[].mapped_bytes"; numeric keys as <n>. */
struct pathset {
	char **p;
	size_t n, cap;
};

static void collect_paths(const struct jv *v, const char *prefix, struct pathset *ps)
{
	if (v->t == J_OBJ) {
		for (size_t i = 0; i < v->n; i++) {
			const char *k = v->keys[i];
			bool numeric = *k && strspn(k, "0123456789") == strlen(k);
			char *path = xasprintf("%s%s%s", prefix, *prefix ? "." : "", numeric ? "<n>" : k);
			bool seen = false;
			for (size_t j = 0; j < ps->n; j++)
				if (!strcmp(ps->p[j], path))
					seen = true;
			if (!seen) {
				if (ps->n == ps->cap) {
					ps->cap = ps->cap ? ps->cap * 2 : 64;
					ps->p = xrealloc(ps->p, ps->cap * sizeof *ps->p);
				}
				ps->p[ps->n++] = xstrdup(path);
			}
			collect_paths(v->items[i], path, ps);
			free(path);
		}
	} else if (v->t == J_ARR) {
		char *path = xasprintf("%s[]", prefix);
		for (size_t i = 0; i < v->n; i++)
			collect_paths(v->items[i], path, ps);
		free(path);
	}
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	bool err = ferror(f);
	if (f != stdin)
		fclose(f);
	if (err) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static bool is_dump(const struct jv *v) { return v && v->t == J_OBJ && jget(v, "version") && jget(v, "nodes"); }

/* The dumps of a file, oldest first, and why the last line that failed did. */
struct dumps {
	struct jv **d;
	size_t n, cap;
	const char *last_err;
	size_t last_err_line;
};

static void add_dump(struct dumps *ds, struct jv *v)
{
	if (ds->n == ds->cap) {
		ds->cap = ds->cap ? ds->cap * 2 : 8;
		ds->d = xrealloc(ds->d, ds->cap * sizeof *ds->d);
	}
	ds->d[ds->n++] = v;
}

/* Each line holding a JSON object with "version" and "nodes" is a dump. */
static void find_dump_lines(const char *text, size_t len, struct dumps *ds)
{
	size_t lineno = 0;
	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		lineno++;
		const char *brace = memchr(p, '{', (size_t)(le - p));
		if (brace) {
			const char *err;
			size_t off;
			struct jv *v = jparse(brace, le, &err, &off);
			if (is_dump(v)) {
				add_dump(ds, v);
			} else {
				if (!v) {
					ds->last_err = err;
					ds->last_err_line = lineno;
				}
				jfree(v);
			}
		}
		p = le + 1;
	}
}

/* No dump line: one pretty-printed object, perhaps. False (said why) if not. */
static bool find_pretty_dump(const char *text, size_t len, const char *file, struct dumps *ds)
{
	const char *brace = memchr(text, '{', len);
	const char *err = NULL;
	size_t off = 0;
	struct jv *v = brace ? jparse(brace, text + len, &err, &off) : NULL;
	if (is_dump(v)) {
		add_dump(ds, v);
		return true;
	}
	jfree(v);
	fprintf(stderr, "%s stats: no numaheap JSON statistics in %s", prog_name, file);
	if (ds->last_err)
		fprintf(stderr, " (line %zu: %s)", ds->last_err_line, ds->last_err);
	if (memmem(text, len, "statistics: cpu_mode", 20))
		fprintf(stderr, "\n  (this holds the text statistics of NUMAHEAP_STATS=1, already readable;"
				" for tables use NUMAHEAP_STATS=json or `numaheap run --json`)\n");
	else
		fprintf(stderr, "\n  (produce them with NUMAHEAP_STATS=json or `numaheap run --json`)\n");
	return false;
}

struct stats_opts {
	bool all, keys;
	long index;
	const char *file;
};

/* False when --help was printed. Exits on a usage error. */
static bool parse_stats_opts(int argc, char **argv, struct stats_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(stats_help, stdout);
			return false;
		} else if (!strcmp(a, "--all")) {
			o->all = true;
		} else if (!strcmp(a, "--keys")) {
			o->keys = true;
		} else if (!strcmp(a, "--index")) {
			char *end;
			if (++i >= argc || (o->index = strtol(argv[i], &end, 10), *end) || o->index == 0)
				die_usage("stats", "--index needs a non-zero number");
		} else if (a[0] == '-' && a[1]) {
			die_usage("stats", "unknown option '%s'", a);
		} else if (o->file) {
			die_usage("stats", "one file at a time ('%s' and '%s')", o->file, a);
		} else {
			o->file = a;
		}
	}
	if (!o->file)
		o->file = "-";
	return true;
}

/* The key paths of dumps first..last, each once. */
static void print_keys(struct jv **dumps, size_t first, size_t last)
{
	struct pathset ps = {NULL, 0, 0};
	for (size_t i = first; i <= last; i++)
		collect_paths(dumps[i], "", &ps);
	for (size_t i = 0; i < ps.n; i++) {
		puts(ps.p[i]);
		free(ps.p[i]);
	}
	free(ps.p);
}

int cmd_stats(int argc, char **argv)
{
	struct stats_opts o = {false, false, 0, NULL};
	if (!parse_stats_opts(argc, argv, &o))
		return 0;
	size_t len = 0;
	char *text = read_all(o.file, &len);
	if (!text) {
		fprintf(stderr, "%s stats: cannot read %s: %s\n", prog_name, o.file, strerror(errno));
		return 1;
	}
	struct dumps ds = {NULL, 0, 0, NULL, 0};
	find_dump_lines(text, len, &ds);
	if (!ds.n && !find_pretty_dump(text, len, o.file, &ds)) {
		free(text);
		return 1;
	}
	size_t nd = ds.n, first = nd - 1, last = nd - 1;
	if (o.all)
		first = 0;
	else if (o.index) {
		long k = o.index > 0 ? o.index - 1 : (long)nd + o.index;
		if (k < 0 || k >= (long)nd) {
			fprintf(stderr, "%s stats: %s holds %zu dump%s, no dump %ld\n", prog_name, o.file, nd,
				nd == 1 ? "" : "s", o.index);
			return 1;
		}
		first = last = (size_t)k;
	}
	if (o.keys) {
		print_keys(ds.d, first, last);
	} else {
		for (size_t i = first; i <= last; i++) {
			if (i > first)
				printf("\n%s\n\n", "------------------------------------------------------------------------");
			render_dump(ds.d[i], (int)i + 1, (int)nd);
		}
	}
	for (size_t i = 0; i < nd; i++)
		jfree(ds.d[i]);
	free(ds.d);
	free(text);
	return 0;
}
