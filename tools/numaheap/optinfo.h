/*
 * optinfo.h — the NUMAHEAP_* variables as the command knows them: the
 * allocator's own list (src/options.def), described for people, and
 * NAME=VALUE settings checked by the allocator's own parser.
 */
#ifndef NH_TOOL_OPTINFO_H
#define NH_TOOL_OPTINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"
#include "options.h"
#include "report.h"
#include "numa.h"
#include "os/os.h"

struct optinfo {
	const char *name; /* without the NUMAHEAP_ prefix */
	enum nh_opt_type type;
	long long def, lo, hi;
	const char *choices;
	const char *when;
	const char *doc;
};

extern const struct optinfo opts[];
#define NOPTS ((int)NH_NUM_OPTIONS)

const char *type_name(enum nh_opt_type t);
/* The default, as it would be written: "4 MiB", "local", "(unset)". */
void opt_default(const struct optinfo *o, char *out, size_t cap);
/* Accepted values; markdown wraps literal values in backquotes. */
void opt_values(const struct optinfo *o, char *out, size_t cap, bool markdown);
/* The index of the option named name[0, len) (no prefix), or -1. */
int opt_find(const char *name, size_t len);

/* A "NAME=VALUE" setting with its name checked. */
struct setting {
	int opt;	   /* index into opts */
	const char *value; /* points into argv */
};

/* Is value acceptable for option i? (The allocator's parser decides.) */
bool value_ok(int i, const char *value);
/* Parse "NAME=VALUE" (NAME with or without NUMAHEAP_, any case); exits on error. */
struct setting parse_setting(const char *cmd, const char *arg);
/*
 * argv[*i] is -s/--set NAME=VALUE or --set=NAME=VALUE: the setting is
 * appended to sets (and *i moved past its value). False for any other
 * argument; exits on a bad setting.
 */
bool take_set_option(const char *cmd, int argc, char **argv, int *i, struct setting *sets, int *nsets);

#endif
