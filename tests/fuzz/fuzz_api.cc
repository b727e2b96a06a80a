// fuzz_api.cc — libFuzzer target: random sequences of every allocation call
// of numaheap's API against a shadow model.
//
// The library is built with -DNH_PREFIX=nh_ (nh_malloc, nh_free, ...: it
// does not replace the fuzzer's own malloc) and UBSan; this harness keeps a
// table of live objects with their size, alignment, how they were made and
// a content seed, and checks after every step:
//   - results are aligned as asked, usable sizes cover the request and stay
//     put, live objects never overlap (an interval map of usable ranges);
//   - every object keeps its content pattern until freed; realloc keeps the
//     prefix; calloc gives zeros;
//   - impossible requests fail with NULL and ENOMEM (or EINVAL);
//   - numaheap_node_of knows live objects; statistics calls work;
//   - frees from another thread and objects made on another thread.
// Each input ends by checking and freeing every live object.
//
// Run: fuzz_api [libFuzzer flags] CORPUS_DIR   (see docs/reliability.md)
#include <fuzzer/FuzzedDataProvider.h>

#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

#include "numaheap.h"

extern "C" {
void *nh_malloc(size_t);
void nh_free(void *);
void *nh_calloc(size_t, size_t);
void *nh_realloc(void *, size_t);
void *nh_reallocarray(void *, size_t, size_t);
int nh_posix_memalign(void **, size_t, size_t);
void *nh_aligned_alloc(size_t, size_t);
void *nh_memalign(size_t, size_t);
void *nh_valloc(size_t);
void *nh_pvalloc(size_t);
size_t nh_malloc_usable_size(void *);
void nh_free_sized(void *, size_t);
void nh_free_aligned_sized(void *, size_t, size_t);
int nh_malloc_trim(size_t);
int nh_mallopt(int, int);
struct mallinfo2_ {
	size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct mallinfo2_ nh_mallinfo2(void);
int nh_malloc_info(int, FILE *);
void nh_malloc_stats(void);
}

namespace {

#define CHECK(cond, ...)                                                                                              \
	do {                                                                                                          \
		if (!(cond)) {                                                                                        \
			fprintf(stderr, "fuzz_api: check failed: %s: ", #cond);                                        \
			fprintf(stderr, __VA_ARGS__);                                                                 \
			fprintf(stderr, "\n");                                                                        \
			abort();                                                                                      \
		}                                                                                                     \
	} while (0)

enum Kind : uint8_t { PLAIN, ALIGNED, ONNODE };

struct Obj {
	uint8_t *p = nullptr;
	size_t n = 0;      // requested size
	size_t usable = 0; // malloc_usable_size when made
	size_t align = 0;  // alignment asked for (0: malloc's)
	uint64_t seed = 0;
	Kind kind = PLAIN;
};

constexpr int kSlots = 48;
Obj slots[kSlots];
std::map<uintptr_t, uintptr_t> live; // start -> end of usable range

// ---- content patterns ------------------------------------------------------------

// The harness's own loops are left out of coverage: they would slow every
// run down and guide nothing.
#define NOCOV __attribute__((no_sanitize("coverage")))

NOCOV inline uint8_t pat(uint64_t seed, size_t i)
{
	uint64_t x = (seed + (i >> 3)) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (i & 7)));
}

// Which bytes carry the pattern: all of a small object; the ends and a
// stride of a big one (time). Up to three runs [from, to) with a step.
struct Run {
	size_t from, to, step;
};
NOCOV inline int pattern_runs(size_t n, Run r[3])
{
	if (n <= 16384) {
		r[0] = {0, n, 1};
		return 1;
	}
	r[0] = {0, 4096, 1};
	r[1] = {4096, n - 4096, 65521};
	r[2] = {n - 4096, n, 1};
	return 3;
}

NOCOV void stamp(Obj &o)
{
	Run r[3];
	int k = pattern_runs(o.n, r);
	for (int j = 0; j < k; j++)
		for (size_t i = r[j].from; i < r[j].to; i += r[j].step)
			o.p[i] = pat(o.seed, i);
}

// Check o's pattern bytes below limit, read at p (o.p, or where realloc moved it).
NOCOV void verify_at(const Obj &o, const uint8_t *p, size_t limit, const char *when)
{
	Run r[3];
	int k = pattern_runs(o.n, r);
	for (int j = 0; j < k; j++)
		for (size_t i = r[j].from; i < r[j].to && i < limit; i += r[j].step)
			if (__builtin_expect(p[i] != pat(o.seed, i), 0))
				CHECK(false, "%s: object %p size %zu byte %zu is %02x, expected %02x", when, p, o.n, i, p[i],
				      pat(o.seed, i));
}

void verify(const Obj &o, const char *when) { verify_at(o, o.p, o.n, when); }

// calloc's memory reads zero (at the pattern positions, for time).
NOCOV void verify_zero(const uint8_t *p, size_t n)
{
	Run r[3];
	int k = pattern_runs(n, r);
	for (int j = 0; j < k; j++)
		for (size_t i = r[j].from; i < r[j].to; i += r[j].step)
			if (__builtin_expect(p[i] != 0, 0))
				CHECK(false, "calloc: %p size %zu byte %zu is %02x", p, n, i, p[i]);
}

// ---- the shadow map of live usable ranges -----------------------------------------------

void track(Obj &o, const char *api)
{
	uintptr_t a = (uintptr_t)o.p;
	size_t align = o.align ? o.align : (o.n <= 8 ? 8 : 16);
	CHECK(a % align == 0, "%s: %p not aligned to %zu (size %zu)", api, o.p, align, o.n);
	o.usable = nh_malloc_usable_size(o.p);
	CHECK(o.usable >= o.n, "%s: usable size %zu < %zu", api, o.usable, o.n);
	CHECK(numaheap_node_of(o.p) >= 0, "%s: numaheap_node_of(%p) < 0 for a live object", api, o.p);
	uintptr_t end = a + (o.usable ? o.usable : 1);
	auto next = live.lower_bound(a);
	CHECK(next == live.end() || next->first >= end, "%s: [%p, +%zu) overlaps the live object at %p", api, o.p,
	      o.usable, (void *)next->first);
	if (next != live.begin()) {
		auto prev = std::prev(next);
		CHECK(prev->second <= a, "%s: [%p, +%zu) overlaps the live object at %p..%p", api, o.p, o.usable,
		      (void *)prev->first, (void *)prev->second);
	}
	live[a] = end;
}

void untrack(const Obj &o) { live.erase((uintptr_t)o.p); }

// ---- a helper thread, for frees and allocations elsewhere ---------------------------------

struct Helper {
	std::mutex mu;
	std::condition_variable cv;
	std::function<void()> job;
	bool busy = false;
	std::thread t;
	Helper()
	{
		t = std::thread([this] {
			std::unique_lock<std::mutex> g(mu);
			for (;;) {
				cv.wait(g, [this] { return busy; });
				job();
				busy = false;
				cv.notify_all();
			}
		});
		t.detach();
	}
	void run(std::function<void()> f)
	{
		std::unique_lock<std::mutex> g(mu);
		job = std::move(f);
		busy = true;
		cv.notify_all();
		cv.wait(g, [this] { return !busy; });
	}
};

Helper &helper()
{
	static Helper *h = new Helper;
	return *h;
}

int devnull()
{
	static int fd = open("/dev/null", O_WRONLY);
	return fd;
}

// ---- sizes ----------------------------------------------------------------------------------

size_t pick_size(FuzzedDataProvider &d)
{
	switch (d.ConsumeIntegralInRange<int>(0, 31) & 15 ? d.ConsumeIntegralInRange<int>(0, 13) : 14 + d.ConsumeBool()) {
	case 0:
		return d.ConsumeIntegralInRange<size_t>(0, 16);
	case 1:
	case 2:
	case 3:
	case 4:
		return d.ConsumeIntegralInRange<size_t>(0, 512);
	case 5:
	case 6:
	case 7:
		return d.ConsumeIntegralInRange<size_t>(0, 8192);
	case 8:
	case 9:
		return d.ConsumeIntegralInRange<size_t>(8192, 32768);
	case 10: {
		// Around the class and page boundaries.
		static const size_t edges[] = {8, 16, 32768, 32769, 8192, 8193, 65536, 2 << 20, (2 << 20) + 1};
		size_t e = edges[d.ConsumeIntegralInRange<size_t>(0, sizeof edges / sizeof *edges - 1)];
		return e + d.ConsumeIntegralInRange<int>(-8, 8);
	}
	case 11:
	case 12:
		return d.ConsumeIntegralInRange<size_t>(32769, 300000);
	case 15:
		return d.ConsumeIntegralInRange<size_t>(300000, 4 << 20);
	case 13:
		return d.ConsumeIntegral<uint16_t>();
	case 14:
		return d.ConsumeIntegralInRange<size_t>(4 << 20, 12 << 20);
	default:
		return d.ConsumeIntegral<uint16_t>();
	}
}

size_t pick_align(FuzzedDataProvider &d)
{
	int k = d.ConsumeIntegralInRange<int>(0, 22); // up to 4 MiB
	return (size_t)1 << k;
}

uint64_t next_seed = 1;

void made(Obj &o, uint8_t *p, size_t n, size_t align, Kind kind, const char *api)
{
	o.p = p;
	o.n = n;
	o.align = align;
	o.kind = kind;
	o.seed = next_seed++;
	track(o, api);
	stamp(o);
}

void release(FuzzedDataProvider &d, Obj &o, bool elsewhere)
{
	if (!o.p)
		return;
	verify(o, "before free");
	CHECK(nh_malloc_usable_size(o.p) == o.usable, "usable size of %p changed: %zu -> %zu", o.p, o.usable,
	      nh_malloc_usable_size(o.p));
	untrack(o);
	int how = d.ConsumeIntegralInRange<int>(0, 3);
	uint8_t *p = o.p;
	size_t n = o.n, align = o.align;
	auto f = [=] {
		if (how == 1)
			nh_free_sized(p, n);
		else if (how == 2 && align)
			nh_free_aligned_sized(p, align, n);
		else
			nh_free(p);
	};
	if (elsewhere)
		helper().run(f);
	else
		f();
	o = Obj{};
}

void verify_all(const char *when)
{
	for (auto &o : slots)
		if (o.p)
			verify(o, when);
}

void step(FuzzedDataProvider &d)
{
	Obj &o = slots[d.ConsumeIntegralInRange<int>(0, kSlots - 1)];
	int op = d.ConsumeIntegralInRange<int>(0, 21);
	switch (op) {
	case 0:
	case 1: { // malloc
		release(d, o, false);
		size_t n = pick_size(d);
		uint8_t *p = (uint8_t *)nh_malloc(n);
		CHECK(p, "malloc(%zu) failed", n);
		made(o, p, n, 0, PLAIN, "malloc");
		break;
	}
	case 2: { // calloc
		release(d, o, false);
		size_t n = pick_size(d);
		size_t m = d.ConsumeIntegralInRange<size_t>(1, 8);
		uint8_t *p = (uint8_t *)nh_calloc(m, n / m);
		size_t total = m * (n / m);
		CHECK(p, "calloc(%zu, %zu) failed", m, n / m);
		verify_zero(p, total);
		made(o, p, total, 0, PLAIN, "calloc");
		break;
	}
	case 3:
	case 4: { // realloc (of nothing, to 0, growing, shrinking)
		size_t n = pick_size(d);
		if (!o.p) {
			uint8_t *p = (uint8_t *)nh_realloc(nullptr, n);
			CHECK(p, "realloc(NULL, %zu) failed", n);
			made(o, p, n, 0, PLAIN, "realloc");
			break;
		}
		verify(o, "before realloc");
		untrack(o);
		if (n == 0) {
			CHECK(nh_realloc(o.p, 0) == nullptr, "realloc(p, 0) returned an object");
			o = Obj{};
			break;
		}
		uint8_t *p = (uint8_t *)nh_realloc(o.p, n);
		CHECK(p, "realloc(%p, %zu) failed", o.p, n);
		verify_at(o, p, std::min(o.n, n), "after realloc");
		o.p = p;
		o.n = n;
		o.align = 0;
		o.kind = PLAIN;
		track(o, "realloc");
		stamp(o);
		break;
	}
	case 5: { // reallocarray, including overflowing products
		size_t m = d.ConsumeIntegralInRange<size_t>(1, 16);
		size_t n = pick_size(d) / m;
		if (d.ConsumeIntegralInRange<int>(0, 15) == 0) {
			errno = 0;
			CHECK(nh_reallocarray(o.p, SIZE_MAX / 2, 3) == nullptr && errno == ENOMEM,
			      "reallocarray overflow did not fail with ENOMEM");
			if (o.p)
				verify(o, "after failed reallocarray");
			break;
		}
		if (o.p) {
			verify(o, "before reallocarray");
			untrack(o);
		}
		if (m * n == 0) {
			void *r = nh_reallocarray(o.p, m, n);
			if (o.p) {
				CHECK(r == nullptr, "reallocarray(p, ..., 0) returned an object");
				o = Obj{};
			} else {
				CHECK(r, "reallocarray(NULL, 0) failed");
				made(o, (uint8_t *)r, 0, 0, PLAIN, "reallocarray");
			}
			break;
		}
		uint8_t *p = (uint8_t *)nh_reallocarray(o.p, m, n);
		CHECK(p, "reallocarray(%zu, %zu) failed", m, n);
		if (o.p)
			verify_at(o, p, std::min(o.n, m * n), "after reallocarray");
		made(o, p, m * n, 0, PLAIN, "reallocarray");
		break;
	}
	case 6: { // posix_memalign, with bad alignments too
		release(d, o, false);
		size_t n = pick_size(d), a = pick_align(d);
		if (d.ConsumeIntegralInRange<int>(0, 7) == 0) {
			void *p = (void *)1;
			size_t bad = a < 8 ? a : a + 3; // below sizeof(void *), or not a power of two
			CHECK(nh_posix_memalign(&p, bad, n) == EINVAL && p == (void *)1,
			      "posix_memalign(%zu) did not give EINVAL", bad);
			break;
		}
		if (a < 8)
			a = 8;
		void *p = nullptr;
		CHECK(nh_posix_memalign(&p, a, n) == 0, "posix_memalign(%zu, %zu) failed", a, n);
		made(o, (uint8_t *)p, n, a, ALIGNED, "posix_memalign");
		break;
	}
	case 7: { // aligned_alloc
		release(d, o, false);
		size_t n = pick_size(d), a = pick_align(d);
		if (d.ConsumeIntegralInRange<int>(0, 7) == 0) {
			errno = 0;
			CHECK(nh_aligned_alloc(a * 3, n) == nullptr && errno == EINVAL, "aligned_alloc(%zu) accepted", a * 3);
			break;
		}
		uint8_t *p = (uint8_t *)nh_aligned_alloc(a, n);
		CHECK(p, "aligned_alloc(%zu, %zu) failed", a, n);
		made(o, p, n, a, ALIGNED, "aligned_alloc");
		break;
	}
	case 8: { // memalign: any alignment, rounded up to a power of two
		release(d, o, false);
		size_t n = pick_size(d), a = d.ConsumeIntegralInRange<size_t>(1, 70000);
		uint8_t *p = (uint8_t *)nh_memalign(a, n);
		CHECK(p, "memalign(%zu, %zu) failed", a, n);
		size_t pow2 = 1;
		while (pow2 < a)
			pow2 <<= 1;
		made(o, p, n, pow2 < 8 ? 0 : pow2, ALIGNED, "memalign");
		break;
	}
	case 9: { // valloc, pvalloc
		release(d, o, false);
		size_t n = pick_size(d);
		bool pv = d.ConsumeBool();
		uint8_t *p = (uint8_t *)(pv ? nh_pvalloc(n) : nh_valloc(n));
		CHECK(p, "%s(%zu) failed", pv ? "pvalloc" : "valloc", n);
		size_t ps = (size_t)sysconf(_SC_PAGESIZE);
		made(o, p, pv ? (n ? (n + ps - 1) / ps * ps : ps) : n, ps, ALIGNED, pv ? "pvalloc" : "valloc");
		break;
	}
	case 10:
	case 11:
	case 12: // free, here or on the helper thread
		release(d, o, op == 12);
		break;
	case 13: { // made on the helper thread, kept here
		release(d, o, false);
		size_t n = pick_size(d);
		uint8_t *p = nullptr;
		helper().run([&] { p = (uint8_t *)nh_malloc(n); });
		CHECK(p, "malloc(%zu) on the helper failed", n);
		made(o, p, n, 0, PLAIN, "malloc (helper)");
		break;
	}
	case 14: { // numaheap_malloc_onnode
		release(d, o, false);
		size_t n = pick_size(d);
		uint8_t *p = (uint8_t *)numaheap_malloc_onnode(n, 0);
		CHECK(p, "numaheap_malloc_onnode(%zu, 0) failed", n);
		CHECK(numaheap_node_of(p) >= 0, "numaheap_node_of of an onnode object");
		made(o, p, n, 0, ONNODE, "numaheap_malloc_onnode");
		errno = 0;
		CHECK(numaheap_malloc_onnode(16, 4096) == nullptr && errno == EINVAL, "onnode with a bad node");
		break;
	}
	case 15: // rewrite an object
		if (o.p) {
			verify(o, "before rewrite");
			o.seed = next_seed++;
			stamp(o);
		}
		break;
	case 16: { // impossible requests
		static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2 + 1, (size_t)1 << 47, (size_t)1 << 60};
		size_t h = huge[d.ConsumeIntegralInRange<size_t>(0, 4)];
		errno = 0;
		CHECK(nh_malloc(h) == nullptr && errno == ENOMEM, "malloc(%zu)", h);
		errno = 0;
		CHECK(nh_calloc(h, 2) == nullptr && errno == ENOMEM, "calloc overflow");
		errno = 0;
		CHECK(nh_calloc(2, h / 2 + 1) == nullptr && errno == ENOMEM, "calloc(2, %zu)", h / 2 + 1);
		void *p = nullptr;
		CHECK(nh_posix_memalign(&p, 64, h) == ENOMEM, "posix_memalign(64, %zu)", h);
		errno = 0;
		CHECK(nh_pvalloc(h) == nullptr && errno == ENOMEM, "pvalloc(%zu)", h);
		if (o.p) {
			errno = 0;
			CHECK(nh_realloc(o.p, h) == nullptr && errno == ENOMEM, "realloc(p, %zu)", h);
			verify(o, "after a failed realloc");
			CHECK(nh_malloc_usable_size(o.p) == o.usable, "a failed realloc changed the usable size");
		}
		break;
	}
	case 17: // give memory back, then everything must still be there
		if (d.ConsumeBool())
			nh_malloc_trim(0);
		else
			numaheap_release();
		verify_all("after release");
		break;
	case 18: { // statistics (they walk /proc/self: not every time)
		if (d.ConsumeIntegralInRange<int>(0, 7) != 0)
			break;
		char buf[8192];
		size_t n = numaheap_stats_json(buf, sizeof buf);
		CHECK(n > 0 && buf[0] == '{' && strlen(buf) < sizeof buf, "numaheap_stats_json");
		char tiny[7];
		numaheap_stats_json(tiny, sizeof tiny);
		CHECK(strlen(tiny) < sizeof tiny, "stats_json overran a small buffer");
		struct mallinfo2_ mi = nh_mallinfo2();
		size_t sum = 0;
		for (auto &x : slots)
			if (x.p)
				sum += x.n;
		CHECK(mi.uordblks + mi.hblkhd >= sum / 2, "mallinfo2 in-use bytes %zu far below the live %zu",
		      mi.uordblks + mi.hblkhd, sum);
		if (d.ConsumeIntegralInRange<int>(0, 15) == 0) {
			numaheap_stats_print(devnull(), d.ConsumeBool());
			FILE *f = fdopen(dup(devnull()), "w");
			if (f) {
				nh_malloc_info(0, f);
				fclose(f);
			}
			int saved = dup(2);
			dup2(devnull(), 2);
			nh_malloc_stats();
			dup2(saved, 2);
			close(saved);
		}
		break;
	}
	case 19: { // usable size, node, mallopt, version
		if (o.p) {
			CHECK(nh_malloc_usable_size(o.p) == o.usable, "usable size changed");
			CHECK(numaheap_node_of(o.p) >= 0, "numaheap_node_of(live) < 0");
			CHECK(numaheap_node_of(o.p + o.usable / 2) >= 0, "numaheap_node_of(interior) < 0");
		}
		int local;
		CHECK(numaheap_node_of(&local) == -1, "numaheap_node_of(stack) != -1");
		CHECK(nh_malloc_usable_size(nullptr) == 0, "malloc_usable_size(NULL)");
		nh_mallopt(d.ConsumeIntegral<int>(), d.ConsumeIntegral<int>());
		CHECK(numaheap_version() && *numaheap_version(), "numaheap_version");
		nh_free(nullptr);
		break;
	}
	case 20: // check everything
		verify_all("full check");
		break;
	default: { // a burst of same-sized objects, freed in a fuzzed order
		size_t n = pick_size(d) % 4096;
		uint8_t *burst[64];
		int k = d.ConsumeIntegralInRange<int>(1, 64);
		for (int i = 0; i < k; i++) {
			burst[i] = (uint8_t *)nh_malloc(n);
			CHECK(burst[i], "burst malloc(%zu)", n);
			memset(burst[i], i, n);
		}
		for (int i = 0; i < k; i++) {
			int j = d.ConsumeIntegralInRange<int>(i, k - 1);
			std::swap(burst[i], burst[j]);
			for (size_t b = 0; b < n; b++)
				CHECK(burst[i][b] == burst[i][0], "burst object %p changed", burst[i]);
			nh_free(burst[i]);
		}
		break;
	}
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzedDataProvider d(data, size);
	while (d.remaining_bytes() > 0)
		step(d);
	verify_all("end of input");
	for (auto &o : slots)
		release(d, o, false);
	CHECK(live.empty(), "shadow map not empty");
	return 0;
}
