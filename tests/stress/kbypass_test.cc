// Kernel bypass: once the heap has reached its working size, a program that
// repeats the same allocation phase makes numaheap enter the kernel at most a
// handful of times (numaheap's own count of its kernel calls, by kind) and
// takes few page faults (the kernel's count for the whole process). The
// full comparison with the other allocators is perf/kbypass.
#include <gtest/gtest.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <string>
#include <vector>

#include "numaheap.h"
#include "stats_json.h"
#include "stress_util.h"

namespace {

long long kernel_calls()
{
	std::string s = stats();
	size_t o = s.find("\"kernel_calls\":{");
	if (o == std::string::npos)
		return -1;
	long long total = 0;
	for (const char *k : {"mmap", "munmap", "madvise", "mbind", "mprotect", "futex_wait", "futex_wake",
			      "io_uring_enter"}) {
		size_t p = s.find(std::string("\"") + k + "\":", o);
		if (p != std::string::npos)
			total += atoll(s.c_str() + p + strlen(k) + 3);
	}
	return total;
}

long minor_faults()
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

// One phase: about 160 MiB in flight of mixed sizes up to 1 MiB, every byte
// touched, then everything freed.
void phase(uint64_t seed)
{
	Rng r(seed);
	std::vector<void *> v;
	size_t total = 0;
	while (total < (160u << 20)) {
		size_t x = r.below(100), n;
		n = x < 70 ? r.range(16, 512) : x < 95 ? r.range(513, 32768) : r.range(32769, 1u << 20);
		void *p = malloc(n);
		ASSERT_NE(p, nullptr);
		memset(p, (int)x, n);
		v.push_back(p);
		total += n;
	}
	for (void *p : v)
		free(p);
}

TEST(KernelBypass, RepeatedPhasesStayOutOfTheKernel)
{
	phase(1); // warm-up: the heap grows to its working size
	phase(2);
	long long calls0 = kernel_calls();
	long faults0 = minor_faults();
	for (int i = 0; i < 20; i++)
		phase(3); // the same phase, over and over
	long long calls = kernel_calls() - calls0;
	long faults = minor_faults() - faults0;
	printf("20 phases after warm-up: %lld kernel calls by numaheap, %ld minor page faults\n", calls, faults);
	EXPECT_LE(calls, 10) << "numaheap entered the kernel in steady state";
	EXPECT_LE(faults, 2000) << "memory was released and faulted back in";
}

} // namespace
