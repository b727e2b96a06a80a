/*
 * env.c — `numaheap env`: every NUMAHEAP_* variable, as text, as the
 * Markdown table of docs/tuning.md, or the settings in effect.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "internal.h"
#include "options.h"
#include "report.h"
#include "numa.h"
#include "os/os.h"
#include "numaheap.h"
#include "optinfo.h"
#include "tool.h"

const char env_help[] =
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

int cmd_env(int argc, char **argv)
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

