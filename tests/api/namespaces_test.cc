// namespaces_test.cc — calls that act on a whole process, which numaheap's
// background thread made a process of two threads: unshare(CLONE_NEWUSER)
// and setns into a mount namespace need one thread (EINVAL otherwise:
// `unshare --user` and `nsenter` failed under numaheap), and setuid reached
// every thread but the background one. The namespace wrappers
// (src/namespaces.c) stop the thread first, and the next slow path starts
// it again; the credential wrappers (src/setxid.c) have glibc change the
// background thread's credentials with the others'. Each test runs in a
// process of its own (a death test, re-executed), which grows its heap
// until the thread runs.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "numaheap.h"

namespace {

bool thread_running()
{
	static char buf[1 << 16];
	numaheap_stats_json(buf, sizeof buf);
	return strstr(buf, "\"running\":true") != nullptr;
}

// Allocate and free until the background thread runs (it starts from a
// slow path once the heap has grown, and again after the wrappers stopped
// it), 2 s at most; whether it does.
bool allocate_until_thread_runs()
{
	for (int round = 0; round < 200 && !thread_running(); round++) {
		std::vector<void *> v;
		for (int i = 0; i < 64; i++)
			v.push_back(malloc(1 << 20));
		for (void *p : v)
			free(p);
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	}
	return thread_running();
}

// Exit 3 if the background thread never starts.
void start_background_thread()
{
	if (!allocate_until_thread_runs())
		exit(3);
}

} // namespace

TEST(Namespaces, UnshareUserWorksWithTheBackgroundThreadRunning)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_EXIT(
		{
			start_background_thread();
			if (unshare(CLONE_NEWUSER) != 0)
				exit(errno == EINVAL ? 4 : 5);
			// It comes back with the next heap growth.
			exit(allocate_until_thread_runs() ? 0 : 6);
		},
		testing::ExitedWithCode(0), "");
}

TEST(Namespaces, SetnsMountWorksWithTheBackgroundThreadRunning)
{
	// As root the call succeeds (the same namespace, entered again); without
	// CAP_SYS_ADMIN it fails with EPERM, after the check for one thread.
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_EXIT(
		{
			start_background_thread();
			int fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				exit(7);
			if (setns(fd, CLONE_NEWNS) != 0)
				exit(errno == EINVAL ? 4 : errno == EPERM && geteuid() != 0 ? 0 : 5);
			exit(0);
		},
		testing::ExitedWithCode(0), "");
}

// A program with a thread of its own gets the kernel's EINVAL, as without
// numaheap, and the call returns (the wrapper waits only for its thread).
TEST(Namespaces, AProgramsOwnThreadStillMakesItEinval)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_EXIT(
		{
			start_background_thread();
			pthread_t t;
			pthread_create(
				&t, nullptr,
				[](void *) -> void * {
					pause();
					return nullptr;
				},
				nullptr);
			int r = unshare(CLONE_NEWUSER);
			exit(r == -1 && errno == EINVAL ? 0 : 8);
		},
		testing::ExitedWithCode(0), "");
}

// glibc changes every thread's credentials only when it knows the process
// has several (__libc_single_threaded), and numaheap's background thread
// does not count there: after setgid and setuid it kept running as root.
// numaheap's set*id calls clear the flag for the call (src/setxid.c), so
// glibc changes the background thread's credentials too. Every task of
// the process is checked in /proc/self/task: its real, effective and saved
// uid (field 0, 1, 2 of "Uid:") against want[] (-1: any).
static int tasks_not_with_uids(const long want[3], int *count, std::vector<std::string> *ids = nullptr)
{
	int bad = 0;
	*count = 0;
	std::string dir = "/proc/self/task";
	if (DIR *d = opendir(dir.c_str())) {
		while (struct dirent *e = readdir(d)) {
			if (e->d_name[0] == '.')
				continue;
			++*count;
			if (ids)
				ids->push_back(e->d_name);
			std::string p = dir + "/" + e->d_name + "/status";
			FILE *f = fopen(p.c_str(), "r");
			char line[256];
			unsigned r = 0, eu = 0, s = 0, fs = 0;
			while (f && fgets(line, sizeof line, f))
				if (sscanf(line, "Uid: %u %u %u %u", &r, &eu, &s, &fs) == 4)
					bad += (want[0] >= 0 && r != want[0]) || (want[1] >= 0 && eu != want[1]) ||
					       (want[2] >= 0 && s != want[2]);
			if (f)
				fclose(f);
		}
		closedir(d);
	}
	return bad;
}

static int tasks_not_with_uid(long uid, int *count)
{
	const long want[3] = {uid, uid, uid};
	return tasks_not_with_uids(want, count);
}

TEST(Credentials, SetuidReachesTheBackgroundThread)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_EXIT(
		{
			start_background_thread();
			if (geteuid() != 0) // without root, a no-op change must still work
				exit(seteuid(geteuid()) == 0 ? 0 : 9);
			if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
				exit(10);
			int n = 0;
			if (tasks_not_with_uid(65534, &n) != 0)
				exit(11);
			// The thread kept running, with the new credentials.
			if (n < 2 || !thread_running())
				exit(12);
			if (!allocate_until_thread_runs())
				exit(13);
			exit(tasks_not_with_uid(65534, &n) == 0 && n >= 2 ? 0 : 14);
		},
		testing::ExitedWithCode(0), "");
}

// A server that switches its effective uid for each request (file servers
// do): every switch reaches the background thread, which stays the same
// thread (its task id does not change), and the switches cost what
// glibc's do in a program with threads of its own, not a thread's exit
// and start each.
static const long kRoot[3] = {0, 0, 0}, kUserEffective[3] = {0, 65534, 0};

TEST(Credentials, SeteuidTogglingKeepsTheBackgroundThread)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	EXPECT_EXIT(
		{
			start_background_thread();
			if (geteuid() != 0)
				exit(seteuid(geteuid()) == 0 ? 0 : 9);
			int n = 0;
			std::vector<std::string> before;
			std::vector<std::string> after;
			if (tasks_not_with_uids(kRoot, &n, &before) != 0 || n < 2)
				exit(10);
			for (int i = 0; i < 100; i++) {
				if (seteuid(65534) != 0)
					exit(11);
				if (tasks_not_with_uids(kUserEffective, &n) != 0)
					exit(12);
				for (int j = 0; j < 100; j++)
					free(malloc(64 + j * 24));
				if (seteuid(0) != 0)
					exit(13);
				if (tasks_not_with_uids(kRoot, &n) != 0)
					exit(14);
			}
			if (tasks_not_with_uids(kRoot, &n, &after) != 0 || !thread_running())
				exit(15);
			exit(before == after ? 0 : 16);
		},
		testing::ExitedWithCode(0), "");
}
