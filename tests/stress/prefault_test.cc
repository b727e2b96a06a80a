// Pre-faulting fresh growth (src/prefault.c, mheap.c's PF_FRESH_MIN): a heap
// that keeps growing past 64 MiB has the background thread fault its next
// pages in ahead of it; a smaller one is never given memory it did not ask
// for; and what was faulted in ahead reads as the program expects (calloc
// zero, written objects unchanged). Each test in a process of its own
// (CMakeLists.txt): the 64 MiB count is per process.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "numaheap.h"
#include "stats_json.h"
#include "stress_util.h"

namespace {

struct Block {
	unsigned char *p;
	size_t n;
};

// Allocate about `bytes` of a server's mix (mostly 16 B - 1 KiB, some
// 1-64 KiB), every other block through calloc; a calloc'd block must read
// zero, every block is then written with its pattern. Stops early once
// stop() says so, checked every 16 MiB.
template <class Stop> std::vector<Block> grow(size_t bytes, Rng &r, Stop stop)
{
	std::vector<Block> v;
	size_t total = 0, next_check = 16u << 20;
	while (total < bytes) {
		size_t n = r.below(8) ? r.range(16, 1024) : r.range(1025, 65536);
		bool zeroed = r.below(2);
		auto *p = (unsigned char *)(zeroed ? calloc(1, n) : malloc(n));
		EXPECT_NE(p, nullptr);
		if (!p)
			break;
		if (zeroed && !is_zero(p, n)) {
			ADD_FAILURE() << "calloc(" << n << ") does not read zero at " << total << " bytes of growth";
			free(p);
			break;
		}
		fill(p, n, v.size());
		v.push_back({p, n});
		total += n;
		if (total >= next_check) {
			next_check += 16u << 20;
			if (stop())
				break;
		}
	}
	return v;
}

void check_and_free(std::vector<Block> &v)
{
	for (size_t i = 0; i < v.size(); i++) {
		ASSERT_TRUE(verify(v[i].p, v[i].n, i)) << "block " << i << " of " << v[i].n << " bytes changed";
		free(v[i].p);
	}
}

bool prefault_off()
{
	const char *pf = getenv("NUMAHEAP_PREFAULT");
	return pf && !strcmp(pf, "0");
}

TEST(Prefault, SmallHeapIsNotGivenMemory)
{
	// 48 MiB of growth, no frees: below 64 MiB nothing is faulted in
	// ahead (and nothing was released, so there is no regrowth either).
	Rng r(11);
	std::vector<Block> v = grow(48u << 20, r, [] { return false; });
	usleep(200000); // time for a background thread that would act
	std::string s = stats();
	EXPECT_EQ(json_number(s, "scavenger", "prefault_episodes"), 0);
	EXPECT_EQ(json_number(s, "scavenger", "prefaulted_bytes"), 0)
		<< "a 48 MiB heap was given memory ahead of its growth";
	check_and_free(v);
}

TEST(Prefault, LargeFreshGrowthIsFaultedInAhead)
{
	// Grow until the background thread has faulted something in and
	// timed a whole huge page of it (at most 640 MiB). Whatever this
	// host's fresh memory costs, the thread faults in at least the huge
	// pages it times before deciding, as long as this single-threaded
	// program leaves it a CPU. Both, not just the first: the thread's
	// first run may be a sliver (the rest of a huge page), which it does
	// not time, and its window is as long as the growth it follows, so a
	// program that stopped there could wait for the timed page forever
	// (CI, beside the sanitizer builds: 0 ns after 2 s of waiting).
	Rng r(12);
	bool off = prefault_off();
	auto seen = [&] {
		if (off)
			return false;
		std::string st = stats();
		return json_number(st, "scavenger", "prefaulted_bytes") > 0 &&
		       json_number(st, "scavenger", "prefault_huge_ns") > 0;
	};
	std::vector<Block> v = grow(640u << 20, r, seen);
	std::string s = stats();
	// A loaded machine: the thread may be late.
	for (int i = 0; i < 40 && !off &&
			(json_number(s, "scavenger", "prefaulted_bytes") == 0 ||
			 json_number(s, "scavenger", "prefault_huge_ns") == 0);
	     i++) {
		usleep(50000);
		s = stats();
	}
	if (off) {
		EXPECT_EQ(json_number(s, "scavenger", "prefaulted_bytes"), 0);
	} else {
		EXPECT_GE(json_number(s, "scavenger", "prefault_episodes"), 1);
		EXPECT_GT(json_number(s, "scavenger", "prefaulted_bytes"), 0)
			<< "nothing was faulted in ahead of a heap growing past 64 MiB";
		EXPECT_GT(json_number(s, "scavenger", "prefault_huge_ns"), 0);
	}
	// More growth into what was faulted in ahead: calloc must still read
	// zero there (grow checks), and nothing written before changes.
	std::vector<Block> w = grow(64u << 20, r, [] { return false; });
	check_and_free(v);
	check_and_free(w);
}

// Kilobytes of the process's memory on transparent huge pages (only
// numaheap's arenas ask for them).
long long anon_huge_kb()
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	if (!f)
		return -1;
	char line[256];
	long long kb = -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "AnonHugePages:", 14))
			kb = strtoll(line + 14, nullptr, 10);
	fclose(f);
	return kb;
}

TEST(Prefault, BaseArenasAreMadeHugeOnceGrowthStops)
{
	// Run with NUMAHEAP_THP_ADAPT=base (CMakeLists.txt): every new arena
	// grows on base pages, as where fresh huge pages are slow and the
	// CPUs busy. Once the heap has stopped growing, the background thread
	// collapses the huge pages that are wholly resident: the heap ends on
	// huge pages with its resident memory nearly unchanged (a huge page is
	// collapsed when at most 1/32 of it is not resident, hugepages.c's
	// BASE_MAX_ABSENT, so each collapse faults in 64 KiB at most), and its
	// contents unchanged.
	Rng r(13);
	std::vector<Block> v = grow(160u << 20, r, [] { return false; });
	std::string s = stats();
	ASSERT_GE(json_number(s, "scavenger", "base_arena_bytes"), 128ll << 20)
		<< "the arenas were not put on base pages (NUMAHEAP_THP_ADAPT=base)";
	EXPECT_LT(anon_huge_kb(), 16 << 10) << "the heap grew on huge pages";
	size_t rss0 = rss_bytes();
	long long collapses = 0;
	for (int i = 0, still = 0; i < 150 && (collapses < 48 || still < 10); i++) {
		usleep(100000); // 2 s of no growth, then the thread's pace; until it is done
		long long c = json_number(stats(), "scavenger", "base_collapses");
		still = c == collapses ? still + 1 : 0;
		collapses = c;
	}
	s = stats();
	EXPECT_GE(collapses, 48) << "fewer than 48 of the heap's ~80 huge pages were made whole: " << s;
	EXPECT_EQ(json_number(s, "scavenger", "collapse_failures"), 0);
	EXPECT_GE(anon_huge_kb(), (collapses - 8) * 2048) << "the kernel does not show the collapsed huge pages";
	size_t rss1 = rss_bytes();
	printf("base pages: %lld huge pages made whole, %lld MiB of the process on huge pages, RSS %zu -> %zu MiB\n",
	       collapses, anon_huge_kb() >> 10, rss0 >> 20, rss1 >> 20);
	// The design's bound, plus 1 MiB for the test's own statistics strings.
	size_t allowed = (size_t)collapses * (64u << 10) + (1u << 20);
	EXPECT_LT(rss1, rss0 + allowed) << "collapsing faulted in more than 64 KiB a huge page: RSS " << (rss0 >> 20)
					<< " -> " << (rss1 >> 20) << " MiB for " << collapses << " collapses";
	check_and_free(v);
}

TEST(Prefault, SlowlyGrowingBaseHeapIsCollapsedAsItGoes)
{
	// A heap on base pages that keeps growing, slowly (1 MiB a second,
	// a cache filling up): its huge pages are collapsed while it grows,
	// not only once it stops, which a server of that kind never does.
	Rng r(15);
	std::vector<Block> v = grow(128u << 20, r, [] { return false; });
	ASSERT_GE(json_number(stats(), "scavenger", "base_arena_bytes"), 128ll << 20);
	long long collapses = 0;
	std::vector<std::vector<Block>> more;
	for (int i = 0; i < 80 && collapses < 24; i++) { // at most 8 s
		more.push_back(grow(100u << 10, r, [] { return false; }));
		usleep(100000);
		collapses = json_number(stats(), "scavenger", "base_collapses");
	}
	EXPECT_GE(collapses, 24) << "a heap growing by 1 MiB a second was not collapsed as it grew";
	check_and_free(v);
	for (auto &w : more)
		check_and_free(w);
}

TEST(Prefault, SparseBaseHeapIsLeftToTheScavenger)
{
	// The same heap on base pages, 90% of it freed at random before the
	// heap settles: its huge pages are sparse, the scavenger's to release,
	// and collapsing them would only hold that back (and cost a copy
	// each). Few or none are collapsed, and memory is returned.
	Rng r(14);
	std::vector<Block> v = grow(160u << 20, r, [] { return false; });
	ASSERT_GE(json_number(stats(), "scavenger", "base_arena_bytes"), 128ll << 20);
	for (auto &b : v) {
		if (r.below(10)) {
			free(b.p);
			b.p = nullptr;
		}
	}
	size_t rss0 = rss_bytes();
	sleep(9); // the collapse step's turn (2 s), then the release steps' (5 s, CMakeLists.txt)
	std::string s = stats();
	long long collapses = json_number(s, "scavenger", "base_collapses");
	size_t rss1 = rss_bytes();
	printf("sparse base pages: %lld huge pages made whole, RSS %zu -> %zu MiB\n", collapses, rss0 >> 20,
	       rss1 >> 20);
	EXPECT_LE(collapses, 8) << "sparse huge pages were collapsed: " << s;
	EXPECT_LT(rss1, rss0 - (rss0 >> 3)) << "little memory was returned";
	for (size_t i = 0; i < v.size(); i++) {
		if (!v[i].p)
			continue;
		ASSERT_TRUE(verify(v[i].p, v[i].n, i)) << "block " << i << " changed";
		free(v[i].p);
	}
}

} // namespace
