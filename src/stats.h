/*
 * stats.h — statistics: kernel-call counts and the output (stats.c).
 */
#ifndef NUMAHEAP_STATS_H
#define NUMAHEAP_STATS_H

#include "internal.h"

/* ------------------------------------------------------------------------
 * Statistics (stats.c, stats.def).
 * ------------------------------------------------------------------------ */

/* Stats output (stats.c). */
void stats_print(int fd, bool json);
void stats_at_exit(void);
size_t stats_json(char *buf, size_t cap);

#endif /* NUMAHEAP_STATS_H */
