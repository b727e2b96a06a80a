// fork_test.cc — fork() while other threads allocate: the child must find a
// consistent heap (no lock held by a thread that does not exist in it), use
// it (malloc, calloc, realloc, free, threads), free the parent's objects,
// and exit 0.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <set>
#include <vector>

#include "numaheap.h"
#include "stats_json.h"
#include "stress_util.h"

namespace {

struct Obj {
	void *p;
	size_t n;
	uint64_t id;
};

// Exit codes of the child: which check failed.
enum ChildFail {
	kParentObjCorrupt = 10,
	kAllocFailed,
	kCorrupt,
	kNotZeroed,
	kReallocLost,
	kThreadFailed,
	kNotNumaheap,
	kGrandchildFailed,
};

void *child_thread(void *arg)
{
	Rng r((uintptr_t)arg);
	for (int i = 0; i < 1000; i++) {
		size_t n = random_size(r, 20);
		void *p = malloc(n);
		if (!p)
			return (void *)1;
		fill(p, n, (uint64_t)i);
		if (!verify(p, n, (uint64_t)i))
			return (void *)1;
		free(p);
	}
	return nullptr;
}

// What a forked child does; returns its exit status.
int child_work(const std::vector<Obj> &parent_objs, uint64_t seed, bool fork_again)
{
	// The parent's objects (allocated before fork) are intact and freeable.
	for (const Obj &o : parent_objs) {
		if (!verify(o.p, o.n, o.id))
			return kParentObjCorrupt;
		free(o.p);
	}
	Rng r(seed);
	std::vector<Obj> live;
	for (int i = 0; i < 1000; i++) {
		size_t n = random_size(r, 20, 1 << 20);
		bool zero = i % 5 == 0;
		void *p = zero ? calloc(n, 1) : malloc(n);
		if (!p)
			return kAllocFailed;
		if (numaheap_node_of(p) != 0)
			return kNotNumaheap;
		if (zero && !is_zero(p, n))
			return kNotZeroed;
		Obj o{p, n, seed * 100000 + (uint64_t)i};
		fill(p, n, o.id);
		live.push_back(o);
		if (r.below(3) == 0) {
			Obj &v = live[r.below(live.size())];
			if (!verify(v.p, v.n, v.id))
				return kCorrupt;
			free(v.p);
			v = live.back();
			live.pop_back();
		}
	}
	for (Obj &o : live) {
		// Grow or shrink with realloc, then free.
		size_t m = random_size(r, 20, 512 << 10) + 1;
		void *q = realloc(o.p, m);
		if (!q)
			return kAllocFailed;
		if (!verify(q, std::min(o.n, m), o.id))
			return kReallocLost;
		free(q);
	}
	// Threads work in the child too.
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		if (pthread_create(&t[i], nullptr, child_thread, (void *)(uintptr_t)(seed + i)) != 0)
			return kThreadFailed;
	for (int i = 0; i < 3; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		if (ret)
			return kThreadFailed;
	}
	if (fork_again) {
		pid_t g = fork();
		if (g == 0)
			_exit(child_work({}, seed + 7, false));
		int st = 0;
		if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return kGrandchildFailed;
	}
	return 0;
}

// Stops and joins background threads however the test body is left (a
// failed ASSERT returns early; a joinable std::thread would terminate).
struct StopAndJoin {
	std::atomic<bool> &stop;
	std::vector<std::thread> &threads;
	~StopAndJoin()
	{
		stop = true;
		for (auto &t : threads)
			if (t.joinable())
				t.join();
	}
};

// Wait for pid at most timeout_s seconds; kills it on timeout. Returns the status, or -1 on timeout.
int wait_with_timeout(pid_t pid, int timeout_s)
{
	for (int i = 0; i < timeout_s * 100; i++) {
		int st = 0;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -2;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	return -1;
}

} // namespace

TEST(Fork, ChildrenOfABusyProcessCanAllocate)
{
	std::atomic<bool> stop{false};
	std::atomic<long> bad{0}, ops{0};
	std::vector<std::thread> bg;
	StopAndJoin guard{stop, bg};
	for (int t = 0; t < 4; t++)
		bg.emplace_back([&, t] {
			Rng r(100 + t);
			std::vector<Obj> live;
			uint64_t id = (uint64_t)t << 40;
			while (!stop.load(std::memory_order_relaxed)) {
				// Mostly small, some large (heap lock), some aligned.
				size_t n = random_size(r, 40, 2 << 20);
				void *p = (id % 11 == 0) ? aligned_alloc(4096, n) : malloc(n);
				if (!p) {
					bad++;
					continue;
				}
				Obj o{p, n, id++};
				fill(p, n, o.id);
				live.push_back(o);
				if (live.size() > 200 || r.below(2)) {
					size_t k = r.below(live.size());
					if (!verify(live[k].p, live[k].n, live[k].id))
						bad++;
					free(live[k].p);
					live[k] = live.back();
					live.pop_back();
				}
				ops++;
			}
			for (Obj &o : live) {
				if (!verify(o.p, o.n, o.id))
					bad++;
				free(o.p);
			}
		});

	const int kForks = 16;
	int failed = 0;
	for (int f = 0; f < kForks; f++) {
		// Some objects the child will check and free.
		std::vector<Obj> mine;
		Rng r(7000 + f);
		for (int i = 0; i < 50; i++) {
			size_t n = random_size(r, 40);
			Obj o{malloc(n), n, (1ull << 62) + (uint64_t)f * 1000 + i};
			fill(o.p, n, o.id);
			mine.push_back(o);
		}
		// Let the threads get going between forks.
		long start = ops.load();
		while (ops.load() < start + 2000)
			std::this_thread::yield();
		pid_t pid = fork();
		ASSERT_GE(pid, 0) << strerror(errno);
		if (pid == 0)
			_exit(child_work(mine, 10 + f, f % 4 == 0));
		int st = wait_with_timeout(pid, 30);
		EXPECT_NE(st, -1) << "fork " << f << ": the child hung (deadlock in the allocator after fork?)";
		if (st >= 0) {
			EXPECT_TRUE(WIFEXITED(st)) << "fork " << f << ": child killed by signal "
						   << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			if (WIFEXITED(st)) {
				EXPECT_EQ(WEXITSTATUS(st), 0) << "fork " << f << ": child failed check " << WEXITSTATUS(st);
			}
		}
		failed += !(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
		// The parent still owns its objects: check and free them.
		for (Obj &o : mine) {
			EXPECT_TRUE(verify(o.p, o.n, o.id));
			free(o.p);
		}
		if (failed > 3)
			break;
	}
	stop = true;
	for (auto &t : bg)
		t.join();
	EXPECT_EQ(failed, 0);
	EXPECT_EQ(bad.load(), 0) << "the parent's threads saw corruption";
}

TEST(Fork, ForkFromASecondaryThread)
{
	// The forking thread is not the main thread, and the child's only thread
	// is that one: its cache must still work.
	std::atomic<bool> stop{false};
	std::vector<std::thread> bg;
	StopAndJoin guard{stop, bg};
	bg.emplace_back([&] {
		Rng r(1);
		while (!stop.load()) {
			size_t n = random_size(r, 30);
			void *p = malloc(n);
			fill(p, n, 1);
			free(p);
		}
	});
	for (int f = 0; f < 8; f++) {
		int st = -3;
		std::thread forker([&st, f] {
			void *p = malloc(1000);
			fill(p, 1000, 99);
			pid_t pid = fork();
			if (pid == 0) {
				int rc = child_work({Obj{p, 1000, 99}}, 500 + f, false);
				_exit(rc);
			}
			st = pid < 0 ? -2 : wait_with_timeout(pid, 30);
			free(p);
		});
		forker.join();
		ASSERT_GE(st, 0) << "fork " << f << (st == -1 ? ": child hung" : ": fork failed");
		ASSERT_TRUE(WIFEXITED(st)) << "fork " << f << ": signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		EXPECT_EQ(WEXITSTATUS(st), 0) << "fork " << f;
	}
}

// Per-thread caches only: registered for the stress.pt. run alone
// (CMakeLists.txt filters *PerThreadCaches.* out of the per-CPU one).
TEST(ForkPerThreadCaches, ChildTakesBackTheCachesOfThreadsThatAreGone)
{
	// With per-thread caches, a thread's cache holds the objects it freed
	// last. In a child that thread does not exist: its cache goes back to
	// mcentral, as at thread exit, so the child can allocate those objects
	// again instead of keeping them for nobody.
	std::string s = stats();
	ASSERT_NE(s.find("\"cpu_mode\":\"per-thread\""), std::string::npos)
		<< "per-thread caches only (per-CPU mode: freed objects are in the CPU's cache, which the child keeps)";
	const size_t kSize = 5000; // a class nothing else in this test binary uses
	const int kN = 64;
	std::vector<void *> theirs;
	std::atomic<int> stage{0};
	std::thread t([&] {
		for (int i = 0; i < kN; i++)
			theirs.push_back(malloc(kSize));
		for (void *p : theirs)
			free(p);
		stage = 1;
		while (stage != 2) // alive, and out of the allocator, across the fork
			usleep(1000);
	});
	while (stage != 1)
		usleep(1000);
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		// The thread's objects: some flushed to mcentral, the rest in its
		// cache. The child gets every one of them back.
		std::set<void *> set(theirs.begin(), theirs.end());
		int again = 0;
		for (int i = 0; i < 4 * kN; i++)
			again += set.count(malloc(kSize)) ? 1 : 0;
		_exit(again == kN ? 0 : 1);
	}
	int st = wait_with_timeout(pid, 30);
	stage = 2;
	t.join();
	ASSERT_GE(st, 0);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(WEXITSTATUS(st), 0) << "the child did not get back all " << kN << " objects the thread had freed";
}

TEST(Fork, ChildReusesParentsFreedMemoryAndExits)
{
	// The child exits through exit() (atexit handlers, destructors, the
	// allocator's own exit path) rather than _exit().
	std::vector<void *> v;
	for (int i = 0; i < 1000; i++)
		v.push_back(malloc(100 + i));
	for (int i = 0; i < 1000; i += 2)
		free(v[i]);
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		for (int i = 1; i < 1000; i += 2)
			free(v[i]);
		for (int i = 0; i < 5000; i++) {
			void *p = malloc(100 + i % 1000);
			if (!p)
				_exit(1);
			memset(p, 0x3c, 100 + i % 1000);
			free(p);
		}
		exit(0);
	}
	int st = wait_with_timeout(pid, 30);
	ASSERT_GE(st, 0);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(WEXITSTATUS(st), 0);
	for (int i = 1; i < 1000; i += 2)
		free(v[i]);
}
