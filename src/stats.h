/*
 * stats.h — statistics: gathered on demand, printed as text or JSON (stats.c).
 */
#ifndef NUMAHEAP_STATS_H
#define NUMAHEAP_STATS_H

#include "internal.h"

/* Print the statistics to fd: text, or one line of JSON. */
void stats_print(int fd, bool json);
/* The JSON into buf (truncated to cap, NUL-terminated); its full length. */
size_t stats_json(char *buf, size_t cap);
/* At start-up: keep a copy of stderr if statistics may go there. */
void stats_init(void);
/* Write the statistics where NUMAHEAP_STATS_FILE says (appending if
 * periodic), in NUMAHEAP_STATS's format (text unless json). */
void stats_dump(bool periodic);
/* At exit: the dump NUMAHEAP_STATS asks for. */
void stats_at_exit(void);

#endif /* NUMAHEAP_STATS_H */
