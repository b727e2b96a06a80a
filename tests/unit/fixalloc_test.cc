// fixalloc and persistentalloc (src/fixalloc.c): off-heap metadata.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "numaheap.h"
#include "shim.h"

namespace {

bool AllZero(const void *p, size_t n)
{
	const unsigned char *c = static_cast<const unsigned char *>(p);
	return std::all_of(c, c + n, [](unsigned char x) { return x == 0; });
}

struct Fix {
	alignas(64) unsigned char mem[256];
	Fix(size_t size, bool stat = false)
	{
		EXPECT_LE(nht_fixalloc_sizeof(), sizeof mem);
		EXPECT_LE(nht_fixalloc_alignof(), 64u);
		nht_fixalloc_init(mem, size, 0, stat);
	}
	void *Alloc() { return nht_fixalloc_alloc(mem); }
	void Free(void *p) { nht_fixalloc_free(mem, p); }
	size_t size() const { return nht_fixalloc_size(mem); }
	size_t inuse() const { return nht_fixalloc_inuse(mem); }
};

TEST(FixAlloc, SizeRoundsUpTo16)
{
	EXPECT_EQ(Fix(8).size(), 16u);
	EXPECT_EQ(Fix(16).size(), 16u);
	EXPECT_EQ(Fix(40).size(), 48u);
	EXPECT_EQ(Fix(184).size(), 192u);
}

class FixAllocSizes : public ::testing::TestWithParam<size_t> {};

TEST_P(FixAllocSizes, ZeroedDistinctAlignedReused)
{
	const size_t req = GetParam();
	Fix f(req);
	const size_t size = f.size();
	ASSERT_GE(size, req);
	const int n = req > 4096 ? 200 : 2000;
	std::vector<unsigned char *> objs;
	for (int i = 0; i < n; i++) {
		auto *p = static_cast<unsigned char *>(f.Alloc());
		ASSERT_NE(p, nullptr);
		ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u) << "objects are 16-byte aligned";
		ASSERT_TRUE(AllZero(p, size)) << "object " << i << " not zeroed";
		memset(p, 0xa5, size); // writable, all of it
		objs.push_back(p);
	}
	EXPECT_EQ(f.inuse(), n * size);
	// Distinct and non-overlapping.
	std::vector<unsigned char *> sorted = objs;
	std::sort(sorted.begin(), sorted.end());
	for (size_t i = 1; i < sorted.size(); i++)
		ASSERT_GE(sorted[i] - sorted[i - 1], (ptrdiff_t)size);
	// Off the user heap.
	EXPECT_EQ(numaheap_node_of(objs[0]), -1);
	EXPECT_EQ(nht_arena_of(reinterpret_cast<uintptr_t>(objs[0]), nullptr, nullptr), nullptr);
	// The pattern survived: no object overwrote another.
	for (auto *p : objs)
		ASSERT_EQ(p[size - 1], 0xa5);

	// Free every other one; new allocations reuse exactly those, zeroed,
	// most recently freed first.
	std::vector<unsigned char *> freed;
	for (size_t i = 0; i < objs.size(); i += 2) {
		f.Free(objs[i]);
		freed.push_back(objs[i]);
	}
	EXPECT_EQ(f.inuse(), (n - freed.size()) * size);
	for (size_t k = 0; k < freed.size(); k++) {
		auto *p = static_cast<unsigned char *>(f.Alloc());
		ASSERT_EQ(p, freed[freed.size() - 1 - k]);
		ASSERT_TRUE(AllZero(p, size)) << "reused object not zeroed";
	}
	EXPECT_EQ(f.inuse(), n * size);
	// Then fresh memory again.
	auto *q = static_cast<unsigned char *>(f.Alloc());
	EXPECT_EQ(std::find(objs.begin(), objs.end(), q), objs.end());
	EXPECT_TRUE(AllZero(q, size));
}

INSTANTIATE_TEST_SUITE_P(Sizes, FixAllocSizes, ::testing::Values(8, 16, 24, 184, 1000, 4096, 20000));

TEST(FixAlloc, ChargesItsCounter)
{
	Fix f(100, /*stat=*/true);
	size_t before = nht_fixalloc_stat();
	void *a = f.Alloc(), *b = f.Alloc();
	EXPECT_EQ(nht_fixalloc_stat(), before + 2 * f.size());
	f.Free(a);
	EXPECT_EQ(nht_fixalloc_stat(), before + f.size());
	f.Free(b);
	EXPECT_EQ(nht_fixalloc_stat(), before);
	EXPECT_EQ(f.inuse(), 0u);
}

TEST(PersistentAlloc, AlignedZeroedDistinct)
{
	struct Block {
		uintptr_t p;
		size_t n;
	};
	std::vector<Block> blocks;
	for (size_t align : {0, 8, 16, 64, 256, 4096}) {
		for (size_t size : {1, 7, 24, 100, 1000, 5000, 70000, 300000}) {
			SCOPED_TRACE("size " + std::to_string(size) + " align " + std::to_string(align));
			auto *p = static_cast<unsigned char *>(nht_persistentalloc(size, align, 0));
			ASSERT_NE(p, nullptr);
			uintptr_t a = reinterpret_cast<uintptr_t>(p);
			EXPECT_EQ(a % (align ? align : 8), 0u) << "align 0 means 8";
			EXPECT_TRUE(AllZero(p, size));
			memset(p, 0x5a, size);
			EXPECT_EQ(numaheap_node_of(p), -1) << "metadata is off the heap";
			EXPECT_EQ(nht_arena_of(a, nullptr, nullptr), nullptr);
			blocks.push_back({a, size});
		}
	}
	std::sort(blocks.begin(), blocks.end(), [](const Block &x, const Block &y) { return x.p < y.p; });
	for (size_t i = 1; i < blocks.size(); i++)
		EXPECT_GE(blocks[i].p, blocks[i - 1].p + blocks[i - 1].n) << "blocks overlap";
	for (const Block &b : blocks)
		EXPECT_EQ(reinterpret_cast<unsigned char *>(b.p)[b.n - 1], 0x5a);
}

} // namespace
