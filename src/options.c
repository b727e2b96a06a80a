/*
 * options.c — NUMAHEAP_* environment variables, parsed once at start-up.
 *
 * The table is options.def. Parsing happens inside malloc's initialisation,
 * so it reads `environ` directly (getenv is fine too, but a program may call
 * malloc before libc has set environ up; then /proc/self/environ is read),
 * never allocates, and answers bad input with a one-line warning that names
 * the variable and keeps the default. NUMAHEAP_STRICT=1 makes those fatal.
 */

#include "options.h"
#include "os/os.h"
#include "os/fault.h"
#include "numa.h"
#include "report.h"

#include <string.h>

extern char **environ;

struct opt_desc {
	const char *name;
	enum nh_opt_type type;
	int64_t def, lo, hi;
	const char *choices;
	const char *when;
	const char *doc;
};

#define NH_OPT(name, type, def, lo, hi, choices, when, doc) {#name, type, def, lo, hi, choices, when, doc},
static const struct opt_desc opts[NH_NUM_OPTIONS] = {
#include "options.def"
};
#undef NH_OPT

struct nh_options nh_opt;

static int problems;

static void problem(const char *fmt, const char *a, const char *b)
{
	problems++;
	nh_warn(fmt, a, b);
}

static bool streq_n(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* Lower-case comparison of s against word. */
static bool word_is(const char *s, const char *word)
{
	for (; *s && *word; s++, word++) {
		char c = *s >= 'A' && *s <= 'Z' ? (char)(*s + 32) : *s;
		if (c != *word)
			return false;
	}
	return !*s && !*word;
}

static bool parse_number(const char *s, int64_t *out, const char **rest)
{
	if (*s < '0' || *s > '9')
		return false;
	uint64_t v = 0;
	while (*s >= '0' && *s <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s++ - '0');
	}
	if (v > INT64_MAX)
		return false;
	*out = (int64_t)v;
	*rest = s;
	return true;
}

static bool scale(int64_t *v, int64_t mul)
{
	if (*v > INT64_MAX / mul)
		return false;
	*v *= mul;
	return true;
}

/* 1/yes/on/true or 0/no/off/false, in any case. */
static bool parse_bool(const char *s, int64_t *out)
{
	if (word_is(s, "1") || word_is(s, "yes") || word_is(s, "on") || word_is(s, "true"))
		*out = 1;
	else if (word_is(s, "0") || word_is(s, "no") || word_is(s, "off") || word_is(s, "false"))
		*out = 0;
	else
		return false;
	return true;
}

/* Bytes: a number with an optional k/m/g/t (KiB...), "i" and "b" after it. */
static bool parse_size(const char *s, int64_t *out)
{
	const char *rest;
	if (!parse_number(s, out, &rest))
		return false;
	int64_t mul = 1;
	switch (*rest) {
	case 'k': case 'K': mul = 1ll << 10; rest++; break;
	case 'm': case 'M': mul = 1ll << 20; rest++; break;
	case 'g': case 'G': mul = 1ll << 30; rest++; break;
	case 't': case 'T': mul = 1ll << 40; rest++; break;
	default: break;
	}
	if (mul > 1 && *rest == 'i')
		rest++;
	if (*rest == 'b' || *rest == 'B')
		rest++;
	return !*rest && scale(out, mul);
}

/* A time, in nanoseconds: a number of ms (no unit, or "ms"), s, us or ns. */
static bool parse_time(const char *s, int64_t *out)
{
	const char *rest;
	if (!parse_number(s, out, &rest))
		return false;
	int64_t mul;
	if (!*rest || word_is(rest, "ms"))
		mul = 1000000;
	else if (word_is(rest, "s"))
		mul = 1000000000;
	else if (word_is(rest, "us"))
		mul = 1000;
	else if (word_is(rest, "ns"))
		mul = 1;
	else
		return false;
	return scale(out, mul);
}

/* An enum: its number in [lo, hi], or one of the '|'-separated choices. */
static bool parse_enum(const struct opt_desc *d, const char *s, int64_t *out)
{
	const char *rest;
	if (parse_number(s, out, &rest) && !*rest)
		return *out >= d->lo && *out <= d->hi;
	int idx = 0;
	const char *c = d->choices;
	while (*c) {
		size_t n = 0;
		while (c[n] && c[n] != '|')
			n++;
		if (strlen(s) == n && streq_n(s, c, n)) {
			*out = idx;
			return true;
		}
		c += n + (c[n] == '|');
		idx++;
	}
	/* An enum that grew out of a bool (its first choices off and on)
	 * still takes the bool's spellings. */
	return strncmp(d->choices, "off|on|", 7) == 0 && parse_bool(s, out);
}

/* A node list ("0-1,3") as a bitmap, which may not exceed hi; empty is 0. */
static bool parse_list(const struct opt_desc *d, const char *s, int64_t *out)
{
	uint64_t bits[1];
	if (!*s) {
		*out = 0;
		return true;
	}
	int n = numa_parse_list(s, bits, 64);
	if (n <= 0 || (int64_t)bits[0] > d->hi)
		return false;
	*out = (int64_t)bits[0];
	return true;
}

static bool parse_value(const struct opt_desc *d, const char *s, int64_t *out)
{
	const char *rest;
	switch (d->type) {
	case OPT_BOOL:
		return parse_bool(s, out);
	case OPT_INT:
		return parse_number(s, out, &rest) && !*rest;
	case OPT_SIZE:
		return parse_size(s, out);
	case OPT_TIME:
		return parse_time(s, out);
	case OPT_ENUM:
		return parse_enum(d, s, out);
	case OPT_PATH:
		return true;
	case OPT_LIST:
		return parse_list(d, s, out);
	}
	return false;
}

_Static_assert(NH_NUM_OPTIONS > NH_OPTID_LIB && NH_NUM_OPTIONS > NH_OPTID_STATS_FILE, "path options");

/* Where a path option's value lives (one buffer per OPT_PATH option). */
static char *path_slot(int id)
{
	return id == NH_OPTID_LIB ? nh_opt.lib : id == NH_OPTID_PROF_FILE ? nh_opt.prof_file : nh_opt.stats_file;
}

static void set_option(const char *name, size_t nlen, const char *value)
{
	for (int i = 0; i < NH_NUM_OPTIONS; i++) {
		const struct opt_desc *d = &opts[i];
		if (strlen(d->name) != nlen || !streq_n(d->name, name, nlen))
			continue;
		if (d->type == OPT_PATH) {
			size_t n = strlen(value);
			char *dst = path_slot(i);
			if (n >= NH_PATH_MAX) {
				problem("NUMAHEAP_%s: path too long, ignored%s", d->name, "");
				return;
			}
			memcpy(dst, value, n + 1);
			nh_opt.v[i] = n > 0;
			nh_opt.set[i] = true;
			return;
		}
		int64_t v;
		if (!parse_value(d, value, &v)) {
			problem("NUMAHEAP_%s=%s: malformed value, default kept", d->name, value);
			return;
		}
		if (d->type != OPT_ENUM && d->type != OPT_BOOL && d->type != OPT_LIST && (v < d->lo || v > d->hi)) {
			problem("NUMAHEAP_%s=%s: out of range, default kept", d->name, value);
			return;
		}
		nh_opt.v[i] = v;
		nh_opt.set[i] = true;
		return;
	}
	char tmp[96];
	size_t n = nlen < sizeof tmp - 1 ? nlen : sizeof tmp - 1;
	memcpy(tmp, name, n);
	tmp[n] = 0;
	problem("NUMAHEAP_%s: unknown variable, ignored%s", tmp, "");
}

static void parse_entry(const char *e)
{
	if (!streq_n(e, "NUMAHEAP_", 9))
		return;
#ifdef NH_FAULT_INJECTION
	if (streq_n(e, "NUMAHEAP_FAULT=", 15)) {
		nh_fault_init(e + 15);
		return;
	}
#endif
	const char *name = e + 9;
	const char *eq = strchr(name, '=');
	if (!eq)
		return;
	set_option(name, (size_t)(eq - name), eq + 1);
}

void options_init(void)
{
	memset(&nh_opt, 0, sizeof nh_opt);
	for (int i = 0; i < NH_NUM_OPTIONS; i++)
		nh_opt.v[i] = opts[i].def;
	problems = 0;
	if (environ) {
		for (char **e = environ; *e; e++)
			parse_entry(*e);
	} else {
		/* Too early for libc's environ: read the kernel's copy. */
		static char envbuf[65536];
		ssize_t n = os_read_file("/proc/self/environ", envbuf, sizeof envbuf);
		for (ssize_t i = 0; i < n; i += (ssize_t)strlen(envbuf + i) + 1)
			parse_entry(envbuf + i);
	}
	if (problems && NH_OPTION(STRICT))
		nh_fatal("NUMAHEAP_STRICT=1 and %d bad NUMAHEAP_* variable(s); see the warnings above", problems);
}

static const char *choice_name(const struct opt_desc *d, int64_t idx, char *out, size_t cap)
{
	const char *c = d->choices;
	for (int64_t i = 0; *c; i++) {
		size_t n = 0;
		while (c[n] && c[n] != '|')
			n++;
		if (i == idx) {
			size_t m = n < cap - 1 ? n : cap - 1;
			memcpy(out, c, m);
			out[m] = 0;
			return out;
		}
		c += n + (c[n] == '|');
	}
	return "?";
}

void options_print(int fd)
{
	char mem[1024];
	struct nh_buf b = {mem, 0, sizeof mem, fd, 0};
	for (int i = 0; i < NH_NUM_OPTIONS; i++) {
		const struct opt_desc *d = &opts[i];
		char name[32];
		buf_printf(&b, "numaheap: NUMAHEAP_%s=", d->name);
		switch (d->type) {
		case OPT_ENUM:
			buf_puts(&b, choice_name(d, nh_opt.v[i], name, sizeof name));
			break;
		case OPT_PATH:
			buf_puts(&b, path_slot(i));
			break;
		case OPT_LIST: {
			const char *sep = "";
			for (int bit = 0; bit < 64; bit++)
				if ((uint64_t)nh_opt.v[i] >> bit & 1) {
					buf_printf(&b, "%s%d", sep, bit);
					sep = ",";
				}
			break;
		}
		default:
			buf_printf(&b, "%lld", (long long)nh_opt.v[i]);
		}
		buf_printf(&b, " (%s)\n", nh_opt.set[i] ? "set" : "default");
	}
	buf_flush(&b);
}

/* For the `numaheap env` tool and the docs test: the table, as text. */
void numaheap_options_describe(int fd)
{
	char mem[2048];
	struct nh_buf b = {mem, 0, sizeof mem, fd, 0};
	static const char *types[] = {"bool", "size", "int", "enum", "path", "time", "list"};
	for (int i = 0; i < NH_NUM_OPTIONS; i++) {
		const struct opt_desc *d = &opts[i];
		char name[32];
		buf_printf(&b, "NUMAHEAP_%s\t%s\t", d->name, types[d->type]);
		if (d->type == OPT_ENUM)
			buf_puts(&b, choice_name(d, d->def, name, sizeof name));
		else if (d->type == OPT_PATH || d->type == OPT_LIST)
			buf_puts(&b, "-");
		else
			buf_printf(&b, "%lld", (long long)d->def);
		buf_printf(&b, "\t%s\t%s\t%s\n", d->type == OPT_ENUM ? d->choices : "", d->when, d->doc);
	}
	buf_flush(&b);
}
