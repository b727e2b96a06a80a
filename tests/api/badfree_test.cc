// badfree_test.cc — bad frees abort with the documented message:
//   numaheap: <api>(0x...): <reason>; aborting
// (death tests: each bad call runs in a forked child, which must die of SIGABRT
// with that message on stderr; the parent's heap stays clean).
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <new>
#include <string>
#include <sys/mman.h>
#include <sys/resource.h>
#include <thread>
#include <vector>

#include "../../src/sizeclasses.h" // the class table: sizes, pages per span
#include "../common/double_free.h"
#include "api_util.h"
#include "numaheap.h"

namespace {

// No core files from the hundreds of intended aborts.
struct NoCoreDumps {
	NoCoreDumps()
	{
		struct rlimit r = {0, 0};
		setrlimit(RLIMIT_CORE, &r);
	}
} no_core_dumps;

std::string addr(const void *p)
{
	char b[32];
	snprintf(b, sizeof b, "%p", p);
	return b;
}

// The regex for "numaheap: api(p): reason; aborting"; reason is a regex.
std::string msg(const char *api, const void *p, const std::string &reason)
{
	return std::string("numaheap: ") + api + "\\(" + addr(p) + "\\): " + reason + "; aborting";
}

const std::string kDouble = "double free";
const std::string kNotOurs = "invalid pointer \\(not allocated by numaheap\\)";
const std::string kInterior = "invalid pointer \\(inside an object, not its start\\)";
const std::string kNotInUse = "pointer not in use \\(double free, or never allocated\\)";
const std::string kEitherDouble = "(" + kDouble + "|" + kNotInUse + ")";

// free through a pointer the compiler cannot see (no -Wfree-nonheap-object).
void do_free(void *p) { free((void *)opaque((size_t)p)); }

} // namespace

#define EXPECT_ABORT(stmt, re) EXPECT_EXIT(stmt, ::testing::KilledBySignal(SIGABRT), re)

// A small object freed twice is caught when one of its two cache entries
// would be handed out again, or goes back to its span (tests/common/
// double_free.h): the statements allocate until then.
TEST(BadFreeDeathTest, DoubleFreeSmall)
{
	for (size_t n : {size_t(1), size_t(8), size_t(16), size_t(100), size_t(1000), size_t(20000), size_t(32768)}) {
		void *p = malloc(n);
		ASSERT_NE(p, nullptr);
		EXPECT_ABORT(
			{
				dfree::pin_to_one_cpu();
				free(p);
				do_free(p);
				dfree::reuse(n);
			},
			dfree::caught(p))
			<< "size " << n;
		free(p); // the parent's copy was never freed
	}
}

// The first free's entry went back to its span before the second free: the
// second entry hands the object out, and the span's bitmap, which says it
// is free, would hand it out again. The span gives it out as a checked
// entry (its mark was there when it went back), whose mark the first life
// cleared. The neighbours stay live, so the object's page is not released
// (a released page loses its marks, and such a double free goes unseen).
TEST(BadFreeDeathTest, DoubleFreeSmallAfterItsSpanTookItBack)
{
	for (size_t n : {size_t(16), size_t(100), size_t(1000)}) {
		std::vector<void *> live(600);
		for (auto &x : live)
			x = malloc(n);
		void *p = live[300];
		EXPECT_ABORT(
			{
				dfree::pin_to_one_cpu();
				free(p);
				numaheap_release(); // the cache's entry goes back to the span
				do_free(p);
				dfree::reuse(n);
			},
			dfree::caught(p))
			<< "size " << n;
		for (auto x : live)
			free(x);
	}
}

TEST(BadFreeDeathTest, DoubleFreeSmallAfterOtherActivity)
{
	// The second free comes after the first was pushed further into the cache.
	void *p = malloc(48);
	EXPECT_ABORT(
		{
			free(p);
			void *q[100];
			for (auto &x : q)
				x = malloc(200);
			for (auto &x : q)
				free(x);
			do_free(p);
			dfree::reuse(48);
		},
		dfree::caught(p));
	free(p);
}

TEST(BadFreeDeathTest, DoubleFreeLarge)
{
	for (size_t n : {size_t(32769), size_t(100000), size_t(4 << 20)}) {
		void *p = malloc(n);
		ASSERT_NE(p, nullptr);
		// "double free" while the span sits in the heap's large-span cache,
		// "pointer not in use" once its pages went back to the heap.
		EXPECT_ABORT({ free(p); do_free(p); }, msg("free", p, kEitherDouble)) << "size " << n;
		free(p);
	}
}

TEST(BadFreeDeathTest, DoubleDelete)
{
	int *i = new int(3);
	EXPECT_ABORT(
		{
			::operator delete(i);
			::operator delete((void *)opaque((size_t)i));
			dfree::reuse(sizeof(int));
		},
		dfree::caught(i));
	delete i;
	char *big = new char[200000];
	EXPECT_ABORT({ delete[] big; ::operator delete[]((void *)opaque((size_t)big)); }, msg("free", big, kEitherDouble));
	delete[] big;
}

TEST(BadFreeDeathTest, DoubleFreeSized)
{
	void *p = malloc(64);
	EXPECT_ABORT(
		{
			free_sized(p, 64);
			free_sized((void *)opaque((size_t)p), 64);
			dfree::reuse(64);
		},
		dfree::caught(p));
	free(p);
}

TEST(BadFreeDeathTest, FreeOfAStackPointer)
{
	char on_stack[64];
	escape(on_stack);
	EXPECT_ABORT(do_free(on_stack), msg("free", on_stack, kNotOurs));
	EXPECT_ABORT(do_free(on_stack + 16), msg("free", on_stack + 16, kNotOurs));
}

TEST(BadFreeDeathTest, FreeOfAGlobalPointer)
{
	static char global[64];
	escape(global);
	EXPECT_ABORT(do_free(global), msg("free", global, kNotOurs));
}

TEST(BadFreeDeathTest, FreeOfAnMmapPointer)
{
	void *m = mmap(nullptr, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(m, MAP_FAILED);
	EXPECT_ABORT(do_free(m), msg("free", m, kNotOurs));
	EXPECT_ABORT(do_free((char *)m + 8192), msg("free", (char *)m + 8192, kNotOurs));
	munmap(m, 1 << 16);
}

TEST(BadFreeDeathTest, FreeOfAnUnmappedHeapAddress)
{
	// Inside numaheap's address range (node 0's slice) but far from any arena.
	void *p = (void *)(0x100000000000ull + (1ull << 40));
	EXPECT_ABORT(do_free(p), msg("free", p, kNotOurs));
	// Far outside it.
	void *q = (void *)0x10;
	EXPECT_ABORT(do_free(q), msg("free", q, kNotOurs));
}

TEST(BadFreeDeathTest, FreeOfAnInteriorPointerSmall)
{
	for (size_t n : {size_t(8), size_t(16), size_t(64), size_t(100), size_t(3000), size_t(32768)}) {
		char *p = (char *)malloc(n);
		ASSERT_NE(p, nullptr);
		size_t u = malloc_usable_size(p);
		for (size_t off : {size_t(1), size_t(8), u / 2, u - 1}) {
			if (off == 0 || off >= u)
				continue;
			EXPECT_ABORT(do_free(p + off), msg("free", p + off, kInterior)) << "size " << n << " offset " << off;
		}
		free(p);
	}
}

TEST(BadFreeDeathTest, FreeOfAnInteriorPointerLarge)
{
	for (size_t n : {size_t(40000), size_t(1 << 20)}) {
		char *p = (char *)malloc(n);
		ASSERT_NE(p, nullptr);
		for (size_t off : {size_t(16), size_t(8192), size_t(16384 + 8), n - 1}) {
			EXPECT_ABORT(do_free(p + off), msg("free", p + off, kInterior)) << "size " << n << " offset " << off;
		}
		free(p);
	}
}

// A span of a class whose objects do not fill its pages has tail waste: t
// bytes that belong to no object. An address there that is a whole number
// of objects from the first one (span base + n * size, when the objects
// start at the base) passed the divisibility check, and the next malloc of
// that class returned an object running t - size bytes into the next page.
// Every address of a span that is not an object's start must be refused,
// whichever end of the span the waste is at. The span is found from the
// outside: n objects of the class spaced exactly size apart are one span
// (two spans of the class are at least size + t apart), and its base is
// the page boundary at its first object or t bytes before it.
struct SpanOf {
	uintptr_t base = 0;
	std::vector<uintptr_t> objs; // every object of the span, allocated
};

static SpanOf find_full_span(unsigned cls, std::vector<void *> &keep)
{
	const size_t size = nh_class_to_size[cls];
	const size_t span = (size_t)nh_class_to_npages[cls] * NH_PAGE_SIZE;
	const size_t n = span / size, t = span - n * size;
	std::vector<uintptr_t> v;
	for (size_t i = 0; i < 3 * n + 256; i++) {
		void *p = malloc(size);
		if (!p)
			break;
		keep.push_back(p);
		v.push_back((uintptr_t)p);
	}
	std::sort(v.begin(), v.end());
	SpanOf r;
	for (size_t i = 0; i + n <= v.size(); i++) {
		size_t j = i + 1;
		while (j < i + n && v[j] - v[j - 1] == size)
			j++;
		if (j < i + n)
			continue;
		uintptr_t first = v[i];
		if (first % NH_PAGE_SIZE == 0)
			r.base = first;
		else if ((first - t) % NH_PAGE_SIZE == 0)
			r.base = first - t;
		else
			continue;
		r.objs.assign(v.begin() + i, v.begin() + i + n);
		break;
	}
	return r;
}

TEST(BadFreeDeathTest, FreeInTheTailWasteEveryClass)
{
	int tested = 0;
	for (unsigned cls = 1; cls < NH_NUM_CLASSES; cls++) {
		const size_t size = nh_class_to_size[cls];
		const size_t span = (size_t)nh_class_to_npages[cls] * NH_PAGE_SIZE;
		const size_t n = span / size, t = span - n * size;
		if (t == 0)
			continue;
		std::vector<void *> keep;
		SpanOf s = find_full_span(cls, keep);
		ASSERT_NE(s.base, 0u) << "class " << cls << " (" << size << " B): no whole span among the objects";
		// The addresses a check modulo the size could take for objects:
		// size multiples from the base and from the base + t, within the
		// span, but for the objects there really are.
		std::vector<uintptr_t> bad;
		for (uintptr_t a = s.base; a < s.base + span; a += size)
			bad.push_back(a);
		for (uintptr_t a = s.base + t; a < s.base + span; a += size)
			bad.push_back(a);
		bad.push_back(s.base + n * size);
		std::sort(bad.begin(), bad.end());
		bad.erase(std::unique(bad.begin(), bad.end()), bad.end());
		std::vector<uintptr_t> left;
		for (uintptr_t a : bad)
			if (!std::binary_search(s.objs.begin(), s.objs.end(), a) && a < s.base + span)
				left.push_back(a);
		ASSERT_FALSE(left.empty()) << "class " << cls;
		for (uintptr_t a : left) {
			EXPECT_ABORT(do_free((void *)a), msg("free", (void *)a, kInterior))
				<< "class " << cls << " (" << size << " B, tail " << t << "): span base + " << a - s.base;
		}
		if (size == 48) {
			void *a = (void *)(s.base + n * size);
			EXPECT_ABORT(escape(realloc((void *)opaque((size_t)a), 100)), msg("realloc", a, kInterior));
			EXPECT_ABORT(escape((void *)malloc_usable_size((void *)opaque((size_t)a))),
				     msg("malloc_usable_size", a, kInterior));
		}
		for (void *p : keep)
			free(p);
		tested++;
	}
	EXPECT_GT(tested, 30);
}

TEST(BadFreeDeathTest, ReallocOfAFreedPointer)
{
	void *s = malloc(100);
	EXPECT_ABORT({ free(s); escape(realloc((void *)opaque((size_t)s), 200)); }, msg("realloc", s, kDouble));
	EXPECT_ABORT({ free(s); escape(realloc((void *)opaque((size_t)s), 50000)); }, msg("realloc", s, kDouble));
	free(s);
	void *l = malloc(100000);
	EXPECT_ABORT({ free(l); escape(realloc((void *)opaque((size_t)l), 200000)); }, msg("realloc", l, kNotInUse));
	EXPECT_ABORT({ free(l); escape(realloc((void *)opaque((size_t)l), 20)); }, msg("realloc", l, kNotInUse));
	free(l);
}

TEST(BadFreeDeathTest, ReallocOfABadPointer)
{
	char on_stack[32];
	escape(on_stack);
	EXPECT_ABORT(escape(realloc((void *)opaque((size_t)on_stack), 64)), msg("realloc", on_stack, kNotOurs));
	char *p = (char *)malloc(64);
	EXPECT_ABORT(escape(realloc(p + 16, 128)), msg("realloc", p + 16, kInterior));
	free(p);
}

TEST(BadFreeDeathTest, UsableSizeOfABadPointer)
{
	char on_stack[32];
	escape(on_stack);
	EXPECT_ABORT(escape((void *)malloc_usable_size(on_stack)), msg("malloc_usable_size", on_stack, kNotOurs));
}

// The double frees of small objects below are made on several threads; all
// run on one CPU, so that both entries land in caches the allocating thread
// reaches (a per-CPU cache of another CPU would keep one until it is
// drained).

TEST(BadFreeDeathTest, DoubleFreeFromAnotherThread)
{
	void *p = malloc(64);
	// Freed by this thread, freed again by another.
	EXPECT_ABORT(
		{
			dfree::pin_to_one_cpu();
			free(p);
			std::thread t([p] { do_free(p); });
			t.join();
			dfree::reuse(64);
		},
		dfree::caught(p));
	// Freed twice by another thread.
	EXPECT_ABORT(
		{
			dfree::pin_to_one_cpu();
			std::thread t([p] {
				free(p);
				do_free(p);
			});
			t.join();
			dfree::reuse(64);
		},
		dfree::caught(p));
	// Freed by two other threads in turn.
	EXPECT_ABORT(
		{
			dfree::pin_to_one_cpu();
			std::thread a([p] { free(p); });
			a.join();
			std::thread b([p] { do_free(p); });
			b.join();
			dfree::reuse(64);
		},
		dfree::caught(p));
	// Freed by a thread that has exited (its cache flushed), then by this one.
	EXPECT_ABORT(
		{
			dfree::pin_to_one_cpu();
			std::thread a([p] { free(p); });
			a.join();
			do_free(p);
			dfree::reuse(64);
		},
		dfree::caught(p));
	free(p);

	void *l = malloc(300000);
	EXPECT_ABORT(
		{
			std::thread a([l] { free(l); });
			a.join();
			do_free(l);
		},
		msg("free", l, kNotInUse));
	free(l);
}

TEST(BadFreeDeathTest, ValidFreesDoNotAbort)
{
	// Control: the same sequences, done correctly, exit normally.
	EXPECT_EXIT(
		{
			void *p = malloc(64);
			std::thread t([p] { free(p); });
			t.join();
			void *l = malloc(300000);
			free(l);
			void *r = realloc(malloc(10), 100000);
			free(r);
			exit(0);
		},
		::testing::ExitedWithCode(0), "");
}
