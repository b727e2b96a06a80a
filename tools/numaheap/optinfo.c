/*
 * optinfo.c — the NUMAHEAP_* variables (optinfo.h): src/options.def, the
 * allocator's own list, and settings checked by the allocator's own parser.
 */
#include "optinfo.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "tool.h"

extern char **environ;

#define NH_OPT(name, type, def, lo, hi, choices, when, doc) {#name, type, def, lo, hi, choices, when, doc},
const struct optinfo opts[] = {
#include "options.def"
};
#undef NH_OPT
_Static_assert(sizeof opts / sizeof opts[0] == NH_NUM_OPTIONS, "options table");

const char *type_name(enum nh_opt_type t)
{
	switch (t) {
	case OPT_BOOL: return "bool";
	case OPT_SIZE: return "size";
	case OPT_INT: return "int";
	case OPT_ENUM: return "enum";
	case OPT_PATH: return "path";
	case OPT_TIME: return "time";
	case OPT_LIST: return "list";
	}
	return "?";
}

/* The idx-th choice of "a|b|c". */
static void choice_at(const char *choices, long long idx, char *out, size_t cap)
{
	const char *c = choices;
	for (long long i = 0; *c; i++) {
		size_t n = strcspn(c, "|");
		if (i == idx) {
			snprintf(out, cap, "%.*s", (int)n, c);
			return;
		}
		c += n + (c[n] == '|');
	}
	snprintf(out, cap, "%lld", idx);
}

void opt_default(const struct optinfo *o, char *out, size_t cap)
{
	switch (o->type) {
	case OPT_BOOL: snprintf(out, cap, "%lld", o->def); break;
	case OPT_SIZE: fmt_size_exact(out, cap, o->def); break;
	case OPT_INT: snprintf(out, cap, "%lld", o->def); break;
	case OPT_ENUM: choice_at(o->choices, o->def, out, cap); break;
	case OPT_PATH: snprintf(out, cap, "(unset)"); break;
	case OPT_TIME: fmt_time_exact(out, cap, o->def); break;
	case OPT_LIST: snprintf(out, cap, "(empty)"); break;
	}
}

/* "LO to HI; suffixes ...", the bounds written by fmt. */
static void opt_range(char *out, size_t cap, const struct optinfo *o, void (*fmt)(char *, size_t, long long),
		      const char *suffixes)
{
	char a[64], b[64];
	fmt(a, sizeof a, o->lo);
	fmt(b, sizeof b, o->hi);
	snprintf(out, cap, "%s to %s; suffixes %s", a, b, suffixes);
}

void opt_values(const struct optinfo *o, char *out, size_t cap, bool markdown)
{
	const char *q = markdown ? "`" : "";
	switch (o->type) {
	case OPT_BOOL:
		snprintf(out, cap, "%s0%s/%s1%s (also no/yes, off/on, false/true)", q, q, q, q);
		break;
	case OPT_SIZE:
		opt_range(out, cap, o, fmt_size_exact, "K, M, G, T (binary)");
		break;
	case OPT_INT:
		snprintf(out, cap, "%lld to %lld", o->lo, o->hi);
		break;
	case OPT_TIME:
		opt_range(out, cap, o, fmt_time_exact, "ns, us, ms, s (none: ms)");
		break;
	case OPT_ENUM: {
		size_t len = 0;
		const char *c = o->choices;
		out[0] = 0;
		for (int i = 0; *c; i++) {
			size_t n = strcspn(c, "|");
			int w = snprintf(out + len, cap - len, "%s%s%.*s%s", i ? ", " : "", q, (int)n, c, q);
			if (w < 0 || (size_t)w >= cap - len)
				break;
			len += (size_t)w;
			c += n + (c[n] == '|');
		}
		snprintf(out + len, cap - len, " (or the index %lld-%lld)", o->lo, o->hi);
		break;
	}
	case OPT_PATH:
		snprintf(out, cap, "a file path");
		break;
	case OPT_LIST: {
		int bits = o->hi > 0 ? 64 - __builtin_clzll((unsigned long long)o->hi) : 0;
		snprintf(out, cap, "ids 0 to %d as a list, e.g. %s0,2-3%s", bits - 1, q, q);
		break;
	}
	}
}

int opt_find(const char *name, size_t len)
{
	for (int i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
			return i;
	return -1;
}

static void list_valid_names(FILE *f)
{
	fprintf(f, "valid names (the NUMAHEAP_ prefix is optional):\n");
	for (int i = 0; i < NOPTS; i++)
		fprintf(f, "  NUMAHEAP_%-18s %s\n", opts[i].name, type_name(opts[i].type));
}


/*
 * Asks the allocator's own parser: options_init over an environment holding
 * only that variable, its warnings silenced, then the allocator's settings
 * restored.
 */
bool value_ok(int i, const char *value)
{
	char *entry = xasprintf("NUMAHEAP_%s=%s", opts[i].name, value);
	char *tmp_env[2] = {entry, NULL};
	static struct nh_options saved;
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int saved_err = stderr_redirect(devnull);
	if (devnull >= 0)
		close(devnull);
	saved = nh_opt;
	char **saved_env = environ;
	environ = tmp_env;
	options_init();
	bool ok = nh_opt.set[i];
	environ = saved_env;
	nh_opt = saved;
	stderr_restore(saved_err);
	free(entry);
	return ok;
}

struct setting parse_setting(const char *cmd, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		die_usage(cmd, "--set wants NAME=VALUE, got '%s'", arg);
	char name[128];
	size_t len = (size_t)(eq - arg);
	if (len >= sizeof name)
		len = sizeof name - 1;
	for (size_t k = 0; k < len; k++)
		name[k] = (char)toupper((unsigned char)arg[k]);
	name[len] = 0;
	const char *n = name;
	if (!strncmp(n, "NUMAHEAP_", 9))
		n += 9;
	struct setting s = {opt_find(n, strlen(n)), eq + 1};
	if (s.opt < 0) {
		fprintf(stderr, "%s %s: unknown variable NUMAHEAP_%s\n", prog_name, cmd, n);
		list_valid_names(stderr);
		exit(2);
	}
	if (!value_ok(s.opt, s.value)) {
		const struct optinfo *o = &opts[s.opt];
		char vals[512];
		opt_values(o, vals, sizeof vals, false);
		fprintf(stderr, "%s %s: bad value for NUMAHEAP_%s: '%s'\n  expected %s: %s\n", prog_name, cmd, o->name,
			s.value, type_name(o->type), vals);
		exit(2);
	}
	return s;
}

bool take_set_option(const char *cmd, int argc, char **argv, int *i, struct setting *sets, int *nsets)
{
	const char *v = option_value(cmd, argc, argv, i, "-s", "--set", "NAME=VALUE");
	if (!v)
		return false;
	sets[(*nsets)++] = parse_setting(cmd, v);
	return true;
}
