// mspan (src/mspan.c): the allocation bitmap of a small-object span. The
// spans here live on the test's stack with a fake base address: mspan_take
// and mspan_put only compute addresses, they never touch the objects.
// A slot is handed out fresh (tagged) until it comes back with its free
// mark (Put), and again after it came back unmarked (Put(p, true)).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "shim.h"
#include "sizeclasses.h"

namespace {

constexpr uintptr_t kBase = 0x200000000000ULL;

struct Span {
	alignas(64) unsigned char mem[512];
	Span(uintptr_t base, unsigned cls)
	{
		EXPECT_LE(nht_mspan_sizeof(), sizeof mem);
		EXPECT_LE(nht_mspan_alignof(), 64u);
		nht_mspan_init(mem, base, cls);
	}
	unsigned Take(std::vector<uintptr_t> &out, unsigned n)
	{
		out.assign(n + 1, 0xdeadbeef); // one past: take must not write there
		unsigned got = nht_mspan_take(mem, out.data(), n);
		EXPECT_EQ(out[n], 0xdeadbeefu) << "take wrote past n";
		out.resize(got);
		return got;
	}
	uintptr_t TakeOne()
	{
		std::vector<uintptr_t> v;
		return Take(v, 1) ? v[0] : 0;
	}
	void Put(uintptr_t p, bool unmarked = false) { nht_mspan_put(mem, p, unmarked); }
	unsigned nelems() const { return nht_mspan_nelems(mem); }
	unsigned nalloc() const { return nht_mspan_nalloc(mem); }
	unsigned freeindex() const { return nht_mspan_freeindex(mem); }
};

uintptr_t Untag(uintptr_t e) { return e & ~nht_entry_fresh; }

// The tail waste of a class's span, which comes first: object i of a span
// at base is at base + TailOf(c) + i * size.
uintptr_t TailOf(unsigned c)
{
	uintptr_t span = uintptr_t(nh_class_to_npages[c]) * NH_PAGE_SIZE;
	return span % nh_class_to_size[c];
}

TEST(MSpan, InitFromClassTable)
{
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		Span s(kBase, c);
		unsigned span = nh_class_to_npages[c] * NH_PAGE_SIZE;
		EXPECT_EQ(nht_mspan_elemsize(s.mem), nh_class_to_size[c]) << "class " << c;
		EXPECT_EQ(nht_mspan_npages(s.mem), nh_class_to_npages[c]) << "class " << c;
		EXPECT_EQ(s.nelems(), span / nh_class_to_size[c]) << "class " << c;
		EXPECT_EQ(s.nalloc(), 0u);
		EXPECT_EQ(s.freeindex(), 0u);
	}
}

TEST(MSpan, TakeAllObjectsEveryClass)
{
	EXPECT_EQ(nht_entry_fresh, 1u);
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		SCOPED_TRACE("class " + std::to_string(c));
		const uintptr_t base = kBase + c * (uintptr_t(1) << 20);
		Span s(base, c);
		const unsigned size = nh_class_to_size[c], n = s.nelems();
		const uintptr_t tail = TailOf(c);
		std::vector<uintptr_t> out;
		ASSERT_EQ(s.Take(out, n + 5), n) << "bits past nelems are never handed out";
		std::set<uintptr_t> seen;
		for (unsigned i = 0; i < n; i++) {
			ASSERT_EQ(out[i] & nht_entry_fresh, nht_entry_fresh) << "fresh objects are tagged";
			uintptr_t p = Untag(out[i]);
			// In address order, each at its slot, inside the span.
			ASSERT_EQ(p, base + tail + uintptr_t(i) * size) << "the tail waste first, then the objects";
			ASSERT_EQ(p % (size >= 16 ? 16 : 8), 0u);
			ASSERT_LE(p + size, base + nh_class_to_npages[c] * NH_PAGE_SIZE);
			if (i == n - 1) {
				ASSERT_EQ(p + size, base + nh_class_to_npages[c] * NH_PAGE_SIZE) << "the last object ends the span";
			}
			ASSERT_TRUE(seen.insert(p).second);
			ASSERT_EQ(nht_mspan_obj_index(s.mem, p), i);
			ASSERT_EQ(nht_mspan_obj_index(s.mem, p + size - 1), i);
		}
		EXPECT_EQ(s.nalloc(), n);
		EXPECT_EQ(s.Take(out, 10), 0u) << "a full span has nothing more";
		EXPECT_EQ(s.nalloc(), n);
	}
}

TEST(MSpan, TakeHonoursCount)
{
	Span s(kBase, 1); // 8 B: 1024 objects, 16 bitmap words
	ASSERT_EQ(s.nelems(), 1024u);
	std::vector<uintptr_t> out;
	EXPECT_EQ(s.Take(out, 0), 0u);
	EXPECT_EQ(s.nalloc(), 0u);
	ASSERT_EQ(s.Take(out, 3), 3u);
	EXPECT_EQ(Untag(out[0]), kBase);
	EXPECT_EQ(Untag(out[2]), kBase + 16);
	ASSERT_EQ(s.Take(out, 5), 5u);
	EXPECT_EQ(Untag(out[0]), kBase + 24) << "continues after the last batch";
	EXPECT_EQ(s.nalloc(), 8u);
	ASSERT_EQ(s.Take(out, 1000), 1000u);
	EXPECT_EQ(s.nalloc(), 1008u);
	EXPECT_EQ(s.Take(out, 1000), 16u);
	EXPECT_EQ(Untag(out.back()), kBase + 1023 * 8);
	EXPECT_EQ(s.nalloc(), 1024u);
}

TEST(MSpan, FreeIndexSkipsFullWords)
{
	Span s(kBase, 1);
	std::vector<uintptr_t> out;
	ASSERT_EQ(s.Take(out, 64 + 10), 74u);
	EXPECT_EQ(s.freeindex(), 1u) << "word 0 is full, word 1 still has free objects";
	ASSERT_EQ(s.Take(out, 54), 54u);
	EXPECT_EQ(s.freeindex(), 2u) << "word 1 filled up exactly";
	// A put below freeindex lowers it, and take finds the object again.
	s.Put(kBase + 5 * 8);
	EXPECT_EQ(s.freeindex(), 0u);
	EXPECT_EQ(s.nalloc(), 127u);
	EXPECT_EQ(s.TakeOne(), kBase + 5 * 8) << "back with its mark: handed out checked";
	EXPECT_EQ(s.nalloc(), 128u);
	ASSERT_EQ(s.Take(out, 1), 1u);
	EXPECT_EQ(Untag(out[0]), kBase + 128 * 8);
	EXPECT_EQ(s.freeindex(), 2u);
	// Full: freeindex is past the last word.
	ASSERT_EQ(s.Take(out, 2000), 1024u - 129u);
	EXPECT_EQ(s.freeindex(), 16u);
	s.Put(kBase + 1010 * 8);
	EXPECT_EQ(s.freeindex(), 15u);
	s.Put(kBase + 1000 * 8); // same word: unchanged
	EXPECT_EQ(s.freeindex(), 15u);
	s.Put(kBase + 70 * 8);
	EXPECT_EQ(s.freeindex(), 1u);
	ASSERT_EQ(s.Take(out, 10), 3u);
	EXPECT_EQ(Untag(out[0]), kBase + 70 * 8);
	EXPECT_EQ(Untag(out[1]), kBase + 1000 * 8);
	EXPECT_EQ(Untag(out[2]), kBase + 1010 * 8);
	EXPECT_EQ(s.nalloc(), 1024u);
}

TEST(MSpan, PutThenTakeReturnsFreedObjects)
{
	for (unsigned c : {1u, 4u, 17u, 40u, 66u}) {
		SCOPED_TRACE("class " + std::to_string(c));
		Span s(kBase, c);
		const unsigned size = nh_class_to_size[c], n = s.nelems();
		const uintptr_t first = kBase + TailOf(c);
		std::vector<uintptr_t> all;
		ASSERT_EQ(s.Take(all, n), n);
		// Give back a few, out of order; they come back in address order.
		std::vector<unsigned> idx = {n - 1, 0, n / 2};
		if (n > 64)
			idx.push_back(64);
		std::sort(idx.begin(), idx.end());
		idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
		// Every other one back unmarked (a fresh entry never handed out).
		for (unsigned k = (unsigned)idx.size(); k-- > 0;)
			s.Put(first + uintptr_t(idx[k]) * size, k % 2);
		EXPECT_EQ(s.nalloc(), n - idx.size());
		std::vector<uintptr_t> again;
		ASSERT_EQ(s.Take(again, n), idx.size());
		for (size_t k = 0; k < idx.size(); k++)
			EXPECT_EQ(again[k], (first + uintptr_t(idx[k]) * size) | (k % 2 ? nht_entry_fresh : 0));
		EXPECT_EQ(s.nalloc(), n);
	}
}

TEST(MSpan, RandomTakePutAgainstModel)
{
	std::mt19937 rng(42);
	for (unsigned c = 1; c < NH_NUM_CLASSES; c += 5) {
		SCOPED_TRACE("class " + std::to_string(c));
		Span s(kBase, c);
		const unsigned size = nh_class_to_size[c], n = s.nelems();
		const uintptr_t first = kBase + TailOf(c);
		std::vector<bool> taken(n, false), unmarked(n, true);
		std::vector<uintptr_t> out;
		for (int step = 0; step < 3000; step++) {
			if (rng() % 2) {
				unsigned want = rng() % 70;
				unsigned got = s.Take(out, want);
				// Take hands out the lowest free objects.
				unsigned k = 0;
				for (unsigned i = 0; i < n && k < got; i++)
					if (!taken[i]) {
						ASSERT_EQ(out[k], (first + uintptr_t(i) * size) | (unmarked[i] ? nht_entry_fresh : 0));
						taken[i] = true;
						k++;
					}
				ASSERT_EQ(k, got);
				unsigned nfree = (unsigned)std::count(taken.begin(), taken.end(), false);
				ASSERT_EQ(got, std::min(want, nfree + got));
			} else {
				std::vector<unsigned> t;
				for (unsigned i = 0; i < n; i++)
					if (taken[i])
						t.push_back(i);
				if (t.empty())
					continue;
				unsigned i = t[rng() % t.size()];
				unmarked[i] = rng() % 2;
				s.Put(first + uintptr_t(i) * size, unmarked[i]);
				taken[i] = false;
			}
			ASSERT_EQ(s.nalloc(), (unsigned)std::count(taken.begin(), taken.end(), true));
		}
	}
}

TEST(MSpan, RefillOfSubLineObjectsAlternatesLines)
{
	// What a cache pushes after a refill of a class smaller than a line: a
	// permutation of the batch in which neighbouring entries (consecutive
	// pops) lie on different cache lines whenever both parities remain.
	for (unsigned c = 1; c < NH_NUM_CLASSES && nh_class_to_size[c] < 64; c++) {
		SCOPED_TRACE("class " + std::to_string(c));
		Span s(kBase, c);
		for (unsigned n : {3u, 17u, 128u, 200u}) {
			std::vector<uintptr_t> v;
			unsigned got = s.Take(v, n);
			std::vector<uintptr_t> w = v;
			nht_mcache_spread_lines(w.data(), got);
			std::vector<uintptr_t> a = v, b = w;
			std::sort(a.begin(), a.end());
			std::sort(b.begin(), b.end());
			ASSERT_EQ(a, b) << "not a permutation";
			for (unsigned base = 0; base < got; base += 128) {
				unsigned m = std::min(got - base, 128u), ne = 0, no = 0;
				for (unsigned i = 0; i < m; i++)
					(((v[base + i] & ~nht_entry_fresh) / 64) & 1 ? no : ne)++;
				unsigned pairs = 2 * std::min(ne, no);
				for (unsigned i = 0; i + 1 < pairs; i++)
					EXPECT_NE(Untag(w[base + i]) / 64, Untag(w[base + i + 1]) / 64)
						<< "entries " << base + i << " and " << base + i + 1 << " share a line";
			}
		}
	}
}

TEST(MSpanDeathTest, DoublePutAborts)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	Span s(kBase, 5);
	uintptr_t p = Untag(s.TakeOne());
	s.Put(p);
	EXPECT_DEATH(s.Put(p), "numaheap: free\\(0x[0-9a-f]+\\): double free");
}

TEST(MSpanDeathTest, PutOfNeverTakenObjectAborts)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	Span s(kBase, 5);
	s.TakeOne();
	EXPECT_DEATH(s.Put(kBase + 64 * 3), "double free");
}

} // namespace
