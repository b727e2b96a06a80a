// tsan_driver.cc — a multi-threaded workload on the prefixed library
// (nh_malloc, nh_free, ...) for ThreadSanitizer: both are built with
// -fsanitize=thread, so TSan sees every access the allocator makes.
//
// Objects move between threads through mutex-protected queues (a correct
// program), so any race TSan reports is inside numaheap. Run with
// NUMAHEAP_PERCPU=0: TSan cannot follow the per-CPU caches' restartable
// sequences (an object pushed on one thread and popped on another through a
// CPU's slab has no happens-before edge TSan can see).
//
// A second phase makes the background thread evacuate sparse spans
// (evacuate.c) while two threads free objects in them: evacuation rewrites
// a live span's page-table entries, which free's fast path reads without
// a lock. The phase fails the run if nothing was evacuated, so the check
// cannot pass by not happening.
//
//   tsan_driver [seconds] [evacuation phase limit, seconds; 0: none]
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "numaheap.h"

extern "C" {
void *nh_malloc(size_t);
void nh_free(void *);
void *nh_calloc(size_t, size_t);
void *nh_realloc(void *, size_t);
int nh_posix_memalign(void **, size_t, size_t);
size_t nh_malloc_usable_size(void *);
int nh_malloc_trim(size_t);
}

namespace {

struct Obj {
	uint8_t *p;
	size_t n;
	uint8_t v;
};

std::atomic<long> errors{0};
std::atomic<bool> stop{false};

struct Rng {
	uint64_t s;
	explicit Rng(uint64_t x) : s(x * 0x9E3779B97F4A7C15ull + 1) {}
	uint64_t next()
	{
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		return s;
	}
	size_t below(size_t n) { return next() % n; }
};

size_t pick(Rng &r)
{
	unsigned x = (unsigned)r.below(1000);
	if (x < 10)
		return 32769 + r.below(500000);
	if (x < 200)
		return 1 + r.below(32768);
	return 1 + r.below(512);
}

Obj make(Rng &r)
{
	size_t n = pick(r);
	uint8_t *p;
	switch (r.below(4)) {
	case 0:
		p = (uint8_t *)nh_calloc(1, n);
		for (size_t i = 0; i < n; i += 61)
			if (p && p[i])
				errors++;
		break;
	case 1: {
		void *q = nullptr;
		p = nh_posix_memalign(&q, (size_t)64 << r.below(4), n) == 0 ? (uint8_t *)q : nullptr;
		break;
	}
	default:
		p = (uint8_t *)nh_malloc(n);
	}
	if (!p) {
		errors++;
		return {nullptr, 0, 0};
	}
	if (nh_malloc_usable_size(p) < n)
		errors++;
	uint8_t v = (uint8_t)r.next();
	memset(p, v, n);
	return {p, n, v};
}

bool intact(const Obj &o)
{
	for (size_t i = 0; i < o.n; i += 7)
		if (o.p[i] != o.v)
			return false;
	return o.p[o.n - 1] == o.v;
}

void destroy(Obj &o)
{
	if (!o.p)
		return;
	if (!intact(o))
		errors++;
	nh_free(o.p);
	o.p = nullptr;
}

struct Queue {
	std::mutex mu;
	std::deque<Obj> q;
	void put(Obj o)
	{
		std::lock_guard<std::mutex> g(mu);
		q.push_back(o);
	}
	bool get(Obj &o)
	{
		std::lock_guard<std::mutex> g(mu);
		if (q.empty())
			return false;
		o = q.front();
		q.pop_front();
		return true;
	}
};

Queue queues[4];

void worker(int id, int ops)
{
	Rng r(id + 17);
	std::vector<Obj> mine(128, Obj{nullptr, 0, 0});
	for (int i = 0; i < ops && !stop.load(std::memory_order_relaxed); i++) {
		Obj &o = mine[r.below(mine.size())];
		unsigned act = (unsigned)r.below(10);
		if (!o.p) {
			o = make(r);
		} else if (act < 3) {
			queues[r.below(4)].put(o); // someone else frees it
			o.p = nullptr;
		} else if (act < 5) {
			Obj got;
			if (queues[id % 4].get(got))
				destroy(got);
		} else if (act < 6) {
			if (!intact(o))
				errors++;
			size_t n2 = pick(r);
			uint8_t *q = (uint8_t *)nh_realloc(o.p, n2);
			if (!q) {
				errors++;
				continue;
			}
			for (size_t k = 0; k < std::min(n2, o.n); k += 13)
				if (q[k] != o.v)
					errors++;
			memset(q, o.v, n2);
			o.p = q;
			o.n = n2;
		} else {
			destroy(o);
		}
	}
	for (auto &o : mine)
		destroy(o);
}

long long scav_number(const char *key)
{
	static char buf[1 << 18]; // the whole JSON document (a few tens of KiB)
	numaheap_stats_json(buf, sizeof buf);
	const char *s = strstr(buf, "\"scavenger\"");
	const char *k = s ? strstr(s, key) : nullptr;
	return k ? atoll(k + strlen(key)) : -1;
}

// Each of two threads fills 8 MiB of 16-512 B blocks, frees four in five
// and keeps replacing random survivors; one in four replacements' frees is
// handed to the other thread. Stops when spans were evacuated (and a
// little after, so frees meet evacuated spans) or at the limit.
std::atomic<bool> evac_done{false};

// A 16-512 B block from nh_malloc, filled with a byte of its own (p null,
// and an error counted, if malloc failed).
Obj make_small(Rng &r)
{
	size_t n = 16 + r.below(497);
	uint8_t *p = (uint8_t *)nh_malloc(n);
	if (!p) {
		errors++;
		return {nullptr, 0, 0};
	}
	uint8_t v = (uint8_t)r.next();
	memset(p, v, n);
	return {p, n, v};
}

void evac_worker(int id)
{
	Rng r(id + 1000);
	std::vector<Obj> v;
	for (size_t total = 0; total < (8u << 20);) {
		Obj o = make_small(r);
		if (!o.p)
			return;
		v.push_back(o);
		total += o.n;
	}
	std::vector<Obj> kept;
	for (auto &o : v) {
		if (r.below(5) == 0)
			kept.push_back(o);
		else
			destroy(o);
	}
	while (!evac_done.load() && errors.load() == 0) {
		for (int k = 0; k < 2000; k++) {
			Obj &o = kept[r.below(kept.size())];
			if (r.below(4) == 0)
				queues[(id + 1) % 2].put(o);
			else
				destroy(o);
			Obj got;
			if (queues[id % 2].get(got))
				destroy(got);
			o = make_small(r);
			if (!o.p)
				break;
		}
	}
	for (auto &o : kept)
		destroy(o);
}

} // namespace

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 10;
	auto t0 = std::chrono::steady_clock::now();
	auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
	long rounds = 0, threads = 0;
	// A side thread that asks for statistics and gives memory back.
	std::thread side([] {
		char buf[8192];
		while (!stop.load()) {
			numaheap_stats_json(buf, sizeof buf);
			numaheap_release();
			nh_malloc_trim(0);
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
		}
	});
	while (elapsed() < secs && errors.load() == 0) {
		// Long-lived workers plus short-lived threads (caches made and torn down).
		std::vector<std::thread> ts;
		for (int i = 0; i < 3; i++)
			ts.emplace_back(worker, (int)(rounds * 7 + i), 20000);
		for (int i = 0; i < 6; i++)
			ts.emplace_back(worker, (int)(rounds * 7 + 3 + i), 500);
		threads += (long)ts.size();
		for (auto &t : ts)
			t.join();
		rounds++;
	}
	stop.store(true);
	side.join();
	for (auto &q : queues) {
		Obj o;
		while (q.get(o))
			destroy(o);
	}
	printf("tsan_driver: %.0f s, %ld rounds, %ld threads, %ld errors\n", elapsed(), rounds, threads, errors.load());

	// Evacuation phase (no side thread: its numaheap_release would give
	// back what evacuation is meant to find).
	double limit = argc > 2 ? atof(argv[2]) : 60;
	if (limit <= 0) // no phase (a mode without class spans to evacuate: NUMAHEAP_ORDERED)
		return errors.load() ? 1 : 0;
	double t1 = elapsed();
	std::thread e0(evac_worker, 0), e1(evac_worker, 1);
	double seen_at = 0;
	while (elapsed() - t1 < limit && errors.load() == 0) {
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
		if (!seen_at && scav_number("\"evacuated\":") > 0)
			seen_at = elapsed();
		if (seen_at && elapsed() - seen_at > 2)
			break;
	}
	evac_done.store(true);
	e0.join();
	e1.join();
	for (auto &q : queues) {
		Obj o;
		while (q.get(o))
			destroy(o);
	}
	long long evacuations = scav_number("\"evacuations\":"), evacuated = scav_number("\"evacuated\":");
	printf("tsan_driver: evacuation phase %.0f s, %lld evacuations, %lld spans emptied, %ld errors\n", elapsed() - t1,
	       evacuations, evacuated, errors.load());
	if (evacuated <= 0) {
		fprintf(stderr, "tsan_driver: no span was evacuated in %.0f s: the phase checked nothing\n", limit);
		return 1;
	}
	return errors.load() ? 1 : 0;
}
