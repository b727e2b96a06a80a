// heapmeta_test.cc — heap metadata hardening and the bad frees that
// tests/api/badfree_test.cc leaves out. Runs with and without
// NUMAHEAP_HARDENED=1 and with per-thread caches (see CMakeLists.txt).
//
// numaheap keeps no pointers inside free objects: free lists are stacks in
// the per-CPU (or per-thread) slabs and bitmaps in the span structures, all
// outside the user heap. The one word it writes into a freed small object is
// its mark word: a secret cookie mixed with the object's address, which marks
// it freed. That is its first word, where a write over it is caught before
// the object is handed out again. So a use-after-free write has no free-list pointer to
// redirect (the attack "safe-linking" defends against).
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <malloc.h>
#include <new>
#include <pthread.h>
#include <set>
#include <thread>
#include <vector>

#include "../common/double_free.h"
#include "hx_util.h"
#include "numaheap.h"

using namespace hx;

namespace {
NoCoreDumps no_core_dumps;

#define EXPECT_ABORT(stmt, re) EXPECT_EXIT(stmt, ::testing::KilledBySignal(SIGABRT), re)

bool hardened()
{
	const char *e = getenv("NUMAHEAP_HARDENED");
	return e && strcmp(e, "1") == 0;
}

bool in_heap(const void *p) { return numaheap_node_of(p) >= 0; }

// Where a freed object of n bytes holds its mark (src/internal.h, mark_word_as).
size_t mark_offset(size_t) { return 0; }

const size_t kClasses[] = {8, 16, 48, 128, 1024, 4096, 16384, 32000};

// A second free of a large object: "double free" while its span waits in the
// large-span cache, "pointer not in use" once the pages went back.
const std::string kLargeDouble = std::string("(") + kDouble + "|" + kNotInUse + ")";
} // namespace

TEST(HeapMetadata, FreedObjectsHoldNoAllocatorPointers)
{
	// Fill objects, free them, and look: only the mark word changed, and
	// it is the address mixed with a secret, not a pointer. Nothing may
	// allocate between the frees and the looking (it would reuse the
	// objects), so the results go to arrays made beforehand.
	const int kN = 64;
	for (size_t n : kClasses) {
		if (n < 16)
			continue; // nothing but the mark word to look at
		std::vector<uint8_t *> v(kN);
		std::vector<uintptr_t> addrs(kN);
		std::vector<uint64_t> word(kN);
		std::vector<int> body_ok(kN);
		std::vector<uint8_t> expect(n);
		for (int i = 0; i < kN; i++) {
			v[i] = (uint8_t *)malloc(n);
			ASSERT_NE(v[i], nullptr);
			fill(v[i], n, (uintptr_t)v[i]);
			addrs[i] = (uintptr_t)v[i];
		}
		std::sort(addrs.begin(), addrs.end());
		for (auto p : v)
			free(p);
		for (int i = 0; i < kN; i++) {
			const uint8_t *b = (const uint8_t *)opaque_ptr(v[i]);
			fill(expect.data(), n, (uintptr_t)v[i]);
			size_t m = mark_offset(n);
			body_ok[i] = memcmp(b, expect.data(), m) == 0 &&
				     memcmp(b + m + 8, expect.data() + m + 8, n - m - 8) == 0;
			memcpy(&word[i], b + m, 8);
		}
		for (int i = 0; i < kN; i++)
			v[i] = (uint8_t *)malloc(n); // take them back before gtest allocates
		for (int i = 0; i < kN; i++) {
			EXPECT_TRUE(body_ok[i]) << "size " << n << ": the allocator wrote beyond the mark word of a freed object";
			EXPECT_FALSE(std::binary_search(addrs.begin(), addrs.end(), (uintptr_t)word[i]))
				<< "a freed object's mark word points to another free object";
			EXPECT_FALSE(word[i] != 0 && in_heap((void *)word[i]))
				<< "a freed object's mark word is a heap pointer: " << (void *)word[i];
		}
		for (auto p : v)
			free(p);
	}
}

TEST(HeapMetadata, TheFreeMarkIsTheAddressMixedWithOneSecret)
{
	// The mark words of freed objects XOR their addresses to one value per
	// process (numaheap's cookie): never the address itself or zero.
	const int kN = 32;
	std::vector<uint8_t *> v(kN);
	std::vector<uint64_t> mark(kN);
	for (auto &p : v)
		p = (uint8_t *)malloc(64);
	for (auto p : v)
		free(p);
	for (int i = 0; i < kN; i++)
		memcpy(&mark[i], (const uint8_t *)opaque_ptr(v[i]) + mark_offset(64), 8);
	std::vector<uint8_t *> back(kN);
	for (auto &p : back)
		p = (uint8_t *)malloc(64);
	uint64_t secret = mark[0] ^ (uintptr_t)v[0];
	EXPECT_NE(secret, 0u);
	for (int i = 0; i < kN; i++)
		EXPECT_EQ(mark[i] ^ (uintptr_t)v[i], secret) << i;
	for (auto p : back)
		free(p);
}

TEST(HeapMetadata, UseAfterFreeWritesCannotRedirectAllocation)
{
	// The classic free-list poisoning: after free, the program writes a
	// forged pointer (to a stack buffer, to a live object) everywhere in
	// the freed objects except the mark word. The next allocations must
	// still be distinct heap objects, none of them the forged targets.
	alignas(64) static uint8_t target[4096];
	for (size_t n : kClasses) {
		uint8_t *live = (uint8_t *)malloc(n);
		fill(live, n, 99);
		std::vector<uint8_t *> v;
		for (int i = 0; i < 200; i++)
			v.push_back((uint8_t *)malloc(n));
		for (auto p : v)
			free(p);
		for (auto p : v) {
			uint8_t *b = (uint8_t *)opaque_ptr(p);
			for (size_t off = 0; off + 8 <= n; off += 8) {
				if (off == mark_offset(n))
					continue;
				uintptr_t forged = (off / 8) % 2 ? (uintptr_t)target : (uintptr_t)live;
				memcpy(b + off, &forged, 8);
			}
		}
		std::vector<uint8_t *> w;
		for (int i = 0; i < 400; i++) {
			uint8_t *p = (uint8_t *)malloc(n);
			ASSERT_NE(p, nullptr);
			ASSERT_TRUE(in_heap(p)) << "malloc returned " << (void *)p << ", outside the heap";
			ASSERT_FALSE(p >= target && p < target + sizeof target) << "malloc returned the forged pointer";
			ASSERT_NE(p, live) << "malloc returned a live object";
			memset(p, 0x77, n);
			w.push_back(p);
		}
		std::set<uint8_t *> distinct(w.begin(), w.end());
		EXPECT_EQ(distinct.size(), w.size()) << "an object was handed out twice, size " << n;
		EXPECT_EQ(check(live, n, 99), (size_t)-1) << "the live object was overwritten, size " << n;
		for (auto p : w)
			free(p);
		free(live);
	}
}

TEST(HeapMetadataDeathTest, AForgedFirstWordIsNeverFollowed)
{
	// A forged pointer in the first word (the mark word) is never followed:
	// the damage to the mark is reported when the object would be handed
	// out again, in every mode.
	alignas(64) static uint8_t target[256];
	uint8_t *p = (uint8_t *)malloc(48);
	auto forge_and_allocate = [p] {
		free(p);
		uintptr_t forged = (uintptr_t)target;
		memcpy(opaque_ptr(p), &forged, 8);
		bool reused = false;
		for (int i = 0; i < 100000; i++) {
			void *q = malloc(48);
			if (q >= (void *)target && q < (void *)(target + sizeof target))
				_exit(3); // followed the forged pointer
			reused |= q == p;
		}
		_exit(reused ? 0 : 4);
	};
	EXPECT_ABORT(forge_and_allocate(), msg("malloc", p, kCorrupt));
	free(p);
}

// ---- bad frees badfree_test.cc does not cover ---------------------------------------------

TEST(BadFreeMoreDeathTest, FreeOfFreePagesInsideAnArena)
{
	// Inside a mapped arena of the heap, on pages no span holds. The pages
	// are freed inside each death statement: freed in the parent, they
	// could be handed out again (by gtest's own allocations) before the
	// child is forked.
	auto freed_mid = [] {
		uint8_t *big = (uint8_t *)malloc(4 << 20);
		if (!big)
			_exit(3);
		free(big);
		return (void *)(big + (1 << 20));
	};
	const std::string any = "0x[0-9a-f]+";
	auto re = [&](const char *api) { return std::string("numaheap: ") + api + "\\(" + any + "\\): " + kNotInUse; };
	EXPECT_ABORT(free(opaque_ptr(freed_mid())), re("free"));
	EXPECT_ABORT(escape(realloc(opaque_ptr(freed_mid()), 10)), re("realloc"));
	EXPECT_ABORT(escape((void *)malloc_usable_size(opaque_ptr(freed_mid()))), re("malloc_usable_size"));
}

TEST(BadFreeMoreDeathTest, MisalignedPointersIntoSmallObjects)
{
	for (size_t n : kClasses) {
		uint8_t *p = (uint8_t *)malloc(n);
		for (size_t off : {size_t(1), size_t(4), size_t(7), malloc_usable_size(p) - 1})
			if (off > 0 && off < malloc_usable_size(p)) {
				EXPECT_ABORT(free(opaque_ptr(p + off)), msg("free", p + off, kInterior)) << n << "+" << off;
			}
		free(p);
	}
}

TEST(BadFreeMoreDeathTest, OverAlignedLargeObjects)
{
	void *p = nullptr;
	ASSERT_EQ(posix_memalign(&p, 1 << 16, 200000), 0);
	uint8_t *b = (uint8_t *)p;
	EXPECT_ABORT(free(opaque_ptr(b + 8192)), msg("free", b + 8192, kInterior));
	EXPECT_ABORT(free(opaque_ptr(b + 16)), msg("free", b + 16, kInterior));
	EXPECT_ABORT({ free(p); free(opaque_ptr(p)); }, msg("free", p, kLargeDouble));
	free(p);
}

TEST(BadFreeMoreDeathTest, SizedAndAlignedFreeVariants)
{
	char on_stack[64];
	escape(on_stack);
	EXPECT_ABORT(free_sized(opaque_ptr(on_stack), 64), msg("free", on_stack, kNotOurs));
	uint8_t *p = (uint8_t *)aligned_alloc(64, 256);
	EXPECT_ABORT(free_aligned_sized(opaque_ptr(p + 64), 64, 192), msg("free", p + 64, kInterior));
	EXPECT_ABORT(
		{
			free_aligned_sized(p, 64, 256);
			free_aligned_sized(opaque_ptr(p), 64, 256);
			dfree::reuse(256);
		},
		dfree::caught(p));
	free(p);
}

TEST(BadFreeMoreDeathTest, CxxDeleteOfBadPointers)
{
	char on_stack[64];
	escape(on_stack);
	EXPECT_ABORT(::operator delete(opaque_ptr(on_stack)), msg("free", on_stack, kNotOurs));
	EXPECT_ABORT(::operator delete[](opaque_ptr(on_stack), std::nothrow), msg("free", on_stack, kNotOurs));
	int *a = new int[100];
	EXPECT_ABORT(delete[] (int *)opaque_ptr(a + 1), msg("free", a + 1, kInterior));
	EXPECT_ABORT(::operator delete(opaque_ptr(a + 2), sizeof(int) * 98), msg("free", a + 2, kInterior));
	EXPECT_ABORT(::operator delete(opaque_ptr(a + 4), std::align_val_t(16)), msg("free", a + 4, kInterior));
	delete[] a;
	int *big = new int[100000];
	EXPECT_ABORT({ delete[] big; ::operator delete[](opaque_ptr(big), std::nothrow); }, msg("free", big, kLargeDouble));
	delete[] big;
}

TEST(BadFreeMoreDeathTest, DoubleFreeInAThreadExitDestructor)
{
	// A thread-specific destructor frees an object a second time while the
	// thread's cache is being torn down.
	void *p = malloc(96);
	EXPECT_ABORT(
		{
			dfree::pin_to_one_cpu();
			static pthread_key_t k;
			pthread_key_create(&k, [](void *x) { free(opaque_ptr(x)); });
			std::thread t([p] {
				free(p);
				pthread_setspecific(k, p);
			});
			t.join();
			dfree::reuse(96);
		},
		dfree::caught(p));
	free(p);
}

TEST(BadFreeMoreDeathTest, DoubleFreeOfLargeObjectsAcrossThreads)
{
	for (size_t n : {size_t(40000), size_t(3 << 20)}) {
		void *p = malloc(n);
		EXPECT_ABORT(
			{
				std::thread a([p] { free(p); });
				a.join();
				std::thread b([p] { free(opaque_ptr(p)); });
				b.join();
			},
			msg("free", p, kLargeDouble))
			<< "size " << n;
		EXPECT_ABORT(
			{
				std::thread a([p] { free(p); });
				a.join();
				std::thread b([p] { escape(realloc(opaque_ptr(p), 100)); });
				b.join();
			},
			msg("realloc", p, kLargeDouble))
			<< "size " << n;
		free(p);
	}
}

TEST(BadFreeMoreDeathTest, ReallocOfAnInteriorLargePointer)
{
	uint8_t *p = (uint8_t *)malloc(100000);
	EXPECT_ABORT(escape(realloc(opaque_ptr(p + 8192), 200000)), msg("realloc", p + 8192, kInterior));
	EXPECT_ABORT(escape(realloc(opaque_ptr(p + 8), 10)), msg("realloc", p + 8, kInterior));
	free(p);
}

TEST(BadFreeMoreDeathTest, ReportIsOneLineOnStderr)
{
	// The whole report: exactly one line, then SIGABRT.
	void *p = malloc(64);
	EXPECT_ABORT(
		{
			dfree::pin_to_one_cpu();
			free(p);
			free(opaque_ptr(p));
			dfree::reuse(64);
		},
		"^" + dfree::caught(p) + "\n$");
	free(p);
	(void)hardened;
}
