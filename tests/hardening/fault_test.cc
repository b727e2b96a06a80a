// fault_test.cc — faults degrade gracefully: each failure numaheap can meet
// (mmap, commit, mbind, io_uring, the background thread, madvise, an address-space
// limit, no hugetlbfs pages, too many mappings) gives NULL/ENOMEM or a
// fallback with at most a one-time warning, never a crash or a hang; and
// configuration errors in NUMAHEAP_* variables are reported.
//
// Each case runs fault_probe (fault_probe.cc) in a child process with its own
// environment and limits: the injected faults through the probe linked with
// libnumaheap_fi.so (NUMAHEAP_FAULT=..., src/os/fault.h), the real ones through
// the probe linked with libnumaheap.so.
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <poll.h>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "../common/seccomp_filter.h"
#include "systemd_service_syscalls.h"

extern char **environ;

namespace {

struct Result {
	int status = -1;      // waitpid status
	bool timed_out = false;
	std::string out, err;
	bool exited_ok() const { return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
	std::string describe() const
	{
		std::string s;
		if (timed_out)
			s = "TIMED OUT (a hang)";
		else if (WIFSIGNALED(status))
			s = "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
		else
			s = "exit status " + std::to_string(WEXITSTATUS(status));
		return s + "\n--- stdout ---\n" + out + "--- stderr ---\n" + err;
	}
};

double now_s()
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

// The allow-list of Debian's redis-server unit (systemd_service_syscalls.h:
// @system-service less @privileged and @resources; mbind, move_pages,
// sched_setaffinity and mincore are not on it), with io_uring taken off it
// too, as other allow-lists do: any other call kills the process (SIGSYS),
// as systemd's filters do by default. Set: run() installs this filter in
// the child before it starts the program.
bool g_seccomp_kill = false;

static void install_seccomp_kill()
{
	static const long io_uring[] = {__NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register};
	if (!nh_seccomp_install(io_uring, 3, nullptr, 0, 0, kServiceSyscalls,
				sizeof kServiceSyscalls / sizeof kServiceSyscalls[0]))
		_exit(126);
}

// Run prog with args; env replaces every NUMAHEAP_* variable of ours.
Result run(const char *prog, std::vector<std::string> args, std::vector<std::string> env, size_t rlimit_as = 0,
	   double timeout = 90)
{
	int po[2], pe[2];
	if (pipe(po) || pipe(pe))
		abort();
	std::vector<std::string> envs;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "NUMAHEAP_", 9) != 0)
			envs.push_back(*e);
	for (auto &e : env)
		envs.push_back(e);
	std::vector<char *> envp, argv;
	for (auto &e : envs)
		envp.push_back((char *)e.c_str());
	envp.push_back(nullptr);
	argv.push_back((char *)prog);
	for (auto &a : args)
		argv.push_back((char *)a.c_str());
	argv.push_back(nullptr);
	fflush(nullptr);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		struct rlimit core = {0, 0};
		setrlimit(RLIMIT_CORE, &core);
		if (rlimit_as) {
			struct rlimit r = {rlimit_as, rlimit_as};
			setrlimit(RLIMIT_AS, &r);
		}
		if (g_seccomp_kill)
			install_seccomp_kill();
		execve(prog, argv.data(), envp.data());
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	Result res;
	double deadline = now_s() + timeout;
	struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
	int open_fds = 2;
	while (open_fds > 0) {
		int left = (int)((deadline - now_s()) * 1000);
		if (left <= 0) {
			res.timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(fds, 2, left) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[4096];
			ssize_t n = read(fds[i].fd, buf, sizeof buf);
			if (n <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			} else {
				(i ? res.err : res.out).append(buf, (size_t)n);
			}
		}
	}
	for (auto &f : fds)
		if (f.fd >= 0)
			close(f.fd);
	waitpid(pid, &res.status, 0);
	return res;
}

size_t count(const std::string &s, const std::string &what)
{
	size_t n = 0;
	for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1))
		n++;
	return n;
}

size_t lines(const std::string &s) { return count(s, "\n"); }

// Every line on stderr is numaheap's and one-line (no stray output).
void expect_only_numaheap_lines(const std::string &err)
{
	size_t start = 0;
	while (start < err.size()) {
		size_t end = err.find('\n', start);
		std::string line = err.substr(start, end - start);
		EXPECT_EQ(line.rfind("numaheap: ", 0), 0u) << "unexpected stderr line: " << line;
		if (end == std::string::npos)
			break;
		start = end + 1;
	}
}

const char *kFi = HX_PROBE_FI;   // linked with libnumaheap_fi.so
const char *kRel = HX_PROBE_REL; // linked with libnumaheap.so

} // namespace

// ---- injected faults (libnumaheap_fi.so) ------------------------------------------------

TEST(InjectedFault, MmapFailingLeavesNoHeapButNoCrash)
{
	Result r = run(kFi, {"nomem"}, {"NUMAHEAP_FAULT=mmap"});
	EXPECT_TRUE(r.exited_ok()) << r.describe();
	EXPECT_EQ(count(r.out, "FAIL"), 0u) << r.describe();
	EXPECT_NE(r.out.find("probe done"), std::string::npos) << r.describe();
	EXPECT_EQ(count(r.err, "cannot set up the heap of node 0"), 1u) << "one warning, once:\n" << r.describe();
	expect_only_numaheap_lines(r.err);
}

TEST(InjectedFault, MmapFailingUnderEveryOption)
{
	// The same with hardened mode, per-thread caches, statistics at exit.
	for (const char *extra : {"NUMAHEAP_HARDENED=1", "NUMAHEAP_PERCPU=0", "NUMAHEAP_STATS=json", "NUMAHEAP_HUGETLB=1",
				  "NUMAHEAP_STATS_INTERVAL=50ms"}) {
		Result r = run(kFi, {"nomem"}, {"NUMAHEAP_FAULT=mmap", extra});
		EXPECT_TRUE(r.exited_ok()) << extra << ": " << r.describe();
		EXPECT_EQ(count(r.out, "FAIL"), 0u) << extra << ": " << r.describe();
	}
}

TEST(InjectedFault, MbindFailingWarnsOnceAndAllocates)
{
	Result r = run(kFi, {"works"}, {"NUMAHEAP_FAULT=mbind"});
	EXPECT_TRUE(r.exited_ok()) << r.describe();
	EXPECT_EQ(count(r.out, "FAIL"), 0u) << r.describe();
	// One warning for the process (the forked child inherits "warned").
	EXPECT_EQ(count(r.err, "cannot bind heap memory to node 0 (mbind failed)"), 1u) << r.describe();
	expect_only_numaheap_lines(r.err);
}

TEST(InjectedFault, IoUringUnavailableFallsBackToMadvise)
{
	Result r = run(kFi, {"works"}, {"NUMAHEAP_FAULT=io_uring", "NUMAHEAP_STATS=json", "NUMAHEAP_SCAVENGE_DELAY=0"});
	EXPECT_TRUE(r.exited_ok()) << r.describe();
	EXPECT_EQ(count(r.out, "FAIL"), 0u) << r.describe();
	// Memory still goes back, through plain madvise.
	EXPECT_EQ(r.out.find("released: 0\n"), std::string::npos) << r.describe();
	EXPECT_EQ(r.err.find("io_uring\""), std::string::npos) << "the statistics name io_uring as the backend:\n"
							       << r.describe();
}

TEST(InjectedFault, BackgroundThreadFailingWarnsOnce)
{
	for (const char *extra : {"NUMAHEAP_SCAVENGER=io_uring", "NUMAHEAP_STATS_INTERVAL=20ms"}) {
		Result r = run(kFi, {"works"}, {"NUMAHEAP_FAULT=thread", extra});
		EXPECT_TRUE(r.exited_ok()) << extra << ": " << r.describe();
		EXPECT_EQ(count(r.out, "FAIL"), 0u) << r.describe();
		EXPECT_EQ(count(r.err, "cannot start the background thread"), 1u) << extra << ": " << r.describe();
		// malloc_trim / numaheap_release still give memory back.
		EXPECT_EQ(r.out.find("released: 0\n"), std::string::npos) << r.describe();
	}
}

TEST(InjectedFault, MadviseFailingKeepsMemoryCorrect)
{
	// MADV_DONTNEED (the default), MADV_FREE; scavenging on the allocating
	// path (the memory limit) with plain madvise.
	for (const char *extra : {"NUMAHEAP_RELEASE=dontneed", "NUMAHEAP_RELEASE=free", "NUMAHEAP_MEMORY_LIMIT=16M"}) {
		Result r = run(kFi, {"works"},
			       {"NUMAHEAP_FAULT=madvise", "NUMAHEAP_SCAVENGE_DELAY=0", "NUMAHEAP_SCAVENGER=madvise", extra});
		EXPECT_TRUE(r.exited_ok()) << extra << ": " << r.describe();
		EXPECT_EQ(count(r.out, "FAIL"), 0u) << extra << ": " << r.describe();
		expect_only_numaheap_lines(r.err);
	}
}

TEST(InjectedFault, EverythingButMmapAtOnce)
{
	for (const char *extra : {"NUMAHEAP_HARDENED=1", "NUMAHEAP_PERCPU=0"}) {
		Result r = run(kFi, {"works"}, {"NUMAHEAP_FAULT=mbind,io_uring,thread,madvise", extra});
		EXPECT_TRUE(r.exited_ok()) << extra << ": " << r.describe();
		EXPECT_EQ(count(r.out, "FAIL"), 0u) << extra << ": " << r.describe();
		EXPECT_LE(lines(r.err), 2u) << "at most one warning per fault:\n" << r.describe();
	}
}

// ---- real faults (libnumaheap.so) ------------------------------------------------------

TEST(RealFault, AddressSpaceLimitAfterStartup)
{
	for (const char *extra : {"NUMAHEAP_HARDENED=0", "NUMAHEAP_HARDENED=1", "NUMAHEAP_PERCPU=0"}) {
		Result r = run(kRel, {"rlimit", "300"}, {extra});
		EXPECT_TRUE(r.exited_ok()) << extra << ": " << r.describe();
		EXPECT_EQ(count(r.out, "FAIL"), 0u) << extra << ": " << r.describe();
		expect_only_numaheap_lines(r.err);
	}
}

TEST(RealFault, AddressSpaceLimitAtStartup)
{
	// ulimit -v so low that the first 64 MiB arena cannot be mapped (the
	// heap is unusable: every allocation gives ENOMEM) or just enough: either
	// way no crash and no hang. Find a limit where the program still loads.
	Result base = run(kRel, {"hello"}, {});
	ASSERT_TRUE(base.exited_ok()) << base.describe();
	int nomem_runs = 0;
	for (size_t mib = 24; mib <= 160; mib += 8) {
		Result r = run(kRel, {"nomem"}, {}, mib << 20);
		if (r.out.empty() && !r.exited_ok())
			continue; // the loader itself could not map the program and its libraries
		if (r.exited_ok()) {
			nomem_runs++;
			EXPECT_EQ(count(r.out, "FAIL"), 0u) << mib << " MiB: " << r.describe();
			continue;
		}
		// Not "no heap at all": the probe saw some allocation succeed; it
		// must still have exited normally (status 1), not crashed.
		EXPECT_TRUE(WIFEXITED(r.status) && !r.timed_out) << mib << " MiB: " << r.describe();
	}
	EXPECT_GT(nomem_runs, 0) << "no limit left the program loadable but the heap unusable";
}

// A limit the heap fits in, but not together with the page table (arena.h:
// 512 MiB of address space per node, an accelerator for free): the heap must
// work, the table left out. Before, the table was mapped first and took the
// room of the first arena, so that every allocation failed under a limit
// (about 560-640 MiB) that a lower one (the table left out) did not.
TEST(RealFault, AddressSpaceLimitLeavesRoomForTheHeap)
{
	for (size_t mib : {400, 560, 600, 640, 700}) {
		Result r = run(kRel, {"works", "3000"}, {}, mib << 20);
		EXPECT_TRUE(r.exited_ok()) << mib << " MiB: " << r.describe();
		EXPECT_EQ(count(r.out, "FAIL"), 0u) << mib << " MiB: " << r.describe();
	}
}

// Strict overcommit charges every private writable mapping in full, and
// again in each forked child: a heap that maps its tables and arenas
// writable cost 630 MiB for a program that allocated 100 bytes (a shell
// under it could not fork). The same charge is counted here without the
// sysctl (vm.commit2 runs it for real in a VM): every mode stays small
// (26-32 MiB here, most of it the pages pre-faulted ahead of the growing
// heap; with profiling, whose bucket array is committed as it fills: 27).
// NUMAHEAP_COMMIT=reserve: what numaheap does under strict overcommit (on a
// host in another mode it maps arenas ready, which the kernel then does not
// charge: MAP_NORESERVE).
// A seccomp allow-list such as Debian's redis-server unit (systemd's
// SystemCallFilter=@system-service, less @privileged and @resources) kills
// the process at a call it does not list: numaheap, seeing a filter, makes
// only the basic calls (NUMAHEAP_SYSCALLS=auto), in every mode. Before,
// the first idle-cache drain (sched_setaffinity) or io_uring_setup killed
// the program; NUMAHEAP_SYSCALLS=all still does, which shows the filter
// bites.
TEST(RealFault, SeccompAllowListKillsNothing)
{
	const std::vector<std::string> quick = {"NUMAHEAP_CACHE_IDLE=200ms", "NUMAHEAP_SCAVENGE_DELAY=100ms",
						"NUMAHEAP_PROF_FILE=/dev/null"};
	g_seccomp_kill = true;
	for (const char *mode : {"NUMAHEAP_PERCPU=1", "NUMAHEAP_PERCPU=0", "NUMAHEAP_HARDENED=1", "NUMAHEAP_PROF=1"}) {
		std::vector<std::string> env = quick;
		env.push_back(mode);
		Result r = run(kRel, {"syscalls", "basic"}, env);
		EXPECT_TRUE(r.exited_ok()) << mode << ": " << r.describe();
	}
	std::vector<std::string> all = quick;
	all.push_back("NUMAHEAP_SYSCALLS=all");
	Result r = run(kRel, {"syscalls", "all"}, all);
	EXPECT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSYS) << r.describe();
	g_seccomp_kill = false;
	// Without a filter: every call, and the same jobs done.
	Result free_run = run(kRel, {"syscalls", "all"}, quick);
	EXPECT_TRUE(free_run.exited_ok()) << free_run.describe();
}

// A process that puts a seccomp filter on itself after start-up, as
// OpenSSH's privilege-separated child does after fork: numaheap starts no
// background thread in it (clone is killed there) and keeps working
// (fault_probe sandbox). In every mode; NUMAHEAP_SYSCALLS=all, which trusts
// the filter, is killed, which shows the child's filter bites.
TEST(RealFault, ProcessConfinedAfterStartKeepsWorking)
{
	for (const char *mode : {"NUMAHEAP_PERCPU=1", "NUMAHEAP_PERCPU=0", "NUMAHEAP_HARDENED=1", "NUMAHEAP_PROF=1"}) {
		Result r = run(kRel, {"sandbox"}, {mode, "NUMAHEAP_PROF_FILE=/dev/null"});
		EXPECT_TRUE(r.exited_ok()) << mode << ": " << r.describe();
	}
	Result all = run(kRel, {"sandbox"}, {"NUMAHEAP_SYSCALLS=all"});
	EXPECT_FALSE(all.exited_ok()) << "the filter did not bite: " << all.describe();
	EXPECT_NE(all.out.find("FAIL: a child confined after fork"), std::string::npos) << all.describe();
}

TEST(RealFault, SmallProgramHasASmallCommitCharge)
{
	const std::pair<const char *, const char *> modes[] = {
		{"NUMAHEAP_PERCPU=1", "40"}, {"NUMAHEAP_PERCPU=0", "40"}, {"NUMAHEAP_HARDENED=1", "40"}, {"NUMAHEAP_PROF=1", "40"}};
	for (auto &m : modes) {
		Result r = run(kRel, {"charge", m.second}, {m.first, "NUMAHEAP_PROF_FILE=/dev/null", "NUMAHEAP_COMMIT=reserve"});
		EXPECT_TRUE(r.exited_ok()) << m.first << ": " << r.describe();
	}
}

// Reserved arenas are made ready in runs of steps ahead of a growing heap
// (4, 8, 12, 12, ... MiB: 7 mprotect calls per 64 MiB arena, 16 if each
// 4 MiB step took its own; 56 calls in all here, 93 with single steps);
// arenas mapped ready (the default where overcommit is not strict) take
// only their metadata's (page table, page allocator summaries), about 7
// per 64 MiB arena (28-29). Each of those
// calls waits for the mmap lock behind other threads' page faults with the
// heap lock held: growth-heavy programs ran 4-10% slower with steps.
TEST(RealFault, ArenasMappedReadyTakeNoMprotectPerStep)
{
	Result reserve = run(kRel, {"mprotect", "44", "72"}, {"NUMAHEAP_COMMIT=reserve"});
	EXPECT_TRUE(reserve.exited_ok()) << reserve.describe();
	Result ready = run(kRel, {"mprotect", "0", "36"}, {"NUMAHEAP_COMMIT=ready"});
	EXPECT_TRUE(ready.exited_ok()) << ready.describe();
	std::ifstream f("/proc/sys/vm/overcommit_memory");
	int mode = -1;
	f >> mode;
	if (mode == 0 || mode == 1) {
		Result aut = run(kRel, {"mprotect", "0", "36"}, {});
		EXPECT_TRUE(aut.exited_ok()) << "vm.overcommit_memory=" << mode << ": " << aut.describe();
	}
}

TEST(InjectedFault, CommitFailingGivesEnomem)
{
	Result r = run(kFi, {"nomem"}, {"NUMAHEAP_FAULT=commit"});
	EXPECT_TRUE(r.exited_ok()) << r.describe();
}

TEST(RealFault, HugetlbWithoutReservedPagesFallsBack)
{
	std::ifstream f("/proc/sys/vm/nr_hugepages");
	long reserved = -1;
	f >> reserved;
	Result r = run(kRel, {"works"}, {"NUMAHEAP_HUGETLB=1"});
	EXPECT_TRUE(r.exited_ok()) << r.describe();
	EXPECT_EQ(count(r.out, "FAIL"), 0u) << r.describe();
	if (reserved == 0)
		EXPECT_EQ(count(r.err, "NUMAHEAP_HUGETLB=1 but no hugetlbfs pages could be mapped"), 1u) << r.describe();
	else
		EXPECT_LE(count(r.err, "NUMAHEAP_HUGETLB=1 but no hugetlbfs pages could be mapped"), 1u) << r.describe();
}

TEST(RealFault, HardenedGuardPagesPastTheMappingLimit)
{
	// 2 guard mappings per live large object: vm.max_map_count (65530 by
	// default) runs out near 32000 objects.
	Result r = run(kRel, {"maxmap"}, {"NUMAHEAP_HARDENED=1"});
	EXPECT_TRUE(r.exited_ok()) << r.describe();
	EXPECT_EQ(count(r.out, "FAIL"), 0u) << r.describe();
}

// ---- configuration errors ------------------------------------------------------------------

TEST(Config, UnknownVariableGetsOneLineNamingIt)
{
	Result r = run(kRel, {"hello"}, {"NUMAHEAP_NO_SUCH_OPTION=1"});
	EXPECT_TRUE(r.exited_ok()) << r.describe();
	EXPECT_EQ(lines(r.err), 1u) << r.describe();
	EXPECT_NE(r.err.find("numaheap: warning: NUMAHEAP_NO_SUCH_OPTION"), std::string::npos) << r.describe();
}

TEST(Config, MalformedAndOutOfRangeValuesGetOneLineEach)
{
	Result r = run(kRel, {"hello"},
		       {"NUMAHEAP_CACHE_BYTES=lots", "NUMAHEAP_SCAVENGE_RETAIN=-5", "NUMAHEAP_NUMA=everywhere",
			"NUMAHEAP_THP=maybe"});
	EXPECT_TRUE(r.exited_ok()) << r.describe();
	EXPECT_EQ(lines(r.err), 4u) << r.describe();
	for (const char *name : {"NUMAHEAP_CACHE_BYTES=lots", "NUMAHEAP_SCAVENGE_RETAIN=-5", "NUMAHEAP_NUMA=everywhere",
				 "NUMAHEAP_THP=maybe"})
		EXPECT_EQ(count(r.err, name), 1u) << name << "\n" << r.describe();
	expect_only_numaheap_lines(r.err);
}

TEST(Config, FaultVariableIsUnknownInReleaseBuilds)
{
	// Fault injection is compiled into test builds only.
	Result r = run(kRel, {"works"}, {"NUMAHEAP_FAULT=mmap"});
	EXPECT_TRUE(r.exited_ok()) << r.describe();
	EXPECT_EQ(count(r.err, "NUMAHEAP_FAULT"), 1u) << r.describe();
}

TEST(Config, StrictMakesABadVariableFatalAtStartup)
{
	for (const char *bad : {"NUMAHEAP_NO_SUCH_OPTION=1", "NUMAHEAP_CACHE_BYTES=lots"}) {
		Result r = run(kRel, {"hello"}, {"NUMAHEAP_STRICT=1", bad});
		EXPECT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT) << bad << ": " << r.describe();
		EXPECT_EQ(r.out, "") << "main must not have run: " << r.describe();
		EXPECT_NE(r.err.find("numaheap: fatal: NUMAHEAP_STRICT=1"), std::string::npos) << r.describe();
	}
	Result good = run(kRel, {"hello"}, {"NUMAHEAP_STRICT=1", "NUMAHEAP_CACHE_BYTES=1M"});
	EXPECT_TRUE(good.exited_ok()) << good.describe();
	EXPECT_EQ(good.err, "") << good.describe();
}
