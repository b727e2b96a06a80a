// soak.cc — long runs, bounded in time (docs/reliability.md gives the long
// commands and the figures of the last long run).
//
//   soak mixed   --seconds S [--threads T] [--rss-check no]
//                 every size and allocation function across threads, objects
//                 handed between threads, every object's contents checked; RSS
//                 sampled and required to stay flat (unless --rss-check no: under
//                 valgrind the run makes ~4,000 operations a second, so after 20 s
//                 the 4,096 mailboxes are still filling and the heap is still
//                 growing as it should; the native soak.mixed judges RSS)
//   soak threads --seconds S                 thread-creation storm: batches of
//                 short-lived joinable and detached threads that allocate, hand
//                 objects over and exit; RSS with no thread of the storm alive
//                 required to stay flat
//   soak fork    --seconds S                 fork storm while threads allocate:
//                 each child checks inherited objects, allocates, starts a thread,
//                 sometimes forks again, and must exit in time
//
// Prints a summary line "soak <mode>: ..." and exits 0 when every check passed.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <mutex>
#include <new>
#include <pthread.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "hx_util.h"
#include "numaheap.h"

using namespace hx;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<long> errors{0};
std::atomic<bool> stop{false};

void error(const char *what, const void *p, size_t n)
{
	if (errors.fetch_add(1) < 20)
		fprintf(stderr, "soak: %s: object %p size %zu\n", what, p, n);
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// An object and how it was made (so it is freed the matching way).
enum Kind : uint8_t { K_MALLOC, K_CALLOC, K_MEMALIGN, K_NEW, K_NEW_ARRAY };
struct Obj {
	uint8_t *p = nullptr;
	size_t n = 0;
	uint64_t id = 0;
	Kind kind = K_MALLOC;
};

// Sizes: mostly small, some medium, a few large, rarely huge.
size_t pick_size(Rng &r)
{
	unsigned x = (unsigned)r.below(10000);
	if (x < 5)
		return r.range(8 << 20, 32 << 20);
	if (x < 150)
		return r.range(32769, 2 << 20);
	if (x < 1500)
		return r.range(4097, 32768);
	if (x < 4000)
		return r.range(257, 4096);
	return r.range(0, 256);
}

// Check only a prefix and a suffix of huge objects (time), all of others.
bool verify(const Obj &o)
{
	if (o.n <= 65536)
		return check(o.p, o.n, o.id) == (size_t)-1;
	return check(o.p, 32768, o.id) == (size_t)-1 &&
	       check(o.p + o.n - 32768, 32768, o.id ^ 0xABCD) == (size_t)-1;
}

void stamp(Obj &o)
{
	if (o.n <= 65536) {
		fill(o.p, o.n, o.id);
		return;
	}
	fill(o.p, 32768, o.id);
	fill(o.p + o.n - 32768, 32768, o.id ^ 0xABCD);
}

Obj make(Rng &r, uint64_t id)
{
	Obj o;
	o.n = pick_size(r);
	o.id = id;
	unsigned how = (unsigned)r.below(20);
	if (how < 11) {
		o.p = (uint8_t *)malloc(o.n);
	} else if (how < 14) {
		o.kind = K_CALLOC;
		o.p = (uint8_t *)calloc(1, o.n);
		if (o.p && !is_zero(o.p, std::min<size_t>(o.n, 65536)))
			error("calloc memory not zero", o.p, o.n);
	} else if (how < 16) {
		o.kind = K_MEMALIGN;
		size_t a = (size_t)1 << r.range(3, 16);
		void *p = nullptr;
		if (posix_memalign(&p, a, o.n) == 0) {
			o.p = (uint8_t *)p;
			if ((uintptr_t)p % a)
				error("misaligned", p, o.n);
		}
	} else if (how < 18) {
		o.kind = K_NEW;
		o.p = (uint8_t *)::operator new(o.n);
	} else {
		o.kind = K_NEW_ARRAY;
		o.p = new uint8_t[o.n];
	}
	if (!o.p) {
		error("allocation failed", nullptr, o.n);
		return Obj{};
	}
	if (malloc_usable_size(o.p) < o.n)
		error("usable size too small", o.p, o.n);
	stamp(o);
	return o;
}

void destroy(Rng &r, Obj &o)
{
	if (!o.p)
		return;
	if (!verify(o))
		error("contents changed", o.p, o.n);
	switch (o.kind) {
	case K_MALLOC:
	case K_CALLOC:
		if (r.below(4) == 0)
			free_sized(o.p, o.n);
		else
			free(o.p);
		break;
	case K_MEMALIGN:
		free(o.p);
		break;
	case K_NEW:
		if (r.below(2))
			::operator delete(o.p, o.n);
		else
			::operator delete(o.p);
		break;
	case K_NEW_ARRAY:
		delete[] o.p;
		break;
	}
	o = Obj{};
}

// realloc keeps the contents it covers.
void grow(Rng &r, Obj &o)
{
	if (!o.p || (o.kind != K_MALLOC && o.kind != K_CALLOC))
		return;
	if (!verify(o))
		error("contents changed before realloc", o.p, o.n);
	size_t n2 = pick_size(r) | 1; // realloc to 0 would free
	uint8_t *q = (uint8_t *)realloc(o.p, n2);
	if (!q) {
		error("realloc failed", o.p, n2);
		return;
	}
	size_t keep = std::min(o.n, n2);
	if (o.n <= 65536 && n2 <= 65536 && check(q, keep, o.id) != (size_t)-1)
		error("realloc lost contents", q, keep);
	o.p = q;
	o.n = n2;
	o.kind = K_MALLOC;
	stamp(o);
}

// ---- RSS sampling ------------------------------------------------------------------

struct Sampler {
	std::vector<std::pair<double, size_t>> samples; // (seconds, rss)
	std::thread t;
	void start(Clock::time_point t0, double every)
	{
		t = std::thread([this, t0, every] {
			while (!stop.load()) {
				samples.push_back({seconds_since(t0), rss_bytes()});
				std::this_thread::sleep_for(std::chrono::duration<double>(every));
			}
		});
	}
	void join() { t.join(); }
	size_t max_between(double a, double b) const
	{
		size_t m = 0;
		for (auto &s : samples)
			if (s.first >= a && s.first < b)
				m = std::max(m, s.second);
		return m;
	}
};

// RSS is flat when the peak of the last third stays within 25% (+32 MiB) of
// the peak of the middle third: the first third is warm-up.
bool rss_flat(const Sampler &s, double total, size_t *mid, size_t *last)
{
	*mid = s.max_between(total / 3, 2 * total / 3);
	*last = s.max_between(2 * total / 3, total + 1);
	return *last <= *mid + *mid / 4 + (32 << 20);
}

std::string mib(size_t b)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
	return buf;
}

// ---- mixed ---------------------------------------------------------------------------

int soak_mixed(double secs, int nthreads, bool rss_check)
{
	const size_t kSlots = 1500, kMail = 4096;
	std::vector<std::atomic<Obj *>> mailbox(kMail);
	for (auto &m : mailbox)
		m.store(nullptr);
	std::atomic<uint64_t> ops{0}, handed{0};
	auto t0 = Clock::now();
	Sampler sampler;
	sampler.start(t0, 0.25);
	std::vector<std::thread> ts;
	for (int t = 0; t < nthreads; t++)
		ts.emplace_back([&, t] {
			Rng r(1234 + t);
			std::vector<Obj> slot(kSlots);
			uint64_t id = (uint64_t)(t + 1) << 48;
			uint64_t n = 0;
			while (!stop.load(std::memory_order_relaxed)) {
				for (int k = 0; k < 256; k++, n++) {
					Obj &o = slot[r.below(kSlots)];
					unsigned act = (unsigned)r.below(100);
					if (!o.p) {
						o = make(r, ++id);
					} else if (act < 8) {
						grow(r, o);
					} else if (act < 20) {
						// Hand it over; free whatever was waiting there (another thread's).
						Obj *box = new Obj(o);
						o = Obj{};
						Obj *old = mailbox[r.below(kMail)].exchange(box);
						if (old) {
							destroy(r, *old);
							delete old;
							handed.fetch_add(1, std::memory_order_relaxed);
						}
					} else {
						destroy(r, o);
					}
				}
			}
			for (auto &o : slot)
				destroy(r, o);
			ops.fetch_add(n);
		});
	while (seconds_since(t0) < secs && errors.load() == 0)
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
	double total = seconds_since(t0);
	stop.store(true);
	for (auto &t : ts)
		t.join();
	sampler.join();
	Rng r(1);
	for (auto &m : mailbox) {
		Obj *o = m.load();
		if (o) {
			destroy(r, *o);
			delete o;
		}
	}
	size_t mid = 0, last = 0;
	bool flat = rss_flat(sampler, total, &mid, &last);
	size_t peak = sampler.max_between(0, total + 1);
	numaheap_release();
	size_t after = rss_bytes();
	printf("soak mixed: %d threads, %.0f s, %llu operations (%.0f/s), %llu handed between threads, %ld errors; "
	       "RSS peak %s, middle-third peak %s, last-third peak %s (%s), after release %s\n",
	       nthreads, total, (unsigned long long)ops.load(), ops.load() / total, (unsigned long long)handed.load(),
	       errors.load(), mib(peak).c_str(), mib(mid).c_str(), mib(last).c_str(),
	       !rss_check ? "not judged: --rss-check no" : flat ? "flat" : "GROWING", mib(after).c_str());
	if (rss_check && !flat)
		fprintf(stderr, "soak: RSS grew from %s to %s\n", mib(mid).c_str(), mib(last).c_str());
	return errors.load() == 0 && (flat || !rss_check) ? 0 : 1;
}

// ---- thread-creation storm ----------------------------------------------------------
//
// What its RSS check measures. The threads of a batch keep most of their
// objects until they exit, so RSS while a batch runs is that batch's live set
// (from tens to a couple of hundred MiB, as it draws objects of 8-32 MiB or
// not) plus what was freed too recently for the scavenger to have returned:
// the peaks follow the workload and the scheduling, not the allocator. (With
// a slow machine the thirds of a run hold other batches than with a fast one,
// and the highest peak can fall in the last third.) What a leak tied to
// threads leaves behind (caches or M's of exited threads not reused, objects
// stranded in them, thread stacks) is what is still resident when no thread
// of the storm is alive and the program holds no object. So at quiescent
// points the storm stops after a batch: the detached threads are waited for
// until they are gone (their kernel threads too), the objects handed over are
// freed, numaheap_release() returns the free pages, and RSS is read there.
// The points are after every `every`-th batch and at the end; `every` starts
// at 1 and doubles (dropping every other point) whenever 64 points are kept,
// so a run has 32-64 points, or one per batch, however fast the machine is.
// Over the batches (a leak grows with the threads created, not with time),
// the highest point of the last third must stay within 32 MiB of the highest
// of the middle third (the first third is warm-up). No slack relative to the
// heap as rss_flat's 25%: the points hold no object, and what the allocator
// keeps resident there (per-CPU caches, the prefault ahead of the next batch,
// glibc's cached stacks) put them between 13 and 33 MiB in all runs, loaded or
// not. A leak of L bytes per thread fails the check once a third of the run
// creates more than 32 MiB / L threads: the storm runs at least kMinBatches
// batches (3600 threads: ~28 KiB per thread), taking longer than --seconds
// (up to 3 times) on a slow machine.

bool task_alive(pid_t tid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
	return access(path, F_OK) == 0;
}

int soak_threads(double secs)
{
	auto t0 = Clock::now();
	Sampler sampler; // every 250 ms: the peak, for the summary line
	sampler.start(t0, 0.25);
	Sampler floors;  // at the quiescent points
	std::mutex mu;
	std::vector<Obj> handed;    // objects made by threads that have exited
	std::vector<pid_t> det_tids; // kernel thread ids of detached threads started since the last quiescent point
	std::atomic<long> created{0}, detached_live{0};
	uint64_t batch = 0;
	size_t max_in_use = 0; // numaheap's in-use bytes at the quiescent points
	long never_finished = 0;
	Rng mr(5);
	auto free_handed = [&] {
		std::vector<Obj> take;
		{
			std::lock_guard<std::mutex> g(mu);
			take.swap(handed);
		}
		for (auto &o : take)
			destroy(mr, o);
	};
	// Waits up to 10 s for the detached threads to finish and exit.
	auto wait_detached = [&] {
		for (int i = 0; i < 1000 && detached_live.load() > 0; i++)
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
		std::vector<pid_t> tids;
		{
			std::lock_guard<std::mutex> g(mu);
			tids.swap(det_tids);
		}
		for (pid_t tid : tids)
			for (int i = 0; i < 1000 && task_alive(tid); i++)
				std::this_thread::sleep_for(std::chrono::milliseconds(1));
		return detached_live.load() == 0 && std::none_of(tids.begin(), tids.end(), task_alive);
	};
	uint64_t every = 1;
	// A quiescent point after batch b (no thread of the storm left).
	auto quiescent_point = [&](uint64_t b) {
		if (!wait_detached())
			return false;
		free_handed();
		numaheap_release();
		struct mallinfo2 mi = mallinfo2();
		max_in_use = std::max(max_in_use, mi.uordblks);
		floors.samples.push_back({(double)b, rss_bytes()});
		if (floors.samples.size() == 64) {
			every *= 2;
			auto &v = floors.samples;
			v.erase(std::remove_if(v.begin(), v.end(), [&](const std::pair<double, size_t> &p) {
				        return (uint64_t)p.first % every != 0;
			        }),
			        v.end());
		}
		return true;
	};
	// A leak grows with the threads created: a slow machine runs longer
	// (up to 3 secs) to reach kMinBatches, so that the check keeps its power.
	const uint64_t kMinBatches = 150;
	while ((seconds_since(t0) < secs || (batch < kMinBatches && seconds_since(t0) < 3 * secs)) &&
	       errors.load() == 0) {
		batch++;
		std::vector<std::thread> ts;
		for (int i = 0; i < 24; i++) {
			auto body = [&, i, batch](bool detached) {
				if (detached) {
					std::lock_guard<std::mutex> g(mu);
					det_tids.push_back(gettid());
				}
				Rng r(batch * 131 + i);
				std::vector<Obj> mine;
				for (int k = 0; k < 200; k++) {
					mine.push_back(make(r, (batch << 32) | ((uint64_t)i << 16) | (uint64_t)k));
					if (r.below(3) == 0) {
						destroy(r, mine[r.below(mine.size())]);
					}
				}
				// Leave some to the main thread, free the rest here.
				std::lock_guard<std::mutex> g(mu);
				for (auto &o : mine) {
					if (o.p && r.below(4) == 0)
						handed.push_back(o);
					else
						destroy(r, o);
				}
				if (detached)
					detached_live--;
			};
			created++;
			if (i % 6 == 5) {
				detached_live++;
				std::thread(body, true).detach();
			} else {
				ts.emplace_back(body, false);
			}
		}
		for (auto &t : ts)
			t.join();
		free_handed();
		if (batch % every == 0 && !quiescent_point(batch)) {
			never_finished++;
			break;
		}
	}
	// The end is a quiescent point too (detached threads finish on their own).
	if (!never_finished && batch % every != 0 && !quiescent_point(batch))
		never_finished++;
	double total = seconds_since(t0);
	stop.store(true);
	sampler.join();
	free_handed();
	size_t mid = floors.max_between(batch / 3.0, 2.0 * batch / 3);
	size_t last = floors.max_between(2.0 * batch / 3, batch + 1.0);
	bool flat = last <= mid + (32 << 20);
	size_t nmid = 0, nlast = 0;
	for (auto &f : floors.samples) {
		if (f.first >= 2.0 * batch / 3)
			nlast++;
		else if (f.first >= batch / 3.0)
			nmid++;
	}
	bool enough = nmid >= 3 && nlast >= 3;
	printf("soak threads: %.0f s, %ld threads created in %llu batches, %ld errors; RSS peak %s while batches ran; "
	       "at %zu quiescent points (no thread of the storm alive, no object held, numaheap_release; every %llu "
	       "batches): numaheap in use at most %s, RSS middle-third peak %s, last-third peak %s (%s)\n",
	       total, created.load(), (unsigned long long)batch, errors.load(),
	       mib(sampler.max_between(0, total + 1)).c_str(), floors.samples.size(), (unsigned long long)every,
	       mib(max_in_use).c_str(),
	       mib(mid).c_str(), mib(last).c_str(), !enough ? "too few points" : flat ? "flat" : "GROWING");
	if (!enough)
		fprintf(stderr, "soak: %zu quiescent points in the middle third and %zu in the last; 3 of each are needed\n",
		        nmid, nlast);
	if (!flat)
		fprintf(stderr, "soak: RSS at the quiescent points grew from %s to %s\n", mib(mid).c_str(), mib(last).c_str());
	if (never_finished) {
		fprintf(stderr, "soak: detached threads did not finish and exit within 10 s (%ld still running)\n",
		        detached_live.load());
		return 1;
	}
	return errors.load() == 0 && flat && enough ? 0 : 1;
}

// ---- fork storm ------------------------------------------------------------------------

// In a child: inherited objects are intact and can be freed, allocation and
// a thread work. Returns the exit status.
int child_work(std::vector<Obj> inherited, int depth, uint64_t seed)
{
	Rng r(seed);
	for (auto &o : inherited)
		if (o.p && !verify(o))
			return 3;
	for (auto &o : inherited)
		destroy(r, o);
	if (errors.load())
		return 3;
	std::vector<Obj> v;
	for (int i = 0; i < 300; i++)
		v.push_back(make(r, seed * 1000 + i));
	std::thread t([&] {
		Rng tr(seed + 1);
		for (auto &o : v)
			destroy(tr, o);
	});
	t.join();
	if (depth == 0 && r.below(4) == 0) {
		pid_t c = fork();
		if (c == 0)
			_exit(child_work({}, 1, seed + 7));
		int st = 0;
		if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 4;
	}
	return errors.load() ? 3 : 0;
}

int soak_fork(double secs)
{
	auto t0 = Clock::now();
	std::mutex mu;
	std::vector<Obj> shared_objs(64);
	std::atomic<uint64_t> ops{0};
	std::vector<std::thread> ts;
	for (int t = 0; t < 3; t++)
		ts.emplace_back([&, t] {
			Rng r(900 + t);
			std::vector<Obj> mine(400);
			uint64_t id = (uint64_t)(t + 1) << 40;
			while (!stop.load(std::memory_order_relaxed)) {
				Obj &o = mine[r.below(mine.size())];
				if (o.p)
					destroy(r, o);
				else
					o = make(r, ++id);
				if (r.below(64) == 0) {
					std::lock_guard<std::mutex> g(mu);
					Obj &s = shared_objs[r.below(shared_objs.size())];
					destroy(r, s);
					s = make(r, ++id);
				}
				ops.fetch_add(1, std::memory_order_relaxed);
			}
			for (auto &o : mine)
				destroy(r, o);
		});
	long forks = 0, bad = 0, hung = 0;
	while (seconds_since(t0) < secs && errors.load() == 0) {
		std::vector<Obj> snapshot;
		pid_t c;
		{
			// Fork while holding the lock so the child gets a consistent set.
			std::lock_guard<std::mutex> g(mu);
			snapshot = shared_objs;
			fflush(nullptr);
			c = fork();
			if (c == 0) {
				alarm(20); // a child stuck on a lock dies, and the parent counts a hang
				_exit(child_work(snapshot, 0, (uint64_t)getpid()));
			}
		}
		if (c < 0) {
			bad++;
			break;
		}
		forks++;
		int st = 0;
		waitpid(c, &st, 0);
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
			hung++;
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad++;
	}
	double total = seconds_since(t0);
	stop.store(true);
	for (auto &t : ts)
		t.join();
	Rng r(2);
	for (auto &o : shared_objs)
		destroy(r, o);
	printf("soak fork: %.0f s, %ld forks (children with threads and grandchildren), %llu operations in 3 threads "
	       "meanwhile, %ld failed children, %ld hung children, %ld errors\n",
	       total, forks, (unsigned long long)ops.load(), bad, hung, errors.load());
	return bad == 0 && hung == 0 && errors.load() == 0 && forks > 0 ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: soak mixed|threads|fork [--seconds S] [--threads T] [--rss-check yes|no]\n");
		return 2;
	}
	std::string mode = argv[1];
	double secs = 60;
	int threads = 4;
	bool rss_check = true;
	for (int i = 2; i + 1 < argc; i += 2) {
		std::string a = argv[i];
		if (a == "--seconds")
			secs = atof(argv[i + 1]);
		else if (a == "--threads")
			threads = atoi(argv[i + 1]);
		else if (a == "--rss-check")
			rss_check = std::string(argv[i + 1]) != "no";
		else {
			fprintf(stderr, "soak: unknown option %s\n", a.c_str());
			return 2;
		}
	}
	setvbuf(stdout, nullptr, _IOLBF, 0);
	int rc;
	if (mode == "mixed")
		rc = soak_mixed(secs, threads, rss_check);
	else if (mode == "threads")
		rc = soak_threads(secs);
	else if (mode == "fork")
		rc = soak_fork(secs);
	else {
		fprintf(stderr, "soak: unknown mode %s\n", mode.c_str());
		return 2;
	}
	printf("%s\n", rc == 0 ? "soak: passed" : "soak: FAILED");
	return rc;
}
