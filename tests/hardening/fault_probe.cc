// fault_probe.cc — a small program run by fault_test under injected or real
// faults (NUMAHEAP_FAULT=..., RLIMIT_AS, NUMAHEAP_HUGETLB=1 without reserved
// pages, too many mappings). Built twice: against libnumaheap_fi.so (fault
// injection) and against libnumaheap.so.
//
//   fault_probe SCENARIO [args]
//
// Prints one line per check, "ok: ..." or "FAIL: ...", then "probe done" and
// exits 0 when every check passed, 1 otherwise. It must never crash or hang:
// fault_test treats a signal or a timeout as a failure.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <new>
#include <pthread.h>
#include <string>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "../common/commit_charge.h"
#include "../common/seccomp_filter.h"
#include "hx_util.h"
#include "numaheap.h"

using namespace hx;

static int failures;

static void ok(bool cond, const char *what, long detail = 0)
{
	printf("%s: %s (%ld)\n", cond ? "ok" : "FAIL", what, detail);
	fflush(stdout);
	if (!cond)
		failures++;
}

static int finish()
{
	printf("probe done: %d failure(s)\n", failures);
	fflush(stdout);
	return failures ? 1 : 0;
}

// ---- pieces --------------------------------------------------------------------

// Every allocation function fails cleanly: NULL (or ENOMEM) and errno ENOMEM.
static void expect_everything_fails()
{
	errno = 0;
	void *p = malloc(1);
	ok(!p && errno == ENOMEM, "malloc(1) gives NULL/ENOMEM", errno);
	errno = 0;
	p = malloc(100000);
	ok(!p && errno == ENOMEM, "malloc(100000) gives NULL/ENOMEM", errno);
	errno = 0;
	p = calloc(10, 10);
	ok(!p && errno == ENOMEM, "calloc gives NULL/ENOMEM", errno);
	errno = 0;
	p = realloc(nullptr, 50);
	ok(!p && errno == ENOMEM, "realloc(NULL) gives NULL/ENOMEM", errno);
	p = nullptr;
	int r = posix_memalign(&p, 64, 100);
	ok(r == ENOMEM && !p, "posix_memalign gives ENOMEM", r);
	errno = 0;
	p = aligned_alloc(4096, 4096);
	ok(!p && errno == ENOMEM, "aligned_alloc gives NULL/ENOMEM", errno);
	errno = 0;
	p = numaheap_malloc_onnode(100, 0);
	ok(!p && errno == ENOMEM, "numaheap_malloc_onnode gives NULL/ENOMEM", errno);
	p = new (std::nothrow) char[100];
	ok(!p, "new(nothrow) gives nullptr");
	free(nullptr);
	ok(true, "free(NULL)");
	ok(numaheap_release() == 0, "numaheap_release with no heap");
	char buf[4096];
	size_t n = numaheap_stats_json(buf, sizeof buf);
	ok(n > 0 && strstr(buf, "\"version\"") != nullptr, "numaheap_stats_json", (long)n);
}

// A mixed workload with content checks; true if every byte survived.
static bool workload(int rounds, size_t max_large)
{
	Rng r(42);
	std::vector<std::pair<uint8_t *, size_t>> v(500, {nullptr, 0});
	bool good = true;
	for (int i = 0; i < rounds; i++) {
		auto &o = v[r.below(v.size())];
		if (o.first) {
			good &= check(o.first, o.second, (uintptr_t)o.first) == (size_t)-1;
			free(o.first);
			o.first = nullptr;
			continue;
		}
		size_t n = r.below(20) == 0 ? r.range(32769, max_large) : r.range(0, 4000);
		uint8_t *p = (uint8_t *)(r.below(3) ? malloc(n) : calloc(1, n));
		if (!p)
			return false;
		fill(p, n, (uintptr_t)p);
		o = {p, n};
	}
	for (auto &o : v)
		if (o.first) {
			good &= check(o.first, o.second, (uintptr_t)o.first) == (size_t)-1;
			free(o.first);
		}
	return good;
}

static int thread_rounds = 10000;
static void *thread_workload(void *)
{
	return (void *)(uintptr_t)workload(thread_rounds, 200000);
}

// fork works, and the child can allocate (or, when the heap is full or
// absent, fails cleanly) and exit.
enum ForkExpect { CHILD_ALLOCATES, CHILD_GETS_NULL, CHILD_EITHER };
static void expect_fork_works(ForkExpect e)
{
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		void *p = malloc(100);
		bool good = e == CHILD_ALLOCATES   ? p != nullptr && workload(2000, 100000)
			    : e == CHILD_GETS_NULL ? p == nullptr
						   : p != nullptr || errno == ENOMEM;
		free(p);
		_exit(good ? 0 : 3);
	}
	int st = 0;
	ok(c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork: the child allocates and exits",
	   st);
}

static void expect_threads_work()
{
	pthread_t t[3];
	int made = 0;
	for (auto &x : t)
		made += pthread_create(&x, nullptr, thread_workload, nullptr) == 0;
	ok(made == 3, "threads start", made);
	bool good = true;
	for (int i = 0; i < made; i++) {
		void *res = nullptr;
		pthread_join(t[i], &res);
		good &= res != nullptr;
	}
	ok(good, "threads allocate with content checks");
}

static size_t vm_bytes()
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0;
	if (f) {
		if (fscanf(f, "%lu", &size) != 1)
			size = 0;
		fclose(f);
	}
	return size * 4096;
}

// ---- scenarios -------------------------------------------------------------------

// The heap cannot be set up at all (NUMAHEAP_FAULT=mmap, or a tiny RLIMIT_AS
// at start-up): everything fails cleanly, fork and threads still work.
static int scenario_nomem()
{
	expect_everything_fails();
	expect_fork_works(CHILD_GETS_NULL);
	pthread_t t;
	int r = pthread_create(&t, nullptr, [](void *) -> void * { return malloc(10); }, nullptr);
	// glibc needs malloc for a thread's TLS: EAGAIN is a clean failure too.
	ok(r == 0 || r == EAGAIN, "pthread_create works or fails cleanly", r);
	if (r == 0) {
		void *res = (void *)1;
		pthread_join(t, &res);
		ok(res == nullptr, "a thread's malloc gives NULL");
	}
	return finish();
}

// Allocation works despite the fault (mbind, io_uring, thread, madvise,
// hugetlb): workload, threads, fork, release, statistics.
static int scenario_works(int rounds)
{
	thread_rounds = rounds / 3;
	ok(workload(rounds, 1 << 20), "workload with content checks");
	expect_threads_work();
	expect_fork_works(CHILD_ALLOCATES);
	// Freed memory goes back (or not, when madvise fails) without harm, and
	// calloc still gives zeros over released or unreleased pages.
	std::vector<uint8_t *> big;
	for (int i = 0; i < 8; i++) {
		big.push_back((uint8_t *)malloc(4 << 20));
		ok(big.back() != nullptr, "4 MiB malloc");
		memset(big.back(), 0xEE, 4 << 20);
	}
	for (auto p : big)
		free(p);
	size_t rel = numaheap_release();
	printf("released: %zu\n", rel);
	bool zero = true;
	for (int i = 0; i < 8; i++) {
		uint8_t *p = (uint8_t *)calloc(1, 4 << 20);
		zero &= p && is_zero(p, 4 << 20);
		big[i] = p;
	}
	ok(zero, "calloc over freed dirty pages gives zeros");
	for (auto p : big)
		free(p);
	std::vector<uint8_t *> small;
	for (int i = 0; i < rounds / 2; i++) {
		small.push_back((uint8_t *)malloc(512));
		memset(small.back(), 0xDD, 512);
	}
	for (auto p : small)
		free(p);
	numaheap_release();
	zero = true;
	for (size_t i = 0; i < small.size(); i++) {
		small[i] = (uint8_t *)calloc(1, 512);
		zero &= small[i] && is_zero(small[i], 512);
	}
	ok(zero, "small calloc after release gives zeros");
	for (auto p : small)
		free(p);
	char buf[16384];
	size_t n = numaheap_stats_json(buf, sizeof buf);
	ok(n > 0 && strstr(buf, "\"totals\"") != nullptr, "numaheap_stats_json", (long)n);
	// Let a background thread (if any) run a pass.
	usleep(300000);
	return finish();
}

// RLIMIT_AS set after start-up to the current size plus argv[2] MiB: the
// heap grows until the limit, then allocations fail with ENOMEM; after
// freeing, allocations work again.
static int scenario_rlimit(size_t headroom_mib)
{
	ok(workload(2000, 100000), "workload before the limit");
	// The probe's own bookkeeping must not need memory at the limit.
	std::vector<uint8_t *> big, small;
	big.reserve(100000);
	small.reserve(4000000);
	size_t vm = vm_bytes();
	struct rlimit rl = {vm + (headroom_mib << 20), vm + (headroom_mib << 20)};
	ok(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS)", (long)(rl.rlim_cur >> 20));

	// Large objects until the limit.
	errno = 0;
	for (int i = 0; i < 100000; i++) {
		uint8_t *p = (uint8_t *)malloc(3 << 20);
		if (!p)
			break;
		fill(p, 4096, (uintptr_t)p);
		big.push_back(p);
	}
	ok(big.size() < 100000 && errno == ENOMEM, "large mallocs stop with ENOMEM", (long)big.size());
	errno = 0;
	ok(malloc((size_t)1 << 30) == nullptr && errno == ENOMEM, "1 GiB malloc gives ENOMEM", errno);
	errno = 0;
	void *rp = malloc(1000);
	void *rr = rp ? realloc(rp, (size_t)1 << 30) : nullptr;
	ok(rp && !rr && errno == ENOMEM, "realloc to 1 GiB gives ENOMEM and keeps the block", errno);
	free(rp);

	// Small objects until the limit too.
	for (int i = 0; i < 4000000; i++) {
		uint8_t *p = (uint8_t *)malloc(1000);
		if (!p)
			break;
		fill(p, 16, (uintptr_t)p);
		small.push_back(p);
	}
	ok(small.size() < 4000000 && errno == ENOMEM, "small mallocs stop with ENOMEM", (long)small.size());
	ok(new (std::nothrow) char[1 << 20] == nullptr, "new(nothrow) gives nullptr at the limit");
	bool threw = false;
	try {
		char *x = new char[1 << 20];
		escape(x);
		delete[] x;
	} catch (const std::bad_alloc &) {
		threw = true;
	}
	ok(threw, "new throws bad_alloc at the limit");
	expect_fork_works(CHILD_EITHER);

	bool good = true;
	for (auto p : big)
		good &= check(p, 4096, (uintptr_t)p) == (size_t)-1;
	for (auto p : small)
		good &= check(p, 16, (uintptr_t)p) == (size_t)-1;
	ok(good, "objects allocated up to the limit kept their contents");
	for (auto p : big)
		free(p);
	for (auto p : small)
		free(p);
	ok(workload(20000, 1 << 20), "after freeing, allocation works again");
	expect_threads_work();
	return finish();
}

// Under a seccomp filter (fault_test's, which kills the process at a call
// it forbids) or without one: allocation, threads and fork work, and the
// background thread's jobs run (the idle caches, the scavenger: the test
// sets short delays and the program sleeps past them). expect: the
// "syscalls" the statistics must show ("basic" or "all").
static int scenario_syscalls(const std::string &expect)
{
	thread_rounds = 3000;
	ok(workload(9000, 1 << 20), "workload with content checks");
	expect_threads_work();
	expect_fork_works(CHILD_ALLOCATES);
	std::vector<void *> v;
	for (int i = 0; i < 50000; i++)
		v.push_back(malloc(600));
	for (void *p : v)
		free(p);
	usleep(1500000);
	static char buf[1 << 16];
	numaheap_stats_json(buf, sizeof buf);
	std::string s(buf);
	ok(s.find("\"syscalls\":\"" + expect + "\"") != std::string::npos, ("the statistics say syscalls " + expect).c_str());
	if (expect == "basic")
		ok(s.find("\"backend\":\"madvise\"") != std::string::npos, "the scavenger releases with madvise");
	size_t k = s.find("\"scavenger\":");
	k = k == std::string::npos ? k : s.find("\"released_bytes\":", k);
	long released = k == std::string::npos ? -1 : atol(s.c_str() + k + strlen("\"released_bytes\":"));
	ok(released > 0, "the scavenger released memory", released);
	return finish();
}

// A child that confines itself after fork, before it allocates, as
// OpenSSH's privilege-separated child does: its filter kills clone (no new
// thread) and the calls numaheap makes beyond the basic ones, and refuses
// openat (EACCES). The child's first heap growth started numaheap's
// background thread in it (clone: SIGSYS). numaheap now sees the change of
// the thread's seccomp status and starts none; malloc, free and
// malloc_trim work.
static void confine_like_sshd()
{
	static const long kill[] = {__NR_clone, __NR_clone3, __NR_io_uring_setup, __NR_io_uring_enter,
				    __NR_mbind, __NR_move_pages, __NR_sched_setaffinity, __NR_mincore};
	static const long deny[] = {__NR_openat, __NR_open};
	if (!nh_seccomp_install(kill, sizeof kill / sizeof kill[0], deny, 2, EACCES, nullptr, 0))
		_exit(3);
}

static int scenario_sandbox()
{
	ok(workload(3000, 1 << 20), "workload before the fork");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		confine_like_sshd();
		bool good = workload(3000, 1 << 20);
		std::vector<void *> v;
		for (int i = 0; i < 96; i++) {
			v.push_back(malloc(1 << 20));
			good &= v.back() != nullptr;
			if (v.back())
				memset(v.back(), 1, 1 << 20);
		}
		for (void *p : v)
			free(p);
		malloc_trim(0);
		usleep(300000);
		_exit(good ? 0 : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child confined after fork allocates, frees and trims (status)", st);
	ok(workload(3000, 1 << 20), "the parent still works");
	return finish();
}

// Hardened mode: every live large object costs two extra mappings (its guard
// pages); past vm.max_map_count mprotect fails and malloc must give ENOMEM.
static int scenario_maxmap()
{
	std::vector<void *> v;
	errno = 0;
	for (int i = 0; i < 200000; i++) {
		void *p = malloc(40000);
		if (!p)
			break;
		v.push_back(p);
	}
	int e = errno;
	ok(v.size() < 200000 && e == ENOMEM, "large mallocs stop with ENOMEM at the mapping limit", (long)v.size());
	// Small objects need no guards: still fine (or ENOMEM if the heap itself cannot grow).
	void *s = malloc(100);
	ok(s != nullptr || errno == ENOMEM, "small malloc at the mapping limit", errno);
	free(s);
	for (auto p : v)
		free(p);
	ok(workload(20000, 1 << 20), "after freeing, allocation works again");
	return finish();
}

// The private writable mappings of /proc/self/maps, one line each (what
// commit_charge_bytes sums), so that a failed charge check can say which
// mappings grew.
static std::vector<std::string> writable_mappings()
{
	std::vector<std::string> out;
	commit_charge_walk(
		[](const char *line, size_t bytes, void *arg) {
			((std::vector<std::string> *)arg)->push_back(std::to_string(bytes >> 10) + " KiB " + line);
		},
		&out);
	return out;
}

// A small program's commit charge stays small: numaheap's sparse tables,
// arenas and per-CPU slabs are reserved, not writable, until used.
static int scenario_charge(size_t max_mib)
{
	std::vector<void *> v;
	for (int i = 0; i < 1000; i++)
		v.push_back(malloc(16 + (size_t)i * 37));
	void *big = malloc(3 << 20);
	ok(big != nullptr, "a 3 MiB block");
	std::vector<std::string> before = writable_mappings();
	size_t mib = commit_charge_bytes() >> 20;
	ok(mib <= max_mib, "writable private mappings within the bound (MiB)", (long)mib);
	// Growing uses more, in proportion: 64 MiB of blocks add about 64 MiB,
	// plus what is made ready ahead of the heap: the background thread's
	// pre-fault window (16 MiB) and arena_commit's steps ahead (8 MiB).
	std::vector<void *> w;
	for (int i = 0; i < 64; i++)
		w.push_back(malloc(1 << 20));
	size_t grown = (commit_charge_bytes() >> 20) - mib;
	ok(grown >= 60 && grown <= 64 + 16 + 8 + 4, "64 MiB of blocks add 60-92 MiB of charge", (long)grown);
	if (grown > 64 + 16 + 8 + 4) {
		// Which mappings are new or changed, and numaheap's view of its heap.
		printf("writable private mappings new or changed since the first measure:\n");
		for (const std::string &m : writable_mappings())
			if (std::find(before.begin(), before.end(), m) == before.end())
				printf("  %s", m.c_str());
		static char json[1 << 16];
		numaheap_stats_json(json, sizeof json);
		printf("%.*s\n", 3000, json);
	}
	for (auto p : w)
		free(p);
	for (auto p : v)
		free(p);
	free(big);
	return finish();
}

// How many mprotect calls growing the heap by 256 MiB takes (numaheap's
// own count, kernel_calls.mprotect of its JSON statistics): with arenas
// reserved, one per 4 MiB step reached; mapped ready, a few per arena (its
// part of the page table). Prints the count and checks it against
// [lo, hi].
static long mprotect_calls()
{
	static char buf[1 << 16];
	numaheap_stats_json(buf, sizeof buf);
	const char *k = strstr(buf, "\"mprotect\":");
	return k ? strtol(k + strlen("\"mprotect\":"), nullptr, 10) : -1;
}

static int scenario_mprotect(long lo, long hi)
{
	long before = mprotect_calls();
	std::vector<void *> w;
	for (int i = 0; i < 256; i++) {
		void *p = malloc(1 << 20);
		ok(p != nullptr, "a 1 MiB block");
		memset(p, 1, 1 << 20);
		w.push_back(p);
	}
	long n = mprotect_calls() - before;
	ok(before >= 0 && n >= lo && n <= hi, "mprotect calls while the heap grew by 256 MiB, within the bounds", n);
	for (auto p : w)
		free(p);
	return finish();
}

int main(int argc, char **argv)
{
	std::string s = argc > 1 ? argv[1] : "";
	if (s == "nomem")
		return scenario_nomem();
	if (s == "sandbox")
		return scenario_sandbox();
	if (s == "syscalls")
		return scenario_syscalls(argc > 2 ? argv[2] : "all");
	if (s == "works")
		return scenario_works(argc > 2 ? atoi(argv[2]) : 30000);
	if (s == "rlimit")
		return scenario_rlimit(argc > 2 ? strtoul(argv[2], nullptr, 10) : 256);
	if (s == "maxmap")
		return scenario_maxmap();
	if (s == "charge")
		return scenario_charge(argc > 2 ? strtoul(argv[2], nullptr, 10) : 32);
	if (s == "mprotect" && argc > 3)
		return scenario_mprotect(atol(argv[2]), atol(argv[3]));
	if (s == "hello") {
		// For configuration checks: start-up and one allocation.
		void *p = malloc(10);
		ok(p != nullptr, "malloc");
		free(p);
		return finish();
	}
	fprintf(stderr, "usage: fault_probe nomem|works [rounds]|rlimit [MiB]|maxmap|charge [MiB]|mprotect LO HI|hello\n");
	return 2;
}
