/*
 * format.c — numbers for people (format.h).
 */
#include "format.h"

#include <stdio.h>

void fmt_bytes(char *out, size_t cap, unsigned long long v)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	int u = 0;
	double d = (double)v;
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, cap, "%llu B", v);
	else
		snprintf(out, cap, "%.1f %s", d, unit[u]);
}

void fmt_size_exact(char *out, size_t cap, long long v)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	int u = 0;
	while (v != 0 && u < 6 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(out, cap, "%lld %s", v, unit[u]);
	if (v == 0)
		snprintf(out, cap, "0");
}

void fmt_time_exact(char *out, size_t cap, long long ns)
{
	if (ns == 0)
		snprintf(out, cap, "0");
	else if (ns % 1000000000 == 0)
		snprintf(out, cap, "%lld s", ns / 1000000000);
	else if (ns % 1000000 == 0)
		snprintf(out, cap, "%lld ms", ns / 1000000);
	else if (ns % 1000 == 0)
		snprintf(out, cap, "%lld us", ns / 1000);
	else
		snprintf(out, cap, "%lld ns", ns);
}

void fmt_ns(char *out, size_t cap, unsigned long long ns)
{
	if (ns >= 1000000000ull)
		snprintf(out, cap, "%.3f s", ns / 1e9);
	else if (ns >= 1000000ull)
		snprintf(out, cap, "%.1f ms", ns / 1e6);
	else if (ns >= 1000ull)
		snprintf(out, cap, "%.1f us", ns / 1e3);
	else
		snprintf(out, cap, "%llu ns", ns);
}

void fmt_idlist(char *out, size_t cap, const bool *in, int n)
{
	size_t len = 0;
	out[0] = 0;
	for (int i = 0; i < n;) {
		if (!in[i]) {
			i++;
			continue;
		}
		int j = i;
		while (j + 1 < n && in[j + 1])
			j++;
		int w = j == i ? snprintf(out + len, cap - len, "%s%d", len ? "," : "", i)
			       : snprintf(out + len, cap - len, "%s%d-%d", len ? "," : "", i, j);
		if (w < 0 || (size_t)w >= cap - len)
			break;
		len += (size_t)w;
		i = j + 1;
	}
	if (!len)
		snprintf(out, cap, "(none)");
}

void fmt_mask(char *out, size_t cap, uint64_t mask)
{
	bool in[64];
	for (int i = 0; i < 64; i++)
		in[i] = mask >> i & 1;
	fmt_idlist(out, cap, in, 64);
}

