/*
 * numaheap.c — the `numaheap` command.
 *
 *   numaheap run [options] -- PROGRAM [ARGS]   run a program on numaheap
 *   numaheap topology [--set N=V]... [--cpus]  the machine as numaheap sees it
 *   numaheap stats [--all] [--keys] FILE       render NUMAHEAP_STATS=json dumps
 *   numaheap env [--markdown | --current]      every NUMAHEAP_* variable
 *
 * The tool is linked with the static library and built against the internal
 * headers: the options table is src/options.def itself, and `topology` runs
 * the allocator's own start-up code (options_init, numa_init,
 * numa_policy_init) to show what numaheap would do, not a re-implementation
 * of it. The tool runs on numaheap's malloc, too.
 *
 * Re-running the start-up code inside a live allocator is safe here because
 * the results are copied out and the allocator's state (nh_opt, numa_topo,
 * numa_pol) is restored at once, with no allocation in between.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "numaheap.h"

extern char **environ;
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

#ifndef NH_TOOL_BUILD_LIB
#define NH_TOOL_BUILD_LIB ""
#endif
#ifndef NH_TOOL_LIBDIR_REL
#define NH_TOOL_LIBDIR_REL "../lib"
#endif

static const char *prog_name = "numaheap";

/* ======================================================================
 * Small utilities
 * ====================================================================== */

static void die_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s%s%s: ", prog_name, cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s--help'.\n", prog_name, cmd ? cmd : "");
	if (cmd)
		fputc('\n', stderr);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", prog_name);
		exit(1);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", prog_name);
		exit(1);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0) {
		fprintf(stderr, "%s: out of memory\n", prog_name);
		exit(1);
	}
	return s;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* "12.3 MiB", like the library's own text statistics. */
static void fmt_bytes(char *out, size_t cap, unsigned long long v)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	int u = 0;
	double d = (double)v;
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, cap, "%llu B", v);
	else
		snprintf(out, cap, "%.1f %s", d, unit[u]);
}

/* An exact size with the largest binary suffix that divides it: "2 MiB". */
static void fmt_size_exact(char *out, size_t cap, long long v)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	int u = 0;
	while (v != 0 && u < 6 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(out, cap, "%lld %s", v, unit[u]);
	if (v == 0)
		snprintf(out, cap, "0");
}

/* An exact duration in the largest unit the parser accepts: "1 s", "50 ms". */
static void fmt_time_exact(char *out, size_t cap, long long ns)
{
	if (ns == 0)
		snprintf(out, cap, "0");
	else if (ns % 1000000000 == 0)
		snprintf(out, cap, "%lld s", ns / 1000000000);
	else if (ns % 1000000 == 0)
		snprintf(out, cap, "%lld ms", ns / 1000000);
	else if (ns % 1000 == 0)
		snprintf(out, cap, "%lld us", ns / 1000);
	else
		snprintf(out, cap, "%lld ns", ns);
}

/* A duration for reading: "1.234 s", "12.3 ms", "850 us". */
static void fmt_ns(char *out, size_t cap, unsigned long long ns)
{
	if (ns >= 1000000000ull)
		snprintf(out, cap, "%.3f s", ns / 1e9);
	else if (ns >= 1000000ull)
		snprintf(out, cap, "%.1f ms", ns / 1e6);
	else if (ns >= 1000ull)
		snprintf(out, cap, "%.1f us", ns / 1e3);
	else
		snprintf(out, cap, "%llu ns", ns);
}

/* A set of ids as a list: "0-3,8". */
static void fmt_idlist(char *out, size_t cap, const bool *in, int n)
{
	size_t len = 0;
	out[0] = 0;
	for (int i = 0; i < n;) {
		if (!in[i]) {
			i++;
			continue;
		}
		int j = i;
		while (j + 1 < n && in[j + 1])
			j++;
		int w = j == i ? snprintf(out + len, cap - len, "%s%d", len ? "," : "", i)
			       : snprintf(out + len, cap - len, "%s%d-%d", len ? "," : "", i, j);
		if (w < 0 || (size_t)w >= cap - len)
			break;
		len += (size_t)w;
		i = j + 1;
	}
	if (!len)
		snprintf(out, cap, "(none)");
}

static void fmt_mask(char *out, size_t cap, uint64_t mask)
{
	bool in[64];
	for (int i = 0; i < 64; i++)
		in[i] = mask >> i & 1;
	fmt_idlist(out, cap, in, 64);
}

/* Read a small file into buf, trailing newline stripped; false if absent. */
static bool read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return true;
}

/* ======================================================================
 * A table printer: cells are strings, columns sized to fit.
 * ====================================================================== */

#define TABLE_MAX_COLS 32

struct table {
	int ncols;
	int nrows;
	char **cells; /* nrows * ncols; row 0 is the header */
	bool left[TABLE_MAX_COLS];
};

static void table_init(struct table *t, int ncols)
{
	memset(t, 0, sizeof *t);
	t->ncols = ncols < TABLE_MAX_COLS ? ncols : TABLE_MAX_COLS;
}

static int table_row(struct table *t)
{
	t->cells = xrealloc(t->cells, sizeof(char *) * (size_t)(t->nrows + 1) * (size_t)t->ncols);
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = NULL;
	return t->nrows++;
}

static void table_set(struct table *t, int row, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void table_set(struct table *t, int row, int col, const char *fmt, ...)
{
	if (col >= t->ncols)
		return;
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(t->cells[row * t->ncols + col]);
	t->cells[row * t->ncols + col] = s;
}

static void table_print(struct table *t, FILE *f, const char *indent)
{
	int width[TABLE_MAX_COLS] = {0};
	for (int r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			int w = s ? (int)strlen(s) : 0;
			if (w > width[c])
				width[c] = w;
		}
	for (int r = 0; r < t->nrows; r++) {
		fputs(indent, f);
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (!s)
				s = "";
			bool last = c == t->ncols - 1;
			if (t->left[c])
				fprintf(f, "%-*s", last ? 0 : width[c], s);
			else
				fprintf(f, "%*s", width[c], s);
			if (!last)
				fputs("  ", f);
		}
		fputc('\n', f);
	}
}

static void table_free(struct table *t)
{
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

/* ======================================================================
 * The options table: src/options.def, the allocator's own list.
 * ====================================================================== */

struct optinfo {
	const char *name; /* without the NUMAHEAP_ prefix */
	enum nh_opt_type type;
	long long def, lo, hi;
	const char *choices;
	const char *when;
	const char *doc;
};

#define NH_OPT(name, type, def, lo, hi, choices, when, doc) {#name, type, def, lo, hi, choices, when, doc},
static const struct optinfo opts[] = {
#include "options.def"
};
#undef NH_OPT
#define NOPTS ((int)(sizeof opts / sizeof opts[0]))
_Static_assert(sizeof opts / sizeof opts[0] == NH_NUM_OPTIONS, "options table");

static const char *type_name(enum nh_opt_type t)
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

static void opt_default(const struct optinfo *o, char *out, size_t cap)
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

/* Accepted values. sep joins enum choices; code wraps each in backquotes. */
static void opt_values(const struct optinfo *o, char *out, size_t cap, bool markdown)
{
	char a[64], b[64];
	const char *q = markdown ? "`" : "";
	switch (o->type) {
	case OPT_BOOL:
		snprintf(out, cap, "%s0%s/%s1%s (also no/yes, off/on, false/true)", q, q, q, q);
		break;
	case OPT_SIZE:
		fmt_size_exact(a, sizeof a, o->lo);
		fmt_size_exact(b, sizeof b, o->hi);
		snprintf(out, cap, "%s to %s; suffixes K, M, G, T (binary)", a, b);
		break;
	case OPT_INT:
		snprintf(out, cap, "%lld to %lld", o->lo, o->hi);
		break;
	case OPT_TIME:
		fmt_time_exact(a, sizeof a, o->lo);
		fmt_time_exact(b, sizeof b, o->hi);
		snprintf(out, cap, "%s to %s; suffixes ns, us, ms, s (none: ms)", a, b);
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

static int opt_find(const char *name, size_t len)
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

/* A "NAME=VALUE" setting with its name checked. */
struct setting {
	int opt;	   /* index into opts */
	const char *value; /* points into argv */
};

/*
 * Is value acceptable for option i? Asks the allocator's own parser:
 * options_init over an environment holding only that variable, its warnings
 * silenced, then the allocator's settings restored.
 */
static bool value_ok(int i, const char *value)
{
	char *entry = xasprintf("NUMAHEAP_%s=%s", opts[i].name, value);
	char *tmp_env[2] = {entry, NULL};
	static struct nh_options saved;
	fflush(stderr);
	int saved_err = dup(2);
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 2);
		close(devnull);
	}
	saved = nh_opt;
	char **saved_env = environ;
	environ = tmp_env;
	options_init();
	bool ok = nh_opt.set[i];
	environ = saved_env;
	nh_opt = saved;
	if (saved_err >= 0) {
		dup2(saved_err, 2);
		close(saved_err);
	}
	free(entry);
	return ok;
}

/* Parse "NAME=VALUE" (NAME with or without NUMAHEAP_, any case); exits on error. */
static struct setting parse_setting(const char *cmd, const char *arg)
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

/* ======================================================================
 * numaheap env
 * ====================================================================== */

static const char env_help[] =
	"usage: numaheap env [--markdown | --current]\n"
	"\n"
	"List every NUMAHEAP_* environment variable numaheap reads: its type,\n"
	"default, accepted values, when it is read, and what it does.\n"
	"\n"
	"  --markdown   print the table of docs/tuning.md (tools/gen-docs puts it there)\n"
	"  --current    print the settings in effect for this environment\n"
	"               (what NUMAHEAP_SHOW_CONFIG=1 prints at start-up)\n";

/* Markdown cell text: '|' escaped. */
static void md_cell(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', f);
		fputc(*s, f);
	}
}

static void env_markdown(FILE *f)
{
	fputs("| Variable | Type | Default | Values | Read | Description |\n", f);
	fputs("| --- | --- | --- | --- | --- | --- |\n", f);
	for (int i = 0; i < NOPTS; i++) {
		const struct optinfo *o = &opts[i];
		char def[64], vals[512];
		opt_default(o, def, sizeof def);
		opt_values(o, vals, sizeof vals, true);
		fprintf(f, "| `NUMAHEAP_%s` | %s | `%s` | ", o->name, type_name(o->type), def);
		md_cell(f, vals);
		fprintf(f, " | %s | ", o->when);
		md_cell(f, o->doc);
		fputs(" |\n", f);
	}
}

static void env_text(FILE *f)
{
	fprintf(f, "numaheap %s reads these variables (NUMAHEAP_SHOW_CONFIG=1 prints the settings in effect;\n"
		   "a malformed or unknown one is a warning, or fatal with NUMAHEAP_STRICT=1):\n\n",
		numaheap_version());
	for (int i = 0; i < NOPTS; i++) {
		const struct optinfo *o = &opts[i];
		char def[64], vals[512];
		opt_default(o, def, sizeof def);
		opt_values(o, vals, sizeof vals, false);
		fprintf(f, "NUMAHEAP_%s  (%s, read at %s)\n", o->name, type_name(o->type), o->when);
		fprintf(f, "    default: %s\n    values:  %s\n    %s\n\n", def, vals, o->doc);
	}
}

static int cmd_env(int argc, char **argv)
{
	bool markdown = false, current = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--markdown"))
			markdown = true;
		else if (!strcmp(argv[i], "--current"))
			current = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(env_help, stdout);
			return 0;
		} else
			die_usage("env", "unknown argument '%s'", argv[i]);
	}
	if (markdown && current)
		die_usage("env", "--markdown and --current exclude each other");
	if (current) {
		fflush(stdout);
		options_print(1);
	} else if (markdown)
		env_markdown(stdout);
	else
		env_text(stdout);
	return 0;
}

/* ======================================================================
 * numaheap run
 * ====================================================================== */

static const char run_help[] =
	"usage: numaheap run [options] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Run PROGRAM with numaheap preloaded (LD_PRELOAD) and statistics printed\n"
	"when it exits (NUMAHEAP_STATS=1). The program replaces this command\n"
	"(exec), so its exit status, signals and process id are its own.\n"
	"\n"
	"  -s, --set NAME=VALUE  set NUMAHEAP_NAME (the prefix may be given or not);\n"
	"                        repeatable; names and values are checked first\n"
	"  --json                statistics as JSON (NUMAHEAP_STATS=json)\n"
	"  --no-stats            no statistics (leave NUMAHEAP_STATS alone)\n"
	"  --stats-file FILE     write the statistics to FILE (NUMAHEAP_STATS_FILE)\n"
	"  --lib PATH            preload this libnumaheap.so\n"
	"  -v, --verbose         print the environment given to the program\n"
	"\n"
	"The library is, in order: --lib, $NUMAHEAP_LIB, <bindir>/" NH_TOOL_LIBDIR_REL "/libnumaheap.so,\n"
	"<bindir>/../lib/libnumaheap.so, <bindir>/../libnumaheap.so (a build tree), and the\n"
	"library of the build this command came from.\n"
	"\n"
	"Examples:\n"
	"  numaheap run -- ./server --port 8080\n"
	"  numaheap run --json --stats-file s.json --set CACHE_BYTES=4M -- ./bench\n"
	"  numaheap stats s.json\n";

static char *exe_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	char *slash = strrchr(buf, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	return xstrdup(buf);
}

static char *usable_lib(const char *path)
{
	if (!path || !*path || access(path, R_OK) != 0)
		return NULL;
	/* Absolute (the program may change directory); the file's own name
	 * kept (libnumaheap.so, not the versioned file its link points at). */
	char *copy = xstrdup(path), dir[PATH_MAX];
	char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;
	if (slash)
		*slash = 0;
	char *r = realpath(slash ? (*copy ? copy : "/") : ".", dir) ? xasprintf("%s/%s", dir, base) : NULL;
	free(copy);
	return r;
}

static char *find_lib(const char *explicit_lib, bool verbose)
{
	char *r;
	if (explicit_lib) {
		if (!(r = usable_lib(explicit_lib))) {
			fprintf(stderr, "%s run: --lib %s: cannot read it\n", prog_name, explicit_lib);
			exit(2);
		}
		return r;
	}
	const char *env = getenv("NUMAHEAP_LIB");
	if (env && *env) {
		if (!(r = usable_lib(env))) {
			fprintf(stderr, "%s run: NUMAHEAP_LIB=%s: cannot read it\n", prog_name, env);
			exit(2);
		}
		return r;
	}
	char *dir = exe_dir();
	const char *rel[] = {NH_TOOL_LIBDIR_REL, "../lib", "../lib64", ".."};
	for (size_t k = 0; dir && k < sizeof rel / sizeof rel[0]; k++) {
		if (k > 0 && !strcmp(rel[k], rel[0]))
			continue;
		char *p = xasprintf("%s/%s/libnumaheap.so", dir, rel[k]);
		r = usable_lib(p);
		if (verbose)
			fprintf(stderr, "%s run: %s: %s\n", prog_name, p, r ? "found" : "no");
		free(p);
		if (r) {
			free(dir);
			return r;
		}
	}
	free(dir);
	if ((r = usable_lib(NH_TOOL_BUILD_LIB)))
		return r;
	fprintf(stderr,
		"%s run: cannot find libnumaheap.so (looked next to this program and in %s);\n"
		"  name it with --lib PATH or NUMAHEAP_LIB=PATH\n",
		prog_name, *NH_TOOL_BUILD_LIB ? NH_TOOL_BUILD_LIB : "the build tree");
	exit(2);
}

static int cmd_run(int argc, char **argv)
{
	struct setting *sets = xmalloc(sizeof *sets * (size_t)argc);
	int nsets = 0;
	const char *stats = "1", *stats_file = NULL, *lib = NULL;
	bool verbose = false;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(run_help, stdout);
			return 0;
		} else if (!strcmp(a, "-s") || !strcmp(a, "--set")) {
			if (++i >= argc)
				die_usage("run", "%s needs NAME=VALUE", a);
			sets[nsets++] = parse_setting("run", argv[i]);
		} else if (!strncmp(a, "--set=", 6)) {
			sets[nsets++] = parse_setting("run", a + 6);
		} else if (!strcmp(a, "--json")) {
			stats = "json";
		} else if (!strcmp(a, "--no-stats")) {
			stats = NULL;
		} else if (!strcmp(a, "--stats-file")) {
			if (++i >= argc)
				die_usage("run", "--stats-file needs a file name");
			stats_file = argv[i];
		} else if (!strncmp(a, "--stats-file=", 13)) {
			stats_file = a + 13;
		} else if (!strcmp(a, "--lib")) {
			if (++i >= argc)
				die_usage("run", "--lib needs a path");
			lib = argv[i];
		} else if (!strncmp(a, "--lib=", 6)) {
			lib = a + 6;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbose = true;
		} else {
			die_usage("run", "unknown option '%s' (put the program after --)", a);
		}
	}
	if (i >= argc)
		die_usage("run", "no program to run");

	char *path = find_lib(lib, verbose);
	const char *old = getenv("LD_PRELOAD");
	char *preload = old && *old ? xasprintf("%s:%s", path, old) : xstrdup(path);
	setenv("LD_PRELOAD", preload, 1);
	/* The tool's own variable: the program's numaheap would call it unknown. */
	unsetenv("NUMAHEAP_LIB");
	if (stats)
		setenv("NUMAHEAP_STATS", stats, 1);
	if (stats_file) {
		if (!value_ok(opt_find("STATS_FILE", 10), stats_file))
			die_usage("run", "bad --stats-file '%s'", stats_file);
		setenv("NUMAHEAP_STATS_FILE", stats_file, 1);
	}
	for (int k = 0; k < nsets; k++) {
		char *name = xasprintf("NUMAHEAP_%s", opts[sets[k].opt].name);
		setenv(name, sets[k].value, 1);
		free(name);
	}
	if (verbose) {
		for (char **e = environ; *e; e++)
			if (!strncmp(*e, "NUMAHEAP_", 9) || !strncmp(*e, "LD_PRELOAD=", 11))
				fprintf(stderr, "%s run: %s\n", prog_name, *e);
		fprintf(stderr, "%s run: exec %s\n", prog_name, argv[i]);
	}
	fflush(NULL);
	execvp(argv[i], argv + i);
	int e = errno;
	fprintf(stderr, "%s run: cannot run %s: %s\n", prog_name, argv[i], strerror(e));
	return e == ENOENT ? 127 : 126;
}

/* ======================================================================
 * numaheap topology
 * ====================================================================== */

static const char topology_help[] =
	"usage: numaheap topology [--set NAME=VALUE]... [--cpus]\n"
	"\n"
	"Show the machine as numaheap sees it: NUMA nodes with their CPUs, memory\n"
	"and distances (hwloc), huge pages (transparent and hugetlb), the CPUs and\n"
	"cgroup limits of this process, the heap node numaheap gives each CPU, and\n"
	"whether it would use per-CPU caches (rseq) or per-thread caches.\n"
	"\n"
	"numaheap's own start-up code decides, honouring the NUMAHEAP_* variables\n"
	"of the environment; --set adds or overrides one (as `numaheap run` would).\n"
	"\n"
	"  -s, --set NAME=VALUE  as if NUMAHEAP_NAME=VALUE were set\n"
	"  --cpus                one row per CPU (default: CPUs alike are grouped)\n";

struct sim {
	struct nh_options opt;
	struct numa_topology topo;
	struct numa_policy pol;
	size_t cache_budget;
	char warnings[2048]; /* what start-up printed (warnings) with these settings */
};

/* Run the allocator's start-up decisions over environ plus sets, then restore. */
static void simulate(const struct setting *sets, int nsets, struct sim *out)
{
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	char **env = xmalloc(sizeof(char *) * (n + (size_t)nsets + 1));
	char **owned = xmalloc(sizeof(char *) * ((size_t)nsets + 1));
	size_t m = 0;
	for (char **e = environ; *e; e++) {
		bool overridden = false;
		for (int k = 0; k < nsets; k++) {
			const char *nm = opts[sets[k].opt].name;
			size_t l = strlen(nm);
			if (!strncmp(*e, "NUMAHEAP_", 9) && !strncmp(*e + 9, nm, l) && (*e)[9 + l] == '=')
				overridden = true;
		}
		if (!overridden)
			env[m++] = *e;
	}
	for (int k = 0; k < nsets; k++)
		env[m++] = owned[k] = xasprintf("NUMAHEAP_%s=%s", opts[sets[k].opt].name, sets[k].value);
	env[m] = NULL;

	static struct nh_options saved_opt;
	static struct numa_topology saved_topo;
	static struct numa_policy saved_pol;
	/* Start-up warnings go to a temporary file, shown in the report. */
	fflush(stderr);
	FILE *tf = tmpfile();
	int saved_err = dup(2);
	if (tf)
		dup2(fileno(tf), 2);
	saved_opt = nh_opt;
	saved_topo = numa_topo;
	saved_pol = numa_pol;
	char **saved_env = environ;
	environ = env;
	options_init();
	numa_init();
	numa_policy_init();
	out->cache_budget = numa_cpu_budget((size_t)NH_OPTION(CACHE_BYTES));
	out->opt = nh_opt;
	out->topo = numa_topo;
	out->pol = numa_pol;
	environ = saved_env;
	numa_pol = saved_pol;
	numa_topo = saved_topo;
	nh_opt = saved_opt;
	if (saved_err >= 0) {
		dup2(saved_err, 2);
		close(saved_err);
	}
	out->warnings[0] = 0;
	if (tf) {
		rewind(tf);
		size_t got = fread(out->warnings, 1, sizeof out->warnings - 1, tf);
		out->warnings[got] = 0;
		fclose(tf);
	}
	for (int k = 0; k < nsets; k++)
		free(owned[k]);
	free(owned);
	free(env);
}

/* Test registration of a restartable-sequence area, on a fresh thread. */
struct rseq_probe {
	int result; /* 0 registered, else errno */
	bool glibc_registered;
};

static void *rseq_probe_thread(void *arg)
{
	struct rseq_probe *p = arg;
	p->glibc_registered = false;
	if (&__rseq_size && &__rseq_offset && __rseq_size > 0) {
		struct nh_rseq_area *rs = (struct nh_rseq_area *)((char *)__builtin_thread_pointer() + __rseq_offset);
		if ((int32_t)rs->cpu_id >= 0) {
			p->glibc_registered = true;
			p->result = 0;
			return NULL;
		}
	}
#ifdef SYS_rseq
	static __thread struct nh_rseq_area area = {.cpu_id = (uint32_t)-1};
	if (syscall(SYS_rseq, &area, sizeof area, 0, NH_RSEQ_SIG) == 0) {
		p->result = 0;
		syscall(SYS_rseq, &area, sizeof area, 1 /* RSEQ_FLAG_UNREGISTER */, NH_RSEQ_SIG);
	} else {
		/* EBUSY: this thread has one already (numaheap's own). */
		p->result = errno == EBUSY ? 0 : errno;
	}
#else
	p->result = ENOSYS;
#endif
	return NULL;
}

static void section(const char *title) { printf("\n%s\n", title); }

static void show_hwloc(void)
{
	hwloc_topology_t t;
	if (hwloc_topology_init(&t) != 0 || hwloc_topology_load(t) != 0) {
		printf("  hwloc: cannot load the topology\n");
		return;
	}
	int npkg = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
	int ncore = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
	int npu = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
	int nnuma = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
	printf("  %d package%s, %d core%s, %d hardware thread%s, %d NUMA node%s (hwloc %s)\n", npkg,
	       npkg == 1 ? "" : "s", ncore, ncore == 1 ? "" : "s", npu, npu == 1 ? "" : "s", nnuma,
	       nnuma == 1 ? "" : "s", HWLOC_VERSION);
	struct table tb;
	table_init(&tb, 4);
	tb.left[2] = tb.left[3] = true;
	int r = table_row(&tb);
	table_set(&tb, r, 0, "node");
	table_set(&tb, r, 1, "memory");
	table_set(&tb, r, 2, "CPUs");
	table_set(&tb, r, 3, "page sizes");
	for (int i = 0; i < nnuma; i++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i);
		char mem[32], *cpus = NULL, pages[256] = "";
		fmt_bytes(mem, sizeof mem, (unsigned long long)o->attr->numanode.local_memory);
		if (o->cpuset)
			hwloc_bitmap_list_asprintf(&cpus, o->cpuset);
		size_t len = 0;
		for (unsigned k = 0; k < o->attr->numanode.page_types_len; k++) {
			char sz[32];
			if (!o->attr->numanode.page_types[k].size)
				continue;
			fmt_size_exact(sz, sizeof sz, (long long)o->attr->numanode.page_types[k].size);
			int w = snprintf(pages + len, sizeof pages - len, "%s%s", len ? ", " : "", sz);
			if (w > 0 && (size_t)w < sizeof pages - len)
				len += (size_t)w;
		}
		r = table_row(&tb);
		table_set(&tb, r, 0, "%u", o->os_index);
		table_set(&tb, r, 1, "%s", mem);
		table_set(&tb, r, 2, "%s", cpus && *cpus ? cpus : "(none)");
		table_set(&tb, r, 3, "%s", pages);
		free(cpus);
	}
	table_print(&tb, stdout, "  ");
	table_free(&tb);

	unsigned nr = 1;
	struct hwloc_distances_s *d = NULL;
	if (nnuma > 1 && hwloc_distances_get_by_type(t, HWLOC_OBJ_NUMANODE, &nr, &d, 0, 0) == 0 && nr >= 1) {
		printf("  distances (relative latency, 10 = local):\n");
		table_init(&tb, (int)d->nbobjs + 1);
		r = table_row(&tb);
		table_set(&tb, r, 0, "node");
		for (unsigned j = 0; j < d->nbobjs; j++)
			table_set(&tb, r, (int)j + 1, "%u", d->objs[j]->os_index);
		for (unsigned i = 0; i < d->nbobjs; i++) {
			r = table_row(&tb);
			table_set(&tb, r, 0, "%u", d->objs[i]->os_index);
			for (unsigned j = 0; j < d->nbobjs; j++)
				table_set(&tb, r, (int)j + 1, "%llu",
					  (unsigned long long)d->values[i * d->nbobjs + j]);
		}
		table_print(&tb, stdout, "    ");
		table_free(&tb);
		hwloc_distances_release(t, d);
	} else if (nnuma > 1) {
		printf("  distances: hwloc has none\n");
	} else {
		printf("  distances: one node (10, local)\n");
	}
	hwloc_topology_destroy(t);
}

static void show_hugepages(const struct sim *s)
{
	char buf[256];
	if (read_small("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf)) {
		char mode[64] = "?";
		char *a = strchr(buf, '['), *b = a ? strchr(a, ']') : NULL;
		if (a && b)
			snprintf(mode, sizeof mode, "%.*s", (int)(b - a - 1), a + 1);
		const char *what = !strcmp(mode, "always")	? "for every anonymous mapping"
				   : !strcmp(mode, "madvise") ? "for mappings that ask, as numaheap's arenas do"
				   : !strcmp(mode, "never")   ? "none: arenas use 4 KiB pages"
							      : "?";
		printf("  transparent huge pages: %s (%s)\n", mode, what);
		if (read_small("/sys/kernel/mm/transparent_hugepage/defrag", buf, sizeof buf)) {
			a = strchr(buf, '[');
			b = a ? strchr(a, ']') : NULL;
			if (a && b)
				printf("  THP defrag: %.*s\n", (int)(b - a - 1), a + 1);
		}
	} else {
		printf("  transparent huge pages: not available (no /sys/kernel/mm/transparent_hugepage)\n");
	}
	printf("  numaheap: NUMAHEAP_THP=%lld (%s), NUMAHEAP_HUGETLB=%lld\n", (long long)s->opt.v[NH_OPTID_THP],
	       s->opt.v[NH_OPTID_THP] ? "MADV_HUGEPAGE on arenas" : "MADV_NOHUGEPAGE", (long long)s->opt.v[NH_OPTID_HUGETLB]);

	struct table tb;
	table_init(&tb, 4);
	int r = table_row(&tb);
	table_set(&tb, r, 0, "node");
	table_set(&tb, r, 1, "page size");
	table_set(&tb, r, 2, "reserved");
	table_set(&tb, r, 3, "free");
	for (int n = 0; n < 64; n++) {
		char dir[128];
		snprintf(dir, sizeof dir, "/sys/devices/system/node/node%d/hugepages", n);
		if (access(dir, R_OK) != 0)
			continue;
		static const char *sizes[] = {"2048kB", "1048576kB"};
		for (int k = 0; k < 2; k++) {
			char p[192], nr[32], fr[32];
			snprintf(p, sizeof p, "%s/hugepages-%s/nr_hugepages", dir, sizes[k]);
			if (!read_small(p, nr, sizeof nr))
				continue;
			snprintf(p, sizeof p, "%s/hugepages-%s/free_hugepages", dir, sizes[k]);
			if (!read_small(p, fr, sizeof fr))
				snprintf(fr, sizeof fr, "?");
			r = table_row(&tb);
			table_set(&tb, r, 0, "%d", n);
			table_set(&tb, r, 1, "%s", k ? "1 GiB" : "2 MiB");
			table_set(&tb, r, 2, "%s", nr);
			table_set(&tb, r, 3, "%s", fr);
		}
	}
	if (tb.nrows > 1) {
		printf("  hugetlb pages (NUMAHEAP_HUGETLB=1 uses the 2 MiB ones):\n");
		table_print(&tb, stdout, "    ");
	} else {
		printf("  hugetlb pages: no per-node counts in sysfs\n");
	}
	table_free(&tb);
}

static void show_process(const struct sim *s, cpu_set_t *aff, bool have_aff)
{
	char list[4096];
	if (have_aff) {
		bool in[NUMA_MAX_CPUS];
		for (int c = 0; c < NUMA_MAX_CPUS; c++)
			in[c] = c < CPU_SETSIZE && CPU_ISSET(c, aff);
		fmt_idlist(list, sizeof list, in, NUMA_MAX_CPUS);
		printf("  allowed CPUs: %s (%d of %d)\n", list, CPU_COUNT(aff), s->topo.ncpus);
	} else {
		printf("  allowed CPUs: unknown (sched_getaffinity failed)\n");
	}
	char buf[256];
	if (read_small("/sys/fs/cgroup/cpu.max", buf, sizeof buf)) {
		if (s->pol.cgroup_cpus_x100)
			printf("  cgroup CPU limit: %u.%02u CPUs (cpu.max \"%s\")\n", s->pol.cgroup_cpus_x100 / 100,
			       s->pol.cgroup_cpus_x100 % 100, buf);
		else
			printf("  cgroup CPU limit: none (cpu.max \"%s\")\n", buf);
	} else {
		char q[64], p[64];
		if (read_small("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", q, sizeof q) &&
		    read_small("/sys/fs/cgroup/cpu/cpu.cfs_period_us", p, sizeof p) && atoll(q) > 0 && atoll(p) > 0)
			printf("  cgroup CPU limit: %.2f CPUs (cgroup v1 quota %s/%s; numaheap reads only cgroup v2 cpu.max)\n",
			       (double)atoll(q) / (double)atoll(p), q, p);
		else
			printf("  cgroup CPU limit: none found (no cgroup v2 cpu.max at /sys/fs/cgroup)\n");
	}
	if (read_small("/sys/fs/cgroup/memory.max", buf, sizeof buf)) {
		if (!strcmp(buf, "max"))
			printf("  cgroup memory limit: none (memory.max \"max\")\n");
		else {
			char b[32];
			fmt_bytes(b, sizeof b, strtoull(buf, NULL, 10));
			printf("  cgroup memory limit: %s (memory.max; consider NUMAHEAP_MEMORY_LIMIT a little below it)\n", b);
		}
	}
	if (read_small("/sys/fs/cgroup/cpuset.cpus.effective", buf, sizeof buf) && *buf)
		printf("  cgroup cpuset: CPUs %s\n", buf);
}

static void show_policy(const struct sim *s, cpu_set_t *aff, bool have_aff, bool per_cpu_rows)
{
	static const char *modes[] = {"local", "interleave", "off"};
	char b1[128], b2[128], b3[32];
	fmt_mask(b1, sizeof b1, s->topo.node_mask);
	printf("  nodes with memory: %s; CPUs possible: %d\n", b1, s->topo.ncpus);
	fmt_mask(b1, sizeof b1, s->pol.heap_mask);
	fmt_mask(b2, sizeof b2, s->pol.interleave_mask);
	int mode = s->pol.mode >= 0 && s->pol.mode <= 2 ? s->pol.mode : 0;
	printf("  NUMAHEAP_NUMA=%s, NUMAHEAP_NUMA_BIND=%s\n", modes[mode], s->pol.strict ? "strict" : "preferred");
	if (mode == NUMA_INTERLEAVE)
		printf("  one heap (node %s), its arenas interleaved over nodes %s\n", b1, b2);
	else if (mode == NUMA_OFF)
		printf("  one heap (node %s), no binding: the kernel places pages on first touch\n", b1);
	else if (s->topo.nnodes <= 1)
		printf("  one heap (node %s): a single node has memory, nothing to bind\n", b1);
	else
		printf("  heaps on nodes %s, each bound %s to its node\n", b1,
		       s->pol.strict ? "strictly (MPOL_BIND)" : "preferably (MPOL_PREFERRED)");
	if (s->warnings[0]) {
		printf("  start-up warnings with these settings:\n");
		for (const char *l = s->warnings; *l;) {
			size_t n = strcspn(l, "\n");
			printf("    %.*s\n", (int)n, l);
			l += n + (l[n] == '\n');
		}
	}
	fmt_bytes(b3, sizeof b3, s->cache_budget);
	fmt_bytes(b1, sizeof b1, (unsigned long long)s->opt.v[NH_OPTID_CACHE_BYTES]);
	if (s->cache_budget != (size_t)s->opt.v[NH_OPTID_CACHE_BYTES])
		printf("  cache budget per P: %s (NUMAHEAP_CACHE_BYTES %s scaled by the cgroup CPU limit over %d allowed CPUs)\n",
		       b3, b1, s->pol.allowed_cpus);
	else
		printf("  cache budget per P: %s (NUMAHEAP_CACHE_BYTES)\n", b3);

	printf("  CPU -> heap node (a per-CPU P uses its CPU's heap; a per-thread P the heap of\n"
	       "  the CPU its thread first allocated on):\n");
	struct table tb;
	table_init(&tb, 4);
	tb.left[0] = true;
	int r = table_row(&tb);
	table_set(&tb, r, 0, "CPUs");
	table_set(&tb, r, 1, "node");
	table_set(&tb, r, 2, "heap node");
	table_set(&tb, r, 3, "allowed");
	int n = s->topo.ncpus;
	for (int c = 0; c < n;) {
		int node = s->topo.cpu_node[c];
		int heap = s->pol.cpu_heap[c] >= 0 ? s->pol.cpu_heap[c] : __builtin_ctz(s->pol.heap_mask);
		bool allowed = !have_aff || (c < CPU_SETSIZE && CPU_ISSET(c, aff));
		int e = c;
		while (!per_cpu_rows && e + 1 < n && s->topo.cpu_node[e + 1] == node &&
		       (s->pol.cpu_heap[e + 1] >= 0 ? s->pol.cpu_heap[e + 1] : __builtin_ctz(s->pol.heap_mask)) == heap &&
		       (!have_aff || (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, aff))) == allowed)
			e++;
		r = table_row(&tb);
		if (e == c)
			table_set(&tb, r, 0, "%d", c);
		else
			table_set(&tb, r, 0, "%d-%d", c, e);
		table_set(&tb, r, 1, "%d", node);
		table_set(&tb, r, 2, "%d", heap);
		table_set(&tb, r, 3, "%s", allowed ? "yes" : "no");
		c = e + 1;
	}
	table_print(&tb, stdout, "    ");
	table_free(&tb);
}

static void show_cpu_mode(const struct sim *s)
{
	bool glibc_has = &__rseq_size && &__rseq_offset;
	unsigned size = glibc_has ? __rseq_size : 0;
	if (glibc_has)
		printf("  glibc rseq: __rseq_size %u, __rseq_offset %td%s\n", size, __rseq_offset,
		       size ? "" : " (registration off, e.g. GLIBC_TUNABLES=glibc.pthread.rseq=0)");
	else
		printf("  glibc rseq: this glibc does not register rseq areas (before 2.35)\n");
	struct rseq_probe p = {ENOSYS, false};
	pthread_t th;
	if (pthread_create(&th, NULL, rseq_probe_thread, &p) == 0)
		pthread_join(th, NULL);
	else
		p.result = EAGAIN;
	if (p.glibc_registered)
		printf("  rseq registration: glibc's, on every thread\n");
	else if (p.result == 0)
		printf("  rseq registration: works (numaheap registers its own area per thread)\n");
	else
		printf("  rseq registration: fails (%s)%s\n", strerror(p.result),
		       p.result == ENOSYS ? ": the kernel (or valgrind) has no rseq" : "");
	bool percpu = s->opt.v[NH_OPTID_PERCPU] != 0;
	bool would = NH_RSEQ_SUPPORTED && percpu && p.result == 0;
	printf("  cpu_mode numaheap would choose: %s", would ? "rseq (one cache per CPU)" : "per-thread (one cache per thread)");
	if (!would)
		printf(" — %s", !percpu ? "NUMAHEAP_PERCPU=0" : "no restartable sequences");
	printf("\n  cpu_mode of this process: %s\n", nh_fast.cpu_mode == CPU_MODE_RSEQ ? "rseq" : "per-thread");
}

static int cmd_topology(int argc, char **argv)
{
	struct setting *sets = xmalloc(sizeof *sets * (size_t)(argc + 1));
	int nsets = 0;
	bool per_cpu = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(topology_help, stdout);
			return 0;
		} else if (!strcmp(a, "-s") || !strcmp(a, "--set")) {
			if (++i >= argc)
				die_usage("topology", "%s needs NAME=VALUE", a);
			sets[nsets++] = parse_setting("topology", argv[i]);
		} else if (!strncmp(a, "--set=", 6)) {
			sets[nsets++] = parse_setting("topology", a + 6);
		} else if (!strcmp(a, "--cpus")) {
			per_cpu = true;
		} else {
			die_usage("topology", "unknown argument '%s'", a);
		}
	}
	static struct sim s;
	simulate(sets, nsets, &s);
	cpu_set_t aff;
	CPU_ZERO(&aff);
	bool have_aff = sched_getaffinity(0, sizeof aff, &aff) == 0;

	printf("numaheap %s topology", numaheap_version());
	for (int k = 0; k < nsets; k++)
		printf("%s NUMAHEAP_%s=%s", k ? "," : " with", opts[sets[k].opt].name, sets[k].value);
	printf("\n");
	section("Machine (hwloc)");
	show_hwloc();
	section("Huge pages");
	show_hugepages(&s);
	section("This process");
	show_process(&s, &aff, have_aff);
	section("Heaps (numaheap's NUMA policy)");
	show_policy(&s, &aff, have_aff, per_cpu);
	section("Caches");
	show_cpu_mode(&s);
	free(sets);
	return 0;
}

/* ======================================================================
 * A small JSON parser (RFC 8259; numbers also kept exactly when they are
 * non-negative integers).
 * ====================================================================== */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	bool b;
	double num;
	bool exact; /* u holds the number exactly */
	unsigned long long u;
	char *s;
	size_t n; /* array items / object members */
	char **keys;
	struct jv **items;
};

struct jparser {
	const char *p, *start, *end;
	const char *err;
	int depth;
};

static void jfree(struct jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		if (v->keys)
			free(v->keys[i]);
		jfree(v->items[i]);
	}
	free(v->keys);
	free(v->items);
	free(v->s);
	free(v);
}

static void jskip(struct jparser *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
		jp->p++;
}

static struct jv *jnew(enum jtype t)
{
	struct jv *v = xmalloc(sizeof *v);
	memset(v, 0, sizeof *v);
	v->t = t;
	return v;
}

static void put_utf8(char **buf, size_t *len, size_t *cap, unsigned cp)
{
	if (*len + 5 > *cap) {
		*cap = *cap * 2 + 8;
		*buf = xrealloc(*buf, *cap);
	}
	char *o = *buf + *len;
	if (cp < 0x80) {
		o[0] = (char)cp;
		*len += 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		*len += 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		*len += 3;
	} else {
		o[0] = (char)(0xf0 | cp >> 18);
		o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[3] = (char)(0x80 | (cp & 0x3f));
		*len += 4;
	}
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static char *jstring(struct jparser *jp)
{
	/* at '"' */
	jp->p++;
	size_t len = 0, cap = 32;
	char *buf = xmalloc(cap);
	while (jp->p < jp->end && *jp->p != '"') {
		unsigned char c = (unsigned char)*jp->p;
		if (c < 0x20) {
			jp->err = "control character in a string";
			free(buf);
			return NULL;
		}
		if (c == '\\') {
			if (jp->p + 1 >= jp->end)
				break;
			char e = jp->p[1];
			jp->p += 2;
			unsigned cp;
			switch (e) {
			case '"': cp = '"'; break;
			case '\\': cp = '\\'; break;
			case '/': cp = '/'; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			case 'u': {
				int h = jp->end - jp->p >= 4 ? hex4(jp->p) : -1;
				if (h < 0) {
					jp->err = "bad \\u escape";
					free(buf);
					return NULL;
				}
				jp->p += 4;
				cp = (unsigned)h;
				if (cp >= 0xd800 && cp < 0xdc00 && jp->end - jp->p >= 6 && jp->p[0] == '\\' &&
				    jp->p[1] == 'u') {
					int lo = hex4(jp->p + 2);
					if (lo >= 0xdc00 && lo < 0xe000) {
						cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
						jp->p += 6;
					}
				}
				break;
			}
			default:
				jp->err = "bad escape in a string";
				free(buf);
				return NULL;
			}
			put_utf8(&buf, &len, &cap, cp);
			continue;
		}
		if (len + 2 > cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		buf[len++] = (char)c;
		jp->p++;
	}
	if (jp->p >= jp->end) {
		jp->err = "unterminated string";
		free(buf);
		return NULL;
	}
	jp->p++;
	buf[len] = 0;
	return buf;
}

static struct jv *jvalue(struct jparser *jp);

static struct jv *jcontainer(struct jparser *jp, bool obj)
{
	struct jv *v = jnew(obj ? J_OBJ : J_ARR);
	size_t cap = 0;
	char close = obj ? '}' : ']';
	jp->p++;
	if (++jp->depth > 64) {
		jp->err = "nested too deeply";
		jfree(v);
		return NULL;
	}
	jskip(jp);
	if (jp->p < jp->end && *jp->p == close) {
		jp->p++;
		jp->depth--;
		return v;
	}
	for (;;) {
		char *key = NULL;
		jskip(jp);
		if (obj) {
			if (jp->p >= jp->end || *jp->p != '"') {
				jp->err = "expected a member name";
				goto fail;
			}
			if (!(key = jstring(jp)))
				goto fail;
			jskip(jp);
			if (jp->p >= jp->end || *jp->p != ':') {
				free(key);
				jp->err = "expected ':'";
				goto fail;
			}
			jp->p++;
		}
		struct jv *item = jvalue(jp);
		if (!item) {
			free(key);
			goto fail;
		}
		if (v->n == cap) {
			cap = cap ? cap * 2 : 8;
			v->items = xrealloc(v->items, cap * sizeof *v->items);
			if (obj)
				v->keys = xrealloc(v->keys, cap * sizeof *v->keys);
		}
		if (obj)
			v->keys[v->n] = key;
		v->items[v->n++] = item;
		jskip(jp);
		if (jp->p < jp->end && *jp->p == ',') {
			jp->p++;
			continue;
		}
		if (jp->p < jp->end && *jp->p == close) {
			jp->p++;
			jp->depth--;
			return v;
		}
		jp->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
		goto fail;
	}
fail:
	jfree(v);
	return NULL;
}

static struct jv *jnumber(struct jparser *jp)
{
	const char *s = jp->p;
	const char *q = s;
	if (q < jp->end && *q == '-')
		q++;
	if (q >= jp->end || !isdigit((unsigned char)*q)) {
		jp->err = "unexpected character";
		return NULL;
	}
	if (*q == '0')
		q++;
	else
		while (q < jp->end && isdigit((unsigned char)*q))
			q++;
	bool integer = true;
	if (q < jp->end && *q == '.') {
		integer = false;
		q++;
		if (q >= jp->end || !isdigit((unsigned char)*q)) {
			jp->err = "bad number";
			return NULL;
		}
		while (q < jp->end && isdigit((unsigned char)*q))
			q++;
	}
	if (q < jp->end && (*q == 'e' || *q == 'E')) {
		integer = false;
		q++;
		if (q < jp->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= jp->end || !isdigit((unsigned char)*q)) {
			jp->err = "bad number";
			return NULL;
		}
		while (q < jp->end && isdigit((unsigned char)*q))
			q++;
	}
	char tmp[64];
	size_t n = (size_t)(q - s);
	if (n >= sizeof tmp) {
		jp->err = "number too long";
		return NULL;
	}
	memcpy(tmp, s, n);
	tmp[n] = 0;
	struct jv *v = jnew(J_NUM);
	v->num = strtod(tmp, NULL);
	if (integer && tmp[0] != '-') {
		errno = 0;
		v->u = strtoull(tmp, NULL, 10);
		v->exact = errno == 0;
	}
	jp->p = q;
	return v;
}

static bool jword(struct jparser *jp, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(jp->end - jp->p) >= n && !strncmp(jp->p, w, n)) {
		jp->p += n;
		return true;
	}
	return false;
}

static struct jv *jvalue(struct jparser *jp)
{
	jskip(jp);
	if (jp->p >= jp->end) {
		jp->err = "unexpected end";
		return NULL;
	}
	switch (*jp->p) {
	case '{': return jcontainer(jp, true);
	case '[': return jcontainer(jp, false);
	case '"': {
		char *s = jstring(jp);
		if (!s)
			return NULL;
		struct jv *v = jnew(J_STR);
		v->s = s;
		return v;
	}
	default:
		break;
	}
	if (jword(jp, "true") || jword(jp, "false")) {
		struct jv *v = jnew(J_BOOL);
		v->b = jp->p[-1] == 'e' && jp->p[-2] == 'u';
		return v;
	}
	if (jword(jp, "null"))
		return jnew(J_NULL);
	return jnumber(jp);
}

/* Parse [s, end) as one JSON value followed by whitespace only. */
static struct jv *jparse(const char *s, const char *end, const char **err, size_t *err_off)
{
	struct jparser jp = {s, s, end, NULL, 0};
	struct jv *v = jvalue(&jp);
	if (v) {
		jskip(&jp);
		if (jp.p != jp.end) {
			jp.err = "trailing characters";
			jfree(v);
			v = NULL;
		}
	}
	if (!v) {
		*err = jp.err ? jp.err : "parse error";
		*err_off = (size_t)(jp.p - s);
	}
	return v;
}

static const struct jv *jget(const struct jv *o, const char *key)
{
	if (!o || o->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return o->items[i];
	return NULL;
}

static unsigned long long jnum(const struct jv *v)
{
	if (!v || v->t != J_NUM)
		return 0;
	if (v->exact)
		return v->u;
	return v->num > 0 ? (unsigned long long)v->num : 0;
}

/* ======================================================================
 * numaheap stats
 * ====================================================================== */

static const char stats_help[] =
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

static void render_nodes(const struct jv *nodes)
{
	const char *keys[TABLE_MAX_COLS];
	size_t nk = union_keys(nodes, keys, TABLE_MAX_COLS - 2);
	if (!nodes || nodes->t != J_ARR || !nodes->n) {
		printf("\nNodes: none\n");
		return;
	}
	/* Table 1: the node and its byte counts; table 2: everything else. */
	for (int part = 0; part < 2; part++) {
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
			continue;
		printf("\n%s\n", part == 0 ? "Nodes: memory (each node's heap)" : "Nodes: activity and placement");
		struct table tb;
		table_init(&tb, nc + (local ? 1 : 0));
		int r = table_row(&tb);
		for (int c = 0; c < nc; c++) {
			char t[64];
			col_title(t, sizeof t, cols[c]);
			table_set(&tb, r, c, "%s", t);
			if (!strcmp(cols[c], "resident_on_node"))
				tb.left[c] = true;
		}
		if (local)
			table_set(&tb, r, nc, "local");
		for (size_t i = 0; i < nodes->n; i++) {
			const struct jv *o = nodes->items[i];
			r = table_row(&tb);
			for (int c = 0; c < nc; c++) {
				char cell[512];
				fmt_value(cell, sizeof cell, jget(o, cols[c]), hint_of(cols[c]));
				table_set(&tb, r, c, "%s", cell);
			}
			if (local) {
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
					table_set(&tb, r, nc, "%.1f%%", 100.0 * (double)mine / (double)sum);
				else
					table_set(&tb, r, nc, "-");
			}
		}
		table_print(&tb, stdout, "  ");
		table_free(&tb);
	}
}

static void render_classes(const struct jv *classes)
{
	if (!classes || classes->t != J_ARR) {
		printf("\nSize classes: none in this dump\n");
		return;
	}
	const char *keys[TABLE_MAX_COLS];
	size_t nk = union_keys(classes, keys, TABLE_MAX_COLS - 3);
	const char *order[] = {"class", "size", "spans", "objects_in_use", "objects_cached", "allocs", "frees"};
	const char *cols[TABLE_MAX_COLS];
	int nc = 0;
	for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
		for (size_t j = 0; j < nk; j++)
			if (!strcmp(keys[j], order[k]))
				cols[nc++] = order[k];
	for (size_t j = 0; j < nk; j++) {
		bool known = false;
		for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
			if (!strcmp(keys[j], order[k]))
				known = true;
		if (!known)
			cols[nc++] = keys[j];
	}
	bool derived = jget(classes->n ? classes->items[0] : NULL, "size") &&
		       jget(classes->n ? classes->items[0] : NULL, "objects_in_use");
	struct table tb;
	table_init(&tb, nc + (derived ? 2 : 0));
	int r = table_row(&tb);
	int c_inuse_bytes = -1, c_cached_bytes = -1;
	for (int c = 0, out = 0; c < nc; c++, out++) {
		char t[64];
		col_title(t, sizeof t, cols[c]);
		table_set(&tb, r, out, "%s", t);
	}
	if (derived) {
		c_inuse_bytes = nc;
		c_cached_bytes = nc + 1;
		table_set(&tb, r, c_inuse_bytes, "in use bytes");
		table_set(&tb, r, c_cached_bytes, "cached bytes");
	}
	size_t active = 0;
	unsigned long long inuse_b = 0, cached_b = 0, allocs = 0, frees = 0;
	for (size_t i = 0; i < classes->n; i++) {
		const struct jv *o = classes->items[i];
		bool any = false;
		for (size_t k = 0; o->t == J_OBJ && k < o->n; k++)
			if (strcmp(o->keys[k], "class") && strcmp(o->keys[k], "size") && jnum(o->items[k]))
				any = true;
		if (!any)
			continue;
		active++;
		r = table_row(&tb);
		for (int c = 0; c < nc; c++) {
			char cell[256];
			fmt_value(cell, sizeof cell, jget(o, cols[c]), hint_of(cols[c]));
			table_set(&tb, r, c, "%s", cell);
		}
		unsigned long long size = jnum(jget(o, "size"));
		unsigned long long ib = size * jnum(jget(o, "objects_in_use"));
		unsigned long long cb = size * jnum(jget(o, "objects_cached"));
		inuse_b += ib;
		cached_b += cb;
		allocs += jnum(jget(o, "allocs"));
		frees += jnum(jget(o, "frees"));
		if (derived) {
			char b[32];
			fmt_bytes(b, sizeof b, ib);
			table_set(&tb, r, c_inuse_bytes, "%s", b);
			fmt_bytes(b, sizeof b, cb);
			table_set(&tb, r, c_cached_bytes, "%s", b);
		}
	}
	printf("\nSize classes with activity (%zu of %zu)\n", active, classes->n);
	if (active)
		table_print(&tb, stdout, "  ");
	table_free(&tb);
	char b1[32], b2[32];
	fmt_bytes(b1, sizeof b1, inuse_b);
	fmt_bytes(b2, sizeof b2, cached_b);
	printf("  small objects: %llu allocs, %llu frees, %s in use, %s held in caches\n", allocs, frees, b1, b2);
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

static void render_dump(const struct jv *d, int index, int count)
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
	const struct jv *kc = jget(d, "kernel_calls");
	if (kc && kc->t == J_OBJ) {
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
	const struct jv *t = jget(d, "totals");
	render_object("Totals", t);
	if (t && t->t == J_OBJ) {
		unsigned long long a = jnum(jget(t, "allocs")), f = jnum(jget(t, "frees"));
		unsigned long long in = jnum(jget(t, "in_use_bytes")), m = jnum(jget(t, "mapped_bytes"));
		printf("  live objects: %lld\n", (long long)(a - f));
		if (m)
			printf("  in use / mapped: %.1f%%\n", 100.0 * (double)in / (double)m);
	}
	/* Sections this version of the tool does not know. */
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

static int cmd_stats(int argc, char **argv)
{
	bool all = false, keys = false;
	long index = 0;
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(stats_help, stdout);
			return 0;
		} else if (!strcmp(a, "--all")) {
			all = true;
		} else if (!strcmp(a, "--keys")) {
			keys = true;
		} else if (!strcmp(a, "--index")) {
			char *end;
			if (++i >= argc || (index = strtol(argv[i], &end, 10), *end) || index == 0)
				die_usage("stats", "--index needs a non-zero number");
		} else if (a[0] == '-' && a[1]) {
			die_usage("stats", "unknown option '%s'", a);
		} else if (file) {
			die_usage("stats", "one file at a time ('%s' and '%s')", file, a);
		} else {
			file = a;
		}
	}
	if (!file)
		file = "-";
	size_t len = 0;
	char *text = read_all(file, &len);
	if (!text) {
		fprintf(stderr, "%s stats: cannot read %s: %s\n", prog_name, file, strerror(errno));
		return 1;
	}
	/* Dumps: each line holding a JSON object with "version" and "nodes". */
	struct jv **dumps = NULL;
	size_t nd = 0, cap = 0;
	const char *last_err = NULL;
	size_t last_err_line = 0;
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
				if (nd == cap) {
					cap = cap ? cap * 2 : 8;
					dumps = xrealloc(dumps, cap * sizeof *dumps);
				}
				dumps[nd++] = v;
			} else {
				if (!v) {
					last_err = err;
					last_err_line = lineno;
				}
				jfree(v);
			}
		}
		p = le + 1;
	}
	if (!nd) {
		/* One pretty-printed object, perhaps. */
		const char *brace = memchr(text, '{', len);
		const char *err = NULL;
		size_t off = 0;
		struct jv *v = brace ? jparse(brace, text + len, &err, &off) : NULL;
		if (is_dump(v)) {
			dumps = xmalloc(sizeof *dumps);
			dumps[nd++] = v;
		} else {
			jfree(v);
			fprintf(stderr, "%s stats: no numaheap JSON statistics in %s", prog_name, file);
			if (last_err)
				fprintf(stderr, " (line %zu: %s)", last_err_line, last_err);
			if (memmem(text, len, "statistics: cpu_mode", 20))
				fprintf(stderr, "\n  (this holds the text statistics of NUMAHEAP_STATS=1, already readable;"
						" for tables use NUMAHEAP_STATS=json or `numaheap run --json`)\n");
			else
				fprintf(stderr, "\n  (produce them with NUMAHEAP_STATS=json or `numaheap run --json`)\n");
			free(text);
			return 1;
		}
	}
	size_t first = nd - 1, last = nd - 1;
	if (all)
		first = 0;
	else if (index) {
		long k = index > 0 ? index - 1 : (long)nd + index;
		if (k < 0 || k >= (long)nd) {
			fprintf(stderr, "%s stats: %s holds %zu dump%s, no dump %ld\n", prog_name, file, nd,
				nd == 1 ? "" : "s", index);
			return 1;
		}
		first = last = (size_t)k;
	}
	if (keys) {
		struct pathset ps = {NULL, 0, 0};
		for (size_t i = first; i <= last; i++)
			collect_paths(dumps[i], "", &ps);
		for (size_t i = 0; i < ps.n; i++) {
			puts(ps.p[i]);
			free(ps.p[i]);
		}
		free(ps.p);
	} else {
		for (size_t i = first; i <= last; i++) {
			if (i > first)
				printf("\n%s\n\n", "------------------------------------------------------------------------");
			render_dump(dumps[i], (int)i + 1, (int)nd);
		}
	}
	for (size_t i = 0; i < nd; i++)
		jfree(dumps[i]);
	free(dumps);
	free(text);
	return 0;
}

/* ======================================================================
 * main
 * ====================================================================== */

static const char main_help[] =
	"usage: numaheap COMMAND [ARGS]\n"
	"\n"
	"numaheap, a NUMA- and huge-page-aware malloc: tools.\n"
	"\n"
	"Commands:\n"
	"  run [options] -- PROGRAM [ARGS]  run PROGRAM on numaheap (LD_PRELOAD) and print\n"
	"                                   its statistics at exit\n"
	"  topology [--set NAME=VALUE]      nodes, CPUs, memory, distances, huge pages,\n"
	"                                   limits, and the heap numaheap gives each CPU\n"
	"  stats [--all] FILE               render JSON statistics dumps as tables\n"
	"  env [--markdown | --current]     every NUMAHEAP_* variable, its default and range\n"
	"  help [COMMAND]                   this text, or a command's\n"
	"  --version                        the library's version\n"
	"\n"
	"`numaheap COMMAND --help` tells more. The documents: docs/tuning.md (the\n"
	"variables), docs/stats.md (the statistics), docs/migration.md (coming from\n"
	"jemalloc, tcmalloc or mimalloc).\n";

struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
};

static const struct command commands[] = {
	{"run", cmd_run, run_help},
	{"topology", cmd_topology, topology_help},
	{"stats", cmd_stats, stats_help},
	{"env", cmd_env, env_help},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(main_help, stderr);
		return 2;
	}
	const char *c = argv[1];
	if (!strcmp(c, "-h") || !strcmp(c, "--help")) {
		fputs(main_help, stdout);
		return 0;
	}
	if (!strcmp(c, "--version") || !strcmp(c, "version")) {
		printf("numaheap %s\n", numaheap_version());
		return 0;
	}
	if (!strcmp(c, "help")) {
		if (argc < 3) {
			fputs(main_help, stdout);
			return 0;
		}
		for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
			if (!strcmp(argv[2], commands[i].name)) {
				fputs(commands[i].help, stdout);
				return 0;
			}
		die_usage(NULL, "no command '%s'", argv[2]);
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(c, commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: no command '%s'\n\n", prog_name, c);
	fputs(main_help, stderr);
	return 2;
}
