/*
 * commands.h — the commands of `numaheap`, one file each:
 *
 *   run.c       numaheap run [options] -- PROGRAM [ARGS]
 *   topology.c  numaheap topology [--set N=V]... [--cpus]
 *   stats.c     numaheap stats [--all] [--keys] FILE
 *   env.c       numaheap env [--markdown | --current]
 *   prof.c      numaheap prof [options] -- PROGRAM [ARGS]
 *
 * Each takes its own argv (argv[0] is the command's name) and returns the
 * exit status; its help text is what `numaheap help COMMAND` prints.
 */
#ifndef NH_TOOL_COMMANDS_H
#define NH_TOOL_COMMANDS_H

#include <stdbool.h>

int cmd_run(int argc, char **argv);
int cmd_topology(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_env(int argc, char **argv);
int cmd_prof(int argc, char **argv);

extern const char run_help[];
extern const char topology_help[];
extern const char stats_help[];
extern const char env_help[];
extern const char prof_help[];

/* The libnumaheap.so to preload (run.c): --lib, $NUMAHEAP_LIB, beside the command, the build's. */
char *find_numaheap_lib(const char *explicit_lib, bool verbose);

#endif
