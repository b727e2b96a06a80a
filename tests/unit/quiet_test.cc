// Dating a program's last malloc (proc.c, proc_count_allocs): the caches'
// slow paths stamp each class's count with the cycle counter, and the
// background thread's idle rules start their delays from the stamps. Run
// with per-thread caches (NUMAHEAP_PERCPU=0, CMakeLists.txt), so that the
// test thread's mallocs and frees all go through one cache.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "shim.h"

namespace {

void Sleep(long ms)
{
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, nullptr);
}

TEST(Quiet, CyclesBecomeTimesInProportionBetweenTwoCounts)
{
	EXPECT_EQ(nht_cycles_time(150, 1000, 100, 2000, 200), 1500u);
	EXPECT_EQ(nht_cycles_time(101, 1000, 100, 2000, 200), 1010u);
	// Before the last count: its time, the latest that is sure.
	EXPECT_EQ(nht_cycles_time(50, 1000, 100, 2000, 200), 1000u);
	// Past this count, or not known: this count's time.
	EXPECT_EQ(nht_cycles_time(250, 1000, 100, 2000, 200), 2000u);
	EXPECT_EQ(nht_cycles_time(UINT64_MAX, 1000, 100, 2000, 200), 2000u);
	// No last count, or clocks that did not move forward: this count's time.
	EXPECT_EQ(nht_cycles_time(150, 0, 0, 2000, 200), 2000u);
	EXPECT_EQ(nht_cycles_time(150, 1000, 200, 2000, 200), 2000u);
	EXPECT_EQ(nht_cycles_time(150, 2000, 100, 2000, 200), 2000u);
	// Counters far along, over seconds: no overflow in the proportion.
	const uint64_t c0 = uint64_t(1) << 62, t0 = uint64_t(1) << 50;
	EXPECT_EQ(nht_cycles_time(c0 + (uint64_t(3) << 40), t0, c0, t0 + (uint64_t(1) << 44), c0 + (uint64_t(1) << 42)),
		  t0 + (uint64_t(3) << 42));
}

TEST(Quiet, MallocsFollowedByFreesAreDatedByTheLastSlowPath)
{
	const size_t n = 6000;
	const unsigned cls = nht_size_class(n);
	std::vector<void *> v(3000);
	nht_count_allocs();
	for (auto &p : v) {
		p = malloc(n);
		ASSERT_NE(p, nullptr);
		memset(p, 1, 64);
	}
	for (auto p : v)
		free(p); // overflows the cache: slow paths after the last malloc
	uint64_t done = nht_nanotime();
	Sleep(50);
	uint64_t at = nht_count_allocs();
	EXPECT_GE(nht_counted_allocs(cls), v.size());
	EXPECT_LE(nht_counted_since(cls), done) << "dated " << (at - nht_counted_since(cls)) / 1000 << " us before the count";
}

TEST(Quiet, AMallocAfterTheLastStampIsNeverDatedBeforeIt)
{
	const size_t n = 6000;
	const unsigned cls = nht_size_class(n);
	std::vector<void *> v(200);
	for (auto &p : v)
		p = malloc(n);
	for (auto p : v)
		free(p);
	nht_count_allocs();
	Sleep(5);
	void *p = malloc(n); // from the cache: no slow path
	ASSERT_NE(p, nullptr);
	uint64_t made = nht_nanotime();
	Sleep(50);
	nht_count_allocs();
	EXPECT_GE(nht_counted_since(cls), made);
	free(p);
}

} // namespace
