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

/* A conversion's flags, width and length modifier. */
struct fmt_spec {
	bool left;  /* '-' */
	char pad;   /* '0' or ' ' */
	int width;
	int lng;    /* 0 (none), 1 (l), 2 (ll, z) */
};

/* Read the flags, width and length of the conversion at f (just past its
 * '%'); returns the conversion character's address. */
static const char *parse_spec(const char *f, struct fmt_spec *sp, va_list *ap)
{
	sp->left = false;
	sp->pad = ' ';
	for (;; f++) {
		if (*f == '-')
			sp->left = true;
		else if (*f == '0')
			sp->pad = '0';
		else
			break;
	}
	sp->width = 0;
	if (*f == '*') {
		sp->width = va_arg(*ap, int);
		f++;
	}
	while (*f >= '0' && *f <= '9')
		sp->width = sp->width * 10 + (*f++ - '0');
	sp->lng = 0;
	while (*f == 'l' || *f == 'z') {
		sp->lng = *f == 'z' ? 2 : sp->lng + 1;
		f++;
	}
	return f;
}

/* %d, %i */
static void put_signed(struct nh_buf *b, const struct fmt_spec *sp, va_list *ap)
{
	char num[32];
	long long v = sp->lng >= 2 ? va_arg(*ap, long long) : sp->lng == 1 ? va_arg(*ap, long) : va_arg(*ap, int);
	size_t n = 0;
	unsigned long long u = (unsigned long long)v;
	if (v < 0) {
		num[n++] = '-';
		u = 0 - u;
	}
	n += fmt_uint(num + n, u, 10);
	put_padded(b, num, n, sp->width, sp->left, sp->pad);
}

/* %u, %x */
static void put_unsigned(struct nh_buf *b, const struct fmt_spec *sp, unsigned base, va_list *ap)
{
	char num[32];
	unsigned long long v = sp->lng >= 2 ? va_arg(*ap, unsigned long long)
			       : sp->lng == 1 ? va_arg(*ap, unsigned long)
					      : va_arg(*ap, unsigned);
	size_t n = fmt_uint(num, v, base);
	put_padded(b, num, n, sp->width, sp->left, sp->pad);
}

/* One conversion; false for a character that is none (printed as is). */
static bool put_conversion(struct nh_buf *b, const struct fmt_spec *sp, char conv, va_list *ap)
{
	char num[32];
	switch (conv) {
	case 's': {
		const char *s = va_arg(*ap, const char *);
		if (!s)
			s = "(null)";
		size_t len = 0;
		while (s[len])
			len++;
		put_padded(b, s, len, sp->width, sp->left, ' ');
		return true;
	}
	case 'c':
		num[0] = (char)va_arg(*ap, int);
		put_padded(b, num, 1, sp->width, sp->left, ' ');
		return true;
	case 'd':
	case 'i':
		put_signed(b, sp, ap);
		return true;
	case 'u':
	case 'x':
		put_unsigned(b, sp, conv == 'x' ? 16 : 10, ap);
		return true;
	case 'p': {
		num[0] = '0';
		num[1] = 'x';
		size_t n = 2 + fmt_uint(num + 2, (uintptr_t)va_arg(*ap, void *), 16);
		put_padded(b, num, n, sp->width, sp->left, ' ');
		return true;
	}
	case '%':
		buf_putc(b, '%');
		return true;
	}
	return false;
}

static void buf_vprintf(struct nh_buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap); /* helpers take it by address, which a va_list parameter cannot give */
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			buf_putc(b, *f);
			continue;
		}
		struct fmt_spec sp;
		f = parse_spec(f + 1, &sp, &aq);
		if (put_conversion(b, &sp, *f, &aq))
			continue;
		buf_putc(b, '%');
		if (*f)
			buf_putc(b, *f);
		else
			f--;
	}
	va_end(aq);
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

void nh_path_expand(const char *path, char *out, size_t cap)
{
	struct nh_buf b = {out, 0, cap - 1, -1, 0};
	for (const char *s = path; *s; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			buf_printf(&b, "%d", (int)getpid());
			s++;
		} else {
			buf_putc(&b, *s);
		}
	}
	out[NH_MIN(b.len, cap - 1)] = 0;
}
