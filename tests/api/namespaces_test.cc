// namespaces_test.cc — calls that act on a whole process, which numaheap's
// background thread made a process of two threads: unshare(CLONE_NEWUSER)
// and setns into a mount namespace need one thread (EINVAL otherwise:
// `unshare --user` and `nsenter` failed under numaheap), and setuid reached
// every thread but the background one. The wrappers (src/namespaces.c,
// src/setxid.c) stop the thread first; the next slow path starts it again. Each test runs in a process of its own
// (a death test, re-executed), which grows its heap until the thread runs.
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
// numaheap's set*id calls stop it first (src/setxid.c); the thread the next
// slow path starts has the new credentials. Every task of the process is
// checked in /proc/self/task.
static int tasks_not_with_uid(unsigned uid, int *count)
{
	int bad = 0;
	*count = 0;
	std::string dir = "/proc/self/task";
	if (DIR *d = opendir(dir.c_str())) {
		while (struct dirent *e = readdir(d)) {
			if (e->d_name[0] == '.')
				continue;
			++*count;
			std::string p = dir + "/" + e->d_name + "/status";
			FILE *f = fopen(p.c_str(), "r");
			char line[256];
			unsigned r = 0, eu = 0, s = 0, fs = 0;
			while (f && fgets(line, sizeof line, f))
				if (sscanf(line, "Uid: %u %u %u %u", &r, &eu, &s, &fs) == 4)
					bad += r != uid || eu != uid || s != uid;
			if (f)
				fclose(f);
		}
		closedir(d);
	}
	return bad;
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
			// The thread comes back, with the new credentials.
			if (!allocate_until_thread_runs())
				exit(12);
			exit(tasks_not_with_uid(65534, &n) == 0 && n >= 2 ? 0 : 13);
		},
		testing::ExitedWithCode(0), "");
}
