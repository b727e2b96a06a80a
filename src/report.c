/*
 * report.c — output without malloc: a small printf into a caller's buffer,
 * warnings, and the fatal reports of bad frees.
 *
 * Nothing here may allocate or take allocator locks: it runs inside malloc
 * and free, at exit, and while reporting heap corruption. Formats: %s %c %d
 * %i %u %x %p %% with flags '-' and '0', a width (or *), and the l, ll, z length
 * modifiers.
 */

#include "os/os.h"

#include "report.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

void buf_flush(struct nh_buf *b)
{
	if (b->fd >= 0 && b->len) {
		os_write_all(b->fd, b->p, b->len);
		b->len = 0;
	}
}

void buf_putc(struct nh_buf *b, char c)
{
	b->total++;
	if (b->len + 1 >= b->cap) {
		if (b->fd < 0)
			return; /* truncate, keeping room for the NUL */
		buf_flush(b);
	}
	b->p[b->len++] = c;
	if (b->fd < 0)
		b->p[b->len] = 0;
}

void buf_puts(struct nh_buf *b, const char *s)
{
	while (*s)
		buf_putc(b, *s++);
}

static void put_padded(struct nh_buf *b, const char *s, size_t n, int width, bool left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;
	if (!left) {
		/* Zero padding goes after a sign. */
		if (pad == '0' && n && *s == '-') {
			buf_putc(b, *s++);
			n--;
		}
		while (fill-- > 0)
			buf_putc(b, pad);
	}
	for (size_t i = 0; i < n; i++)
		buf_putc(b, s[i]);
	if (left)
		while (fill-- > 0)
			buf_putc(b, ' ');
}

static size_t fmt_uint(char *out, unsigned long long v, unsigned base)
{
	char tmp[24];
	size_t n = 0;
	do {
		unsigned d = (unsigned)(v % base);
		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

static void buf_vprintf(struct nh_buf *b, const char *fmt, va_list ap)
{
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			buf_putc(b, *f);
			continue;
		}
		f++;
		bool left = false;
		char pad = ' ';
		for (;; f++) {
			if (*f == '-')
				left = true;
			else if (*f == '0')
				pad = '0';
			else
				break;
		}
		int width = 0;
		if (*f == '*') {
			width = va_arg(ap, int);
			f++;
		}
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (*f++ - '0');
		int lng = 0;
		while (*f == 'l' || *f == 'z') {
			lng = *f == 'z' ? 2 : lng + 1;
			f++;
		}
		char num[32];
		size_t n;
		switch (*f) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			size_t len = 0;
			while (s[len])
				len++;
			put_padded(b, s, len, width, left, ' ');
			break;
		}
		case 'c':
			num[0] = (char)va_arg(ap, int);
			put_padded(b, num, 1, width, left, ' ');
			break;
		case 'd':
		case 'i': {
			long long v = lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
			n = 0;
			unsigned long long u = (unsigned long long)v;
			if (v < 0) {
				num[n++] = '-';
				u = 0 - u;
			}
			n += fmt_uint(num + n, u, 10);
			put_padded(b, num, n, width, left, pad);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = lng >= 2 ? va_arg(ap, unsigned long long)
				       : lng == 1 ? va_arg(ap, unsigned long)
						  : va_arg(ap, unsigned);
			n = fmt_uint(num, v, *f == 'x' ? 16 : 10);
			put_padded(b, num, n, width, left, pad);
			break;
		}
		case 'p': {
			num[0] = '0';
			num[1] = 'x';
			n = 2 + fmt_uint(num + 2, (uintptr_t)va_arg(ap, void *), 16);
			put_padded(b, num, n, width, left, ' ');
			break;
		}
		case '%':
			buf_putc(b, '%');
			break;
		default:
			buf_putc(b, '%');
			if (*f)
				buf_putc(b, *f);
			else
				f--;
		}
	}
}

void buf_printf(struct nh_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void nh_printf(int fd, const char *fmt, ...)
{
	char mem[512];
	struct nh_buf b = {mem, 0, sizeof mem, fd, 0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_flush(&b);
}

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	char mem[512];
	struct nh_buf b = {mem, 0, sizeof mem, 2, 0};
	buf_puts(&b, prefix);
	buf_vprintf(&b, fmt, ap);
	buf_putc(&b, '\n');
	buf_flush(&b);
}

void nh_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("numaheap: warning: ", fmt, ap);
	va_end(ap);
}

void nh_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("numaheap: fatal: ", fmt, ap);
	va_end(ap);
	abort();
}

void nh_report_bad_pointer(const char *api, const void *p, const char *what)
{
	nh_printf(2, "numaheap: %s(%p): %s; aborting\n", api, p, what);
	abort();
}
