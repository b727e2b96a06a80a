// Evacuation (mcentral.c): a busy program after a mass delete gets its
// sparse spans back while it keeps allocating and freeing, and every
// object keeps its contents through it; a program that grows back into the
// holes the delete left is not evacuated (it would take fresh memory
// instead). Each test in a process of its own (CMakeLists.txt).
#include <gtest/gtest.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "numaheap.h"
#include "stats_json.h"
#include "stress_util.h"

namespace {

struct Block {
	unsigned char *p;
	size_t n;
	uint64_t id;
};

double now_s()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// `bytes` of 16-512 B blocks, each written with its pattern.
std::vector<Block> fill_heap(size_t bytes, Rng &r, uint64_t &next_id)
{
	std::vector<Block> v;
	for (size_t total = 0; total < bytes;) {
		size_t n = r.range(16, 512);
		auto *p = (unsigned char *)malloc(n);
		EXPECT_NE(p, nullptr);
		if (!p)
			break;
		fill(p, n, next_id);
		v.push_back({p, n, next_id++});
		total += n;
	}
	return v;
}

// Free all but one block in five, at random; returns the survivors.
std::vector<Block> delete_most(std::vector<Block> &v, Rng &r)
{
	std::vector<Block> kept;
	for (auto &b : v) {
		if (r.below(5) == 0) {
			kept.push_back(b);
		} else {
			EXPECT_TRUE(verify(b.p, b.n, b.id));
			free(b.p);
		}
	}
	v.clear();
	return kept;
}

// The busy program: replace `count` random live blocks, each checked
// before its free, by new ones of 16-512 B.
void replace_some(std::vector<Block> &v, Rng &r, uint64_t &next_id, int count)
{
	for (int k = 0; k < count; k++) {
		Block &b = v[r.below(v.size())];
		ASSERT_TRUE(verify(b.p, b.n, b.id)) << "block " << b.id << " changed";
		free(b.p);
		b.n = r.range(16, 512);
		b.p = (unsigned char *)malloc(b.n);
		ASSERT_NE(b.p, nullptr);
		b.id = next_id++;
		fill(b.p, b.n, b.id);
	}
}

// Check every block and free it.
void free_all(std::vector<Block> &v)
{
	for (auto &b : v) {
		ASSERT_TRUE(verify(b.p, b.n, b.id)) << "block " << b.id << " changed";
		free(b.p);
	}
	v.clear();
}

long long in_spans()
{
	std::vector<long long> v = json_numbers(stats(), "nodes", "in_use_bytes");
	long long t = 0;
	for (long long x : v)
		t += x;
	return t;
}

} // namespace

TEST(Evacuation, BusyHeapAfterDeleteGivesSpansBack)
{
	Rng r(21);
	uint64_t id = 1;
	std::vector<Block> v = fill_heap(128u << 20, r, id);
	v = delete_most(v, r);
	long long before = in_spans();
	// Keep working: replace random live blocks (each checked before its
	// free) until the background thread has evacuated and emptied spans
	// and the spans hold a third less, or 20 s.
	long long evacuated = 0, after = before;
	double end = now_s() + 20;
	while (now_s() < end) {
		ASSERT_NO_FATAL_FAILURE(replace_some(v, r, id, 20000));
		std::string s = stats();
		evacuated = json_number(s, "scavenger", "evacuated");
		after = in_spans();
		if (evacuated > 0 && after < before * 2 / 3)
			break;
	}
	std::string s = stats();
	printf("in spans %lld -> %lld MiB; evacuations %lld, evacuated %lld, stalls %lld\n", before >> 20, after >> 20,
	       json_number(s, "scavenger", "evacuations"), evacuated, json_number(s, "scavenger", "evac_stalls"));
	EXPECT_GT(evacuated, 0) << s;
	EXPECT_LT(after, before * 2 / 3) << "the sparse spans did not come back: " << s;
	free_all(v);
}

TEST(Evacuation, StalledSpansOfALongListGoBackInTime)
{
	// 2.4 million blocks of 64 B (18,750 spans), one in sixteen kept for
	// good, so every span is sparse and none will ever empty; the class
	// kept busy by a pool of its own blocks, replaced at random. The evac
	// list then grows past the 512 spans a stall check looks at (a
	// sixteenth of the spans fit in its budget: some 1,300; a look adds up
	// to 512, about one look a second), and every span on it stalls. They
	// must go back about 5 s after they were evacuated (and some seconds
	// for the looks to get round the list), not after 50 looks at each
	// (over two minutes here, where a look gets round the list every
	// three passes).
	const size_t total = 2400000, pool_n = 20000;
	Rng r(25);
	std::vector<Block> kept;
	std::vector<unsigned char *> all(total);
	uint64_t id = 1;
	for (size_t i = 0; i < total; i++) {
		all[i] = (unsigned char *)malloc(64);
		ASSERT_NE(all[i], nullptr);
	}
	for (size_t i = 0; i < total; i++) {
		if (r.below(16) == 0) {
			fill(all[i], 64, id);
			kept.push_back({all[i], 64, id++});
		} else {
			free(all[i]);
		}
	}
	all.clear();
	all.shrink_to_fit();
	std::vector<unsigned char *> pool(pool_n);
	for (auto &p : pool)
		p = (unsigned char *)malloc(64);
	auto churn = [&](int n) {
		for (int k = 0; k < n; k++) {
			unsigned char *&p = pool[r.below(pool_n)];
			free(p);
			p = (unsigned char *)malloc(64);
			ASSERT_NE(p, nullptr);
			p[0] = 1;
		}
	};
	// The first evacuations (the class must be steady for 2 s first).
	long long first = 0, peak = 0;
	double t0 = 0, end = now_s() + 30;
	while (now_s() < end && !first) {
		ASSERT_NO_FATAL_FAILURE(churn(20000));
		first = json_number(stats(), "scavenger", "evacuations");
		if (first)
			t0 = now_s();
	}
	ASSERT_GT(first, 0) << stats();
	// Keep busy until as many spans stalled as the list held at its
	// longest in the first 5 s (none can stall before 5.1 s).
	long long stalls = 0;
	double t_window = t0 + 5, t_done = 0;
	end = t0 + 30;
	while (now_s() < end) {
		ASSERT_NO_FATAL_FAILURE(churn(20000));
		std::string s = stats();
		long long ev = json_number(s, "scavenger", "evacuations");
		stalls = json_number(s, "scavenger", "evac_stalls");
		if (now_s() < t_window)
			peak = std::max(peak, ev - stalls);
		else if (stalls >= peak) {
			t_done = now_s();
			break;
		}
	}
	printf("evac list at its longest %lld spans; %lld stalled %s %.1f s\n", peak, stalls,
	       t_done ? "after" : "in the", t_done ? t_done - t0 : now_s() - t0);
	EXPECT_GT(peak, 768) << "the list never became long: " << stats();
	EXPECT_GT(t_done, 0) << "the spans did not stall within 30 s: " << stats();
	// About 9-10 s here; 20 s leaves room for a loaded machine, and 50
	// looks at each span would take minutes.
	EXPECT_LT(t_done - t0, 20.0) << "stalled spans of a long list went back late";
	ASSERT_NO_FATAL_FAILURE(free_all(kept));
	for (auto p : pool)
		free(p);
}

TEST(Evacuation, OffEvacuatesNothing)
{
	// NUMAHEAP_EVACUATE=0 (CMakeLists.txt): the busy heap after a delete
	// keeps working three times as long as a class must be steady before
	// it is evacuated, and nothing is.
	const char *e = getenv("NUMAHEAP_EVACUATE");
	ASSERT_TRUE(e && !strcmp(e, "0")) << "run with NUMAHEAP_EVACUATE=0";
	Rng r(24);
	uint64_t id = 1;
	std::vector<Block> v = fill_heap(64u << 20, r, id);
	v = delete_most(v, r);
	double end = now_s() + 6;
	while (now_s() < end)
		ASSERT_NO_FATAL_FAILURE(replace_some(v, r, id, 20000));
	std::string s = stats();
	EXPECT_EQ(json_number(s, "scavenger", "evacuations"), 0) << s;
	free_all(v);
}

TEST(Evacuation, GrowingBackIsNotEvacuated)
{
	// After the delete the program grows back to the same size: it fills
	// the holes, so nothing is evacuated and the spans grow by little.
	Rng r(22);
	uint64_t id = 1;
	std::vector<Block> v = fill_heap(96u << 20, r, id);
	v = delete_most(v, r);
	long long before = in_spans();
	for (int round = 0; round < 40; round++) {
		std::vector<Block> more = fill_heap(2u << 20, r, id);
		v.insert(v.end(), more.begin(), more.end());
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, nullptr); // the background thread's looks come between
	}
	std::string s = stats();
	long long after = in_spans();
	printf("in spans %lld -> %lld MiB after 80 MiB of growth; evacuations %lld\n", before >> 20, after >> 20,
	       json_number(s, "scavenger", "evacuations"));
	EXPECT_EQ(json_number(s, "scavenger", "evacuations"), 0) << s;
	EXPECT_LT(after, before + (24ll << 20)) << "growing back took fresh spans instead of the holes";
	free_all(v);
}

namespace {

// A block made by one of the allocation calls a program uses.
Block make_any(Rng &r, uint64_t id)
{
	size_t n = r.range(16, 512);
	unsigned char *p = nullptr;
	switch (r.below(5)) {
	case 0:
		p = (unsigned char *)calloc(1, n);
		EXPECT_TRUE(p && is_zero(p, n)) << "calloc(" << n << ")";
		break;
	case 1: {
		void *q = nullptr;
		EXPECT_EQ(posix_memalign(&q, (size_t)32 << r.below(3), n), 0);
		p = (unsigned char *)q;
		break;
	}
	case 2:
		p = (unsigned char *)aligned_alloc(64, (n + 63) & ~(size_t)63);
		break;
	case 3: // grown from a smaller block
		p = (unsigned char *)realloc(malloc(8), n);
		break;
	default:
		p = (unsigned char *)malloc(n);
	}
	EXPECT_NE(p, nullptr);
	if (p) {
		EXPECT_GE(malloc_usable_size(p), n);
		fill(p, n, id);
	}
	return {p, n, id};
}

struct Handoff {
	std::mutex mu;
	std::vector<Block> q;
};

} // namespace

TEST(Evacuation, EveryCallKeepsItsBlocksThroughEvacuation)
{
	// The busy heap after a delete again, with the blocks made by every
	// allocation call, resized with realloc, measured with
	// malloc_usable_size, freed by another thread, and short-lived
	// threads, a fork and numaheap_release beside them: every path that
	// meets an object of an evacuated span (its page entry says no class)
	// keeps it intact.
	Rng r(23);
	std::atomic<uint64_t> ids{1};
	std::vector<Block> v;
	for (size_t total = 0; total < (64u << 20);) {
		v.push_back(make_any(r, ids++));
		total += v.back().n;
	}
	v = delete_most(v, r);
	ASSERT_FALSE(HasFailure()) << "a block changed before its free";
	long long before = in_spans();
	std::atomic<bool> stop{false};
	std::atomic<long> bad{0};
	Handoff hand[2];
	auto worker = [&](int me) {
		Rng wr(100 + me);
		std::vector<Block> mine(v.begin() + (me ? v.size() / 2 : 0), v.begin() + (me ? v.size() : v.size() / 2));
		while (!stop.load(std::memory_order_relaxed)) {
			for (int k = 0; k < 5000; k++) {
				Block &b = mine[wr.below(mine.size())];
				if (!verify(b.p, b.n, b.id) || malloc_usable_size(b.p) < b.n) {
					bad++;
					continue;
				}
				unsigned act = (unsigned)wr.below(8);
				if (act == 0) { // resize in place or move
					size_t n2 = wr.range(16, 512);
					auto *q = (unsigned char *)realloc(b.p, n2);
					if (!q || !verify(q, std::min(n2, b.n), b.id)) {
						bad++;
						continue;
					}
					b.p = q;
					b.n = n2;
					b.id = ids++;
					fill(b.p, b.n, b.id);
					continue;
				}
				if (act == 1) { // the other thread frees it
					std::lock_guard<std::mutex> g(hand[1 - me].mu);
					hand[1 - me].q.push_back(b);
				} else {
					free(b.p);
				}
				b = make_any(wr, ids++);
			}
			std::vector<Block> got;
			{
				std::lock_guard<std::mutex> g(hand[me].mu);
				got.swap(hand[me].q);
			}
			for (auto &b : got) {
				if (!verify(b.p, b.n, b.id))
					bad++;
				free(b.p);
			}
		}
		for (auto &b : mine) {
			if (!verify(b.p, b.n, b.id))
				bad++;
			free(b.p);
		}
	};
	std::thread t0(worker, 0), t1(worker, 1);
	long long evacuated = 0, seen_after = 0;
	bool forked = false;
	double end = now_s() + 40, seen_at = 0;
	for (unsigned round = 0; now_s() < end; round++) {
		// Now and then everything free goes back at once, from this
		// thread, while spans are under evacuation (free pages of
		// evacuated spans, the in-span release, cache drains).
		if (round % 8 == 7)
			numaheap_release();
		// A short-lived thread: its cache goes back when it exits.
		std::thread([&] {
			Rng tr(ids.load());
			std::vector<Block> tmp;
			for (int k = 0; k < 2000; k++)
				tmp.push_back(make_any(tr, ids++));
			for (auto &b : tmp) {
				if (!verify(b.p, b.n, b.id))
					bad++;
				free(b.p);
			}
		}).join();
		evacuated = json_number(stats(), "scavenger", "evacuated");
		if (evacuated > 0 && !seen_at)
			seen_at = now_s();
		if (seen_at && !forked) {
			// A fork while spans are under evacuation: the child's
			// heap works, and so does the parent's afterwards.
			forked = true;
			pid_t pid = fork();
			ASSERT_GE(pid, 0);
			if (pid == 0) {
				Rng cr(7);
				std::vector<Block> tmp;
				for (int k = 0; k < 20000; k++)
					tmp.push_back(make_any(cr, (uint64_t)k + 1));
				int rc = 0;
				for (auto &b : tmp) {
					rc |= !verify(b.p, b.n, b.id);
					free(b.p);
				}
				_exit(rc);
			}
			int status = 0;
			ASSERT_EQ(waitpid(pid, &status, 0), pid);
			EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
		}
		if (seen_at && now_s() - seen_at > 4) {
			seen_after = evacuated;
			break;
		}
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, nullptr);
	}
	stop = true;
	t0.join();
	t1.join();
	for (auto &h : hand)
		for (auto &b : h.q) {
			EXPECT_TRUE(verify(b.p, b.n, b.id));
			free(b.p);
		}
	std::string s = stats();
	printf("in spans %lld -> %lld MiB; evacuations %lld, evacuated %lld, stalls %lld\n", before >> 20,
	       in_spans() >> 20, json_number(s, "scavenger", "evacuations"), json_number(s, "scavenger", "evacuated"),
	       json_number(s, "scavenger", "evac_stalls"));
	EXPECT_EQ(bad.load(), 0) << "blocks changed, or a call failed";
	EXPECT_TRUE(forked);
	EXPECT_GT(seen_after, 0) << "nothing was evacuated: the test checked nothing. " << s;
}
