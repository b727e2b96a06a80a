// churn_test.cc — thousands of short-lived threads: each allocates, frees
// some, and hands the rest to the main thread, which checks and frees them
// after the thread (and its cache) is gone. Also objects going the other way,
// allocated by main and freed by short-lived threads.
#include <gtest/gtest.h>

#include <atomic>
#include <malloc.h>
#include <mutex>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

#include "numaheap.h"
#include "stress_util.h"

namespace {

struct Obj {
	void *p;
	size_t n;
	uint64_t id;
};

struct Handoff {
	std::mutex mu;
	std::vector<Obj> objs;
	std::atomic<long> bad{0};
	std::atomic<long> done{0};
};

void short_lived(int tid, Handoff *h, std::vector<Obj> *to_free)
{
	Rng r(tid * 7919 + 1);
	Obj mine[48];
	int n = 0;
	for (int i = 0; i < 48; i++) {
		size_t sz = random_size(r, 20);
		void *p = (i % 7 == 0) ? calloc(1, sz) : malloc(sz);
		if (!p) {
			h->bad++;
			continue;
		}
		if (i % 7 == 0 && !is_zero(p, sz))
			h->bad++;
		mine[n] = Obj{p, sz, ((uint64_t)tid << 20) | (uint64_t)i};
		fill(p, sz, mine[n].id);
		n++;
	}
	// Free every other one here (checked), hand the rest over.
	std::vector<Obj> keep;
	for (int i = 0; i < n; i++) {
		if (i % 2 == 0) {
			if (!verify(mine[i].p, mine[i].n, mine[i].id))
				h->bad++;
			free(mine[i].p);
		} else {
			keep.push_back(mine[i]);
		}
	}
	// Free what main allocated for us.
	if (to_free)
		for (Obj &o : *to_free) {
			if (!verify(o.p, o.n, o.id))
				h->bad++;
			free(o.p);
		}
	{
		std::lock_guard<std::mutex> g(h->mu);
		for (Obj &o : keep)
			h->objs.push_back(o);
	}
	h->done++;
}

} // namespace

TEST(Churn, ThousandsOfShortLivedThreads)
{
	const int kWaves = 250, kPerWave = 16; // 4000 threads, 16 at a time
	Handoff h;
	struct mallinfo2 before = mallinfo2();
	long checked = 0, bad_main = 0;
	uint64_t main_id = 1ull << 60;
	Rng r(5);
	for (int w = 0; w < kWaves; w++) {
		std::vector<std::vector<Obj>> gifts(kPerWave);
		for (int t = 0; t < kPerWave; t++)
			for (int k = 0; k < 8; k++) {
				size_t sz = random_size(r, 20);
				Obj o{malloc(sz), sz, main_id++};
				fill(o.p, sz, o.id);
				gifts[t].push_back(o);
			}
		std::vector<std::thread> th;
		for (int t = 0; t < kPerWave; t++)
			th.emplace_back(short_lived, w * kPerWave + t, &h, &gifts[t]);
		for (auto &t : th)
			t.join();
		// The threads are gone: their objects are checked and freed here.
		std::vector<Obj> objs;
		{
			std::lock_guard<std::mutex> g(h.mu);
			objs.swap(h.objs);
		}
		for (Obj &o : objs) {
			if (!verify(o.p, o.n, o.id))
				bad_main++;
			if (numaheap_node_of(o.p) != 0)
				bad_main++;
			free(o.p);
			checked++;
		}
	}
	EXPECT_EQ(h.done.load(), (long)kWaves * kPerWave);
	EXPECT_EQ(h.bad.load(), 0) << "corruption seen in the short-lived threads";
	EXPECT_EQ(bad_main, 0) << "corruption seen in objects handed over by exited threads";
	EXPECT_EQ(checked, (long)kWaves * kPerWave * 24);
	struct mallinfo2 after = mallinfo2();
	EXPECT_LE(after.uordblks, before.uordblks + (2 << 20)) << "objects of exited threads were not all freed";
	if (!heap_profiling_on()) { // stress_util.h
		EXPECT_EQ(after.hblkhd, before.hblkhd);
	}
	// Dead threads' caches are recycled: 4000 threads must not grow the heap
	// by anything like 4000 caches' worth.
	EXPECT_LE(after.arena, before.arena + (256u << 20)) << "mapped bytes grew from " << before.arena;
}

TEST(Churn, ThreadsThatExitWithFullCaches)
{
	// Each thread frees many objects of one class (filling its cache) and
	// exits without allocating again: the cached objects must go back to the
	// heap and be reusable by later threads with intact contents checks.
	Handoff h;
	for (int wave = 0; wave < 60; wave++) {
		std::vector<std::thread> th;
		for (int t = 0; t < 16; t++)
			th.emplace_back([&h, t, wave] {
				std::vector<Obj> v;
				size_t n = 16 * (1 + (t % 8));
				for (int i = 0; i < 3000; i++) {
					Obj o{malloc(n), n, ((uint64_t)wave << 32) | ((uint64_t)t << 16) | (uint64_t)i};
					fill(o.p, n, o.id);
					v.push_back(o);
				}
				for (Obj &o : v) {
					if (!verify(o.p, o.n, o.id))
						h.bad++;
					free(o.p);
				}
				h.done++;
			});
		for (auto &t : th)
			t.join();
	}
	EXPECT_EQ(h.bad.load(), 0);
	EXPECT_EQ(h.done.load(), 60 * 16);
}

TEST(Churn, DetachedThreadsExitWhileMainAllocates)
{
	// Threads exit (and tear down their caches) while other threads allocate.
	std::atomic<long> bad{0}, finished{0};
	const int kThreads = 2000;
	std::atomic<bool> stop{false};
	std::thread busy([&] {
		Rng r(9);
		uint64_t id = 0;
		while (!stop.load()) {
			size_t n = random_size(r, 10);
			void *p = malloc(n);
			fill(p, n, id);
			if (!verify(p, n, id))
				bad++;
			free(p);
			id++;
		}
	});
	long created = 0;
	for (int i = 0; i < kThreads; i++) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		auto fn = [](void *arg) -> void * {
			auto *ctx = (std::pair<std::atomic<long> *, std::atomic<long> *> *)arg;
			void *ps[16];
			for (int k = 0; k < 16; k++) {
				ps[k] = malloc(32 * (k + 1));
				fill(ps[k], 32 * (k + 1), (uint64_t)k);
			}
			for (int k = 0; k < 16; k++) {
				if (!verify(ps[k], 32 * (k + 1), (uint64_t)k))
					(*ctx->first)++;
				free(ps[k]);
			}
			(*ctx->second)++;
			delete ctx;
			return nullptr;
		};
		auto *ctx = new std::pair<std::atomic<long> *, std::atomic<long> *>(&bad, &finished);
		int rc = pthread_create(&t, &a, fn, ctx);
		pthread_attr_destroy(&a);
		if (rc != 0) {
			ADD_FAILURE() << "pthread_create: " << rc;
			delete ctx;
			break;
		}
		created++;
		// Keep the number of live threads bounded.
		while (i - finished.load() > 64)
			std::this_thread::yield();
	}
	while (finished.load() < created)
		std::this_thread::yield();
	stop = true;
	busy.join();
	EXPECT_EQ(bad.load(), 0);
	EXPECT_EQ(finished.load(), kThreads);
}

// ---- allocation from thread-exit destructors ---------------------------------------------

namespace {

pthread_key_t g_key;
std::atomic<long> g_tls_bad{0}, g_key_dtors{0}, g_tl_dtors{0};

void key_destructor(void *p)
{
	// Runs during thread exit, after the thread's C++ thread_locals: the
	// allocator must still serve this thread.
	if (!verify(p, 200, 77))
		g_tls_bad++;
	free(p);
	void *q = malloc(1000), *r = malloc(100000);
	if (!q || !r || numaheap_node_of(q) != 0 || numaheap_node_of(r) != 0)
		g_tls_bad++;
	fill(q, 1000, 5);
	fill(r, 100000, 6);
	if (!verify(q, 1000, 5) || !verify(r, 100000, 6))
		g_tls_bad++;
	free(q);
	free(r);
	if (g_key_dtors++ % 2 == 0) {
		// Set the key again: the destructor runs a second round, later still.
		void *again = malloc(200);
		fill(again, 200, 77);
		pthread_setspecific(g_key, again);
	}
}

struct ThreadLocalState {
	std::vector<Obj> objs;
	ThreadLocalState()
	{
		for (int i = 0; i < 20; i++) {
			Obj o{malloc(64 * (i + 1)), (size_t)64 * (i + 1), (uint64_t)i};
			fill(o.p, o.n, o.id);
			objs.push_back(o);
		}
	}
	~ThreadLocalState()
	{
		for (Obj &o : objs) {
			if (!verify(o.p, o.n, o.id))
				g_tls_bad++;
			free(o.p);
		}
		void *p = malloc(5000); // and allocate while being destroyed
		fill(p, 5000, 9);
		if (!verify(p, 5000, 9))
			g_tls_bad++;
		free(p);
		g_tl_dtors++;
	}
};

thread_local ThreadLocalState t_state;

} // namespace

TEST(Churn, ThreadExitDestructorsAllocate)
{
	ASSERT_EQ(pthread_key_create(&g_key, key_destructor), 0);
	const int kWaves = 100, kPerWave = 12;
	for (int w = 0; w < kWaves; w++) {
		std::vector<std::thread> th;
		for (int t = 0; t < kPerWave; t++)
			th.emplace_back([] {
				void *p = malloc(200);
				fill(p, 200, 77);
				pthread_setspecific(g_key, p);
				// Touch the thread_local so it is constructed (and destroyed at exit).
				if (t_state.objs.size() != 20)
					g_tls_bad++;
			});
		for (auto &t : th)
			t.join();
	}
	EXPECT_EQ(g_tls_bad.load(), 0);
	EXPECT_EQ(g_tl_dtors.load(), (long)kWaves * kPerWave);
	EXPECT_GE(g_key_dtors.load(), (long)kWaves * kPerWave);
	pthread_key_delete(g_key);
}
