/*
 * format.h — numbers for people: sizes, durations, sets of ids.
 */
#ifndef NH_TOOL_FORMAT_H
#define NH_TOOL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "12.3 MiB", like the library's own text statistics. */
void fmt_bytes(char *out, size_t cap, unsigned long long v);
/* An exact size with the largest binary suffix that divides it: "2 MiB". */
void fmt_size_exact(char *out, size_t cap, long long v);
/* An exact duration in the largest unit the parser accepts: "1 s", "50 ms". */
void fmt_time_exact(char *out, size_t cap, long long ns);
/* A duration for reading: "1.234 s", "12.3 ms", "850 us". */
void fmt_ns(char *out, size_t cap, unsigned long long ns);
/* A set of ids as a list: "0-3,8"; "(none)" when empty. */
void fmt_idlist(char *out, size_t cap, const bool *in, int n);
/* The same for the bits of a mask. */
void fmt_mask(char *out, size_t cap, uint64_t mask);

#endif
