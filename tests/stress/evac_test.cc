// Evacuation (mcentral.c): a busy program after a mass delete gets its
// sparse spans back while it keeps allocating and freeing, and every
// object keeps its contents through it; a program that grows back into the
// holes the delete left is not evacuated (it would take fresh memory
// instead). Each test in a process of its own (CMakeLists.txt).
#include <gtest/gtest.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <string>
#include <vector>

#include "numaheap.h"
#include "stats_json.h"
#include "stress_util.h"

namespace {

struct Block {
	unsigned char *p;
	size_t n;
	uint64_t id;
};

double now_s()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// `bytes` of 16-512 B blocks, each written with its pattern.
std::vector<Block> fill_heap(size_t bytes, Rng &r, uint64_t &next_id)
{
	std::vector<Block> v;
	for (size_t total = 0; total < bytes;) {
		size_t n = r.range(16, 512);
		auto *p = (unsigned char *)malloc(n);
		EXPECT_NE(p, nullptr);
		if (!p)
			break;
		fill(p, n, next_id);
		v.push_back({p, n, next_id++});
		total += n;
	}
	return v;
}

// Free all but one block in five, at random; returns the survivors.
std::vector<Block> delete_most(std::vector<Block> &v, Rng &r)
{
	std::vector<Block> kept;
	for (auto &b : v) {
		if (r.below(5) == 0) {
			kept.push_back(b);
		} else {
			EXPECT_TRUE(verify(b.p, b.n, b.id));
			free(b.p);
		}
	}
	v.clear();
	return kept;
}

long long in_spans()
{
	std::vector<long long> v = json_numbers(stats(), "nodes", "in_use_bytes");
	long long t = 0;
	for (long long x : v)
		t += x;
	return t;
}

} // namespace

TEST(Evacuation, BusyHeapAfterDeleteGivesSpansBack)
{
	Rng r(21);
	uint64_t id = 1;
	std::vector<Block> v = fill_heap(128u << 20, r, id);
	v = delete_most(v, r);
	long long before = in_spans();
	// Keep working: replace random live blocks (each checked before its
	// free) until the background thread has evacuated and emptied spans
	// and the spans hold a third less, or 20 s.
	long long evacuated = 0, after = before;
	double end = now_s() + 20;
	while (now_s() < end) {
		for (int k = 0; k < 20000; k++) {
			Block &b = v[r.below(v.size())];
			ASSERT_TRUE(verify(b.p, b.n, b.id)) << "block " << b.id << " changed";
			free(b.p);
			b.n = r.range(16, 512);
			b.p = (unsigned char *)malloc(b.n);
			ASSERT_NE(b.p, nullptr);
			b.id = id++;
			fill(b.p, b.n, b.id);
		}
		std::string s = stats();
		evacuated = json_number(s, "scavenger", "evacuated");
		after = in_spans();
		if (evacuated > 0 && after < before * 2 / 3)
			break;
	}
	std::string s = stats();
	printf("in spans %lld -> %lld MiB; evacuations %lld, evacuated %lld, stalls %lld\n", before >> 20, after >> 20,
	       json_number(s, "scavenger", "evacuations"), evacuated, json_number(s, "scavenger", "evac_stalls"));
	EXPECT_GT(evacuated, 0) << s;
	EXPECT_LT(after, before * 2 / 3) << "the sparse spans did not come back: " << s;
	for (auto &b : v) {
		ASSERT_TRUE(verify(b.p, b.n, b.id)) << "block " << b.id << " changed";
		free(b.p);
	}
}

TEST(Evacuation, GrowingBackIsNotEvacuated)
{
	// After the delete the program grows back to the same size: it fills
	// the holes, so nothing is evacuated and the spans grow by little.
	Rng r(22);
	uint64_t id = 1;
	std::vector<Block> v = fill_heap(96u << 20, r, id);
	v = delete_most(v, r);
	long long before = in_spans();
	for (int round = 0; round < 40; round++) {
		std::vector<Block> more = fill_heap(2u << 20, r, id);
		v.insert(v.end(), more.begin(), more.end());
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, nullptr); // the background thread's looks come between
	}
	std::string s = stats();
	long long after = in_spans();
	printf("in spans %lld -> %lld MiB after 80 MiB of growth; evacuations %lld\n", before >> 20, after >> 20,
	       json_number(s, "scavenger", "evacuations"));
	EXPECT_EQ(json_number(s, "scavenger", "evacuations"), 0) << s;
	EXPECT_LT(after, before + (24ll << 20)) << "growing back took fresh spans instead of the holes";
	for (auto &b : v) {
		ASSERT_TRUE(verify(b.p, b.n, b.id)) << "block " << b.id << " changed";
		free(b.p);
	}
}
