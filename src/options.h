/*
 * options.h — the NUMAHEAP_* settings (options.c, options.def).
 */
#ifndef NUMAHEAP_OPTIONS_H
#define NUMAHEAP_OPTIONS_H

#include "internal.h"

/* ------------------------------------------------------------------------
 * Options (options.c, options.def): parsed once at start-up, read-only after.
 * ------------------------------------------------------------------------ */
enum nh_opt_type { OPT_BOOL, OPT_SIZE, OPT_INT, OPT_ENUM, OPT_PATH, OPT_TIME, OPT_LIST };

#define NH_OPT(name, type, def, lo, hi, choices, when, doc) NH_OPTID_##name,
enum nh_option_id {
#include "options.def"
	NH_NUM_OPTIONS
};
#undef NH_OPT

#define NH_PATH_MAX 256
struct nh_options {
	int64_t v[NH_NUM_OPTIONS]; /* value; an index into choices for OPT_ENUM */
	bool set[NH_NUM_OPTIONS];  /* given in the environment */
	char stats_file[NH_PATH_MAX]; /* NUMAHEAP_STATS_FILE */
	char lib[NH_PATH_MAX];	      /* NUMAHEAP_LIB */
	char prof_file[NH_PATH_MAX];  /* NUMAHEAP_PROF_FILE */
};
extern struct nh_options nh_opt;
#define NH_OPTION(name) (nh_opt.v[NH_OPTID_##name])

void options_init(void);
void options_print(int fd);

#endif /* NUMAHEAP_OPTIONS_H */
