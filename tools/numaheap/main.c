/*
 * main.c — the `numaheap` command: which command to run.
 *
 *   numaheap run [options] -- PROGRAM [ARGS]   run a program on numaheap
 *   numaheap topology [--set N=V]... [--cpus]  the machine as numaheap sees it
 *   numaheap stats [--all] [--keys] FILE       render NUMAHEAP_STATS=json dumps
 *   numaheap env [--markdown | --current]      every NUMAHEAP_* variable
 *
 * The tool is linked with the static library and built against the internal
 * headers: the options table is src/options.def itself (optinfo.c), and
 * `topology` runs the allocator's own start-up code (topology.c). The tool
 * runs on numaheap's malloc, too.
 *
 * One file per command (commands.h); shared: tool.c (errors, allocation,
 * files), format.c (numbers for people), table.c (the table printer),
 * json.c (the JSON reader), optinfo.c (the NUMAHEAP_* variables).
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "numaheap.h"
#include "tool.h"

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
	"  prof [options] -- PROGRAM [ARGS] run PROGRAM with heap profiling; print its top\n"
	"                                   allocation sites, per NUMA node\n"
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
	{"prof", cmd_prof, prof_help},
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
