// threads_test.cc — many threads (more than the CPUs) allocating and freeing
// random sizes with content checks; producer/consumer rings and a shared
// queue, where every object is freed by a thread other than the one that
// allocated it.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <malloc.h>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "numaheap.h"
#include "stress_util.h"

namespace {

// Failures seen by worker threads: counted, first few described.
struct Errors {
	std::atomic<long> count{0};
	std::mutex mu;
	std::string first;
	void add(const std::string &what)
	{
		if (count.fetch_add(1) < 5) {
			std::lock_guard<std::mutex> g(mu);
			first += what + "\n";
		}
	}
};

std::string describe(const char *what, const void *p, size_t n, uint64_t id)
{
	char b[160];
	snprintf(b, sizeof b, "%s: object %p size %zu id %llu", what, p, n, (unsigned long long)id);
	return b;
}

struct Obj {
	void *p = nullptr;
	size_t n = 0;
	uint64_t id = 0;
};

void expect_heap_back_to(const struct mallinfo2 &before, size_t slack)
{
	struct mallinfo2 after = mallinfo2();
	EXPECT_LE(after.uordblks, before.uordblks + slack)
		<< "in-use bytes after every object was freed: " << after.uordblks << " (before " << before.uordblks << ")";
	if (!heap_profiling_on()) {
		EXPECT_EQ(after.hblkhd, before.hblkhd) << "large objects still counted in use";
	}
}

} // namespace

TEST(Stress, RunsOnNumaheap)
{
	void *p = malloc(10);
	EXPECT_EQ(numaheap_node_of(p), 0);
	free(p);
	std::thread t([] {
		void *q = malloc(10);
		EXPECT_EQ(numaheap_node_of(q), 0);
		free(q);
	});
	t.join();
}

// ---- N threads, random sizes, random lifetimes ----------------------------------------

static void random_worker(int tid, int ops, Errors &err, std::atomic<uint64_t> &total_ops)
{
	Rng r(1000 + tid);
	const size_t kSlots = 600;
	std::vector<Obj> slot(kSlots);
	uint64_t next_id = (uint64_t)tid << 40;
	for (int op = 0; op < ops; op++) {
		Obj &o = slot[r.below(kSlots)];
		if (o.p) {
			if (!verify(o.p, o.n, o.id))
				err.add(describe("corrupted before free", o.p, o.n, o.id));
			unsigned what = (unsigned)r.below(10);
			if (what == 0) {
				// realloc to a new random size: the prefix must survive.
				size_t m = random_size(r);
				void *q = realloc(o.p, m);
				if (!q && m) {
					err.add(describe("realloc failed", o.p, m, o.id));
					continue;
				}
				if (!verify(q, std::min(o.n, m), o.id))
					err.add(describe("realloc lost contents", q, m, o.id));
				o.p = q;
				o.n = m;
				o.id = next_id++;
				if (!q) { // realloc(p, 0) freed it
					o = Obj();
					continue;
				}
				fill(o.p, o.n, o.id);
				continue;
			}
			free(o.p);
			o = Obj();
			continue;
		}
		size_t n = random_size(r);
		void *p;
		unsigned how = (unsigned)r.below(20);
		if (how == 0) {
			p = calloc(1, n);
			if (p && !is_zero(p, n))
				err.add(describe("calloc not zeroed", p, n, 0));
		} else if (how == 1) {
			size_t a = (size_t)64 << r.below(7); // 64 .. 4096
			if (posix_memalign(&p, a, n) != 0)
				p = nullptr;
			if (p && ((uintptr_t)p & (a - 1)))
				err.add(describe("misaligned posix_memalign", p, n, a));
		} else {
			p = malloc(n);
		}
		if (!p) {
			err.add(describe("allocation failed", nullptr, n, 0));
			continue;
		}
		if (!aligned_ok(p, n))
			err.add(describe("misaligned", p, n, 0));
		if (malloc_usable_size(p) < n)
			err.add(describe("usable size too small", p, n, 0));
		o.p = p;
		o.n = n;
		o.id = next_id++;
		fill(p, n, o.id);
	}
	for (Obj &o : slot)
		if (o.p) {
			if (!verify(o.p, o.n, o.id))
				err.add(describe("corrupted at the end", o.p, o.n, o.id));
			free(o.p);
		}
	total_ops += ops;
}

TEST(Stress, ManyThreadsRandomSizes)
{
	struct mallinfo2 before = mallinfo2();
	Errors err;
	std::atomic<uint64_t> total{0};
	const int kThreads = 12;
	std::vector<std::thread> th;
	for (int t = 0; t < kThreads; t++)
		th.emplace_back(random_worker, t, 60000, std::ref(err), std::ref(total));
	for (auto &t : th)
		t.join();
	EXPECT_EQ(err.count.load(), 0) << err.first;
	EXPECT_EQ(total.load(), (uint64_t)kThreads * 60000);
	expect_heap_back_to(before, 1 << 20);
}

TEST(Stress, ManyThreadsSmallOnly)
{
	// All threads hammer the same few classes: mcentral contention.
	Errors err;
	const int kThreads = 16;
	std::vector<std::thread> th;
	for (int t = 0; t < kThreads; t++)
		th.emplace_back([t, &err] {
			Rng r(77 + t);
			std::vector<Obj> live;
			uint64_t id = (uint64_t)t << 40;
			for (int round = 0; round < 40; round++) {
				for (int i = 0; i < 2000; i++) {
					size_t n = 16 * r.range(1, 4);
					Obj o{malloc(n), n, id++};
					fill(o.p, n, o.id);
					live.push_back(o);
				}
				// Free in a scrambled order.
				for (size_t i = live.size(); i > 1; i--)
					std::swap(live[i - 1], live[r.below(i)]);
				for (Obj &o : live) {
					if (!verify(o.p, o.n, o.id))
						err.add(describe("corrupted", o.p, o.n, o.id));
					free(o.p);
				}
				live.clear();
			}
		});
	for (auto &t : th)
		t.join();
	EXPECT_EQ(err.count.load(), 0) << err.first;
}

// ---- producer/consumer rings: every free is a cross-thread free -----------------------

namespace {

// Single-producer single-consumer ring of objects.
struct Ring {
	static const size_t kCap = 1024;
	Obj buf[kCap];
	std::atomic<size_t> head{0}, tail{0};
	bool push(const Obj &o)
	{
		size_t h = head.load(std::memory_order_relaxed);
		if (h - tail.load(std::memory_order_acquire) == kCap)
			return false;
		buf[h % kCap] = o;
		head.store(h + 1, std::memory_order_release);
		return true;
	}
	bool pop(Obj &o)
	{
		size_t t = tail.load(std::memory_order_relaxed);
		if (t == head.load(std::memory_order_acquire))
			return false;
		o = buf[t % kCap];
		tail.store(t + 1, std::memory_order_release);
		return true;
	}
};

} // namespace

TEST(Stress, ProducerConsumerRings)
{
	const int kPairs = 5; // 10 threads on 2 CPUs
	const int kPerProducer = 80000;
	std::vector<Ring> rings(kPairs);
	Errors err;
	std::atomic<long> consumed{0};
	std::vector<std::thread> th;
	th.reserve(2 * kPairs);
	struct mallinfo2 before = mallinfo2(); // after the test's own large allocations
	for (int i = 0; i < kPairs; i++) {
		th.emplace_back([&, i] {
			Rng r(500 + i);
			for (int k = 0; k < kPerProducer; k++) {
				size_t n = random_size(r, 10);
				Obj o{malloc(n), n, ((uint64_t)i << 40) | (uint64_t)k};
				if (!o.p) {
					err.add("producer: malloc failed");
					continue;
				}
				fill(o.p, n, o.id);
				while (!rings[i].push(o))
					std::this_thread::yield();
			}
		});
		th.emplace_back([&, i] {
			Rng r(900 + i);
			int got = 0;
			uint64_t expect_seq = 0;
			while (got < kPerProducer) {
				Obj o;
				if (!rings[i].pop(o)) {
					std::this_thread::yield();
					continue;
				}
				got++;
				if ((o.id & ((1ull << 40) - 1)) != expect_seq++)
					err.add(describe("ring out of order", o.p, o.n, o.id));
				if (!verify(o.p, o.n, o.id))
					err.add(describe("corrupted in transit", o.p, o.n, o.id));
				if (r.below(8) == 0) {
					// Grow or shrink another thread's object, then free it.
					size_t m = random_size(r, 10) + 1;
					void *q = realloc(o.p, m);
					if (!q || !verify(q, std::min(o.n, m), o.id))
						err.add(describe("cross-thread realloc lost contents", q, m, o.id));
					free(q);
				} else {
					free(o.p);
				}
			}
			consumed += got;
		});
	}
	for (auto &t : th)
		t.join();
	EXPECT_EQ(err.count.load(), 0) << err.first;
	EXPECT_EQ(consumed.load(), (long)kPairs * kPerProducer);
	expect_heap_back_to(before, 1 << 20);
}

TEST(Stress, SharedQueueManyToMany)
{
	// Producers and consumers share one queue: an object's allocating and
	// freeing threads are unrelated, and consumers also pass objects on.
	const int kProducers = 6, kConsumers = 6, kPerProducer = 60000;
	std::mutex mu;
	std::condition_variable cv;
	std::deque<Obj> q;
	bool done = false;
	Errors err;
	std::atomic<long> freed{0};
	std::vector<std::thread> th;
	for (int i = 0; i < kProducers; i++)
		th.emplace_back([&, i] {
			Rng r(3000 + i);
			std::vector<Obj> batch;
			for (int k = 0; k < kPerProducer; k++) {
				size_t n = random_size(r, 5);
				Obj o{malloc(n), n, ((uint64_t)(i + 1) << 40) | (uint64_t)k};
				fill(o.p, n, o.id);
				batch.push_back(o);
				if (batch.size() == 64 || k == kPerProducer - 1) {
					std::unique_lock<std::mutex> g(mu);
					for (auto &b : batch)
						q.push_back(b);
					g.unlock();
					cv.notify_all();
					batch.clear();
				}
			}
		});
	for (int i = 0; i < kConsumers; i++)
		th.emplace_back([&] {
			for (;;) {
				std::vector<Obj> take;
				{
					std::unique_lock<std::mutex> g(mu);
					cv.wait(g, [&] { return !q.empty() || done; });
					if (q.empty() && done)
						return;
					for (int k = 0; k < 32 && !q.empty(); k++) {
						take.push_back(q.front());
						q.pop_front();
					}
				}
				for (Obj &o : take) {
					if (!verify(o.p, o.n, o.id))
						err.add(describe("corrupted in queue", o.p, o.n, o.id));
					free(o.p);
					freed++;
				}
			}
		});
	for (int i = 0; i < kProducers; i++)
		th[i].join();
	{
		std::lock_guard<std::mutex> g(mu);
		done = true;
	}
	cv.notify_all();
	for (int i = kProducers; i < kProducers + kConsumers; i++)
		th[i].join();
	EXPECT_EQ(err.count.load(), 0) << err.first;
	EXPECT_EQ(freed.load(), (long)kProducers * kPerProducer);
	EXPECT_TRUE(q.empty());
}

TEST(Stress, PingPongFreesOnTheOtherSide)
{
	// Two threads exchange batches: each frees what the other allocated, and
	// the freed memory is immediately reused by the freeing thread.
	const int kRounds = 1500, kBatch = 100;
	Ring a2b, b2a;
	Errors err;
	auto side = [&](int me, Ring &out, Ring &in) {
		Rng r(42 + me);
		uint64_t id = (uint64_t)(me + 1) << 40;
		for (int round = 0; round < kRounds; round++) {
			for (int k = 0; k < kBatch; k++) {
				size_t n = random_size(r, 3);
				Obj o{malloc(n), n, id++};
				fill(o.p, n, o.id);
				while (!out.push(o))
					std::this_thread::yield();
			}
			for (int k = 0; k < kBatch; k++) {
				Obj o;
				while (!in.pop(o))
					std::this_thread::yield();
				if (!verify(o.p, o.n, o.id))
					err.add(describe("corrupted", o.p, o.n, o.id));
				free(o.p);
			}
		}
	};
	std::thread ta(side, 0, std::ref(a2b), std::ref(b2a));
	std::thread tb(side, 1, std::ref(b2a), std::ref(a2b));
	ta.join();
	tb.join();
	EXPECT_EQ(err.count.load(), 0) << err.first;
}
