// malloc_test.cc — conformance of the C allocation API: sizes, alignment,
// failures (errno), realloc, calloc, and that the program really runs on
// numaheap (the test binary is linked with the shared library).
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <malloc.h>
#include <sys/sysinfo.h>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "api_util.h"
#include "numaheap.h"

// ---- linkage: every allocation function of the process is numaheap's ------------

TEST(Linkage, MallocComesFromNumaheap)
{
	void *p = malloc(10);
	ASSERT_NE(p, nullptr);
	EXPECT_EQ(numaheap_node_of(p), 0);
	EXPECT_GE((uintptr_t)p, (uintptr_t)0x100000000000ull);
	free(p);
	int on_stack = 0;
	EXPECT_EQ(numaheap_node_of(&on_stack), -1);
	EXPECT_EQ(numaheap_node_of(nullptr), -1);
	EXPECT_STREQ(numaheap_version(), NUMAHEAP_VERSION_STRING);
}

TEST(Linkage, EveryEntryPointAllocatesFromTheHeap)
{
	std::vector<void *> ps;
	ps.push_back(malloc(100));
	ps.push_back(malloc(100000));
	ps.push_back(calloc(3, 7));
	ps.push_back(realloc(nullptr, 50));
	ps.push_back(reallocarray(nullptr, 5, 9));
	void *pm = nullptr;
	ASSERT_EQ(posix_memalign(&pm, 64, 100), 0);
	ps.push_back(pm);
	ps.push_back(aligned_alloc(256, 512));
	ps.push_back(memalign(128, 77));
	ps.push_back(valloc(100));
	ps.push_back(pvalloc(100));
	ps.push_back(strdup("hello, numaheap")); // glibc's own internal malloc call
	for (void *p : ps) {
		ASSERT_NE(p, nullptr);
		EXPECT_EQ(numaheap_node_of(p), 0) << p;
	}
	for (void *p : ps)
		free(p);
	std::string s(1000, 'x'); // libstdc++ -> operator new -> numaheap
	EXPECT_EQ(numaheap_node_of(s.data()), 0);
}

// glibc's other names (__libc_malloc and the rest, cfree) are numaheap's
// too: a block from one name is freed by another.
TEST(Linkage, GlibcsOtherNamesAreNumaheaps)
{
	const char *names[] = {"__libc_malloc",	 "__libc_free",	  "__libc_calloc",    "__libc_realloc", "__libc_memalign",
			       "__libc_valloc",	 "__libc_pvalloc", "__posix_memalign", "cfree"};
	for (const char *name : names) {
		void *f = dlsym(RTLD_DEFAULT, name);
		ASSERT_NE(f, nullptr) << name;
		Dl_info info{};
		ASSERT_NE(dladdr(f, &info), 0) << name;
		EXPECT_NE(strstr(info.dli_fname, "libnumaheap"), nullptr) << name << " is " << info.dli_fname << "'s";
	}
	auto libc_malloc = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
	auto libc_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
	auto libc_free = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
	void *a = libc_malloc(100), *b = libc_memalign(256, 1000), *c = malloc(300);
	for (void *p : {a, b, c})
		EXPECT_EQ(numaheap_node_of(p), 0) << p;
	EXPECT_TRUE(aligned_to(b, 256));
	free(a);
	free(b);
	libc_free(c);
}

// ---- malloc: every size up to 70000 ---------------------------------------------

TEST(Malloc, EverySizeIsAlignedAndUsable)
{
	size_t prev_usable = 0;
	for (size_t n = 0; n <= 70000; n++) {
		void *p = malloc(n);
		ASSERT_NE(p, nullptr) << "size " << n;
		ASSERT_TRUE(aligned_to(p, min_align(n))) << "size " << n << " at " << p;
		size_t u = malloc_usable_size(p);
		ASSERT_GE(u, n) << "size " << n;
		ASSERT_GE(u, prev_usable) << "usable size must not shrink as the request grows, size " << n;
		if (n > kMaxSmall)
			ASSERT_EQ(u, large_usable(n)) << "large objects are whole pages, size " << n;
		else
			ASSERT_LE(u, kMaxSmall) << "size " << n;
		ASSERT_EQ(u % min_align(n), 0u) << "size " << n;
		prev_usable = u;
		// The whole usable size is the program's: write all of it.
		memset(p, (int)(n & 0xff), u);
		free(p);
	}
}

// glibc's guarantee, which compilers rely on (max_align_t is 16): every
// block is 16-byte aligned, the tiniest too. Many at once, so an 8-byte
// class would show (every other object of it is only 8-aligned).
TEST(Malloc, TinyBlocksAre16ByteAligned)
{
	std::vector<void *> v;
	size_t misaligned = 0;
	for (int i = 0; i < 4096; i++) {
		void *p = malloc((size_t)(i % 9));
		ASSERT_NE(p, nullptr);
		misaligned += !aligned_to(p, 16);
		v.push_back(p);
	}
	if (tiny_class_on()) {
		EXPECT_GT(misaligned, 0u) << "NUMAHEAP_MIN_ALIGN=8: requests of 1-8 bytes use the 8-byte class";
		void *p = malloc(8);
		EXPECT_EQ(malloc_usable_size(p), 8u);
		free(p);
	} else {
		EXPECT_EQ(misaligned, 0u) << "blocks of 0-8 bytes that are only 8-byte aligned";
		void *p = malloc(1);
		EXPECT_EQ(malloc_usable_size(p), 16u);
		free(p);
	}
	for (void *p : v)
		free(p);
}

TEST(Malloc, UsableSizeIsTheSizeClass)
{
	// Asking for exactly the usable size gets the same usable size (it is a
	// class), and the waste stays within what the class table promises.
	for (size_t n = 1; n <= 70000; n += (n < 1100 ? 1 : 7)) {
		void *p = malloc(n);
		ASSERT_NE(p, nullptr);
		size_t u = malloc_usable_size(p);
		void *q = malloc(u);
		ASSERT_NE(q, nullptr);
		EXPECT_EQ(malloc_usable_size(q), u) << "size " << n;
		if (n > 16 && n <= kMaxSmall) {
			EXPECT_LE(u - n, n / 2 + 16) << "size " << n;
		}
		free(q);
		free(p);
	}
}

TEST(Malloc, LiveObjectsOfEverySizeDoNotOverlap)
{
	// Three live objects per size, each filled with its own pattern.
	for (size_t n = 0; n <= 70000; n += (n < 2000 ? 1 : n < 33000 ? 13 : 511)) {
		void *p[3];
		for (int k = 0; k < 3; k++) {
			p[k] = malloc(n);
			ASSERT_NE(p[k], nullptr);
			fill_pattern(p[k], n, n * 3 + k);
		}
		for (int k = 0; k < 3; k++) {
			ASSERT_EQ(check_pattern(p[k], n, n * 3 + k), (size_t)-1) << "size " << n << " object " << k;
			free(p[k]);
		}
	}
}

TEST(Malloc, ManyLiveSmallObjectsAreDisjoint)
{
	std::vector<std::pair<uintptr_t, size_t>> live;
	for (int round = 0; round < 4; round++)
		for (size_t n = 0; n <= 4096; n += 3) {
			void *p = malloc(n);
			ASSERT_NE(p, nullptr);
			fill_pattern(p, n, live.size());
			live.emplace_back((uintptr_t)p, n);
		}
	for (size_t i = 0; i < live.size(); i++)
		ASSERT_EQ(check_pattern((void *)live[i].first, live[i].second, i), (size_t)-1) << "object " << i;
	std::vector<std::pair<uintptr_t, size_t>> sorted = live;
	std::sort(sorted.begin(), sorted.end());
	for (size_t i = 1; i < sorted.size(); i++)
		ASSERT_LE(sorted[i - 1].first + malloc_usable_size((void *)sorted[i - 1].first), sorted[i].first);
	for (auto &o : live)
		free((void *)o.first);
}

TEST(Malloc, ZeroSizeGivesDistinctFreeablePointers)
{
	void *a = malloc(0), *b = malloc(0);
	ASSERT_NE(a, nullptr);
	ASSERT_NE(b, nullptr);
	EXPECT_NE(a, b);
	EXPECT_GE(malloc_usable_size(a), 8u);
	free(a);
	free(b);
	free(nullptr); // a no-op
	EXPECT_EQ(malloc_usable_size(nullptr), 0u);
}

// ---- failures: NULL and ENOMEM, never a crash ------------------------------------

TEST(Failure, ImpossibleSizesGiveEnomem)
{
	errno = 0;
	EXPECT_EQ(malloc(opaque(SIZE_MAX)), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(malloc(opaque(1ull << 50)), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(malloc(opaque(SIZE_MAX - 8192)), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(calloc(opaque(SIZE_MAX / 2), 3), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(calloc(opaque(1ull << 25), 1ull << 25), nullptr); // no overflow, just too big
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(reallocarray(nullptr, opaque(SIZE_MAX / 2), 3), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(realloc(nullptr, opaque(SIZE_MAX)), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(valloc(opaque(SIZE_MAX)), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(pvalloc(opaque(SIZE_MAX)), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(aligned_alloc(64, opaque(SIZE_MAX)), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	errno = 0;
	EXPECT_EQ(memalign(4096, opaque(1ull << 50)), nullptr);
	EXPECT_EQ(errno, ENOMEM);
	// The heap still works afterwards.
	void *p = malloc(100);
	ASSERT_NE(p, nullptr);
	free(p);
}

// A block larger than RAM and swap together: the kernel's heuristic
// overcommit (vm.overcommit_memory=0, the default) refuses such a mapping,
// and glibc's malloc gives NULL; numaheap's arenas are mapped so that the
// kernel's check never sees them, and it gave a block the program would be
// killed for touching (malloc(1000 GiB) on a 24 GiB machine). Strict
// overcommit (2) refuses it too; only "always" (1) grants it.
TEST(Failure, LargerThanRamAndSwapGivesEnomem)
{
	struct sysinfo si;
	ASSERT_EQ(sysinfo(&si), 0);
	size_t total = ((size_t)si.totalram + (size_t)si.totalswap) * si.mem_unit;
	int mode = -1;
	if (FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r")) {
		if (fscanf(f, "%d", &mode) != 1)
			mode = -1;
		fclose(f);
	}
	ASSERT_GE(mode, 0) << "cannot read vm.overcommit_memory";
	for (size_t n : {total + (size_t(1) << 30), 2 * total}) {
		errno = 0;
		void *p = malloc(opaque(n));
		if (mode == 1) {
			EXPECT_NE(p, nullptr) << n; // "always": granted, as glibc's is (never touched here)
		} else {
			EXPECT_EQ(p, nullptr) << n << " bytes, RAM and swap " << total;
			EXPECT_EQ(errno, ENOMEM);
		}
		free(p);
		void *q = malloc(100);
		fill_pattern(q, 100, 7);
		errno = 0;
		void *r = realloc(q, opaque(n));
		if (mode != 1) {
			EXPECT_EQ(r, nullptr);
			EXPECT_EQ(errno, ENOMEM);
			EXPECT_EQ(check_pattern(q, 100, 7), (size_t)-1);
			free(q);
		} else {
			free(r ? r : q);
		}
	}
	// Half of RAM is still granted (not touched), but where commits are
	// charged against a limit (strict overcommit).
	if (mode != 2) {
		void *half = malloc(opaque((size_t)si.totalram * si.mem_unit / 2));
		EXPECT_NE(half, nullptr);
		free(half);
	}
}

TEST(Failure, FailedReallocLeavesTheBlockIntact)
{
	for (size_t n : {size_t(24), size_t(1000), size_t(32768), size_t(100000), size_t(3 << 20)}) {
		void *p = malloc(n);
		ASSERT_NE(p, nullptr);
		fill_pattern(p, n, n);
		errno = 0;
		EXPECT_EQ(realloc(p, opaque(SIZE_MAX)), nullptr);
		EXPECT_EQ(errno, ENOMEM);
		errno = 0;
		EXPECT_EQ(realloc(p, opaque(1ull << 50)), nullptr);
		EXPECT_EQ(errno, ENOMEM);
		errno = 0;
		EXPECT_EQ(reallocarray(p, opaque(SIZE_MAX / 2), 3), nullptr);
		EXPECT_EQ(errno, ENOMEM);
		EXPECT_EQ(check_pattern(p, n, n), (size_t)-1) << "size " << n;
		EXPECT_EQ(numaheap_node_of(p), 0);
		free(p);
	}
}

// ---- aligned allocation ------------------------------------------------------------

static std::vector<size_t> sizes_for_alignment(size_t a)
{
	std::vector<size_t> v = {0, 1, 8, 16, 100, a - 1, a, a + 1, 3 * a, 5000, 40000};
	if (a <= (1u << 20))
		v.push_back(4 * a + 17);
	v.erase(std::remove_if(v.begin(), v.end(), [](size_t n) { return n > (64u << 20); }), v.end());
	return v;
}

enum class AlignFn { PosixMemalign, AlignedAlloc, Memalign };

static void *alloc_with(AlignFn fn, size_t a, size_t n)
{
	switch (fn) {
	case AlignFn::PosixMemalign: {
		void *p = (void *)0x1;
		int r = posix_memalign(&p, a, n);
		EXPECT_EQ(r, 0) << "align " << a << " size " << n;
		return r == 0 ? p : nullptr;
	}
	case AlignFn::AlignedAlloc:
		return aligned_alloc(a, n);
	case AlignFn::Memalign:
		return memalign(a, n);
	}
	return nullptr;
}

class Aligned : public ::testing::TestWithParam<AlignFn> {};

TEST_P(Aligned, EveryPowerOfTwoFrom8To4MiB)
{
	for (size_t a = 8; a <= (4u << 20); a *= 2) {
		std::vector<void *> live;
		for (size_t n : sizes_for_alignment(a)) {
			void *p = alloc_with(GetParam(), a, n);
			ASSERT_NE(p, nullptr) << "align " << a << " size " << n;
			ASSERT_TRUE(aligned_to(p, a)) << "align " << a << " size " << n << " got " << p;
			ASSERT_GE(malloc_usable_size(p), n) << "align " << a << " size " << n;
			ASSERT_EQ(numaheap_node_of(p), 0);
			fill_pattern(p, n, a + n);
			live.push_back(p);
		}
		size_t i = 0;
		for (size_t n : sizes_for_alignment(a)) {
			ASSERT_EQ(check_pattern(live[i], n, a + n), (size_t)-1) << "align " << a << " size " << n;
			free(live[i++]);
		}
	}
}

TEST_P(Aligned, ManyLiveAlignedObjects)
{
	// Alignment must hold for every object, not just the first of a span.
	for (size_t a : {32u, 64u, 128u, 512u, 4096u, 8192u, 65536u}) {
		std::vector<void *> live;
		for (int i = 0; i < 300; i++) {
			size_t n = 1 + (size_t)(i * 37) % (a < 4096 ? 3 * a : 20000);
			void *p = alloc_with(GetParam(), a, n);
			ASSERT_NE(p, nullptr);
			ASSERT_TRUE(aligned_to(p, a)) << "align " << a << " size " << n << " got " << p;
			memset(p, 0x5c, n);
			live.push_back(p);
		}
		for (void *p : live)
			free(p);
	}
}

INSTANTIATE_TEST_SUITE_P(AllFunctions, Aligned,
			 ::testing::Values(AlignFn::PosixMemalign, AlignFn::AlignedAlloc, AlignFn::Memalign),
			 [](const ::testing::TestParamInfo<AlignFn> &i) {
				 switch (i.param) {
				 case AlignFn::PosixMemalign: return std::string("posix_memalign");
				 case AlignFn::AlignedAlloc: return std::string("aligned_alloc");
				 default: return std::string("memalign");
				 }
			 });

TEST(Aligned, PosixMemalignRejectsBadAlignments)
{
	for (size_t a : {size_t(0), size_t(1), size_t(2), size_t(3), size_t(4), size_t(6), size_t(12), size_t(24),
			 size_t(48), size_t(100), size_t(4097), size_t(SIZE_MAX), size_t(SIZE_MAX / 2)}) {
		void *p = (void *)0x1234;
		errno = 0;
		EXPECT_EQ(posix_memalign(&p, a, 64), EINVAL) << "align " << a;
		EXPECT_EQ(p, (void *)0x1234) << "memptr must not change on failure, align " << a;
		EXPECT_EQ(errno, 0) << "posix_memalign returns its error, align " << a;
	}
}

TEST(Aligned, PosixMemalignOutOfMemory)
{
	void *p = (void *)0x1234;
	errno = 1234;
	EXPECT_EQ(posix_memalign(&p, 64, opaque(SIZE_MAX)), ENOMEM);
	EXPECT_EQ(p, (void *)0x1234);
	EXPECT_EQ(errno, ENOMEM) << "posix_memalign leaves errno ENOMEM on failure, as glibc's does";
	EXPECT_EQ(posix_memalign(&p, 8192, opaque(1ull << 50)), ENOMEM);
	EXPECT_EQ(p, (void *)0x1234);
}

TEST(Aligned, AlignedAllocRejectsNonPowersOfTwo)
{
	for (size_t a : {size_t(0), size_t(3), size_t(6), size_t(12), size_t(24), size_t(100), size_t(4097)}) {
		errno = 0;
		EXPECT_EQ(aligned_alloc(a, 96), nullptr) << "align " << a;
		EXPECT_EQ(errno, EINVAL) << "align " << a;
	}
	// Small powers of two are fine (at least the fundamental alignment).
	for (size_t a : {size_t(1), size_t(2), size_t(4)}) {
		void *p = aligned_alloc(a, 24);
		ASSERT_NE(p, nullptr);
		EXPECT_TRUE(aligned_to(p, a));
		free(p);
	}
}

TEST(Aligned, MemalignRoundsOddAlignmentsUp)
{
	struct {
		size_t asked, expect;
	} cases[] = {{3, 4}, {24, 32}, {48, 64}, {100, 128}, {3000, 4096}, {5000, 8192}, {70000, 131072}};
	for (auto c : cases) {
		void *p = memalign(c.asked, 200);
		ASSERT_NE(p, nullptr) << "align " << c.asked;
		EXPECT_TRUE(aligned_to(p, c.expect)) << "align " << c.asked << " got " << p;
		free(p);
	}
	errno = 0;
	EXPECT_EQ(memalign(opaque(SIZE_MAX / 2 + 2), 16), nullptr);
	EXPECT_EQ(errno, EINVAL);
}

TEST(Aligned, VallocAndPvalloc)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t n : {size_t(0), size_t(1), size_t(100), ps - 1, ps, ps + 1, size_t(50000), size_t(1 << 20)}) {
		void *v = valloc(n);
		ASSERT_NE(v, nullptr);
		EXPECT_TRUE(aligned_to(v, ps)) << "valloc " << n;
		EXPECT_GE(malloc_usable_size(v), n);
		memset(v, 1, n);
		void *q = pvalloc(n);
		ASSERT_NE(q, nullptr);
		EXPECT_TRUE(aligned_to(q, ps)) << "pvalloc " << n;
		size_t want = n ? round_up(n, ps) : ps;
		EXPECT_GE(malloc_usable_size(q), want) << "pvalloc rounds up to whole pages, size " << n;
		memset(q, 2, want);
		free(v);
		free(q);
	}
}

TEST(Aligned, FreeSizedAndFreeAlignedSized)
{
	for (size_t n : {size_t(1), size_t(48), size_t(5000), size_t(40000), size_t(1 << 20)}) {
		void *p = malloc(n);
		ASSERT_NE(p, nullptr);
		free_sized(p, n);
		void *q = aligned_alloc(256, n);
		ASSERT_NE(q, nullptr);
		free_aligned_sized(q, 256, n);
	}
	free_sized(nullptr, 0);
	free_aligned_sized(nullptr, 64, 0);
	// Memory given back by free_sized is reused: the heap does not leak it.
	struct mallinfo2 before = mallinfo2();
	for (int i = 0; i < 2000; i++)
		free_sized(malloc(200000), 200000);
	struct mallinfo2 after = mallinfo2();
	EXPECT_LE(after.uordblks, before.uordblks + (1u << 20));
}

// ---- realloc -------------------------------------------------------------------------

TEST(Realloc, NullIsMallocAndZeroFrees)
{
	void *p = realloc(nullptr, 100);
	ASSERT_NE(p, nullptr);
	EXPECT_EQ(numaheap_node_of(p), 0);
	EXPECT_GE(malloc_usable_size(p), 100u);
	EXPECT_EQ(realloc(p, 0), nullptr);
	// A large object given back by realloc(p, 0) no longer belongs to the heap's spans.
	void *big = malloc(1 << 20);
	ASSERT_NE(big, nullptr);
	EXPECT_EQ(realloc(big, 0), nullptr);
	EXPECT_EQ(numaheap_node_of(big), -1);
	void *z = realloc(nullptr, 0);
	if (z) // glibc returns a minimum chunk; either way it can be freed
		free(z);
}

struct ReallocCase {
	size_t from, to;
};

static void check_realloc_preserves(size_t from, size_t to)
{
	void *p = malloc(from);
	ASSERT_NE(p, nullptr);
	fill_pattern(p, from, from ^ (to << 20));
	void *q = realloc(p, to);
	ASSERT_NE(q, nullptr) << from << " -> " << to;
	EXPECT_TRUE(aligned_to(q, min_align(to)));
	ASSERT_GE(malloc_usable_size(q), to);
	ASSERT_EQ(check_pattern(q, std::min(from, to), from ^ (to << 20)), (size_t)-1) << from << " -> " << to;
	memset(q, 0x77, to); // all of the new size is writable
	free(q);
}

TEST(Realloc, PreservesContentsAcrossClassesAndKinds)
{
	const ReallocCase cases[] = {
		// small -> small (grow, shrink, across classes)
		{1, 9}, {8, 16}, {16, 17}, {24, 1000}, {1000, 24}, {4000, 32768}, {32768, 100},
		// small -> large, large -> small
		{100, 40000}, {32768, 32769}, {30000, 5 << 20}, {40000, 100}, {5 << 20, 32000}, {32769, 32768},
		// large -> large
		{40000, 80000}, {80000, 40000}, {1 << 20, 3 << 20}, {3 << 20, 1 << 20}, {1 << 20, (1 << 20) + 1},
		{100000, 16 << 20}, {16 << 20, 100000},
	};
	for (auto c : cases)
		check_realloc_preserves(c.from, c.to);
}

TEST(Realloc, GrowingStepByStepKeepsEveryByte)
{
	// A buffer grown a little at a time, the way programs build strings.
	size_t n = 1;
	unsigned char *p = (unsigned char *)malloc(n);
	ASSERT_NE(p, nullptr);
	p[0] = pattern_byte(42, 0);
	while (n < (3u << 20)) {
		size_t m = n + n / 3 + 1;
		p = (unsigned char *)realloc(p, m);
		ASSERT_NE(p, nullptr);
		for (size_t i = n; i < m; i++)
			p[i] = pattern_byte(42, i);
		n = m;
		ASSERT_EQ(check_pattern(p, n, 42), (size_t)-1) << "size " << n;
	}
	while (n > 1) { // and shrunk again
		n = n / 2;
		p = (unsigned char *)realloc(p, n);
		ASSERT_NE(p, nullptr);
		ASSERT_EQ(check_pattern(p, n, 42), (size_t)-1) << "size " << n;
	}
	free(p);
}

TEST(Realloc, StaysInPlaceWithinTheSizeClass)
{
	for (size_t n = 1; n <= kMaxSmall; n += (n < 512 ? 1 : 97)) {
		void *p = malloc(n);
		ASSERT_NE(p, nullptr);
		size_t u = malloc_usable_size(p);
		fill_pattern(p, n, n);
		// Growing up to the usable size, and shrinking by a little, fit the class.
		EXPECT_EQ(realloc(p, u), p) << "size " << n << " usable " << u;
		EXPECT_EQ(realloc(p, n), p) << "size " << n;
		EXPECT_EQ(check_pattern(p, n, n), (size_t)-1);
		free(p);
	}
}

TEST(Realloc, LargeShrinkStaysInPlace)
{
	for (size_t from : {size_t(40000), size_t(100000), size_t(1 << 20), size_t(8 << 20)}) {
		void *p = malloc(from);
		ASSERT_NE(p, nullptr);
		fill_pattern(p, from, from);
		size_t to = from;
		while (to / 2 > kMaxSmall) {
			to /= 2;
			void *q = realloc(p, to);
			ASSERT_EQ(q, p) << "shrinking a large object " << from << " -> " << to << " should not move";
			EXPECT_EQ(malloc_usable_size(q), large_usable(to));
			ASSERT_EQ(check_pattern(q, to, from), (size_t)-1);
		}
		// Within the same page count is in place too.
		size_t u = malloc_usable_size(p);
		EXPECT_EQ(realloc(p, u - 1), p);
		EXPECT_EQ(realloc(p, u), p);
		free(p);
	}
}

TEST(Realloc, ShrunkLargeObjectReturnsItsTail)
{
	// The pages cut off by a shrink are free again: after shrinking, the heap's
	// large in-use bytes drop by what was cut.
	void *p = malloc(8 << 20);
	ASSERT_NE(p, nullptr);
	struct mallinfo2 before = mallinfo2();
	void *q = realloc(p, 1 << 20);
	ASSERT_EQ(q, p);
	struct mallinfo2 after = mallinfo2();
	EXPECT_EQ(before.hblkhd - after.hblkhd, (size_t)(7 << 20));
	free(q);
}

TEST(Realloc, ReallocarrayMultiplies)
{
	int *p = (int *)reallocarray(nullptr, 10, sizeof(int));
	ASSERT_NE(p, nullptr);
	for (int i = 0; i < 10; i++)
		p[i] = i * i;
	p = (int *)reallocarray(p, 100000, sizeof(int));
	ASSERT_NE(p, nullptr);
	EXPECT_GE(malloc_usable_size(p), 100000 * sizeof(int));
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(p[i], i * i);
	free(p);
}

// ---- calloc ---------------------------------------------------------------------------
//
// calloc zeroes the whole usable size, not only the bytes asked for: glibc
// does, and malloc_usable_size tells the program the rest is its to use
// (bionic's calloc_usable_size test found the tail dirty).

static void calloc_dirty_rounds(size_t n, int rounds)
{
	for (int r = 0; r < rounds; r++) {
		// Dirty several objects of this size, free them, and calloc them back.
		void *d[4];
		for (auto &x : d) {
			x = malloc(n);
			ASSERT_NE(x, nullptr);
			memset(x, 0xAA, malloc_usable_size(x));
		}
		for (auto &x : d)
			free(x);
		for (int k = 0; k < 4; k++) {
			void *p = calloc(1, n);
			ASSERT_NE(p, nullptr);
			ASSERT_TRUE(all_bytes(p, n, 0)) << "calloc(" << n << ") returned dirty memory, round " << r;
			ASSERT_TRUE(all_bytes(p, malloc_usable_size(p), 0))
				<< "calloc(" << n << "): dirty beyond the request, within the usable size "
				<< malloc_usable_size(p) << ", round " << r;
			d[k] = p;
		}
		for (auto &x : d)
			free(x);
	}
}

TEST(Calloc, ZeroedAfterReuseSmall)
{
	for (size_t n = 1; n <= kMaxSmall; n += (n < 1024 ? 1 : 61))
		calloc_dirty_rounds(n, 3);
}

TEST(Calloc, ZeroedAfterReuseLarge)
{
	for (size_t n : {size_t(32769), size_t(40000), size_t(65536), size_t(100001), size_t(1 << 20),
			 size_t((1 << 20) + 4096), size_t(3 << 20), size_t(9 << 20)})
		calloc_dirty_rounds(n, 6);
}

TEST(Calloc, ZeroedAfterReuseOfDifferentSizes)
{
	// Pages from a freed large object reused by a smaller or split large calloc,
	// and small spans that lived in freed pages.
	for (int r = 0; r < 20; r++) {
		void *big = malloc(4 << 20);
		ASSERT_NE(big, nullptr);
		memset(big, 0xAA, 4 << 20);
		free(big);
		std::vector<void *> v;
		for (size_t n : {size_t(1 << 20), size_t(100000), size_t(40000), size_t(20000), size_t(3000), size_t(48)}) {
			void *p = calloc(n, 1);
			ASSERT_NE(p, nullptr);
			ASSERT_TRUE(all_bytes(p, malloc_usable_size(p), 0)) << "calloc(" << n << ") dirty, round " << r;
			v.push_back(p);
		}
		for (void *p : v)
			free(p);
	}
}

TEST(Calloc, NmembTimesSize)
{
	for (size_t nmemb : {size_t(0), size_t(1), size_t(3), size_t(1000), size_t(70000)})
		for (size_t size : {size_t(0), size_t(1), size_t(7), size_t(16), size_t(100)}) {
			char *p = (char *)calloc(nmemb, size);
			ASSERT_NE(p, nullptr);
			EXPECT_GE(malloc_usable_size(p), nmemb * size);
			EXPECT_TRUE(all_bytes(p, malloc_usable_size(p), 0));
			free(p);
		}
}

// ---- very large objects ------------------------------------------------------------------

// The machine's overcommit policy decides whether a huge untouched mapping is
// possible at all: under strict accounting (2) ENOMEM is the right answer.
static bool overcommit_strict()
{
	FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
	int mode = 0;
	if (f) {
		if (fscanf(f, "%d", &mode) != 1)
			mode = 0;
		fclose(f);
	}
	return mode == 2;
}

TEST(HugeAllocation, MoreThan16GiBSucceeds)
{
	if (overcommit_strict())
		GTEST_SKIP() << "vm.overcommit_memory=2: a 16 GiB mapping may rightly fail here";
	// 16 GiB + one page (glibc's malloc gives this on the same machine: the
	// pages are never touched except the two written below).
	const size_t n = (16ull << 30) + kPage;
	errno = 0;
	char *p = (char *)malloc(opaque(n));
	ASSERT_NE(p, nullptr) << "malloc(16 GiB + 8 KiB) failed, errno " << errno;
	EXPECT_EQ(numaheap_node_of(p), 0);
	EXPECT_GE(malloc_usable_size(p), n);
	p[0] = 1;
	p[n - 1] = 2;
	EXPECT_EQ(p[0] + p[n - 1], 3);
	free(p);
}

TEST(HugeAllocation, RepeatingAHugeRequestDoesNotGrowTheHeapEachTime)
{
	if (overcommit_strict())
		GTEST_SKIP() << "vm.overcommit_memory=2";
	// Whether or not the request succeeds, the second and third attempts must
	// not map yet more arenas: a free page run is reused, and a request that
	// cannot be served must not leave its growth behind.
	const size_t n = (17ull << 30) + 3 * kPage;
	size_t arena[3];
	for (int i = 0; i < 3; i++) {
		void *p = malloc(opaque(n));
		free(p);
		arena[i] = mallinfo2().arena;
	}
	EXPECT_EQ(arena[1], arena[0]) << "mapped bytes " << arena[0] << " -> " << arena[1];
	EXPECT_EQ(arena[2], arena[1]) << "mapped bytes " << arena[1] << " -> " << arena[2];
}
