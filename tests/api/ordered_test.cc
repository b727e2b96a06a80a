// NUMAHEAP_ORDERED (src/ordered.c): small objects placed in allocation
// order. Run by ctest with NUMAHEAP_ORDERED=8192 and one cache per thread
// (so that one thread's allocations come from one bump hole); the other
// suites also run in this mode (api.ordered.*, tests/api/CMakeLists.txt).
#include <gtest/gtest.h>

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "api_util.h"
#include "../common/cpu_pin.h"

namespace {

void *opaque_ptr(void *p)
{
	asm volatile("" : "+r"(p));
	return p;
}

// The usable size of a block (its class's size).
size_t usable(void *p) { return malloc_usable_size(p); }

long rss_kib()
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

// The sizes mixed.c draws small and medium blocks from (perf/rss).
size_t next_size(uint64_t &x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x % 10 == 0 ? 1024 + x % 7000 : 16 + x % 500;
}

} // namespace

TEST(Ordered, ObjectsOfDifferentSizesAreCutOneAfterTheOther)
{
	// A fresh run of mixed sizes: each block starts where the one before
	// it ended (its class's size), whatever its class, but where a span
	// ends (band 0: 8 KiB) or the band changes (above 1 KiB).
	std::vector<char *> v;
	uint64_t x = 88172645463325252ull;
	size_t adjacent = 0, pairs = 0;
	char *prev = nullptr;
	for (int i = 0; i < 4000; i++) {
		size_t n = 16 + x % 400;
		next_size(x);
		char *p = (char *)malloc(n);
		ASSERT_NE(p, nullptr);
		memset(p, 1, n);
		if (prev) {
			pairs++;
			adjacent += p == prev + usable(prev);
		}
		prev = p;
		v.push_back(p);
	}
	EXPECT_GT(adjacent, pairs * 9 / 10) << adjacent << " of " << pairs << " consecutive blocks adjacent";
	for (char *p : v)
		free(p);
}

TEST(Ordered, AStreakOfOneSizeIsCutInOrderAndItsLeftoversGoBack)
{
	// A loop allocating one size takes several fresh blocks a slow-path
	// visit (ordered.c, ordered_alloc_n): they still come out one after
	// the other, in address order (a size of a cache line or more: smaller
	// ones are spread over two lines, as mcache_fill spreads a batch).
	// What the streak leaves in the cache (up to 15 blocks never handed
	// out) goes back to its span on a drain (malloc_trim drains this
	// thread's cache) without being taken for a freed block whose mark is
	// missing.
	std::vector<char *> v;
	v.reserve(4000); // no vector growth between the blocks
	size_t adjacent = 0;
	for (int i = 0; i < 2000; i++) {
		char *p = (char *)malloc(64);
		ASSERT_NE(p, nullptr);
		memset(p, 5, 64);
		if (!v.empty())
			adjacent += p == v.back() + 64;
		v.push_back(p);
	}
	// One 8 KiB span holds 128 blocks of 64 B: a jump after each, and
	// where a block of the library's own comes between (the background
	// thread's start, its TLS). Out of order, nearly none would be.
	EXPECT_GE(adjacent, (v.size() - 1) * 95 / 100) << adjacent << " of " << v.size() - 1 << " adjacent";
	malloc_trim(0);
	for (int i = 0; i < 2000; i++) // more of them: the freed leftovers, then fresh
		v.push_back((char *)malloc(64));
	for (char *p : v)
		ASSERT_NE(p, nullptr);
	for (size_t i = 0; i < 2000; i++)
		for (int k = 0; k < 64; k++)
			ASSERT_EQ(v[i][k], 5);
	for (char *p : v)
		free(p);
	malloc_trim(0);
}

TEST(Ordered, SizesReallocAndCallocAreThoseOfTheClasses)
{
	uint64_t x = 1234567;
	std::vector<char *> v;
	for (int i = 0; i < 2000; i++) {
		size_t n = next_size(x);
		char *p = (char *)malloc(n);
		ASSERT_NE(p, nullptr);
		size_t u = usable(p);
		EXPECT_GE(u, n);
		EXPECT_LT(u, n + n / 4 + 32) << n;
		EXPECT_EQ((uintptr_t)p % 16, 0u);
		memset(p, 0xa5, u);
		v.push_back(p);
	}
	// Within the class: in place. Beyond it: moved, contents kept.
	for (char *&p : v) {
		size_t u = usable(p);
		EXPECT_EQ(realloc(p, u), p);
		char *q = (char *)realloc(p, u + 100);
		ASSERT_NE(q, nullptr);
		for (size_t i = 0; i < u; i++)
			ASSERT_EQ((unsigned char)q[i], 0xa5) << i;
		p = q;
	}
	for (char *p : v)
		free(p);
	// The freed blocks come back through calloc: zeroed, all of them.
	for (int i = 0; i < 2000; i++) {
		size_t n = next_size(x);
		char *p = (char *)calloc(1, n);
		ASSERT_NE(p, nullptr);
		size_t u = usable(p);
		for (size_t j = 0; j < u; j++)
			ASSERT_EQ(p[j], 0) << "calloc(" << n << ") byte " << j;
		v[i] = p;
	}
	for (char *p : v)
		free(p);
}

TEST(Ordered, AlignedRequestsAreAlignedWhenTheCachesHoldOrderedBlocks)
{
	// Fill the caches with freed ordered blocks of the classes that
	// alignments of 32 to 512 pick, then ask for aligned blocks.
	std::vector<void *> v;
	for (size_t n = 32; n <= 2048; n += 16)
		for (int i = 0; i < 8; i++)
			v.push_back(malloc(n));
	for (void *p : v)
		free(p);
	for (size_t align = 32; align <= 4096; align *= 2)
		for (size_t n : {size_t(1), align / 2, align, align + 1, size_t(700)}) {
			void *p = aligned_alloc(align, (n + align - 1) / align * align);
			ASSERT_NE(p, nullptr);
			EXPECT_EQ((uintptr_t)p % align, 0u) << "align " << align << " size " << n;
			void *q = nullptr;
			ASSERT_EQ(posix_memalign(&q, align, n), 0);
			EXPECT_EQ((uintptr_t)q % align, 0u) << "align " << align << " size " << n;
			free(p);
			free(q);
		}
}

TEST(OrderedDeathTest, InteriorPointersAndFreesOfFreedBlocksAreReported)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	char *p = (char *)malloc(100);
	char *q = (char *)malloc(3000);
	ASSERT_NE(p, nullptr);
	ASSERT_NE(q, nullptr);
	for (size_t off : {size_t(1), size_t(16), size_t(96)})
		EXPECT_DEATH(free(opaque_ptr(p + off)), "inside an object, not its start") << off;
	EXPECT_DEATH(free(opaque_ptr(q + 128)), "inside an object, not its start");
	EXPECT_DEATH(escape((void *)malloc_usable_size(opaque_ptr(q + 256))), "inside an object, not its start");
	// Freed, and back on its span (the trim drains the caches): a second
	// free is refused at once, as free finds no object there. On one CPU:
	// malloc_trim drains the cache of the CPU it runs on, and a move
	// between the free and the trim (a busy machine) would leave the block
	// cached, where the second free is not seen. 256 bytes: in chunks
	// (NH_TEST_CHUNKS) a block of that class fills its page-table slot
	// alone, and the slot's entry goes with it. A smaller block may share
	// its slot with a live one (p did in a clone at another path, where
	// the test's earlier allocations differ); the entry stays, and a
	// second free takes the fast path, as one after a trim does in class
	// spans.
	char *r = (char *)malloc(256);
	ASSERT_NE(r, nullptr);
	EXPECT_DEATH(
		{
			pin_to_current_cpu();
			free(r);
			malloc_trim(0);
			free(opaque_ptr(r));
		},
		"pointer not in use|double free");
	// Freed twice while cached: caught when the cache hands it out (the
	// same CPU's cache, hence the pin).
	EXPECT_DEATH(
		{
			pin_to_current_cpu();
			free(q);
			free(opaque_ptr(q));
			for (int i = 0; i < 4; i++)
				escape(malloc(3000));
		},
		"double free|freed twice");
	free(p);
	free(q);
	free(r);
}

TEST(Ordered, RunsFreedTogetherGiveTheirPagesBack)
{
	// 64 MiB of small and medium blocks, then nine runs of 32 in ten
	// freed: the survivors of a run sit together, so after a trim the
	// heap keeps 1.66-2.19x what they take (12 runs), span structs and a
	// huge page that stays whole included, and once more than 2.5x in a
	// parallel ctest on a loaded host (by size class, where nearly every
	// page of every class keeps a survivor: 3.3-3.7x).
	long before = rss_kib();
	uint64_t x = 99991;
	std::vector<char *> v;
	size_t total = 0;
	while (total < (64u << 20)) {
		size_t n = next_size(x);
		char *p = (char *)malloc(n);
		ASSERT_NE(p, nullptr);
		memset(p, 3, n);
		v.push_back(p);
		total += n;
	}
	size_t live = 0;
	for (size_t i = 0; i < v.size(); i++) {
		if ((i / 32) % 10 == 0)
			live += usable(v[i]);
		else
			free(v[i]);
	}
	malloc_trim(0);
	long grown = rss_kib() - before;
#ifdef NH_TEST_CHUNKS
	// In chunks (the 256-byte table's build: ordered.c, chunk_alloc), a
	// run's blocks of one class share a chunk with the runs before and
	// after it: 2.5-2.65x here.
	const double bound = 3.0;
#else
	const double bound = 2.8;
#endif
	EXPECT_LT((double)grown * 1024, bound * (double)live)
	    << "RSS grew by " << grown << " KiB for " << live / 1024 << " KiB of survivors";
	for (size_t i = 0; i < v.size(); i += 320)
		for (size_t j = i; j < std::min(i + 32, v.size()); j++)
			free(v[j]);
}

TEST(Ordered, BusyHeapAfterADeleteGivesMemoryBack)
{
	// 64 MiB of small blocks, 80% of them freed at random (survivors on
	// nearly every page), then a steady churn of replacements: the
	// sparsest spans are emptied (no P cuts from them, their frees go
	// straight back) and given back, instead of being refilled forever.
	uint64_t x = 4242;
	auto rnd = [&x] {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		return x;
	};
	std::vector<void *> v;
	size_t total = 0;
	while (total < (64u << 20)) {
		size_t n = 16 + rnd() % 497;
		void *p = malloc(n);
		ASSERT_NE(p, nullptr);
		memset(p, 1, n);
		v.push_back(p);
		total += n;
	}
	std::vector<void *> kept;
	for (void *p : v)
		if (rnd() % 5 == 0)
			kept.push_back(p);
		else
			free(p);
	long after_delete = rss_kib(), rss = after_delete;
	for (int round = 0; round < 100 && rss > after_delete * 6 / 10; round++) {
		for (int k = 0; k < 100000; k++) {
			size_t i = rnd() % kept.size(), n = 16 + rnd() % 497;
			free(kept[i]);
			kept[i] = malloc(n);
			ASSERT_NE(kept[i], nullptr);
			memset(kept[i], 2, n);
		}
		usleep(100000);
		rss = rss_kib();
	}
	EXPECT_LT(rss, after_delete * 6 / 10) << "RSS " << rss << " KiB, " << after_delete << " KiB after the delete";
	for (void *p : kept)
		free(p);
}

TEST(Ordered, ThreadsFreeEachOthersBlocks)
{
	// Producers allocate mixed sizes and write a pattern; consumers on
	// other threads check it and free. Every block goes home (its span's
	// node, its class) through the consumers' caches.
	const int kThreads = 4, kBlocks = 20000;
	std::vector<std::vector<char *>> made(kThreads);
	std::vector<std::thread> t;
	for (int i = 0; i < kThreads; i++)
		t.emplace_back([&, i] {
			uint64_t x = 777 + i;
			for (int k = 0; k < kBlocks; k++) {
				size_t n = next_size(x);
				char *p = (char *)malloc(n);
				memset(p, (char)(k & 0x7f), n);
				made[i].push_back(p);
			}
		});
	for (auto &th : t)
		th.join();
	t.clear();
	for (int i = 0; i < kThreads; i++)
		t.emplace_back([&, i] {
			auto &v = made[(i + 1) % kThreads];
			for (size_t k = 0; k < v.size(); k++) {
				ASSERT_EQ(v[k][0], (char)(k & 0x7f));
				free(v[k]);
			}
		});
	for (auto &th : t)
		th.join();
	malloc_trim(0);
}

TEST(Ordered, AForkedChildAllocatesAndFrees)
{
	std::vector<void *> v;
	for (int i = 0; i < 1000; i++)
		v.push_back(malloc(16 + i % 900));
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		for (void *p : v)
			free(p);
		for (int i = 0; i < 1000; i++)
			free(malloc(16 + i % 3000));
		malloc_trim(0);
		_exit(0);
	}
	int st = 0;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (void *p : v)
		free(p);
}
