// pageAlloc (src/pagealloc.c): pallocSum packing, table-driven cases in the
// style of Go's mpagealloc_test.go (named cases: the chunks grown, the pages
// allocated before, a sequence of requests with their expected results, the
// pages allocated after), scavenged-page accounting, and a randomized test
// against a plain model of the pages.
//
// Every pageAlloc here is private to the test, with a fake base address:
// pageAlloc only keeps metadata about the memory it manages and never touches
// that memory, so nothing is mapped at those addresses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <unistd.h>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "shim.h"

namespace {

constexpr uintptr_t kBase = 0x200000000000ULL; // 32 TiB, aligned to 2^41
constexpr unsigned kShift = 41;		       // a 2 TiB slice, like a node's
constexpr uint64_t kChunkPages = 512;
constexpr uint64_t kPageSize = 8192;
constexpr uint64_t kChunkBytes = kChunkPages * kPageSize;
constexpr uint64_t kArenaChunks = 16; // 64 MiB

TEST(PageAllocConstants, MatchInternalHeader)
{
	EXPECT_EQ(nht_page_size, kPageSize);
	EXPECT_EQ(nht_chunk_pages, kChunkPages);
	EXPECT_EQ(nht_chunk_bytes, kChunkBytes);
	EXPECT_EQ(nht_summary_levels, 5u);
	EXPECT_EQ(nht_sum_limit, uint64_t(1) << 21);
	EXPECT_EQ(nht_arena_bytes, kArenaChunks * kChunkBytes);
}

uintptr_t PageAddr(uint64_t chunk, uint64_t page) { return kBase + chunk * kChunkBytes + page * kPageSize; }

std::string Where(uintptr_t a)
{
	if (!a)
		return "0 (no run)";
	uint64_t pg = (a - kBase) / kPageSize;
	return "chunk " + std::to_string(pg / kChunkPages) + " page " + std::to_string(pg % kChunkPages);
}

// A private pageAlloc, deleted at scope exit.
class PA {
      public:
	PA()
	{
		int err = 0;
		t_ = nht_pa_new(kBase, kShift, &err);
		EXPECT_EQ(err, 0);
	}
	~PA()
	{
		if (t_)
			nht_pa_delete(t_);
	}
	PA(const PA &) = delete;
	PA &operator=(const PA &) = delete;
	nht_pa *operator->() const { return t_; }
	operator nht_pa *() const { return t_; }

      private:
	nht_pa *t_ = nullptr;
};

// ---- pallocSum --------------------------------------------------------------

TEST(PallocSum, PackUnpackRoundTrips)
{
	const unsigned max = (unsigned)nht_sum_limit;
	const unsigned vals[] = {0, 1, 2, 7, 63, 64, 511, 512, 513, 4096, 65535, 1u << 20, max - 2, max - 1};
	for (unsigned s : vals)
		for (unsigned m : vals)
			for (unsigned e : vals) {
				// A consistent summary has start, end <= max.
				if (s > m || e > m)
					continue;
				uint64_t p = nht_sum_pack(s, m, e);
				ASSERT_EQ(nht_sum_start(p), s) << s << "," << m << "," << e;
				ASSERT_EQ(nht_sum_max(p), m) << s << "," << m << "," << e;
				ASSERT_EQ(nht_sum_end(p), e) << s << "," << m << "," << e;
			}
}

TEST(PallocSum, AllFreeSpecialCase)
{
	// max == NH_SUM_MAX needs 22 bits per field: it has its own encoding.
	const unsigned max = (unsigned)nht_sum_limit;
	uint64_t p = nht_sum_pack(max, max, max);
	EXPECT_EQ(p, uint64_t(1) << 63);
	EXPECT_EQ(nht_sum_start(p), max);
	EXPECT_EQ(nht_sum_max(p), max);
	EXPECT_EQ(nht_sum_end(p), max);
	// One page short of all-free is an ordinary summary.
	uint64_t q = nht_sum_pack(max - 1, max - 1, 0);
	EXPECT_NE(q, p);
	EXPECT_EQ(nht_sum_start(q), max - 1);
	EXPECT_EQ(nht_sum_max(q), max - 1);
	EXPECT_EQ(nht_sum_end(q), 0u);
}

TEST(PallocSum, ZeroMeansNoFreePages)
{
	EXPECT_EQ(nht_sum_pack(0, 0, 0), 0u);
	EXPECT_EQ(nht_sum_start(0), 0u);
	EXPECT_EQ(nht_sum_max(0), 0u);
	EXPECT_EQ(nht_sum_end(0), 0u);
}

TEST(PallocSum, DistinctInputsPackDistinctly)
{
	std::map<uint64_t, std::string> seen;
	const unsigned vals[] = {0, 1, 3, 100, 511, 512, 1000, 2097151};
	for (unsigned s : vals)
		for (unsigned m : vals)
			for (unsigned e : vals) {
				if (s > m || e > m)
					continue;
				std::string name = std::to_string(s) + "," + std::to_string(m) + "," + std::to_string(e);
				auto r = seen.emplace(nht_sum_pack(s, m, e), name);
				EXPECT_TRUE(r.second) << name << " packs like " << r.first->second;
			}
}

// ---- table-driven cases -------------------------------------------------------

// A run of pages, by chunk and page in it; page may run past the chunk's end
// (the run then continues into the next chunks).
struct Range {
	uint64_t chunk, page, npages;
};

struct Op {
	enum Kind { kAlloc, kFree, kAllocAt } kind;
	uint64_t npages, align;
	uint64_t chunk, page; // expected result (kAlloc) or the range (kFree, kAllocAt)
	bool ok;	      // kAlloc: expect success; kAllocAt: expected result
};

Op Alloc(uint64_t n, uint64_t chunk, uint64_t page, uint64_t align = 1) { return {Op::kAlloc, n, align, chunk, page, true}; }
Op AllocFail(uint64_t n, uint64_t align = 1) { return {Op::kAlloc, n, align, 0, 0, false}; }
Op Free(uint64_t chunk, uint64_t page, uint64_t n) { return {Op::kFree, n, 0, chunk, page, true}; }
Op AllocAt(uint64_t chunk, uint64_t page, uint64_t n, bool ok) { return {Op::kAllocAt, n, 0, chunk, page, ok}; }

struct Case {
	std::string name;
	std::vector<uint64_t> chunks; // grown (consecutive ones in one call)
	std::vector<Range> before;    // allocated before the ops
	std::vector<Op> ops;
	std::vector<Range> after; // exactly the allocated pages after the ops
};

std::vector<Range> EveryOtherPage(uint64_t chunk, uint64_t first)
{
	std::vector<Range> r;
	for (uint64_t p = first; p < kChunkPages; p += 2)
		r.push_back({chunk, p, 1});
	return r;
}

std::vector<Case> Cases()
{
	std::vector<Case> cs;
	cs.push_back({"AllFreeOnePageAtATime", {0}, {}, {Alloc(1, 0, 0), Alloc(1, 0, 1), Alloc(1, 0, 2)}, {{0, 0, 3}}});
	cs.push_back({"AllFreeRuns", {0}, {}, {Alloc(5, 0, 0), Alloc(64, 0, 5), Alloc(100, 0, 69)}, {{0, 0, 169}}});
	cs.push_back({"FirstFitSkipsSmallHoles",
		      {0},
		      {{0, 0, 10}, {0, 11, 9}, {0, 22, 8}},
		      {Alloc(2, 0, 20), Alloc(1, 0, 10), Alloc(3, 0, 30)},
		      {{0, 0, 33}}});
	cs.push_back({"ExactFitAtChunkEndThenFull", {0}, {{0, 0, 510}}, {Alloc(2, 0, 510), AllocFail(1)}, {{0, 0, 512}}});
	cs.push_back({"NoRunLongEnough",
		      {0},
		      {{0, 0, 100}, {0, 102, 410}},
		      {AllocFail(3), Alloc(2, 0, 100), AllocFail(1)},
		      {{0, 0, 512}}});
	cs.push_back({"StraddleTwoChunks",
		      {0, 1},
		      {{0, 0, 500}, {1, 12, 500}},
		      {AllocFail(25), Alloc(24, 0, 500), AllocFail(1)},
		      {{0, 0, 1024}}});
	cs.push_back({"StraddleFirstRunThatFits",
		      {0, 1, 2},
		      {{0, 0, 500}, {1, 12, 478}},
		      {Alloc(30, 1, 490), Alloc(24, 0, 500)},
		      {{0, 0, 1032}}});
	cs.push_back({"RunOverManyChunks",
		      {0, 1, 2, 3, 4, 5, 6, 7},
		      {},
		      {Alloc(5 * 512 + 3, 0, 0), Alloc(3 * 512 - 3, 5, 3), AllocFail(1)},
		      {{0, 0, 4096}}});
	// Level 3 summaries cover 8 chunks: this run crosses from one to the next.
	cs.push_back({"RunAcrossLevel3Entries",
		      {4, 5, 6, 7, 8, 9, 10, 11},
		      {{4, 0, 3 * 512 + 256}},
		      {Alloc(1280, 7, 256), Alloc(512, 10, 0), Alloc(512, 11, 0), AllocFail(1)},
		      {{4, 0, 4096}}});
	// Level 1 entries cover 512 chunks.
	cs.push_back({"RunAcrossLevel1Entries", {511, 512}, {{511, 0, 511}}, {Alloc(513, 511, 511), AllocFail(1)}, {{511, 0, 1024}}});
	// Root entries cover 4096 chunks (16 GiB).
	cs.push_back({"RunAcrossRootEntries",
		      {4094, 4095, 4096, 4097},
		      {{4094, 0, 612}},
		      {Alloc(900, 4095, 100), AllocFail(1024), Alloc(536, 4096, 488), AllocFail(1)},
		      {{4094, 0, 2048}}});
	cs.push_back({"FarApartRegions", {0, 3000}, {{0, 0, 512}}, {Alloc(1, 3000, 0), AllocFail(600)}, {{0, 0, 512}, {3000, 0, 1}}});
	// Every other page of chunk 0 in use; its last page is free, so the
	// first run of 2 straddles into chunk 1.
	cs.push_back({"FragmentedChunkStraddle",
		      {0, 1},
		      EveryOtherPage(0, 0),
		      {Alloc(2, 0, 511), Alloc(1, 0, 1), Alloc(3, 1, 1)},
		      [] {
			      auto r = EveryOtherPage(0, 0);
			      r.push_back({0, 1, 1});
			      r.push_back({0, 511, 5});
			      return r;
		      }()});
	cs.push_back({"FragmentedChunkSkipped",
		      {0, 1},
		      EveryOtherPage(0, 1),
		      {Alloc(2, 1, 0), Alloc(1, 0, 0)},
		      [] {
			      auto r = EveryOtherPage(0, 1);
			      r.push_back({0, 0, 1});
			      r.push_back({1, 0, 2});
			      return r;
		      }()});
	// An aligned request searches first fit for npages + align - 1 pages and
	// aligns inside the run found.
	cs.push_back({"Alignment",
		      {0},
		      {{0, 0, 1}},
		      {Alloc(1, 0, 8, 8), Alloc(4, 0, 4, 4), AllocFail(2, 512), Alloc(3, 0, 10, 2)},
		      {{0, 0, 1}, {0, 4, 5}, {0, 10, 3}}});
	cs.push_back({"AlignmentAcrossChunks",
		      {0, 1, 2},
		      {{0, 0, 9}},
		      {Alloc(2, 1, 0, 512), AllocFail(512, 512), Alloc(511, 2, 0, 512)},
		      {{0, 0, 9}, {1, 0, 2}, {2, 0, 511}}});
	cs.push_back({"AlignZeroAndOneMeanNone", {0}, {{0, 0, 3}}, {Alloc(1, 0, 3, 0), Alloc(1, 0, 4, 1)}, {{0, 0, 5}}});
	cs.push_back({"BadRequests",
		      {0},
		      {},
		      {AllocFail(0), AllocFail(513), AllocFail(nht_sum_limit + 1), AllocFail(1, 2 * nht_sum_limit),
		       AllocFail(uint64_t(1) << 62), AllocFail(UINT64_MAX, 2)},
		      {}});
	cs.push_back({"FreeCoalesces",
		      {0},
		      {{0, 0, 512}},
		      {Free(0, 10, 10), Free(0, 20, 5), AllocFail(16), Alloc(15, 0, 10), Free(0, 511, 1), Alloc(1, 0, 511)},
		      {{0, 0, 512}}});
	cs.push_back({"FreeAcrossChunks", {0, 1}, {{0, 0, 1024}}, {Free(0, 500, 24), Alloc(24, 0, 500)}, {{0, 0, 1024}}});
	cs.push_back({"FreeBelowSearchAddr",
		      {0},
		      {},
		      {Alloc(100, 0, 0), Alloc(1, 0, 100), Free(0, 50, 1), Alloc(1, 0, 50), Free(0, 10, 1), Free(0, 20, 1),
		       Alloc(1, 0, 10), Alloc(1, 0, 20), Alloc(1, 0, 101)},
		      {{0, 0, 102}}});
	cs.push_back({"AllocAt",
		      {0, 1},
		      {{0, 0, 10}},
		      {AllocAt(0, 10, 5, true), AllocAt(0, 500, 24, true), AllocAt(0, 12, 1, false), AllocAt(0, 9, 2, false),
		       AllocAt(1, 20, 0, false), AllocAt(2, 0, 1, false), AllocAt(1, 500, 13, false), Alloc(1, 0, 15)},
		      {{0, 0, 16}, {0, 500, 24}}});
	cs.push_back({"AllocAtNotGrown", {0, 2}, {}, {AllocAt(0, 500, 24, false), AllocAt(1, 0, 1, false), AllocAt(2, 0, 1, true)}, {{2, 0, 1}}});
	cs.push_back({"AllocAtThenFirstFitAroundIt",
		      {0},
		      {},
		      {AllocAt(0, 3, 2, true), Alloc(4, 0, 5), Alloc(3, 0, 0), Alloc(1, 0, 9)},
		      {{0, 0, 10}}});
	return cs;
}

// The allocation bitmap of each chunk in the table's terms.
std::map<uint64_t, std::vector<bool>> Bitmaps(const std::vector<uint64_t> &chunks, const std::vector<Range> &ranges)
{
	std::map<uint64_t, std::vector<bool>> m;
	for (uint64_t c : chunks)
		m[c].assign(kChunkPages, false);
	for (const Range &r : ranges)
		for (uint64_t i = 0; i < r.npages; i++) {
			uint64_t g = r.chunk * kChunkPages + r.page + i;
			m[g / kChunkPages].resize(kChunkPages);
			m[g / kChunkPages][g % kChunkPages] = true;
		}
	return m;
}

void GrowChunks(nht_pa *pa, const std::vector<uint64_t> &chunks)
{
	std::vector<uint64_t> cs = chunks;
	std::sort(cs.begin(), cs.end());
	for (size_t i = 0; i < cs.size();) {
		size_t j = i + 1;
		while (j < cs.size() && cs[j] == cs[j - 1] + 1)
			j++;
		ASSERT_EQ(nht_pa_grow(pa, PageAddr(cs[i], 0), (j - i) * kChunkBytes), 0) << "grow chunk " << cs[i];
		i = j;
	}
}

class PageAllocTable : public ::testing::TestWithParam<Case> {};

TEST_P(PageAllocTable, Run)
{
	const Case &tc = GetParam();
	PA pa;
	ASSERT_NO_FATAL_FAILURE(GrowChunks(pa, tc.chunks));
	ASSERT_EQ(nht_pa_check(pa), 0);
	// Pages are scavenged until first allocated (the table never scavenges).
	std::set<uint64_t> used;
	auto fresh = [&](uintptr_t a, uint64_t n) {
		size_t k = 0;
		for (uint64_t g = (a - kBase) / kPageSize, i = 0; i < n; i++)
			k += used.insert(g + i).second;
		return k;
	};
	for (const Range &r : tc.before) {
		size_t scav = 0;
		ASSERT_TRUE(nht_pa_alloc_at(pa, PageAddr(r.chunk, r.page), r.npages, &scav));
		ASSERT_EQ(scav, fresh(PageAddr(r.chunk, r.page), r.npages)) << "grown pages start scavenged";
	}
	ASSERT_EQ(nht_pa_check(pa), 0);
	for (size_t k = 0; k < tc.ops.size(); k++) {
		const Op &op = tc.ops[k];
		SCOPED_TRACE("op " + std::to_string(k));
		switch (op.kind) {
		case Op::kAlloc: {
			size_t scav = 12345;
			uintptr_t got = nht_pa_alloc(pa, op.npages, op.align, &scav);
			uintptr_t want = op.ok ? PageAddr(op.chunk, op.page) : 0;
			EXPECT_EQ(got, want) << "alloc(" << op.npages << ", align " << op.align << "): got " << Where(got)
					     << ", want " << Where(want);
			if (op.ok && got == want) {
				EXPECT_EQ(scav, fresh(got, op.npages)) << "pages never allocated are scavenged";
			}
			break;
		}
		case Op::kFree:
			nht_pa_free(pa, PageAddr(op.chunk, op.page), op.npages);
			break;
		case Op::kAllocAt: {
			size_t scav = 0;
			EXPECT_EQ(nht_pa_alloc_at(pa, PageAddr(op.chunk, op.page), op.npages, &scav), op.ok)
				<< "alloc_at(" << Where(PageAddr(op.chunk, op.page)) << ", " << op.npages << ")";
			if (op.ok) {
				EXPECT_EQ(scav, fresh(PageAddr(op.chunk, op.page), op.npages));
			}
			break;
		}
		}
		ASSERT_EQ(nht_pa_check(pa), 0);
	}
	auto want = Bitmaps(tc.chunks, tc.after);
	size_t nalloc = 0;
	for (auto &[ci, bits] : want) {
		uint64_t alloc[8], scav[8];
		ASSERT_TRUE(nht_pa_chunk_bits(pa, ci, alloc, scav)) << "chunk " << ci << " not grown";
		for (uint64_t p = 0; p < kChunkPages; p++) {
			bool got = (alloc[p / 64] >> (p % 64)) & 1;
			EXPECT_EQ(got, bool(bits[p])) << "chunk " << ci << " page " << p;
			nalloc += bits[p];
		}
	}
	EXPECT_EQ(nht_pa_pages_alloc(pa), nalloc);
	EXPECT_EQ(nht_pa_pages_grown(pa), tc.chunks.size() * kChunkPages);
}

INSTANTIATE_TEST_SUITE_P(Cases, PageAllocTable, ::testing::ValuesIn(Cases()),
			 [](const ::testing::TestParamInfo<Case> &i) { return i.param.name; });

// ---- growth, summaries, search_addr --------------------------------------------

TEST(PageAlloc, InitRejectsTooSmallSlices)
{
	int err = 0;
	nht_pa *t = nht_pa_new(kBase, 33, &err); // below chunk + 4 levels of 8
	EXPECT_EQ(t, nullptr);
	EXPECT_EQ(err, -EINVAL);
	t = nht_pa_new(kBase, 56, &err); // root summaries would overflow
	EXPECT_EQ(t, nullptr);
	EXPECT_EQ(err, -EINVAL);
	t = nht_pa_new(kBase, 34, &err); // the smallest: a root of one entry
	ASSERT_NE(t, nullptr);
	EXPECT_EQ(nht_pa_grow(t, kBase, kChunkBytes), 0);
	EXPECT_EQ(nht_pa_alloc(t, 1, 1, nullptr), kBase);
	EXPECT_EQ(nht_pa_check(t), 0);
	nht_pa_delete(t);
}

TEST(PageAlloc, EmptyHasNothing)
{
	PA pa;
	EXPECT_EQ(nht_pa_alloc(pa, 1, 1, nullptr), 0u);
	EXPECT_EQ(nht_pa_pages_grown(pa), 0u);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAlloc, GrowRejectsBadRanges)
{
	PA pa;
	EXPECT_EQ(nht_pa_grow(pa, kBase + kPageSize, kChunkBytes), -EINVAL) << "unaligned address";
	EXPECT_EQ(nht_pa_grow(pa, kBase, kChunkBytes + kPageSize), -EINVAL) << "unaligned size";
	EXPECT_EQ(nht_pa_grow(pa, kBase - kChunkBytes, kChunkBytes), -EINVAL) << "below the slice";
	EXPECT_EQ(nht_pa_grow(pa, kBase + (uintptr_t(1) << kShift), kChunkBytes), -EINVAL) << "above the slice";
	EXPECT_EQ(nht_pa_grow(pa, kBase + (uintptr_t(1) << kShift) - kChunkBytes, 2 * kChunkBytes), -EINVAL)
		<< "straddles the slice's end";
	EXPECT_EQ(nht_pa_pages_grown(pa), 0u);
	// The last chunk of the slice is fine.
	EXPECT_EQ(nht_pa_grow(pa, kBase + (uintptr_t(1) << kShift) - kChunkBytes, kChunkBytes), 0);
	EXPECT_EQ(nht_pa_alloc(pa, 512, 1, nullptr), kBase + (uintptr_t(1) << kShift) - kChunkBytes);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAllocDeathTest, GrowingAChunkTwiceIsFatal)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_DEATH(
		{
			PA pa;
			nht_pa_grow(pa, kBase, 2 * kChunkBytes);
			nht_pa_grow(pa, kBase + kChunkBytes, kChunkBytes);
		},
		"grown twice");
}

TEST(PageAllocDeathTest, FreeingFreePagesIsFatal)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_DEATH(
		{
			PA pa;
			nht_pa_grow(pa, kBase, kChunkBytes);
			nht_pa_alloc(pa, 4, 1, nullptr);
			nht_pa_free(pa, kBase + 2 * kPageSize, 4); // pages 4, 5 are free
		},
		"freeing free pages");
}

// Growing by zero bytes passes the alignment checks; it must not crash or
// change what is free. Run in a child, so a crash fails only this test.
TEST(PageAllocDeathTest, EmptyGrowIsHarmless)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	for (uintptr_t at : {kBase + 16 * kChunkBytes, kBase}) {
		SCOPED_TRACE(Where(at));
		EXPECT_EXIT(
			{
				PA pa;
				int r = nht_pa_grow(pa, at, 0);
				int check = nht_pa_check(pa);
				uintptr_t got = nht_pa_alloc(pa, 1, 1, nullptr);
				fprintf(stderr, "grow(%#lx, 0) = %d; pages_grown %zu, check %d, alloc(1) %#lx\n",
					(unsigned long)at, r, nht_pa_pages_grown(pa), check, (unsigned long)got);
				bool ok = (r == 0 || r == -EINVAL) && nht_pa_pages_grown(pa) == 0 && check == 0 && got == 0;
				_exit(ok ? 0 : 1);
			},
			::testing::ExitedWithCode(0), "");
	}
}

TEST(PageAlloc, GrowingBelowLowersSearchAddr)
{
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, PageAddr(100, 0), kChunkBytes), 0);
	EXPECT_EQ(nht_pa_alloc(pa, 1, 1, nullptr), PageAddr(100, 0));
	ASSERT_EQ(nht_pa_grow(pa, PageAddr(50, 0), kChunkBytes), 0);
	EXPECT_LE(nht_pa_search_addr(pa), PageAddr(50, 0));
	EXPECT_EQ(nht_pa_alloc(pa, 1, 1, nullptr), PageAddr(50, 0)) << "first fit takes the lower region";
	ASSERT_EQ(nht_pa_grow(pa, PageAddr(200, 0), kChunkBytes), 0);
	EXPECT_EQ(nht_pa_grown_end(pa), PageAddr(201, 0));
	EXPECT_EQ(nht_pa_alloc(pa, 512, 1, nullptr), PageAddr(200, 0)) << "only the new chunk has 512 free pages";
	EXPECT_EQ(nht_pa_alloc(pa, 1, 1, nullptr), PageAddr(50, 1));
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAlloc, SearchAddrTracksLowestFreePage)
{
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, 2 * kChunkBytes), 0);
	EXPECT_EQ(nht_pa_search_addr(pa), kBase);
	for (int i = 0; i < 600; i++)
		ASSERT_EQ(nht_pa_alloc(pa, 1, 1, nullptr), PageAddr(0, i));
	// Packed from the bottom with nothing skipped: the bound is exact.
	EXPECT_EQ(nht_pa_search_addr(pa), PageAddr(0, 600));
	nht_pa_free(pa, PageAddr(0, 300), 1);
	EXPECT_LE(nht_pa_search_addr(pa), PageAddr(0, 300)) << "a free below the bound lowers it";
	EXPECT_EQ(nht_pa_check(pa), 0);
	EXPECT_EQ(nht_pa_alloc(pa, 2, 1, nullptr), PageAddr(0, 600)) << "the hole at 300 is too small";
	EXPECT_LE(nht_pa_search_addr(pa), PageAddr(0, 300)) << "the hole at 300 is still free";
	EXPECT_EQ(nht_pa_alloc(pa, 1, 1, nullptr), PageAddr(0, 300));
	EXPECT_EQ(nht_pa_check(pa), 0);
	// Fill everything: search_addr may pass the end; nothing is found.
	while (nht_pa_alloc(pa, 1, 1, nullptr))
		;
	EXPECT_EQ(nht_pa_pages_alloc(pa), 2 * kChunkPages);
	EXPECT_EQ(nht_pa_check(pa), 0);
	nht_pa_free(pa, PageAddr(1, 511), 1);
	EXPECT_EQ(nht_pa_alloc(pa, 1, 1, nullptr), PageAddr(1, 511));
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAlloc, SummariesDescribeTheBitmaps)
{
	PA pa;
	const unsigned leaf = nht_summary_levels - 1, max = (unsigned)nht_sum_limit;
	ASSERT_EQ(nht_pa_grow(pa, kBase, kChunkBytes), 0);
	uint64_t s = nht_pa_summary(pa, leaf, 0);
	EXPECT_EQ(nht_sum_start(s), 512u);
	EXPECT_EQ(nht_sum_max(s), 512u);
	EXPECT_EQ(nht_sum_end(s), 512u);
	EXPECT_EQ(nht_pa_summary(pa, leaf, 1), 0u) << "never-grown chunks have no free pages";
	ASSERT_TRUE(nht_pa_alloc_at(pa, PageAddr(0, 10), 5, nullptr));
	s = nht_pa_summary(pa, leaf, 0);
	EXPECT_EQ(nht_sum_start(s), 10u);
	EXPECT_EQ(nht_sum_max(s), 497u);
	EXPECT_EQ(nht_sum_end(s), 497u);
	// Every level above sums 8 entries; chunk 1.. are not grown, so the
	// region ends allocated at every level up to the root.
	for (int l = (int)leaf - 1; l >= 0; l--) {
		s = nht_pa_summary(pa, l, 0);
		EXPECT_EQ(nht_sum_start(s), 10u) << "level " << l;
		EXPECT_EQ(nht_sum_max(s), 497u) << "level " << l;
		EXPECT_EQ(nht_sum_end(s), 0u) << "level " << l;
	}
	// A whole root entry grown and free is the all-free summary.
	ASSERT_EQ(nht_pa_grow(pa, PageAddr(4096, 0), 4096 * kChunkBytes), 0);
	s = nht_pa_summary(pa, 0, 1);
	EXPECT_EQ(s, nht_sum_pack(max, max, max));
	EXPECT_EQ(nht_pa_check(pa), 0);
	EXPECT_EQ(nht_pa_alloc(pa, max, 1, nullptr), PageAddr(4096, 0)) << "a root entry's worth of pages";
	EXPECT_EQ(nht_pa_summary(pa, 0, 1), 0u);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

// ---- scavenged pages -------------------------------------------------------------

bool PageScavenged(nht_pa *pa, uintptr_t addr)
{
	uint64_t alloc[8], scav[8];
	uint64_t g = (addr - kBase) / kPageSize;
	if (!nht_pa_chunk_bits(pa, g / kChunkPages, alloc, scav))
		return false;
	uint64_t p = g % kChunkPages;
	return (scav[p / 64] >> (p % 64)) & 1;
}

TEST(PageAllocScavenged, GrownMemoryIsScavenged)
{
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, 64 << 20), 0);
	EXPECT_EQ(nht_pa_pages_grown(pa), 8192u);
	EXPECT_EQ(nht_pa_pages_scav(pa), 8192u);
	EXPECT_EQ(nht_pa_pages_alloc(pa), 0u);
	EXPECT_TRUE(PageScavenged(pa, kBase));
	EXPECT_TRUE(PageScavenged(pa, kBase + (64 << 20) - kPageSize));
}

TEST(PageAllocScavenged, AllocationClearsAndReportsScavengedPages)
{
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, 64 << 20), 0);
	size_t scav = 0;
	ASSERT_EQ(nht_pa_alloc(pa, 10, 1, &scav), kBase);
	EXPECT_EQ(scav, 10u);
	EXPECT_EQ(nht_pa_pages_scav(pa), 8182u);
	EXPECT_FALSE(PageScavenged(pa, kBase));
	nht_pa_free(pa, kBase, 10);
	EXPECT_EQ(nht_pa_pages_scav(pa), 8182u) << "a plain free leaves pages unscavenged";
	EXPECT_FALSE(PageScavenged(pa, kBase + 9 * kPageSize));
	ASSERT_EQ(nht_pa_alloc(pa, 20, 1, &scav), kBase);
	EXPECT_EQ(scav, 10u) << "10 pages were in use before, 10 are fresh";
	EXPECT_EQ(nht_pa_pages_scav(pa), 8172u);
	nht_pa_free(pa, kBase, 20);

	// mark_scavenged: only free, unscavenged pages change.
	ASSERT_TRUE(nht_pa_alloc_at(pa, PageAddr(0, 0), 2, &scav));
	EXPECT_EQ(scav, 0u);
	nht_pa_mark_scavenged(pa, kBase, 5); // pages 0,1 allocated; 2,3,4 free
	EXPECT_EQ(nht_pa_pages_scav(pa), 8175u);
	EXPECT_FALSE(PageScavenged(pa, PageAddr(0, 1)));
	EXPECT_TRUE(PageScavenged(pa, PageAddr(0, 2)));
	nht_pa_mark_scavenged(pa, kBase, 5); // again: nothing new
	EXPECT_EQ(nht_pa_pages_scav(pa), 8175u);
	ASSERT_EQ(nht_pa_check(pa), 0);
	ASSERT_EQ(nht_pa_alloc(pa, 10, 1, &scav), PageAddr(0, 2));
	EXPECT_EQ(scav, 3u + 0u + 0u) << "pages 2-4 scavenged, 5-11 used before and not";
	EXPECT_EQ(nht_pa_check(pa), 0);

	// alloc_at reports scavenged pages too.
	ASSERT_TRUE(nht_pa_alloc_at(pa, PageAddr(3, 100), 600, &scav));
	EXPECT_EQ(scav, 600u);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAllocScavenged, TakeUnscavengedHighestRunsFirst)
{
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, 2 * kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 1024, nullptr)); // every page in use, none scavenged
	nht_pa_free(pa, PageAddr(0, 10), 10);
	nht_pa_free(pa, PageAddr(0, 100), 50);
	nht_pa_free(pa, PageAddr(1, 0), 30);
	ASSERT_EQ(nht_pa_pages_scav(pa), 0u);

	uintptr_t limit = nht_pa_grown_end(pa);
	size_t n = 0;
	const size_t kAny = SIZE_MAX;
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, kAny, 1, &n), PageAddr(1, 0));
	EXPECT_EQ(n, 30u);
	EXPECT_EQ(limit, PageAddr(1, 0));
	EXPECT_EQ(nht_pa_check(pa), 0);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, kAny, 1, &n), PageAddr(0, 100));
	EXPECT_EQ(n, 50u);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, kAny, 1, &n), PageAddr(0, 10));
	EXPECT_EQ(n, 10u);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, kAny, 1, &n), 0u);
	EXPECT_EQ(limit, kBase);
	EXPECT_EQ(nht_pa_check(pa), 0);
	EXPECT_EQ(nht_pa_alloc(pa, 1, 1, nullptr), 0u) << "runs being scavenged are allocated";

	nht_pa_free_scavenged(pa, PageAddr(1, 0), 30);
	nht_pa_free_scavenged(pa, PageAddr(0, 100), 50);
	nht_pa_free_scavenged(pa, PageAddr(0, 10), 10);
	EXPECT_EQ(nht_pa_pages_scav(pa), 90u);
	EXPECT_EQ(nht_pa_pages_alloc(pa), 1024u - 90u);
	EXPECT_TRUE(PageScavenged(pa, PageAddr(0, 149)));
	EXPECT_EQ(nht_pa_check(pa), 0);
	limit = nht_pa_grown_end(pa);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, kAny, 1, &n), 0u) << "everything free is scavenged";
	size_t scav = 0;
	EXPECT_EQ(nht_pa_alloc(pa, 50, 1, &scav), PageAddr(0, 100));
	EXPECT_EQ(scav, 50u);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAllocScavenged, TakeUnscavengedLimits)
{
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 512, nullptr));
	nht_pa_free(pa, PageAddr(0, 10), 10);
	nht_pa_free(pa, PageAddr(0, 100), 50);
	size_t n = 0;

	// min_pages skips short runs.
	uintptr_t limit = nht_pa_grown_end(pa);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 11, SIZE_MAX, 1, &n), PageAddr(0, 100));
	EXPECT_EQ(n, 50u);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 11, SIZE_MAX, 1, &n), 0u);
	nht_pa_free(pa, PageAddr(0, 100), 50);

	// max_pages takes the top of a run, and the rest on the next call.
	limit = nht_pa_grown_end(pa);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, 16, 1, &n), PageAddr(0, 134));
	EXPECT_EQ(n, 16u);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, 16, 1, &n), PageAddr(0, 118));
	EXPECT_EQ(n, 16u);
	nht_pa_free(pa, PageAddr(0, 118), 32);

	// align_pages trims the run to aligned boundaries: [100,150) -> [104,144).
	limit = nht_pa_grown_end(pa);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, SIZE_MAX, 8, &n), PageAddr(0, 104));
	EXPECT_EQ(n, 40u);
	// Left: [100,104), [144,150), [10,20): none holds an aligned 8 pages.
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, SIZE_MAX, 8, &n), 0u);
	EXPECT_EQ(limit, kBase);
	nht_pa_free(pa, PageAddr(0, 104), 40);

	// The limit: only pages below it.
	limit = PageAddr(0, 120);
	EXPECT_EQ(nht_pa_take_unscavenged(pa, &limit, 1, SIZE_MAX, 1, &n), PageAddr(0, 100));
	EXPECT_EQ(n, 20u);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAllocScavenged, SparsePassSkipsDenseHugePages)
{
	// Chunk 0 holds two huge pages of 256 pages. The lower one keeps 100
	// pages allocated (dense); the upper one only [300,316) (sparse). The
	// free run [100,300) crosses the edge between them.
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 512, nullptr));
	nht_pa_free(pa, PageAddr(0, 100), 200);
	nht_pa_free(pa, PageAddr(0, 316), 196);
	size_t n = 0;
	uintptr_t limit = nht_pa_grown_end(pa), hp = 0;
	// The first run found in the upper huge page judges it (16 allocated);
	// the pages taken for release do not count against its next runs.
	EXPECT_EQ(nht_pa_take_sparse(pa, &limit, 32, &hp, &n), PageAddr(0, 316));
	EXPECT_EQ(n, 196u);
	// The crossing run is cut at the huge page's edge...
	EXPECT_EQ(nht_pa_take_sparse(pa, &limit, 32, &hp, &n), PageAddr(0, 256));
	EXPECT_EQ(n, 44u);
	// ...and the dense huge page below gives nothing.
	EXPECT_EQ(nht_pa_take_sparse(pa, &limit, 32, &hp, &n), 0u);
	EXPECT_EQ(limit, kBase);
	// Without the filter the dense one's run is taken too.
	limit = PageAddr(0, 256);
	hp = 0;
	EXPECT_EQ(nht_pa_take_sparse(pa, &limit, 0, &hp, &n), PageAddr(0, 100));
	EXPECT_EQ(n, 156u);
	nht_pa_free(pa, PageAddr(0, 100), 156);
	nht_pa_free(pa, PageAddr(0, 256), 44);
	nht_pa_free(pa, PageAddr(0, 316), 196);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

// ---- the subrelease and the collapse (pagescav.c) -----------------------------

TEST(PageAllocSubrelease, AllocationsCountAsUseWhenAsked)
{
	// Two chunks, fully allocated at t=10. Then a free in each (t=100 in
	// chunk 0, t=200 in chunk 1), and at t=300 a span taken from chunk 0.
	// Whole huge pages and sparse ones wait only for frees; the subrelease
	// (allocs_too) also leaves the chunk a span was just carved from.
	PA pa;
	nht_pa_use_fake_clock(pa);
	nht_set_fake_now(10);
	ASSERT_EQ(nht_pa_grow(pa, kBase, 2 * kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 1024, nullptr));
	nht_set_fake_now(100);
	nht_pa_free(pa, PageAddr(0, 10), 10);
	nht_set_fake_now(200);
	nht_pa_free(pa, PageAddr(1, 10), 10);
	nht_set_fake_now(300);
	EXPECT_EQ(nht_pa_alloc(pa, 5, 1, nullptr), PageAddr(0, 10));

	uint64_t tick = 0;
	EXPECT_FALSE(nht_pa_chunk_idle(pa, PageAddr(0, 0), 250, &tick));
	EXPECT_EQ(tick, 300u);
	EXPECT_TRUE(nht_pa_chunk_idle(pa, PageAddr(1, 0), 250, &tick));
	EXPECT_EQ(tick, 200u);

	size_t n = 0;
	uint64_t next = 0;
	nht_scav_q frees_only = {1, 1, 250, false, 0};
	uintptr_t limit = nht_pa_grown_end(pa);
	EXPECT_EQ(nht_pa_take_query(pa, &frees_only, &limit, &next, &n), PageAddr(1, 10));
	EXPECT_EQ(n, 10u);
	EXPECT_EQ(nht_pa_take_query(pa, &frees_only, &limit, &next, &n), PageAddr(0, 15));
	EXPECT_EQ(n, 5u);
	EXPECT_EQ(next, 0u) << "no chunk was skipped";
	nht_pa_free_scavenged(pa, PageAddr(1, 10), 10);
	nht_pa_free(pa, PageAddr(0, 15), 5);

	// Chunk 1's run is released now; chunk 0's is freed back at t=300.
	// Asked at idle_before 350, allocs counting: chunk 1 has nothing left
	// to release, chunk 0 was last used at 300 < 350: its run is taken.
	nht_scav_q sub = {1, 1, 350, true, 0};
	limit = nht_pa_grown_end(pa);
	next = 0;
	EXPECT_EQ(nht_pa_take_query(pa, &sub, &limit, &next, &n), PageAddr(0, 15));
	nht_pa_free(pa, PageAddr(0, 15), 5);
	// At idle_before 250 chunk 0 is busy (span at 300): skipped, and the
	// query says when it turns idle.
	sub.idle_before = 250;
	limit = nht_pa_grown_end(pa);
	next = 0;
	EXPECT_EQ(nht_pa_take_query(pa, &sub, &limit, &next, &n), 0u);
	EXPECT_EQ(next, 300u);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAllocSubrelease, RoundsTakeSparserHugePagesFirst)
{
	// Huge page 0 of chunk 0 keeps 200 pages allocated, huge page 1 keeps
	// 50; both have free runs. A round at 64 takes only huge page 1's; the
	// round at 255 takes huge page 0's too.
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 512, nullptr));
	nht_pa_free(pa, PageAddr(0, 200), 56);
	nht_pa_free(pa, PageAddr(0, 306), 206);
	size_t n = 0;
	uint64_t next = 0;
	nht_scav_q r64 = {1, 1, 0, false, 64};
	uintptr_t limit = nht_pa_grown_end(pa);
	EXPECT_EQ(nht_pa_take_query(pa, &r64, &limit, &next, &n), PageAddr(0, 306));
	EXPECT_EQ(n, 206u);
	EXPECT_EQ(nht_pa_take_query(pa, &r64, &limit, &next, &n), 0u) << "huge page 0 is too dense for this round";
	nht_scav_q r255 = {1, 1, 0, false, 255};
	limit = nht_pa_grown_end(pa);
	EXPECT_EQ(nht_pa_take_query(pa, &r255, &limit, &next, &n), PageAddr(0, 200));
	EXPECT_EQ(n, 56u);
	nht_pa_free(pa, PageAddr(0, 306), 206);
	nht_pa_free(pa, PageAddr(0, 200), 56);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAllocSubrelease, PartialReleasesBreakHugePages)
{
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 512, nullptr));
	uintptr_t out[4];
	// Inside huge page 0: newly broken.
	ASSERT_EQ(nht_pa_note_broken(pa, PageAddr(0, 10), 10 * kPageSize, out, 4), 1u);
	EXPECT_EQ(out[0], PageAddr(0, 0));
	EXPECT_EQ(nht_pa_broken(pa), 1u);
	// Again: broken already, not reported.
	EXPECT_EQ(nht_pa_note_broken(pa, PageAddr(0, 30), kPageSize, out, 4), 0u);
	// All of huge page 1: released whole, not split.
	EXPECT_EQ(nht_pa_note_broken(pa, PageAddr(0, 256), 256 * kPageSize, out, 4), 0u);
	EXPECT_EQ(nht_pa_broken(pa), 1u);
	// A run across the edge splits huge page 1 (huge page 0 was already).
	ASSERT_EQ(nht_pa_note_broken(pa, PageAddr(0, 250), 12 * kPageSize, out, 4), 1u);
	EXPECT_EQ(out[0], PageAddr(0, 256));
	EXPECT_EQ(nht_pa_broken(pa), 2u);
	// A piece of an OS page inside a span (4 KiB): still splits.
	PA pb;
	ASSERT_EQ(nht_pa_grow(pb, kBase, kChunkBytes), 0);
	EXPECT_EQ(nht_pa_note_broken(pb, PageAddr(0, 3) + 4096, 4096, out, 4), 1u);
	EXPECT_EQ(nht_pa_check(pa), 0);
	EXPECT_EQ(nht_pa_check(pb), 0);
}

TEST(PageAllocSubrelease, CollapseTakesHugePagesGrownBackInto)
{
	// Both huge pages of a chunk broken. Huge page 0 still has 100 pages
	// released (the program did not grow back into it); huge page 1 has 4
	// (it did, nearly all).
	PA pa;
	nht_pa_use_fake_clock(pa);
	nht_set_fake_now(10);
	ASSERT_EQ(nht_pa_grow(pa, kBase, kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 512, nullptr));
	uintptr_t out[4];
	ASSERT_EQ(nht_pa_note_broken(pa, PageAddr(0, 0), 100 * kPageSize, out, 4), 1u);
	ASSERT_EQ(nht_pa_note_broken(pa, PageAddr(0, 300), 4 * kPageSize, out, 4), 1u);
	nht_pa_free_scavenged(pa, PageAddr(0, 0), 100);
	nht_pa_free_scavenged(pa, PageAddr(0, 300), 4);
	ASSERT_EQ(nht_pa_pages_scav(pa), 104u);

	uintptr_t cursor = UINTPTR_MAX;
	unsigned nscav = 0;
	EXPECT_EQ(nht_pa_next_collapse(pa, &cursor, kBase, 8, 128, &nscav), PageAddr(0, 256));
	EXPECT_EQ(nscav, 4u);
	EXPECT_EQ(nht_pa_broken(pa), 2u) << "looking changes nothing";
	// Below it: huge page 0 has too much released still.
	EXPECT_EQ(nht_pa_next_collapse(pa, &cursor, kBase, 8, 128, &nscav), 0u);
	// Nor with more released pages allowed, if 200 must be allocated: 156.
	cursor = PageAddr(0, 256);
	EXPECT_EQ(nht_pa_next_collapse(pa, &cursor, kBase, 100, 200, &nscav), 0u);

	nht_set_fake_now(1000);
	nht_pa_collapse_begin(pa, PageAddr(0, 256), 5000);
	EXPECT_EQ(nht_pa_broken(pa), 1u);
	EXPECT_EQ(nht_pa_pages_scav(pa), 100u) << "its released pages are filled in by the collapse";
	EXPECT_FALSE(PageScavenged(pa, PageAddr(0, 301)));
	uint64_t tick = 0;
	EXPECT_FALSE(nht_pa_chunk_idle(pa, PageAddr(0, 0), 4000, &tick)) << "held as used until 5000";
	EXPECT_EQ(tick, 5000u);
	// Nothing left to collapse but huge page 0, which still does not qualify.
	cursor = UINTPTR_MAX;
	EXPECT_EQ(nht_pa_next_collapse(pa, &cursor, kBase, 8, 128, &nscav), 0u);
	// With a floor above it, it is not even looked at.
	cursor = UINTPTR_MAX;
	EXPECT_EQ(nht_pa_next_collapse(pa, &cursor, PageAddr(0, 256), 256, 0, &nscav), 0u);
	cursor = UINTPTR_MAX;
	EXPECT_EQ(nht_pa_next_collapse(pa, &cursor, kBase, 256, 0, &nscav), PageAddr(0, 0));
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAllocScavenged, UnscavengeLowFillsTheWindowFromTheBottom)
{
	// Two chunks, fresh (all scavenged), then: [0,10) allocated, [10,20)
	// released, [20,40) free and resident, [40,600) released (across the
	// chunk edge), the rest allocated.
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, 2 * kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 1024, nullptr));
	nht_pa_free_scavenged(pa, PageAddr(0, 10), 10);
	nht_pa_free(pa, PageAddr(0, 20), 20);
	nht_pa_free_scavenged(pa, PageAddr(0, 40), 560);
	ASSERT_EQ(nht_pa_search_addr(pa), PageAddr(0, 10));
	ASSERT_EQ(nht_pa_pages_scav(pa), 570u);
	uintptr_t base[16];
	size_t bytes[16];
	// A window of 100 free pages: 10 released, 20 resident, 70 released.
	ASSERT_EQ(nht_pa_unscavenge_low(pa, 100, base, bytes, 16), 2u);
	EXPECT_EQ(base[0], PageAddr(0, 10));
	EXPECT_EQ(bytes[0], 10 * kPageSize);
	EXPECT_EQ(base[1], PageAddr(0, 40));
	EXPECT_EQ(bytes[1], 70 * kPageSize);
	EXPECT_EQ(nht_pa_pages_scav(pa), 490u);
	// The same window again: resident now, nothing to do.
	EXPECT_EQ(nht_pa_unscavenge_low(pa, 100, base, bytes, 16), 0u);
	// A larger one takes the rest as one run, across the chunk edge, and
	// stops at the end of the grown memory.
	ASSERT_EQ(nht_pa_unscavenge_low(pa, 5000, base, bytes, 16), 1u);
	EXPECT_EQ(base[0], PageAddr(0, 110));
	EXPECT_EQ(bytes[0], 490 * kPageSize);
	EXPECT_EQ(nht_pa_pages_scav(pa), 0u);
	// Nothing was allocated: the pages are free, no longer scavenged.
	EXPECT_EQ(nht_pa_pages_alloc(pa), 1024u - 590u);
	uint64_t alloc[8], scav[8];
	ASSERT_TRUE(nht_pa_chunk_bits(pa, 0, alloc, scav));
	for (int w = 0; w < 8; w++)
		EXPECT_EQ(scav[w], 0u) << "word " << w;
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAllocScavenged, UnscavengeLowStopsWhenTheRunsAreFull)
{
	// Released runs of 2 pages with a page allocated between them: one
	// run per 3 pages; with room for 2 runs, the third is left alone.
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 512, nullptr));
	for (unsigned p = 0; p < 30; p += 3)
		nht_pa_free_scavenged(pa, PageAddr(0, p), 2);
	uintptr_t base[16];
	size_t bytes[16];
	ASSERT_EQ(nht_pa_unscavenge_low(pa, 512, base, bytes, 2), 2u);
	EXPECT_EQ(base[0], PageAddr(0, 0));
	EXPECT_EQ(base[1], PageAddr(0, 3));
	EXPECT_EQ(bytes[1], 2 * kPageSize);
	EXPECT_EQ(nht_pa_pages_scav(pa), 16u);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

TEST(PageAllocScavenged, UnscavengeLowGoesAheadOfTheProgramAHugePageAtATime)
{
	// A whole released chunk (two huge pages of 256 pages). The program is
	// at page 10: the first call leaves pages 0-9 to it (counted in the
	// window) and takes the rest of the first huge page; it stops at the
	// second, since one page was asked for and the next starts a huge page.
	PA pa;
	ASSERT_EQ(nht_pa_grow(pa, kBase, kChunkBytes), 0);
	ASSERT_TRUE(nht_pa_alloc_at(pa, kBase, 512, nullptr));
	nht_pa_free_scavenged(pa, PageAddr(0, 0), 512);
	uintptr_t base[16];
	size_t bytes[16];
	ASSERT_EQ(nht_pa_unscavenge_from(pa, PageAddr(0, 10), 1000, 1, base, bytes, 16), 1u);
	EXPECT_EQ(base[0], PageAddr(0, 10));
	EXPECT_EQ(bytes[0], 246 * kPageSize);
	EXPECT_EQ(nht_pa_pages_scav(pa), 266u);
	// A window that ends before the pages from on: nothing taken.
	EXPECT_EQ(nht_pa_unscavenge_from(pa, PageAddr(0, 10), 200, 1, base, bytes, 16), 0u);
	// From 0: pages 0-9, then the step ends at the second huge page.
	ASSERT_EQ(nht_pa_unscavenge_from(pa, 0, 1000, 1, base, bytes, 16), 1u);
	EXPECT_EQ(base[0], PageAddr(0, 0));
	EXPECT_EQ(bytes[0], 10 * kPageSize);
	// Then the second huge page, whole.
	ASSERT_EQ(nht_pa_unscavenge_from(pa, 0, 1000, 1, base, bytes, 16), 1u);
	EXPECT_EQ(base[0], PageAddr(0, 256));
	EXPECT_EQ(bytes[0], 256 * kPageSize);
	EXPECT_EQ(nht_pa_pages_scav(pa), 0u);
	EXPECT_EQ(nht_pa_check(pa), 0);
}

// ---- randomized, against a model ---------------------------------------------------

// Every grown page: allocated? scavenged? By chunk index.
class Model {
      public:
	struct Page {
		bool alloc = false, scav = true;
	};

	void Grow(uint64_t chunk, uint64_t n)
	{
		for (uint64_t c = chunk; c < chunk + n; c++)
			chunks_[c].assign(kChunkPages, Page{});
	}
	bool Grown(uint64_t g) const { return chunks_.count(g / kChunkPages) != 0; }
	Page &At(uint64_t g) { return chunks_.at(g / kChunkPages)[g % kChunkPages]; }
	uint64_t GrownEndPage() const { return chunks_.empty() ? 0 : (chunks_.rbegin()->first + 1) * kChunkPages; }

	// First page g with [g, g+need) free, or -1.
	int64_t FirstFit(uint64_t need) const
	{
		uint64_t run = 0, start = 0;
		int64_t prev = -2;
		for (auto &[ci, pages] : chunks_) {
			if ((int64_t)ci != prev + 1)
				run = 0;
			prev = (int64_t)ci;
			for (uint64_t p = 0; p < kChunkPages; p++) {
				if (pages[p].alloc) {
					run = 0;
					continue;
				}
				if (run++ == 0)
					start = ci * kChunkPages + p;
				if (run >= need)
					return (int64_t)start;
			}
		}
		return -1;
	}

	bool RangeFree(uint64_t g, uint64_t n) const
	{
		for (uint64_t i = g; i < g + n; i++) {
			auto it = chunks_.find(i / kChunkPages);
			if (it == chunks_.end() || it->second[i % kChunkPages].alloc)
				return false;
		}
		return true;
	}

	size_t Alloc(uint64_t g, uint64_t n)
	{
		size_t scav = 0;
		for (uint64_t i = g; i < g + n; i++) {
			Page &p = At(i);
			scav += p.scav;
			p.alloc = true;
			p.scav = false;
		}
		return scav;
	}

	void Free(uint64_t g, uint64_t n, bool scavenged)
	{
		for (uint64_t i = g; i < g + n; i++) {
			At(i).alloc = false;
			if (scavenged)
				At(i).scav = true;
		}
	}

	void MarkScavenged(uint64_t g, uint64_t n)
	{
		for (uint64_t i = g; i < g + n; i++)
			if (!At(i).alloc)
				At(i).scav = true;
	}

	// The scavenger's search (pagealloc.h): downward from *limit, runs of
	// free unscavenged pages inside one chunk (like Go's scavenger, which
	// works chunk by chunk), trimmed to align; the first whose aligned part
	// has >= min pages gives its top min(len, max rounded down to align).
	int64_t TakeUnscavenged(uint64_t *limit, uint64_t min, uint64_t max, uint64_t align, uint64_t *n)
	{
		if (align == 0)
			align = 1;
		if (min < align)
			min = align;
		uint64_t top = std::min(*limit, GrownEndPage());
		while (top > 0) {
			uint64_t ci = (top - 1) / kChunkPages, cbase = ci * kChunkPages;
			auto it = chunks_.find(ci);
			if (it == chunks_.end()) {
				top = cbase;
				continue;
			}
			auto &pages = it->second;
			auto cand = [&](int64_t p) { return !pages[p].alloc && !pages[p].scav; };
			int64_t p = (int64_t)(top - cbase) - 1;
			while (p >= 0) {
				if (!cand(p)) {
					p--;
					continue;
				}
				int64_t hi = p;
				while (p >= 0 && cand(p))
					p--;
				uint64_t rs = cbase + p + 1, re = cbase + hi + 1;
				uint64_t as = (rs + align - 1) / align * align, ae = re / align * align;
				if (ae > as && ae - as >= min) {
					uint64_t k = ae - as;
					if (k > max)
						k = max & ~(align - 1);
					if (k == 0)
						k = align;
					uint64_t start = ae - k;
					Alloc(start, k);
					*limit = start;
					*n = k;
					return (int64_t)start;
				}
			}
			top = cbase;
		}
		*limit = 0;
		return -1;
	}

	size_t CountAlloc() const
	{
		size_t n = 0;
		for (auto &[ci, pages] : chunks_)
			for (auto &p : pages)
				n += p.alloc;
		return n;
	}
	size_t CountScav() const
	{
		size_t n = 0;
		for (auto &[ci, pages] : chunks_)
			for (auto &p : pages)
				n += p.scav;
		return n;
	}
	const std::map<uint64_t, std::vector<Page>> &Chunks() const { return chunks_; }

      private:
	std::map<uint64_t, std::vector<Page>> chunks_;
};

uintptr_t Addr(uint64_t g) { return kBase + g * kPageSize; }

::testing::AssertionResult SameBitmaps(nht_pa *pa, const Model &m)
{
	for (auto &[ci, pages] : m.Chunks()) {
		uint64_t alloc[8], scav[8];
		if (!nht_pa_chunk_bits(pa, ci, alloc, scav))
			return ::testing::AssertionFailure() << "chunk " << ci << " not grown";
		for (uint64_t p = 0; p < kChunkPages; p++) {
			bool a = (alloc[p / 64] >> (p % 64)) & 1, s = (scav[p / 64] >> (p % 64)) & 1;
			if (a != pages[p].alloc || s != pages[p].scav)
				return ::testing::AssertionFailure()
				       << "chunk " << ci << " page " << p << ": alloc " << a << " scav " << s << ", model alloc "
				       << pages[p].alloc << " scav " << pages[p].scav;
		}
	}
	return ::testing::AssertionSuccess();
}

struct Live {
	uint64_t g, n;
	bool scavenging; // taken by take_unscavenged: freed with free_scavenged
};

class PageAllocRandom : public ::testing::TestWithParam<unsigned> {};

TEST_P(PageAllocRandom, MatchesModel)
{
	const unsigned seed = GetParam();
	std::mt19937_64 rng(seed);
	auto rnd = [&](uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng); };
	PA pa;
	Model m;
	std::vector<Live> live;

	// 64 MiB regions (16 chunks), grown over time, some adjacent so runs
	// cross them, placed across level-1 and root boundaries of the tree.
	struct Region {
		int step;
		uint64_t chunk;
	};
	const Region regions[] = {
		{0, 25600},	     // 100 GiB up: grown first, alone
		{300, 0},	     // the bottom: lowers search_addr
		{700, 4096 - 16},    // just below the second root entry
		{1100, 16},	     // adjacent to the bottom region
		{1500, 4096},	     // adjacent across the root boundary
		{1900, 512 - 8},     // across a level-1 boundary
	};
	const int kSteps = 8000;
	size_t ri = 0;
	int allocs = 0, fails = 0, frees = 0, ats = 0, takes = 0, marks = 0;
	for (int step = 0; step < kSteps; step++) {
		SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
		while (ri < std::size(regions) && regions[ri].step == step) {
			ASSERT_EQ(nht_pa_grow(pa, PageAddr(regions[ri].chunk, 0), kArenaChunks * kChunkBytes), 0);
			m.Grow(regions[ri].chunk, kArenaChunks);
			ri++;
		}
		size_t grown = nht_pa_pages_grown(pa);
		double used = grown ? double(m.CountAlloc()) / double(grown) : 1.0;
		uint64_t dice = rnd(0, 99);
		uint64_t palloc = used > 0.75 ? 25 : used < 0.3 ? 65 : 45;
		if (dice < palloc || live.empty()) {
			// alloc(n, align)
			uint64_t k = rnd(0, 99), n;
			if (k < 70)
				n = rnd(1, 8);
			else if (k < 90)
				n = rnd(9, 600);
			else if (k < 98)
				n = rnd(601, 5000);
			else
				n = rnd(5001, 20000);
			static const uint64_t aligns[] = {0, 2, 4, 8, 16, 64, 256, 512};
			uint64_t align = rnd(0, 9) < 6 ? 1 : aligns[rnd(0, std::size(aligns) - 1)];
			uint64_t a1 = align ? align : 1;
			int64_t ff = m.FirstFit(n + a1 - 1);
			size_t scav = 0;
			uintptr_t got = nht_pa_alloc(pa, n, align, &scav);
			if (ff < 0) {
				ASSERT_EQ(got, 0u) << "alloc(" << n << ", " << align << ") found " << Where(got)
						   << " where the model has no run";
				fails++;
			} else {
				uint64_t at = ((uint64_t)ff + a1 - 1) / a1 * a1;
				ASSERT_EQ(got, Addr(at)) << "alloc(" << n << ", " << align << "): got " << Where(got)
							 << ", model " << Where(Addr(at));
				ASSERT_EQ(scav, m.Alloc(at, n)) << "scavenged pages reported";
				live.push_back({at, n, false});
				allocs++;
			}
		} else if (dice < palloc + 30) {
			// free a live run, whole or (sometimes) its middle
			size_t i = rnd(0, live.size() - 1);
			Live l = live[i];
			live[i] = live.back();
			live.pop_back();
			if (!l.scavenging && l.n >= 3 && rnd(0, 9) == 0) {
				uint64_t off = rnd(1, l.n - 2), len = rnd(1, l.n - 1 - off);
				nht_pa_free(pa, Addr(l.g + off), len);
				m.Free(l.g + off, len, false);
				live.push_back({l.g, off, false});
				live.push_back({l.g + off + len, l.n - off - len, false});
			} else if (l.scavenging) {
				nht_pa_free_scavenged(pa, Addr(l.g), l.n);
				m.Free(l.g, l.n, true);
			} else {
				nht_pa_free(pa, Addr(l.g), l.n);
				m.Free(l.g, l.n, false);
			}
			frees++;
		} else if (dice < palloc + 30 + 12) {
			// alloc_at somewhere in (or next to) a grown region
			const Region &r = regions[rnd(0, ri - 1)];
			int64_t g = (int64_t)(r.chunk * kChunkPages) + (int64_t)rnd(0, kArenaChunks * kChunkPages + 64) - 32;
			uint64_t n = rnd(1, 64);
			if (g < 0)
				g = 0;
			bool want = m.RangeFree((uint64_t)g, n);
			size_t scav = 0;
			ASSERT_EQ(nht_pa_alloc_at(pa, Addr((uint64_t)g), n, &scav), want)
				<< "alloc_at(" << Where(Addr((uint64_t)g)) << ", " << n << ")";
			if (want) {
				ASSERT_EQ(scav, m.Alloc((uint64_t)g, n));
				live.push_back({(uint64_t)g, n, false});
			}
			ats++;
		} else if (dice < palloc + 30 + 12 + 7) {
			// mark a range inside a grown region scavenged
			const Region &r = regions[rnd(0, ri - 1)];
			uint64_t off = rnd(0, kArenaChunks * kChunkPages - 1);
			uint64_t n = rnd(1, std::min<uint64_t>(700, kArenaChunks * kChunkPages - off));
			nht_pa_mark_scavenged(pa, Addr(r.chunk * kChunkPages + off), n);
			m.MarkScavenged(r.chunk * kChunkPages + off, n);
			marks++;
		} else {
			// the scavenger takes a run
			uint64_t limit = rnd(0, 1) ? m.GrownEndPage() : rnd(0, m.GrownEndPage());
			uint64_t min = rnd(1, 16), max = min + rnd(0, 128);
			static const uint64_t aligns[] = {1, 1, 2, 8};
			uint64_t align = aligns[rnd(0, 3)];
			uint64_t mlimit = limit, mn = 0;
			int64_t want = m.TakeUnscavenged(&mlimit, min, max, align, &mn);
			uintptr_t alimit = Addr(limit);
			size_t n = 0;
			uintptr_t got = nht_pa_take_unscavenged(pa, &alimit, min, max, align, &n);
			if (want < 0) {
				ASSERT_EQ(got, 0u) << "take_unscavenged found " << Where(got);
			} else {
				ASSERT_EQ(got, Addr((uint64_t)want))
					<< "take_unscavenged(limit " << Where(Addr(limit)) << ", min " << min << ", max " << max
					<< ", align " << align << "): got " << Where(got) << ", model " << Where(Addr(want));
				ASSERT_EQ(n, mn);
				ASSERT_EQ(alimit, Addr(mlimit));
				live.push_back({(uint64_t)want, mn, true});
			}
			takes++;
		}
		ASSERT_EQ(nht_pa_check(pa), 0);
		ASSERT_EQ(nht_pa_pages_alloc(pa), m.CountAlloc());
		ASSERT_EQ(nht_pa_pages_scav(pa), m.CountScav());
		if (step % 16 == 0 || step == kSteps - 1) {
			ASSERT_TRUE(SameBitmaps(pa, m));
		}
	}
	// The run exercised every kind of operation.
	EXPECT_GT(allocs, 500);
	EXPECT_GT(fails, 0);
	EXPECT_GT(frees, 500);
	EXPECT_GT(ats, 50);
	EXPECT_GT(takes, 50);
	EXPECT_GT(marks, 50);
	// Free everything: all pages free again, one run per contiguous region.
	for (const Live &l : live) {
		if (l.scavenging)
			nht_pa_free_scavenged(pa, Addr(l.g), l.n);
		else
			nht_pa_free(pa, Addr(l.g), l.n);
	}
	EXPECT_EQ(nht_pa_pages_alloc(pa), 0u);
	EXPECT_EQ(nht_pa_check(pa), 0);
	EXPECT_EQ(nht_pa_alloc(pa, 2 * kArenaChunks * kChunkPages, 1, nullptr), PageAddr(0, 0));
	EXPECT_EQ(nht_pa_alloc(pa, 2 * kArenaChunks * kChunkPages, 1, nullptr), PageAddr(4096 - 16, 0));
	EXPECT_EQ(nht_pa_check(pa), 0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, PageAllocRandom, ::testing::Values(1u, 2u, 3u, 4u));

} // namespace
