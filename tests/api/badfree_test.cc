// badfree_test.cc — bad frees abort with the documented message:
//   numaheap: <api>(0x...): <reason>; aborting
// (death tests: each bad call runs in a forked child, which must die of SIGABRT
// with that message on stderr; the parent's heap stays clean).
#include <gtest/gtest.h>

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
