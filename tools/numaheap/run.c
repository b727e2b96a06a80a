/*
 * run.c — `numaheap run`: run a program with numaheap preloaded
 * (LD_PRELOAD) and its statistics printed at exit.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "optinfo.h"
#include "tool.h"

extern char **environ;

#ifndef NH_TOOL_BUILD_LIB
#define NH_TOOL_BUILD_LIB ""
#endif
#ifndef NH_TOOL_LIBDIR_REL
#define NH_TOOL_LIBDIR_REL "../lib"
#endif

const char run_help[] =
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

char *find_numaheap_lib(const char *explicit_lib, bool verbose)
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

/* What the options before the program ask for. */
struct run_opts {
	struct setting *sets;
	int nsets;
	const char *stats, *stats_file, *lib;
	bool verbose;
};

/*
 * Parse argv up to the program: returns the program's index, or 0 when
 * --help was printed. Exits on a usage error.
 */
static int parse_run_opts(int argc, char **argv, struct run_opts *o)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i], *v;
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(run_help, stdout);
			return 0;
		} else if (take_set_option("run", argc, argv, &i, o->sets, &o->nsets)) {
			continue;
		} else if (!strcmp(a, "--json")) {
			o->stats = "json";
		} else if (!strcmp(a, "--no-stats")) {
			o->stats = NULL;
		} else if ((v = option_value("run", argc, argv, &i, NULL, "--stats-file", "a file name"))) {
			o->stats_file = v;
		} else if ((v = option_value("run", argc, argv, &i, NULL, "--lib", "a path"))) {
			o->lib = v;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			o->verbose = true;
		} else {
			die_usage("run", "unknown option '%s' (put the program after --)", a);
		}
	}
	if (i >= argc)
		die_usage("run", "no program to run");
	return i;
}

/* The environment the program gets: the library preloaded, the settings. */
static void set_environment(const struct run_opts *o, const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *preload = old && *old ? xasprintf("%s:%s", lib, old) : xstrdup(lib);
	setenv("LD_PRELOAD", preload, 1);
	/* The tool's own variable: the program's numaheap would call it unknown. */
	unsetenv("NUMAHEAP_LIB");
	if (o->stats)
		setenv("NUMAHEAP_STATS", o->stats, 1);
	if (o->stats_file) {
		if (!value_ok(opt_find("STATS_FILE", 10), o->stats_file))
			die_usage("run", "bad --stats-file '%s'", o->stats_file);
		setenv("NUMAHEAP_STATS_FILE", o->stats_file, 1);
	}
	for (int k = 0; k < o->nsets; k++) {
		char *name = xasprintf("NUMAHEAP_%s", opts[o->sets[k].opt].name);
		setenv(name, o->sets[k].value, 1);
		free(name);
	}
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {xmalloc(sizeof *o.sets * (size_t)argc), 0, "1", NULL, NULL, false};
	int i = parse_run_opts(argc, argv, &o);
	if (!i)
		return 0;
	char *path = find_numaheap_lib(o.lib, o.verbose);
	set_environment(&o, path);
	if (o.verbose) {
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
