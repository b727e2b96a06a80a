/*
 * tool.h — what every part of the `numaheap` command shares: its name,
 * usage errors, allocation that exits when memory runs out, and small
 * string and file helpers.
 */
#ifndef NH_TOOL_TOOL_H
#define NH_TOOL_TOOL_H

#include <stdbool.h>
#include <stddef.h>

extern const char prog_name[];

/* "numaheap CMD: <message>", a hint to try --help, and exit status 2. */
void die_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* malloc, realloc, strdup, asprintf: on failure, a message and exit 1. */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

bool ends_with(const char *s, const char *suffix);

/*
 * argv[*i] is long_name VALUE, short_name VALUE (short_name may be NULL) or
 * long_name=VALUE: returns VALUE, *i moved past it; exits when VALUE is
 * missing ("CMD: --x needs <what>"). NULL for any other argument.
 */
const char *option_value(const char *cmd, int argc, char **argv, int *i, const char *short_name,
			 const char *long_name, const char *what);

/* Read a small file into buf, trailing newline stripped; false if absent. */
bool read_small(const char *path, char *buf, size_t cap);

/*
 * Send standard error to fd (none if fd < 0) while the allocator's own
 * start-up code runs; returns what stderr_restore wants back.
 */
int stderr_redirect(int fd);
void stderr_restore(int saved);

#endif
