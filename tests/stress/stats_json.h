// stats_json.h — for the stress suites that watch the allocator work:
// the process's resident memory from the kernel, numaheap's statistics as
// JSON, and a number out of one of its objects.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "numaheap.h"

// Resident memory of this process, from the kernel, in bytes: Rss less
// LazyFree (pages released with MADV_FREE, which the kernel takes back
// whenever it needs them; NUMAHEAP_RELEASE=free leaves them counted in Rss).
inline size_t rss_bytes()
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	if (!f)
		return 0;
	char line[256];
	size_t kb = 0, lazy = 0;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "Rss:", 4))
			kb = strtoull(line + 4, nullptr, 10);
		else if (!strncmp(line, "LazyFree:", 9))
			lazy = strtoull(line + 9, nullptr, 10);
	}
	fclose(f);
	return (kb - (lazy < kb ? lazy : kb)) * 1024;
}

inline std::string stats()
{
	std::string s(1 << 20, '\0');
	size_t n = numaheap_stats_json(&s[0], s.size());
	s.resize(n < s.size() ? n : s.size() - 1);
	return s;
}

// The number under key in the JSON object (or, for an array of objects, its
// first element) named obj: -1 if either is missing.
inline long long json_number(const std::string &json, const char *obj, const char *key)
{
	size_t o = json.find(std::string("\"") + obj + "\":{");
	if (o == std::string::npos)
		o = json.find(std::string("\"") + obj + "\":[");
	if (o == std::string::npos)
		return -1;
	size_t k = json.find(std::string("\"") + key + "\":", o);
	return k == std::string::npos ? -1 : atoll(json.c_str() + k + strlen(key) + 3);
}

// The number under key in each element of the array of flat objects named
// arr, in order (-1 where an element lacks it; empty if there is no such
// array).
inline std::vector<long long> json_numbers(const std::string &json, const char *arr, const char *key)
{
	std::vector<long long> out;
	size_t pos = json.find(std::string("\"") + arr + "\":[");
	if (pos == std::string::npos)
		return out;
	const size_t end = json.find(']', pos);
	const std::string k = std::string("\"") + key + "\":";
	while ((pos = json.find('{', pos)) < end) {
		size_t close = json.find('}', pos), q = json.find(k, pos);
		out.push_back(q < close ? atoll(json.c_str() + q + k.size()) : -1);
		pos = close;
	}
	return out;
}
