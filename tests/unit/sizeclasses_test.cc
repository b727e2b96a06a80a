// Size classes: the checked-in src/sizeclasses.h is what tools/mksizeclasses
// generates, and its tables have the properties the allocator relies on.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "shim.h"
#include "sizeclasses.h"

namespace {

std::string ReadFile(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	EXPECT_TRUE(in.good()) << "cannot open " << path;
	std::ostringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

// Run argv[0] with argv[1..]; returns its exit status (or -1).
int RunTool(const char *prog, const char *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl(prog, prog, arg, (char *)nullptr);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

unsigned SpanBytes(unsigned c) { return nh_class_to_npages[c] * NH_PAGE_SIZE; }

// The allocator's lookup (sizeclass.h nh_size_to_class), from the tables.
unsigned TableClass(size_t n)
{
	if (n <= NH_SMALL_SIZE_MAX)
		return nh_size_to_class8[(n + NH_SMALL_SIZE_DIV - 1) / NH_SMALL_SIZE_DIV];
	return nh_size_to_class128[(n - NH_SMALL_SIZE_MAX + NH_LARGE_SIZE_DIV - 1) / NH_LARGE_SIZE_DIV];
}

unsigned LinearClass(size_t n)
{
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++)
		if (nh_class_to_size[c] >= n)
			return c;
	return 0;
}

TEST(SizeClasses, GeneratorReproducesCheckedInHeader)
{
	char tmpl[] = "/tmp/nh-sizeclasses-XXXXXX";
	int fd = mkstemp(tmpl);
	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_EQ(RunTool(NH_MKSIZECLASSES, tmpl), 0) << NH_MKSIZECLASSES << " failed";
	std::string generated = ReadFile(tmpl);
	std::string checked_in = ReadFile(NH_SIZECLASSES_H);
	unlink(tmpl);
	ASSERT_FALSE(generated.empty());
	// Byte for byte; on failure show where they first differ.
	size_t i = 0;
	while (i < generated.size() && i < checked_in.size() && generated[i] == checked_in[i])
		i++;
	EXPECT_EQ(generated.size(), checked_in.size());
	EXPECT_TRUE(generated == checked_in)
		<< "src/sizeclasses.h is stale: regenerate it with mksizeclasses; first difference at byte " << i
		<< ": generated \"" << generated.substr(i, 60) << "\" vs checked in \"" << checked_in.substr(i, 60)
		<< "\"";
}

TEST(SizeClasses, Shape)
{
	EXPECT_EQ(NH_PAGE_SIZE, 1 << NH_PAGE_SHIFT);
	EXPECT_EQ(NH_PAGE_SIZE, 8192);
	EXPECT_EQ(NH_NUM_CLASSES, 67) << "66 small classes plus class 0 (large)";
	EXPECT_EQ(nh_class_to_size[0], 0u);
	EXPECT_EQ(nh_class_to_npages[0], 0u);
	EXPECT_EQ(nh_class_to_size[1], 8u);
	EXPECT_EQ(nh_class_to_size[NH_NUM_CLASSES - 1], (unsigned)NH_MAX_SMALL_SIZE);
	EXPECT_EQ(NH_MAX_SMALL_SIZE, 32768);
}

TEST(SizeClasses, SizesIncreasingAndAligned)
{
	for (unsigned c = 2; c < NH_NUM_CLASSES; c++) {
		SCOPED_TRACE("class " + std::to_string(c));
		EXPECT_GT(nh_class_to_size[c], nh_class_to_size[c - 1]);
		EXPECT_EQ(nh_class_to_size[c] % 16, 0u) << "size " << nh_class_to_size[c];
	}
}

TEST(SizeClasses, SpansHoldObjectsWithLittleTailWaste)
{
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		SCOPED_TRACE("class " + std::to_string(c));
		unsigned span = SpanBytes(c), size = nh_class_to_size[c];
		ASSERT_GT(nh_class_to_npages[c], 0u);
		ASSERT_GE(span, size);
		EXPECT_LE(span % size, span / 8) << "tail waste above 12.5%";
		EXPECT_LE(span / size, nht_max_span_objects) << "more objects than an mspan bitmap holds";
		EXPECT_GE(span / size, 1u);
	}
}

TEST(SizeClasses, LookupTablesAgreeWithLinearSearch)
{
	// Requests of 0-8 bytes take the 16-byte class (class 2): glibc's 16-byte
	// minimum alignment. NUMAHEAP_MIN_ALIGN=8 changes that at run time.
	for (size_t n = 1; n <= NH_MAX_SMALL_SIZE; n++) {
		unsigned want = n <= 8 ? 2 : LinearClass(n), got = TableClass(n);
		ASSERT_EQ(got, want) << "size " << n;
		ASSERT_GE(nh_class_to_size[got], n);
		ASSERT_TRUE(n <= 8 || nh_class_to_size[got - 1] < n) << "size " << n << " not in its smallest class";
	}
	EXPECT_EQ(TableClass(0), 2u) << "malloc(0) is served from the 16-byte class";
}

TEST(SizeClasses, DivisionMagicExactForEveryOffset)
{
	EXPECT_EQ(nh_class_to_divmul[0], 0u);
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		uint64_t m = nh_class_to_divmul[c], size = nh_class_to_size[c], span = SpanBytes(c);
		for (uint64_t off = 0; off < span; off++)
			ASSERT_EQ((off * m) >> 32, off / size) << "class " << c << " offset " << off;
	}
}

TEST(SizeClasses, DivisibilityMagicExactForEveryOffset)
{
	EXPECT_EQ(nh_class_to_divisible[0], 0u);
	for (unsigned c = 1; c < NH_NUM_CLASSES; c++) {
		uint64_t m = nh_class_to_divisible[c], size = nh_class_to_size[c], span = SpanBytes(c);
		// Every offset in a span and one page beyond (free adds the page's
		// phase to the offset within the page).
		for (uint64_t off = 0; off < span + 8192; off++)
			ASSERT_EQ(off * m < m, off % size == 0) << "class " << c << " offset " << off;
	}
}

} // namespace
