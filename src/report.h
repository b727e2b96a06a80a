/*
 * report.h — allocation-free formatting, warnings and fatal errors (report.c).
 */
#ifndef NUMAHEAP_REPORT_H
#define NUMAHEAP_REPORT_H

#include <stdarg.h>

#include "internal.h"

/* ------------------------------------------------------------------------
 * Reporting (report.c): allocation-free formatting and fatal errors.
 * ------------------------------------------------------------------------ */
struct nh_buf {
	char *p;
	size_t len;
	size_t cap;
	int fd;	      /* flushed here when full; -1 to truncate instead */
	size_t total; /* characters written, including those truncated */
};

void buf_puts(struct nh_buf *b, const char *s);
void buf_putc(struct nh_buf *b, char c);
void buf_printf(struct nh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_flush(struct nh_buf *b);
void nh_printf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nh_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
NH_NORETURN void nh_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* path with every "%p" replaced by the process id, into out (cap bytes,
 * NUL-terminated, truncated if longer). */
void nh_path_expand(const char *path, char *out, size_t cap);
/* Bad-pointer reports: "numaheap: <what> <pointer>: <detail>", then abort. */
NH_NORETURN NH_COLD void nh_report_bad_pointer(const char *api, const void *p, const char *what);

#endif /* NUMAHEAP_REPORT_H */
