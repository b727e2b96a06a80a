// A program whose main thread ends with pthread_exit exits once its last
// thread has ended (src/bgthread.c, os_last_thread): numaheap's background
// thread, which glibc counts as one of the process's threads and which
// blocks every signal, kept such a process alive for good. pexit_prog.c is
// the program (NH_PEXIT_PROG); this test runs it and waits at most 15 s.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

extern char **environ;

namespace {

// Run prog [arg] with stdout to a file; its wait status, or -1 if it was
// still running after 15 s (then killed).
int run(const char *prog, const char *arg, std::string *out)
{
	char path[] = "/tmp/nh_pexit_XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -2;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	char *argv[] = {(char *)prog, (char *)arg, nullptr};
	pid_t pid;
	int r = posix_spawn(&pid, prog, &fa, nullptr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	if (r != 0)
		return -2;
	int status = -1;
	auto t0 = std::chrono::steady_clock::now();
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(15)) {
			kill(pid, SIGKILL);
			waitpid(pid, nullptr, 0);
			status = -1;
			break;
		}
		usleep(20000);
	}
	std::ifstream f(path);
	std::stringstream s;
	s << f.rdbuf();
	*out = s.str();
	unlink(path);
	return status;
}

} // namespace

TEST(PthreadExit, ProcessExitsWhenMainEndsLast)
{
	const char *prog = getenv("NH_PEXIT_PROG");
	ASSERT_NE(prog, nullptr) << "NH_PEXIT_PROG is not set (CMakeLists.txt)";
	std::string out;
	int st = run(prog, nullptr, &out);
	ASSERT_NE(st, -1) << "still running 15 s after its main thread ended\n" << out;
	ASSERT_TRUE(WIFEXITED(st)) << "status " << st << "\n" << out;
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("atexit ran"), std::string::npos) << out;
	EXPECT_NE(out.find("background thread running"), std::string::npos) << "the case under test needs it\n" << out;
}

TEST(PthreadExit, ProcessExitsWhenAWorkerEndsLast)
{
	const char *prog = getenv("NH_PEXIT_PROG");
	ASSERT_NE(prog, nullptr) << "NH_PEXIT_PROG is not set (CMakeLists.txt)";
	std::string out;
	int st = run(prog, "worker", &out);
	ASSERT_NE(st, -1) << "still running 15 s after its main thread ended\n" << out;
	ASSERT_TRUE(WIFEXITED(st)) << "status " << st << "\n" << out;
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("worker done\natexit ran"), std::string::npos) << "the worker must finish first\n" << out;
	EXPECT_NE(out.find("background thread running"), std::string::npos) << "the case under test needs it\n" << out;
}
