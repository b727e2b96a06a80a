/*
 * tool.c — the `numaheap` command's small utilities (tool.h).
 */
#define _GNU_SOURCE 1
#include "tool.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char prog_name[] = "numaheap";

void die_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s%s%s: ", prog_name, cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s--help'.\n", prog_name, cmd ? cmd : "");
	if (cmd)
		fputc('\n', stderr);
	exit(2);
}

static void out_of_memory(void)
{
	fprintf(stderr, "%s: out of memory\n", prog_name);
	exit(1);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		out_of_memory();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		out_of_memory();
	return p;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		out_of_memory();
	return s;
}

bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

const char *option_value(const char *cmd, int argc, char **argv, int *i, const char *short_name,
			 const char *long_name, const char *what)
{
	const char *a = argv[*i];
	size_t n = strlen(long_name);
	if (!strcmp(a, long_name) || (short_name && !strcmp(a, short_name))) {
		if (++*i >= argc)
			die_usage(cmd, "%s needs %s", a, what);
		return argv[*i];
	}
	if (!strncmp(a, long_name, n) && a[n] == '=')
		return a + n + 1;
	return NULL;
}

bool read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return true;
}

int stderr_redirect(int fd)
{
	fflush(stderr);
	int saved = dup(2);
	if (fd >= 0)
		dup2(fd, 2);
	return saved;
}

void stderr_restore(int saved)
{
	if (saved >= 0) {
		dup2(saved, 2);
		close(saved);
	}
}
