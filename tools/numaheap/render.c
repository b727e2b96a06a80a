/*
 * render.c — one JSON statistics dump as tables, for `numaheap stats`
 * (render.h): nodes, size classes with activity, large objects, caches, the
 * scavenger, kernel calls, totals, then any section this version does not
 * know. docs/stats.md explains every field.
 */
#include "render.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "json.h"
#include "table.h"
#include "tool.h"

enum hint { H_PLAIN, H_BYTES, H_NS };

static enum hint hint_of(const char *key)
{
	if (ends_with(key, "_bytes") || !strncmp(key, "resident", 8))
		return H_BYTES;
	if (ends_with(key, "_ns"))
		return H_NS;
	return H_PLAIN;
}

/* Format a value for a cell. */
static void fmt_value(char *out, size_t cap, const struct jv *v, enum hint h)
{
	switch (v ? v->t : J_NULL) {
	case J_NULL: snprintf(out, cap, "-"); break;
	case J_BOOL: snprintf(out, cap, "%s", v->b ? "yes" : "no"); break;
	case J_STR: snprintf(out, cap, "%s", v->s); break;
	case J_NUM:
		if (h == H_BYTES)
			fmt_bytes(out, cap, jnum(v));
		else if (h == H_NS)
			fmt_ns(out, cap, jnum(v));
		else if (v->exact)
			snprintf(out, cap, "%llu", v->u);
		else
			snprintf(out, cap, "%g", v->num);
		break;
	case J_ARR: snprintf(out, cap, "[%zu items]", v->n); break;
	case J_OBJ: {
		size_t len = 0;
		out[0] = 0;
		for (size_t i = 0; i < v->n; i++) {
			char one[64];
			fmt_value(one, sizeof one, v->items[i], h);
			int w = snprintf(out + len, cap - len, "%s%s: %s", i ? ", " : "", v->keys[i], one);
			if (w < 0 || (size_t)w >= cap - len)
				break;
			len += (size_t)w;
		}
		break;
	}
	}
}

struct colname {
	const char *key, *title;
};

static const struct colname col_titles[] = {
	{"node", "node"},
	{"mapped_bytes", "mapped"},
	{"in_use_bytes", "in use"},
	{"huge_page_bytes", "huge pages"},
	{"released_bytes", "released"},
	{"released_reused_bytes", "reused"},
	{"metadata_bytes", "metadata"},
	{"large_in_use_bytes", "large in use"},
	{"arena_grows", "arena grows"},
	{"scavenged_bytes", "scavenged"},
	{"remote_frees", "remote frees"},
	{"resident_on_node", "resident on node"},
	{"class", "class"},
	{"size", "size"},
	{"spans", "spans"},
	{"objects_in_use", "in use"},
	{"objects_cached", "cached"},
	{"allocs", "allocs"},
	{"frees", "frees"},
};

static void col_title(char *out, size_t cap, const char *key)
{
	for (size_t i = 0; i < sizeof col_titles / sizeof col_titles[0]; i++)
		if (!strcmp(col_titles[i].key, key)) {
			snprintf(out, cap, "%s", col_titles[i].title);
			return;
		}
	snprintf(out, cap, "%s", key);
	if (ends_with(out, "_bytes"))
		out[strlen(out) - 6] = 0;
	for (char *c = out; *c; c++)
		if (*c == '_')
			*c = ' ';
}

/* Keys of the objects of an array, in order of first appearance. */
static size_t union_keys(const struct jv *arr, const char **keys, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; arr && arr->t == J_ARR && i < arr->n; i++) {
		const struct jv *o = arr->items[i];
		if (o->t != J_OBJ)
			continue;
		for (size_t k = 0; k < o->n; k++) {
			bool seen = false;
			for (size_t j = 0; j < n; j++)
				if (!strcmp(keys[j], o->keys[k]))
					seen = true;
			if (!seen && n < cap)
				keys[n++] = o->keys[k];
		}
	}
	return n;
}

/* Row r: the titles of columns cols[0, nc). */
static void set_titles(struct table *tb, int r, const char **cols, int nc)
{
	for (int c = 0; c < nc; c++) {
		char t[64];
		col_title(t, sizeof t, cols[c]);
		table_set(tb, r, c, "%s", t);
	}
}

/* Row r: object o's values of columns cols[0, nc), each cut to cap - 1 characters. */
static void set_cells(struct table *tb, int r, const struct jv *o, const char **cols, int nc, size_t cap)
{
	for (int c = 0; c < nc; c++) {
		char cell[512];
		fmt_value(cell, cap < sizeof cell ? cap : sizeof cell, jget(o, cols[c]), hint_of(cols[c]));
		table_set(tb, r, c, "%s", cell);
	}
}

/* The share of node o's pages that are on node o itself, from resident_on_node. */
static void set_local_share(struct table *tb, int r, int col, const struct jv *o)
{
	const struct jv *res = jget(o, "resident_on_node");
	unsigned long long sum = 0, mine = 0;
	char id[32];
	snprintf(id, sizeof id, "%llu", jnum(jget(o, "node")));
	for (size_t k = 0; res && res->t == J_OBJ && k < res->n; k++) {
		sum += jnum(res->items[k]);
		if (!strcmp(res->keys[k], id))
			mine += jnum(res->items[k]);
	}
	if (sum)
		table_set(tb, r, col, "%.1f%%", 100.0 * (double)mine / (double)sum);
	else
		table_set(tb, r, col, "-");
}

/* Part 0: the node and its byte counts; part 1: everything else. */
static void render_nodes_part(const struct jv *nodes, const char **keys, size_t nk, int part)
{
	const char *cols[TABLE_MAX_COLS];
	int nc = 0;
	cols[nc++] = "node";
	for (size_t k = 0; k < nk; k++) {
		if (!strcmp(keys[k], "node"))
			continue;
		bool bytes = ends_with(keys[k], "_bytes");
		if (bytes == (part == 0))
			cols[nc++] = keys[k];
	}
	bool local = part == 1 && jget(nodes->items[0], "resident_on_node");
	if (nc == 1 && !local)
		return;
	printf("\n%s\n", part == 0 ? "Nodes: memory (each node's heap)" : "Nodes: activity and placement");
	struct table tb;
	table_init(&tb, nc + (local ? 1 : 0));
	int r = table_row(&tb);
	set_titles(&tb, r, cols, nc);
	for (int c = 0; c < nc; c++)
		if (!strcmp(cols[c], "resident_on_node"))
			tb.left[c] = true;
	if (local)
		table_set(&tb, r, nc, "local");
	for (size_t i = 0; i < nodes->n; i++) {
		r = table_row(&tb);
		set_cells(&tb, r, nodes->items[i], cols, nc, 512);
		if (local)
			set_local_share(&tb, r, nc, nodes->items[i]);
	}
	table_print(&tb, stdout, "  ");
	table_free(&tb);
}

static void render_nodes(const struct jv *nodes)
{
	const char *keys[TABLE_MAX_COLS];
	size_t nk = union_keys(nodes, keys, TABLE_MAX_COLS - 2);
	if (!nodes || nodes->t != J_ARR || !nodes->n) {
		printf("\nNodes: none\n");
		return;
	}
	for (int part = 0; part < 2; part++)
		render_nodes_part(nodes, keys, nk, part);
}

/* The columns of the size class table: the known ones in their order, then the others. */
static int class_columns(const struct jv *classes, const char **cols)
{
	static const char *order[] = {"class", "size", "spans", "objects_in_use", "objects_cached", "allocs", "frees"};
	const size_t norder = sizeof order / sizeof order[0];
	const char *keys[TABLE_MAX_COLS];
	size_t nk = union_keys(classes, keys, TABLE_MAX_COLS - 3);
	int nc = 0;
	for (size_t k = 0; k < norder; k++)
		for (size_t j = 0; j < nk; j++)
			if (!strcmp(keys[j], order[k]))
				cols[nc++] = order[k];
	for (size_t j = 0; j < nk; j++) {
		bool known = false;
		for (size_t k = 0; k < norder; k++)
			if (!strcmp(keys[j], order[k]))
				known = true;
		if (!known)
			cols[nc++] = keys[j];
	}
	return nc;
}

/* A class with anything but its number and size non-zero. */
static bool class_active(const struct jv *o)
{
	for (size_t k = 0; o->t == J_OBJ && k < o->n; k++)
		if (strcmp(o->keys[k], "class") && strcmp(o->keys[k], "size") && jnum(o->items[k]))
			return true;
	return false;
}

struct class_sums {
	size_t active;
	unsigned long long inuse_b, cached_b, allocs, frees;
};

/* One row per active class, and the sums; with derived, bytes in use and cached at columns nc, nc + 1. */
static void class_rows(struct table *tb, const struct jv *classes, const char **cols, int nc, bool derived,
		       struct class_sums *sum)
{
	for (size_t i = 0; i < classes->n; i++) {
		const struct jv *o = classes->items[i];
		if (!class_active(o))
			continue;
		sum->active++;
		int r = table_row(tb);
		set_cells(tb, r, o, cols, nc, 256);
		unsigned long long size = jnum(jget(o, "size"));
		unsigned long long ib = size * jnum(jget(o, "objects_in_use"));
		unsigned long long cb = size * jnum(jget(o, "objects_cached"));
		sum->inuse_b += ib;
		sum->cached_b += cb;
		sum->allocs += jnum(jget(o, "allocs"));
		sum->frees += jnum(jget(o, "frees"));
		if (derived) {
			char b[32];
			fmt_bytes(b, sizeof b, ib);
			table_set(tb, r, nc, "%s", b);
			fmt_bytes(b, sizeof b, cb);
			table_set(tb, r, nc + 1, "%s", b);
		}
	}
}

static void render_classes(const struct jv *classes)
{
	if (!classes || classes->t != J_ARR) {
		printf("\nSize classes: none in this dump\n");
		return;
	}
	const char *cols[TABLE_MAX_COLS];
	int nc = class_columns(classes, cols);
	bool derived = jget(classes->n ? classes->items[0] : NULL, "size") &&
		       jget(classes->n ? classes->items[0] : NULL, "objects_in_use");
	struct table tb;
	table_init(&tb, nc + (derived ? 2 : 0));
	int r = table_row(&tb);
	set_titles(&tb, r, cols, nc);
	if (derived) {
		table_set(&tb, r, nc, "in use bytes");
		table_set(&tb, r, nc + 1, "cached bytes");
	}
	struct class_sums sum = {0, 0, 0, 0, 0};
	class_rows(&tb, classes, cols, nc, derived, &sum);
	printf("\nSize classes with activity (%zu of %zu)\n", sum.active, classes->n);
	if (sum.active)
		table_print(&tb, stdout, "  ");
	table_free(&tb);
	char b1[32], b2[32];
	fmt_bytes(b1, sizeof b1, sum.inuse_b);
	fmt_bytes(b2, sizeof b2, sum.cached_b);
	printf("  small objects: %llu allocs, %llu frees, %s in use, %s held in caches\n", sum.allocs, sum.frees, b1,
	       b2);
}

/* Key/value lines for one object section, with derived lines appended. */
static void render_object(const char *title, const struct jv *o)
{
	if (!o)
		return;
	printf("\n%s\n", title);
	if (o->t != J_OBJ) {
		char cell[256];
		fmt_value(cell, sizeof cell, o, H_PLAIN);
		printf("  %s\n", cell);
		return;
	}
	struct table tb;
	table_init(&tb, 2);
	tb.left[0] = true;
	tb.left[1] = true;
	for (size_t i = 0; i < o->n; i++) {
		char cell[512];
		fmt_value(cell, sizeof cell, o->items[i], hint_of(o->keys[i]));
		int r = table_row(&tb);
		table_set(&tb, r, 0, "%s", o->keys[i]);
		if (o->items[i]->t == J_NUM && hint_of(o->keys[i]) != H_PLAIN)
			table_set(&tb, r, 1, "%s (%llu)", cell, jnum(o->items[i]));
		else
			table_set(&tb, r, 1, "%s", cell);
	}
	table_print(&tb, stdout, "  ");
	table_free(&tb);
}

/* The kernel calls: one column each. */
static void render_kernel_calls(const struct jv *kc)
{
	if (!kc || kc->t != J_OBJ)
		return;
	printf("\nKernel calls\n");
	struct table tb;
	table_init(&tb, (int)kc->n);
	int r0 = table_row(&tb), r1 = table_row(&tb);
	for (size_t i = 0; i < kc->n && (int)i < tb.ncols; i++) {
		char cell[64];
		table_set(&tb, r0, (int)i, "%s", kc->keys[i]);
		fmt_value(cell, sizeof cell, kc->items[i], H_PLAIN);
		table_set(&tb, r1, (int)i, "%s", cell);
	}
	table_print(&tb, stdout, "  ");
	table_free(&tb);
}

/* Sections this version of the tool does not know. */
static void render_unknown(const struct jv *d)
{
	static const char *known[] = {"nodes", "classes", "large", "caches", "scavenger", "kernel_calls", "totals"};
	for (size_t i = 0; i < d->n; i++) {
		if (d->items[i]->t != J_OBJ && d->items[i]->t != J_ARR)
			continue;
		bool k = false;
		for (size_t j = 0; j < sizeof known / sizeof known[0]; j++)
			if (!strcmp(d->keys[i], known[j]))
				k = true;
		if (!k)
			render_object(d->keys[i], d->items[i]);
	}
}

void render_dump(const struct jv *d, int index, int count)
{
	printf("numaheap %s statistics", jget(d, "version") && jget(d, "version")->t == J_STR ? jget(d, "version")->s : "?");
	if (count > 1)
		printf(" (dump %d of %d)", index, count);
	printf("\n");
	/* Top-level scalars: cpu_mode, page_size, and any newer ones. */
	for (size_t i = 0; i < d->n; i++) {
		const struct jv *v = d->items[i];
		if (v->t == J_OBJ || v->t == J_ARR || !strcmp(d->keys[i], "version"))
			continue;
		char cell[256];
		fmt_value(cell, sizeof cell, v, hint_of(d->keys[i]));
		printf("  %s: %s\n", d->keys[i], cell);
	}
	render_nodes(jget(d, "nodes"));
	render_classes(jget(d, "classes"));

	const struct jv *large = jget(d, "large");
	render_object("Large objects (> 32 KiB, page runs)", large);
	if (large && large->t == J_OBJ)
		printf("  live large objects: %lld\n",
		       (long long)(jnum(jget(large, "allocs")) - jnum(jget(large, "frees"))));
	render_object("Caches (P's)", jget(d, "caches"));
	const struct jv *sc = jget(d, "scavenger");
	render_object("Scavenger", sc);
	if (sc && sc->t == J_OBJ) {
		char b[32];
		fmt_bytes(b, sizeof b, jnum(jget(sc, "released_bytes")) + jnum(jget(sc, "sync_released_bytes")));
		printf("  released in all: %s\n", b);
	}
	render_kernel_calls(jget(d, "kernel_calls"));
	const struct jv *t = jget(d, "totals");
	render_object("Totals", t);
	if (t && t->t == J_OBJ) {
		unsigned long long a = jnum(jget(t, "allocs")), f = jnum(jget(t, "frees"));
		unsigned long long in = jnum(jget(t, "in_use_bytes")), m = jnum(jget(t, "mapped_bytes"));
		printf("  live objects: %lld\n", (long long)(a - f));
		if (m)
			printf("  in use / mapped: %.1f%%\n", 100.0 * (double)in / (double)m);
	}
	render_unknown(d);
}
