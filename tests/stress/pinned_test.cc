// The background thread drains idle CPUs' caches also when the program
// pinned the thread that started it to one CPU (src/drain.c): it moves onto
// CPUs outside the mask it inherited. pinned_prog.c makes that program; this
// test runs it (NH_PINNED_PROG) and reads what it printed.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

TEST(Drain, IdleCachesOfAPinnedProgramAreDrained)
{
	const char *prog = getenv("NH_PINNED_PROG");
	ASSERT_NE(prog, nullptr) << "NH_PINNED_PROG is not set (CMakeLists.txt)";
	FILE *p = popen(prog, "r");
	ASSERT_NE(p, nullptr);
	std::string out;
	char line[512];
	while (fgets(line, sizeof line, p))
		out += line;
	ASSERT_EQ(pclose(p), 0) << out;
	if (out.find("one CPU") != std::string::npos)
		GTEST_SKIP() << "this process may use one CPU";
	int a = -1, b = -1;
	size_t m = out.find("main cpu ");
	ASSERT_NE(m, std::string::npos) << out;
	ASSERT_EQ(sscanf(out.c_str() + m, "main cpu %d worker cpu %d", &a, &b), 2) << out;
	// The condition under test: the background thread runs on the main
	// thread's one CPU, not on the worker's.
	EXPECT_NE(out.find("thread numaheap-bg cpus " + std::to_string(a) + "\n"), std::string::npos) << out;
	long early = -1, late = -1;
	size_t e = out.find("cached early "), l = out.find("cached late ");
	ASSERT_NE(e, std::string::npos) << out;
	ASSERT_NE(l, std::string::npos) << out;
	early = atol(out.c_str() + e + 13);
	late = atol(out.c_str() + l + 12);
	EXPECT_GT(early, 1000) << "the worker's CPU cache held its freed objects\n" << out;
	EXPECT_EQ(late, 0) << "an idle cache on CPU " << b << " was not drained\n" << out;
}
