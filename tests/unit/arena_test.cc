// The arena map (src/arena.c): from any heap pointer, arena_of finds its
// 64 MiB arena and span_of its span, in O(1), without locks.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "numaheap.h"
#include "shim.h"
#include "sizeclasses.h"

namespace {

unsigned TableClass(size_t n)
{
	if (n <= NH_SMALL_SIZE_MAX)
		return nh_size_to_class8[(n + NH_SMALL_SIZE_DIV - 1) / NH_SMALL_SIZE_DIV];
	return nh_size_to_class128[(n - NH_SMALL_SIZE_MAX + NH_LARGE_SIZE_DIV - 1) / NH_LARGE_SIZE_DIV];
}

int NodeOfAddr(uintptr_t p) { return (int)((p - nht_heap_base) >> nht_node_shift); }

int a_static_variable = 42;

void ExpectHeapObject(void *ptr, size_t n)
{
	SCOPED_TRACE("malloc(" + std::to_string(n) + ")");
	ASSERT_NE(ptr, nullptr);
	uintptr_t p = reinterpret_cast<uintptr_t>(ptr);
	ASSERT_GE(p, nht_heap_base);
	ASSERT_LT(p, nht_heap_end);

	uintptr_t abase = 0;
	int anode = -1;
	ASSERT_NE(nht_arena_of(p, &abase, &anode), nullptr);
	EXPECT_EQ(abase % nht_arena_bytes, 0u);
	EXPECT_LE(abase, p);
	EXPECT_LT(p, abase + nht_arena_bytes);
	EXPECT_EQ(anode, NodeOfAddr(p));

	nht_span_info s;
	ASSERT_TRUE(nht_span_of(p, &s));
	EXPECT_EQ(s.state, nht_span_inuse);
	EXPECT_LE(s.base, p);
	EXPECT_LT(p, s.base + uintptr_t(s.npages) * NH_PAGE_SIZE);
	EXPECT_EQ(s.base % NH_PAGE_SIZE, 0u);
	EXPECT_EQ((int)s.node, NodeOfAddr(p));
	if (n <= NH_MAX_SMALL_SIZE) {
		unsigned c = TableClass(n);
		EXPECT_EQ(s.sizeclass, c);
		EXPECT_EQ(s.elemsize, nh_class_to_size[c]);
		EXPECT_EQ(s.npages, nh_class_to_npages[c]);
		EXPECT_EQ(s.nelems, s.npages * NH_PAGE_SIZE / s.elemsize);
		const uintptr_t tail = uintptr_t(s.npages) * NH_PAGE_SIZE - uintptr_t(s.nelems) * s.elemsize;
		EXPECT_GE(p, s.base + tail) << "the tail waste opens the span";
		EXPECT_EQ((p - s.base - tail) % s.elemsize, 0u) << "the start of an object";
	} else {
		EXPECT_EQ(s.sizeclass, 0u) << "large objects have class 0";
		EXPECT_EQ(s.base, p) << "a large object starts its span";
		EXPECT_GE(uintptr_t(s.npages) * NH_PAGE_SIZE, n);
		EXPECT_LT(uintptr_t(s.npages - 1) * NH_PAGE_SIZE, n) << "no whole page wasted";
		EXPECT_EQ(s.elemsize, s.npages * NH_PAGE_SIZE);
		EXPECT_EQ(s.nelems, 1u);
	}
	// Every page of the span maps to the same span; the last byte too.
	const void *sp = nht_span_ptr(p);
	for (unsigned i = 0; i < s.npages; i++)
		ASSERT_EQ(nht_span_ptr(s.base + uintptr_t(i) * NH_PAGE_SIZE), sp) << "page " << i;
	EXPECT_EQ(nht_span_ptr(p + n - 1), sp);

	EXPECT_EQ(numaheap_node_of(ptr), (int)s.node);
	if (nht_numa_nnodes() == 1) {
		EXPECT_EQ(numaheap_node_of(ptr), 0) << "one node: everything is on node 0";
	}
	EXPECT_EQ(numaheap_node_of(static_cast<char *>(ptr) + n - 1), (int)s.node);
}

// Interleave mode moves a collapsed huge page to the node whose turn it
// is (hugepages.c): the kernel's MPOL_INTERLEAVE gives the huge page at hp
// the (hp / 2 MiB mod n)-th node of the mask, n its node count.
TEST(Interleave, TurnFollowsTheKernelsOrder)
{
	const uintptr_t huge = 2u << 20;
	const int three[] = {0, 2, 3};
	for (uintptr_t k = 0; k < 12; k++) {
		EXPECT_EQ(nht_interleave_turn(0x3, k * huge), (int)(k % 2)) << k;
		EXPECT_EQ(nht_interleave_turn(0xd, k * huge), three[k % 3]) << k;			 // nodes 0, 2, 3
		EXPECT_EQ(nht_interleave_turn(0x30, k * huge + 12345), 4 + (int)(k % 2)) << k; // inside the page
	}
	EXPECT_EQ(nht_interleave_turn(0x8, 7 * huge), 3); // one node: always it
}

TEST(ArenaMap, SmallAndLargeObjectsFindTheirSpan)
{
	const size_t sizes[] = {1, 8, 9, 16, 17, 100, 1024, 1025, 4096, 10000, 32767, 32768,
				32769, 40960, 100000, 1 << 20, 5 << 20, 70 << 20};
	std::vector<void *> keep;
	for (size_t n : sizes) {
		void *p = malloc(n);
		ExpectHeapObject(p, n);
		keep.push_back(p);
	}
	for (void *p : keep)
		free(p);
}

TEST(ArenaMap, ManyObjectsOfEveryClass)
{
	std::vector<std::pair<void *, size_t>> keep;
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++)
		for (int i = 0; i < 20; i++) {
			size_t n = nh_class_to_size[c] - (i % 3);
			keep.push_back({malloc(n), n});
		}
	for (auto &[p, n] : keep)
		ExpectHeapObject(p, n);
	for (auto &[p, n] : keep)
		free(p);
}

TEST(ArenaMap, FreedLargeObjectHasNoSpan)
{
	const size_t n = 3 << 20;
	void *p = malloc(n);
	ExpectHeapObject(p, n);
	const volatile uintptr_t a = reinterpret_cast<uintptr_t>(p);
	free(p);
	EXPECT_EQ(nht_span_ptr(a), nullptr);
	EXPECT_EQ(nht_span_ptr(a + n - 1), nullptr);
	EXPECT_EQ(numaheap_node_of(reinterpret_cast<void *>(a)), -1);
	EXPECT_NE(nht_arena_of(a, nullptr, nullptr), nullptr) << "arenas are never unmapped";
}

TEST(ArenaMap, NonHeapPointers)
{
	int on_stack = 0;
	void *libc_static = static_cast<void *>(stdout);
	const uintptr_t far = nht_heap_base + (uintptr_t(1) << 40); // node 0's slice, 1 TiB up: never mapped
	const uintptr_t ptrs[] = {
		0,
		1,
		reinterpret_cast<uintptr_t>(&on_stack),
		reinterpret_cast<uintptr_t>(&a_static_variable),
		reinterpret_cast<uintptr_t>(libc_static),
		reinterpret_cast<uintptr_t>(&ExpectHeapObject),
		nht_heap_base - 1,
		nht_heap_end,
		nht_heap_end + 4096,
		far,
		~uintptr_t(0),
	};
	for (uintptr_t p : ptrs) {
		SCOPED_TRACE(std::to_string(p));
		EXPECT_EQ(nht_arena_of(p, nullptr, nullptr), nullptr);
		EXPECT_EQ(nht_span_ptr(p), nullptr);
		EXPECT_EQ(numaheap_node_of(reinterpret_cast<void *>(p)), -1);
	}
	EXPECT_EQ(numaheap_node_of(nullptr), -1);
}

// ---- free's page table (arena.h) ----------------------------------------------

// Lemire's divisibility test as free makes it, for every class and every
// offset it can meet (the page offset plus a phase below the size, so
// below 2^16): (uint32_t)(off * mul) < mul iff off is a multiple of size.
TEST(PageTable, DivisibilityTestIsExactForEveryClassAndOffset)
{
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		uint32_t mul, phase_mul;
		nht_page_kind(nht_hoff(0, c), &mul, &phase_mul);
		const uint32_t size = nh_class_to_size[c];
		ASSERT_EQ(mul, uint32_t(((uint64_t(1) << 32) + size - 1) / size)) << "class " << c;
		for (uint32_t off = 0; off < 65536; off++)
			ASSERT_EQ(uint32_t(off * mul) < mul, off % size == 0) << "class " << c << " offset " << off;
	}
}

// The whole check on every slot of a span of every class (a page, or finer
// in a build with NH_PT_SHIFT), for every byte offset: an object's start iff
// it is tail + k * size from the span's start (the tail waste first:
// mspan.h); nothing on a page of entry 0 or class 0.
TEST(PageTable, InteriorCheckEveryClassPageAndOffset)
{
	const uint32_t slot = uint32_t(1) << nht_pt_shift;
	for (unsigned node : {0u, unsigned(nht_numa_nnodes() - 1)})
		for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
			const uint32_t size = nh_class_to_size[c];
			const uint32_t span = nh_class_to_npages[c] * NH_PAGE_SIZE, tail = span % size;
			for (unsigned q = 0; q < span / slot; q++) {
				unsigned e = nht_pt_entry(node, c, q);
				ASSERT_NE(e, 0u) << "class " << c << " has no fast path";
				for (uint32_t o = 0; o < slot; o++) {
					uint32_t pos = q * slot + o;
					bool object = pos >= tail && (pos - tail) % size == 0;
					ASSERT_EQ(nht_page_entry_is_object(e, uintptr_t(0x7000) * NH_PAGE_SIZE + o), object)
						<< "node " << node << " class " << c << " slot " << q << " offset " << o;
				}
			}
		}
	for (uint32_t o = 0; o < slot; o += 8) {
		ASSERT_FALSE(nht_page_entry_is_object(0, o)) << "entry 0: a free page, or a large object's";
		ASSERT_FALSE(nht_page_entry_is_object(nht_hoff(1, 0), o)) << "class 0";
	}
}

// The kinds arena.c would build for table slots of every size from 16 B to
// a page (NH_PT_SHIFT): the ids fit the entry's 4 bits for every class at
// 256-byte slots and finer pages, slots with one id have one phase, and the
// check with that phase finds exactly the object starts in every slot.
TEST(PageTable, KindsForEverySlotSize)
{
	for (unsigned shift = 4; shift <= 13; shift++) {
		const uint32_t slot = uint32_t(1) << shift;
		unsigned without = 0;
		for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
			const uint32_t size = nh_class_to_size[c];
			const uint32_t span = nh_class_to_npages[c] * NH_PAGE_SIZE, tail = span % size;
			const uint32_t mul = uint32_t(((uint64_t(1) << 32) + size - 1) / size);
			std::vector<uint8_t> ids(span / slot);
			if (!nht_pt_ids(c, shift, ids.data())) {
				without++;
				continue;
			}
			std::vector<int64_t> phase_of(15, -1);
			for (unsigned q = 0; q < span / slot; q++) {
				uint32_t phase = nht_pt_phase(c, q, shift);
				ASSERT_LT(ids[q], 15u);
				if (phase_of[ids[q]] < 0)
					phase_of[ids[q]] = phase;
				ASSERT_EQ(phase_of[ids[q]], int64_t(phase)) << "slot size " << slot << " class " << c << " slot " << q;
				for (uint32_t o = 0; o < slot; o++) {
					uint32_t pos = q * slot + o;
					bool object = pos >= tail && (pos - tail) % size == 0;
					ASSERT_EQ(uint32_t(o * mul + phase * mul) < mul, object)
						<< "slot size " << slot << " class " << c << " slot " << q << " offset " << o;
				}
			}
		}
		if (shift >= 8) {
			EXPECT_EQ(without, 0u) << "slot size " << slot << ": classes with more than 15 kinds";
		}
	}
}

// Chunks (arena.c, ordered.c): objects of one class cut from a slot
// boundary over 1 to chunk-slots whole slots take the entries of the
// class's span from its first slot where an object starts on the boundary.
// In every slot of every such chunk, the check finds exactly the object
// starts (k * size from the chunk's start) up to the chunk's last object;
// the one aligned address in the unused rest of its last slot passes too
// (the check knows phases, not ends: a free of it is a free of a pointer
// never handed out, as of a never-used slot of a class span). With slots
// of a page, no class has chunks.
TEST(PageTable, ChunkEntriesFindTheirObjects)
{
	const uint32_t slot = uint32_t(1) << nht_pt_shift;
	unsigned with = 0;
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		const uint32_t size = nh_class_to_size[c];
		const unsigned max = nht_chunk_slots(c);
		if (nht_pt_shift == 13) {
			ASSERT_EQ(max, 0u) << "class " << c;
			continue;
		}
		if (size < 16 || size > 8192)
			continue; // not placed in order (ordered.c)
		ASSERT_GT(max, 0u) << "class " << c << " has no chunks";
		ASSERT_GE(uint64_t(max) * slot, size);
		ASSERT_LE(uint64_t(max) * slot / size, 16u) << "at most 16 objects a chunk";
		with++;
		for (unsigned len = (size + slot - 1) / slot; len <= max; len++) {
			const uint32_t n = len * slot / size;
			for (unsigned j = 0; j < len; j++) {
				unsigned e = nht_chunk_entry(0, c, j);
				ASSERT_NE(e, 0u);
				for (uint32_t o = 0; o < slot; o++) {
					uint32_t pos = j * slot + o;
					bool object = pos % size == 0 && pos / size <= n;
					ASSERT_EQ(nht_page_entry_is_object(e, uintptr_t(0x7000) * NH_PAGE_SIZE + o), object)
					    << "class " << c << " chunk of " << len << " slots, slot " << j << " offset " << o;
				}
			}
		}
	}
	if (nht_pt_shift < 13) {
		EXPECT_GT(with, 40u);
	}
}

// The table as the heap fills it: every slot of a small span names its
// node, class and slot kind (with a slot a page: its page index); a large object's pages and freed pages hold 0.
TEST(PageTable, EntriesOfLiveSpans)
{
	std::vector<void *> keep;
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		void *p = malloc(nh_class_to_size[c]); // class c (class 1's 8 B take class 2 unless NUMAHEAP_MIN_ALIGN=8)
		keep.push_back(p);
		const uintptr_t a = reinterpret_cast<uintptr_t>(p);
		nht_span_info s;
		ASSERT_TRUE(nht_span_of(a, &s));
		const uintptr_t slot = uintptr_t(1) << nht_pt_shift;
		for (uintptr_t q = 0; q < s.npages * (NH_PAGE_SIZE / slot); q++) {
			unsigned e = ~0u;
			ASSERT_TRUE(nht_page_entry(s.base + q * slot, &e));
			EXPECT_EQ(e, nht_pt_entry(s.node, s.sizeclass, q)) << "class " << c << " slot " << q;
			if (slot == NH_PAGE_SIZE) {
				EXPECT_EQ(e, nht_hoff(s.node, s.sizeclass) | q) << "class " << c << " page " << q;
			}
		}
		unsigned e = 0;
		ASSERT_TRUE(nht_page_entry(a, &e));
		EXPECT_TRUE(nht_page_entry_is_object(e, a)) << "class " << c;
	}
	void *big = malloc(1 << 20);
	unsigned e = ~0u;
	ASSERT_TRUE(nht_page_entry(reinterpret_cast<uintptr_t>(big), &e));
	EXPECT_EQ(e, 0u) << "a large object's page";
	for (void *p : keep)
		free(p);
	free(big);
	unsigned outside;
	EXPECT_FALSE(nht_page_entry(0, &outside));
	EXPECT_FALSE(nht_page_entry(nht_heap_base - NH_PAGE_SIZE, &outside));
}

} // namespace
