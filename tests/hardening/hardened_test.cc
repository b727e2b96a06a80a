// hardened_test.cc — NUMAHEAP_HARDENED=1 (ctest sets it for this suite):
// canaries after small objects checked by free, realloc and
// malloc_usable_size; guard pages around large objects; shuffled refills;
// the always-on bad-free checks still reporting the same way; and ordinary
// programs (content checks, threads, every allocation function) still working.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <malloc.h>
#include <set>
#include <thread>
#include <vector>

#include "hx_util.h"
#include "numaheap.h"

using namespace hx;

namespace {
NoCoreDumps no_core_dumps;

const size_t kSmallSizes[] = {0, 1, 8, 15, 16, 24, 100, 1000, 4000, 20000, 32000, 32760};
const size_t kLargeSizes[] = {32761, 40000, 100000, 1 << 20};

#define EXPECT_ABORT(stmt, re) EXPECT_EXIT(stmt, ::testing::KilledBySignal(SIGABRT), re)
#define EXPECT_SEGV(stmt) EXPECT_EXIT(stmt, ::testing::KilledBySignal(SIGSEGV), "")

void poke(void *p, ptrdiff_t off, uint8_t v) { ((volatile uint8_t *)opaque_ptr(p))[off] = v; }
uint8_t peek(void *p, ptrdiff_t off) { return ((volatile uint8_t *)opaque_ptr(p))[off]; }
} // namespace

// The suite must really run hardened: a small object's usable size leaves
// 8 bytes of its slot for the canary, so it is 8 mod 16 (slots are 16-byte
// multiples above 8 bytes); without hardening it is the slot itself.
TEST(Hardened, ModeIsOn)
{
	const char *e = getenv("NUMAHEAP_HARDENED");
	ASSERT_TRUE(e && strcmp(e, "1") == 0) << "run this suite with NUMAHEAP_HARDENED=1 (ctest does)";
	for (size_t n : {16, 32, 100, 1000}) {
		void *p = malloc(n);
		ASSERT_NE(p, nullptr);
		EXPECT_EQ(malloc_usable_size(p) % 16, 8u) << "size " << n;
		free(p);
	}
}

TEST(Hardened, EveryUsableByteIsTheProgramsToWrite)
{
	for (size_t n = 0; n <= 70000; n += (n < 2000 ? 1 : 97)) {
		uint8_t *p = (uint8_t *)malloc(n);
		ASSERT_NE(p, nullptr) << "size " << n;
		ASSERT_EQ((uintptr_t)p % 16, 0u) << "size " << n; // hardened objects are 16-aligned
		size_t u = malloc_usable_size(p);
		ASSERT_GE(u, n) << "size " << n;
		if (n > kMaxSmall - 8) {
			ASSERT_EQ(u, round_up(n ? n : 1, kPage)) << "large objects are whole pages, size " << n;
		}
		memset(p, 0xA5, u); // up to, not past, the usable size: no report
		free(p);
	}
}

TEST(Hardened, CallocZeroesAndReallocKeepsContents)
{
	for (size_t n : {1, 24, 500, 5000, 32760, 32761, 70000, 300000}) {
		uint8_t *p = (uint8_t *)malloc(n);
		ASSERT_NE(p, nullptr);
		memset(p, 0xFF, malloc_usable_size(p)); // dirty the slot for a later calloc
		free(p);
		uint8_t *z = (uint8_t *)calloc(1, n);
		ASSERT_NE(z, nullptr);
		EXPECT_TRUE(is_zero(z, n)) << "calloc size " << n;
		const uint64_t id = n;
		fill(z, n, id);
		for (size_t m : {n / 3 + 1, n * 2 + 7, (size_t)40000, (size_t)9}) {
			size_t keep = std::min(n, m);
			uint8_t *r = (uint8_t *)realloc(z, m);
			ASSERT_NE(r, nullptr);
			ASSERT_EQ(check(r, keep, id), (size_t)-1) << "realloc " << n << " -> " << m;
			fill(r, m, id);
			n = m;
			z = r;
		}
		free(z);
	}
}

TEST(Hardened, AlignedAllocationsKeepTheirAlignment)
{
	for (size_t align = 8; align <= (1 << 20); align <<= 1)
		for (size_t n : {1, 100, 8000, 32760, 50000}) {
			void *p = nullptr;
			ASSERT_EQ(posix_memalign(&p, align, n), 0) << "align " << align << " size " << n;
			ASSERT_EQ((uintptr_t)p % align, 0u) << "align " << align << " size " << n;
			size_t u = malloc_usable_size(p);
			ASSERT_GE(u, n);
			memset(p, 0x5A, u);
			free(p);
			void *q = aligned_alloc(align, round_up(n, align));
			ASSERT_NE(q, nullptr);
			ASSERT_EQ((uintptr_t)q % align, 0u);
			memset(q, 0x5A, malloc_usable_size(q));
			free(q);
		}
	void *v = valloc(100), *pv = pvalloc(100), *m = memalign(64, 100);
	ASSERT_TRUE(v && pv && m);
	EXPECT_EQ((uintptr_t)v % 4096, 0u);
	EXPECT_EQ((uintptr_t)pv % 4096, 0u);
	EXPECT_EQ((uintptr_t)m % 64, 0u);
	free(v);
	free(pv);
	free(m);
}

TEST(Hardened, OnNodeObjectsHaveCanariesToo)
{
	for (size_t n : {8, 100, 32000, 100000}) {
		void *p = numaheap_malloc_onnode(n, 0);
		ASSERT_NE(p, nullptr);
		size_t u = malloc_usable_size(p);
		ASSERT_GE(u, n);
		memset(p, 1, u);
		free(p);
	}
}

TEST(Hardened, ImpossibleSizesGiveEnomem)
{
	// The 8 bytes of the canary and the two guard pages must not wrap a size
	// near SIZE_MAX around to a small one.
	for (size_t n : {SIZE_MAX, SIZE_MAX - 7, SIZE_MAX - 4096, SIZE_MAX - 8191, SIZE_MAX - 16384, SIZE_MAX / 2 + 1,
			 (size_t)1 << 47, (size_t)1 << 41}) {
		errno = 0;
		void *p = malloc(opaque(n));
		EXPECT_EQ(p, nullptr) << "malloc(" << n << ") gave an object of " << (p ? malloc_usable_size(p) : 0)
				      << " bytes";
		EXPECT_EQ(errno, ENOMEM) << "malloc(" << n << ")";
		free(p);
		void *q = nullptr;
		EXPECT_EQ(posix_memalign(&q, 4096, opaque(n)), ENOMEM) << "posix_memalign(4096, " << n << ")";
		free(q);
		void *s = malloc(10);
		errno = 0;
		void *r = realloc(s, opaque(n));
		EXPECT_EQ(r, nullptr) << "realloc(p, " << n << ")";
		free(r ? r : s);
	}
	// calloc would zero the whole request: a wrapped size writes far past the object.
	EXPECT_EXIT(
		{
			errno = 0;
			void *c = calloc(1, opaque(SIZE_MAX - 4096));
			_exit(c == nullptr && errno == ENOMEM ? 0 : 1);
		},
		::testing::ExitedWithCode(0), "");
}

// ---- canaries -------------------------------------------------------------

TEST(HardenedDeathTest, OverflowPastTheUsableSizeIsCaughtByFree)
{
	for (size_t n : kSmallSizes) {
		uint8_t *p = (uint8_t *)malloc(n);
		ASSERT_NE(p, nullptr);
		size_t u = malloc_usable_size(p);
		// The first and the last byte of the canary. Its bytes are random per
		// process: writing a constant would leave one unchanged 1 time in 256,
		// so every poke into it flips bits of what is there.
		EXPECT_ABORT({ poke(p, u, peek(p, u) ^ 0xff); free(opaque_ptr(p)); }, msg("free", p, kOverflow)) << "size " << n;
		EXPECT_ABORT({ poke(p, u + 7, peek(p, u + 7) ^ 1); free(opaque_ptr(p)); }, msg("free", p, kOverflow))
			<< "size " << n;
		// A linear overflow of 16 bytes past the request reaches it too.
		EXPECT_ABORT({ memset(opaque_ptr(p), 'A', u + 16); free(opaque_ptr(p)); }, msg("free", p, kOverflow))
			<< "size " << n;
		free(p);
	}
}

TEST(HardenedDeathTest, OverflowIsCaughtByReallocAndUsableSize)
{
	uint8_t *p = (uint8_t *)malloc(40);
	size_t u = malloc_usable_size(p);
	EXPECT_ABORT({ poke(p, u, peek(p, u) ^ 0x41); escape(realloc(opaque_ptr(p), 80)); }, msg("realloc", p, kOverflow));
	EXPECT_ABORT({ poke(p, u, peek(p, u) ^ 0x41); escape(realloc(opaque_ptr(p), 8)); }, msg("realloc", p, kOverflow));
	EXPECT_ABORT({ poke(p, u + 3, peek(p, u + 3) ^ 0x41); escape((void *)malloc_usable_size(opaque_ptr(p))); },
		     msg("malloc_usable_size", p, kOverflow));
	// An overflow seen by a free in another thread.
	EXPECT_ABORT(
		{
			poke(p, u, peek(p, u) ^ 0x41);
			std::thread t([p] { free(opaque_ptr(p)); });
			t.join();
		},
		msg("free", p, kOverflow));
	free(p);
}

TEST(HardenedDeathTest, OverflowIntoTheNextObjectIsCaughtOnTheOverflowingOne)
{
	// Two neighbours of one class: the one that ran over is reported.
	std::vector<uint8_t *> v;
	for (int i = 0; i < 64; i++)
		v.push_back((uint8_t *)malloc(56));
	uint8_t *a = v[10];
	size_t u = malloc_usable_size(a);
	EXPECT_ABORT({ memset(opaque_ptr(a), 'B', u + 8 + 32); free(opaque_ptr(a)); }, msg("free", a, kOverflow));
	for (auto p : v)
		free(p);
}

TEST(HardenedDeathTest, CxxDeleteChecksTheCanary)
{
	char *s = new char[30];
	size_t u = malloc_usable_size(s);
	EXPECT_ABORT({ poke(s, u, peek(s, u) ^ 0xff); delete[] (char *)opaque_ptr(s); }, msg("free", s, kOverflow));
	delete[] s;
}

// ---- guard pages -------------------------------------------------------------

TEST(HardenedDeathTest, GuardPagesAroundLargeObjects)
{
	for (size_t n : kLargeSizes) {
		uint8_t *p = (uint8_t *)malloc(n);
		ASSERT_NE(p, nullptr);
		size_t u = malloc_usable_size(p);
		ASSERT_EQ(u, round_up(n, kPage));
		p[0] = 1;
		p[u - 1] = 1;
		EXPECT_SEGV(poke(p, (ptrdiff_t)u, 1)) << "write just past, size " << n;
		EXPECT_SEGV(poke(p, (ptrdiff_t)u + kPage - 1, 1)) << "write at the end of the guard, size " << n;
		EXPECT_SEGV(poke(p, -1, 1)) << "write just before, size " << n;
		EXPECT_SEGV(escape((void *)(uintptr_t)peek(p, -(ptrdiff_t)kPage))) << "read before, size " << n;
		EXPECT_SEGV(escape((void *)(uintptr_t)peek(p, (ptrdiff_t)u))) << "read just past, size " << n;
		free(p);
	}
}

TEST(HardenedDeathTest, GuardPagesForEveryWayToGetALargeObject)
{
	std::vector<std::pair<uint8_t *, size_t>> v;
	v.push_back({(uint8_t *)calloc(1, 50000), 50000});
	v.push_back({(uint8_t *)realloc(malloc(100), 70000), 70000});
	void *pm = nullptr;
	ASSERT_EQ(posix_memalign(&pm, 4096, 60000), 0);
	v.push_back({(uint8_t *)pm, 60000});
	v.push_back({(uint8_t *)aligned_alloc(8192, 81920), 81920});
	v.push_back({(uint8_t *)new char[45000], 45000});
	for (auto [p, n] : v) {
		ASSERT_NE(p, nullptr);
		size_t u = malloc_usable_size(p);
		ASSERT_GE(u, n);
		memset(p, 7, u);
		EXPECT_SEGV(poke(p, (ptrdiff_t)u, 1)) << "size " << n;
		EXPECT_SEGV(poke(p, -1, 1)) << "size " << n;
	}
	for (size_t i = 0; i + 1 < v.size(); i++)
		free(v[i].first);
	delete[] (char *)v.back().first;
}

TEST(Hardened, GuardPagesAreReleasedWithTheObject)
{
	// Freed guarded spans go back to the page heap readable and writable:
	// the pages are reused by other objects (small and large) that use all
	// of their bytes.
	for (int round = 0; round < 20; round++) {
		std::vector<uint8_t *> large;
		for (int i = 0; i < 50; i++) {
			large.push_back((uint8_t *)malloc(40000 + 8192 * (i % 7)));
			ASSERT_NE(large.back(), nullptr);
		}
		for (auto p : large)
			free(p);
		std::vector<uint8_t *> small;
		for (int i = 0; i < 3000; i++) {
			uint8_t *p = (uint8_t *)malloc(1000);
			ASSERT_NE(p, nullptr);
			memset(p, i, malloc_usable_size(p));
			small.push_back(p);
		}
		for (auto p : small)
			free(p);
		uint8_t *big = (uint8_t *)malloc(4 << 20);
		ASSERT_NE(big, nullptr);
		memset(big, 3, 4 << 20);
		free(big);
	}
}

// ---- the always-on checks, in hardened mode ----------------------------------

TEST(HardenedDeathTest, BadFreesAreReportedAsWithoutHardening)
{
	void *s = malloc(64), *l = malloc(100000);
	char on_stack[64];
	escape(on_stack);
	EXPECT_ABORT({ free(s); free(opaque_ptr(s)); }, msg("free", s, kDouble));
	EXPECT_ABORT({ free(l); free(opaque_ptr(l)); }, msg("free", l, kNotInUse));
	EXPECT_ABORT(free((char *)opaque_ptr(s) + 16), msg("free", (char *)s + 16, kInterior));
	EXPECT_ABORT(free((char *)opaque_ptr(l) + 8192), msg("free", (char *)l + 8192, kInterior));
	// The start of the span is the front guard page, not the object.
	EXPECT_ABORT(free((char *)opaque_ptr(l) - 8192), msg("free", (char *)l - 8192, kInterior));
	EXPECT_ABORT(free(opaque_ptr(on_stack)), msg("free", on_stack, kNotOurs));
	EXPECT_ABORT({ free(s); escape(realloc(opaque_ptr(s), 10)); }, msg("realloc", s, kDouble));
	EXPECT_ABORT({ free(l); escape(realloc(opaque_ptr(l), 10)); }, msg("realloc", l, kNotInUse));
	EXPECT_ABORT(
		{
			free(s);
			std::thread t([s] { free(opaque_ptr(s)); });
			t.join();
		},
		msg("free", s, kDouble));
	EXPECT_ABORT(
		{
			std::thread t([l] { free(l); });
			t.join();
			free(opaque_ptr(l));
		},
		msg("free", l, kNotInUse));
	free(s);
	free(l);
}

TEST(HardenedDeathTest, WriteAfterFreeIsCaughtAtReuse)
{
	void *p = malloc(64);
	EXPECT_ABORT(
		{
			free(p);
			*(volatile uint64_t *)opaque_ptr(p) = 0x4141414141414141ull;
			// Hardened refills are shuffled: allocate until p comes back.
			for (int i = 0; i < 100000; i++)
				escape(malloc(64));
		},
		msg("malloc", p, kCorrupt));
	free(p);
}

TEST(HardenedDeathTest, WriteAfterFreeOfEverySizeIsCaughtAtReuse)
{
	// Any value counts, zero included: clearing the first word erases the
	// free mark as surely as a forged pointer does.
	for (size_t n : {size_t(8), size_t(500), size_t(8000)})
		for (uint64_t v : {uint64_t(0), uint64_t(0x4141414141414141ull)}) {
			void *p = malloc(n);
			ASSERT_NE(p, nullptr);
			EXPECT_ABORT(
				{
					free(p);
					*(volatile uint64_t *)opaque_ptr(p) = v;
					for (int i = 0; i < 100000; i++)
						escape(malloc(n));
				},
				msg("malloc", p, kCorrupt))
				<< "size " << n << " value " << v;
			free(p);
		}
}

// ---- randomisation -------------------------------------------------------------

TEST(Hardened, RefillsAreShuffled)
{
	// Without hardening a refill hands out a span's objects in address order;
	// hardened, the next object is rarely the neighbour of the last one.
	const int kN = 2000;
	std::vector<uintptr_t> v;
	for (int i = 0; i < kN; i++)
		v.push_back((uintptr_t)malloc(200));
	size_t slot = malloc_usable_size((void *)v[0]) + 8;
	int next_door = 0;
	for (int i = 1; i < kN; i++)
		next_door += v[i] == v[i - 1] + slot || v[i] + slot == v[i - 1];
	EXPECT_LT(next_door, kN / 4) << "consecutive mallocs return neighbouring objects " << next_door << " times of "
				     << kN;
	std::set<uintptr_t> distinct(v.begin(), v.end());
	EXPECT_EQ(distinct.size(), v.size());
	for (auto p : v)
		free((void *)p);
}

// ---- a workload: threads, cross-thread frees, content checks -------------------

TEST(Hardened, ThreadsWithCrossThreadFreesKeepEveryByte)
{
	const int kThreads = 4, kOps = 60000, kSlots = 512;
	std::atomic<int> bad{0};
	std::vector<std::atomic<uintptr_t>> mailbox(kSlots);
	std::vector<std::atomic<size_t>> mailsize(kSlots);
	std::vector<std::thread> ts;
	for (int t = 0; t < kThreads; t++)
		ts.emplace_back([&, t] {
			Rng r(77 + t);
			struct O {
				uint8_t *p;
				size_t n;
			};
			std::vector<O> mine(256, O{nullptr, 0});
			for (int i = 0; i < kOps; i++) {
				size_t k = r.below(mine.size());
				O &o = mine[k];
				if (o.p) {
					if (check(o.p, o.n, (uintptr_t)o.p ^ o.n) != (size_t)-1)
						bad++;
					unsigned act = (unsigned)r.below(10);
					if (act < 3) {
						// Hand it to whoever picks up this mailbox slot.
						size_t m = r.below(kSlots);
						uintptr_t old = mailbox[m].exchange((uintptr_t)o.p);
						size_t oldn = mailsize[m].exchange(o.n);
						(void)oldn;
						if (old)
							free((void *)old); // another thread's object
						o.p = nullptr;
						continue;
					}
					if (act < 5) {
						size_t n2 = r.below(8) == 0 ? r.range(32761, 200000) : r.range(1, 3000); // 0 would free
						uint8_t *q = (uint8_t *)realloc(o.p, n2);
						if (!q) {
							bad++;
							continue;
						}
						if (check(q, std::min(n2, o.n), (uintptr_t)o.p ^ o.n) != (size_t)-1)
							bad++;
						o.p = q;
						o.n = n2;
						fill(q, n2, (uintptr_t)q ^ n2);
						continue;
					}
					free(o.p);
					o.p = nullptr;
				} else {
					size_t n = r.below(50) == 0 ? r.range(32761, 300000) : r.range(0, 2048);
					uint8_t *p = r.below(4) == 0 ? (uint8_t *)calloc(1, n) : (uint8_t *)malloc(n);
					if (!p) {
						bad++;
						continue;
					}
					o = O{p, n};
					fill(p, n, (uintptr_t)p ^ n);
				}
			}
			for (auto &o : mine)
				free(o.p);
		});
	for (auto &t : ts)
		t.join();
	for (auto &m : mailbox)
		free((void *)m.load());
	EXPECT_EQ(bad.load(), 0);
}
