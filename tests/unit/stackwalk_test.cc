// stackwalk_test.cc — src/stackwalk.c's walk gives the same return
// addresses as libgcc's _Unwind_Backtrace, on stacks of several shapes:
// plain calls, frames on %rbp with alloca, a thread's stack, C++ code; and
// it declines (returns -1), never guesses, where it does not follow the
// tables (a signal handler's frame).
#include <gtest/gtest.h>

#include <alloca.h>
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unwind.h>

#include <functional>
#include <vector>

extern "C" {
#include "stackwalk.h"
}

namespace {

constexpr unsigned kMax = 80;

struct Walks {
	uintptr_t fast[kMax];
	int nfast = 0;
	uintptr_t gcc[kMax];
	unsigned ngcc = 0;
};

_Unwind_Reason_Code collect(struct _Unwind_Context *ctx, void *arg)
{
	Walks *w = static_cast<Walks *>(arg);
	uintptr_t ip = _Unwind_GetIP(ctx);
	if (!ip || w->ngcc == kMax)
		return _URC_END_OF_STACK;
	w->gcc[w->ngcc++] = ip;
	return _URC_NO_REASON;
}

// Both walks from the same frame: nh_unwind's pcs[0] is inside itself and
// pcs[1] the return address into this function; libgcc's first is the
// return address into this function. From there on (this function's
// callers) the two must agree.
__attribute__((noinline)) void capture(Walks *w)
{
	w->nfast = nh_unwind(w->fast, kMax, nh_unwind_unloads());
	_Unwind_Backtrace(collect, w);
	__asm__ volatile("" ::: "memory");
}

void expect_same(const Walks &w)
{
	ASSERT_GE(w.nfast, 3);
	ASSERT_GE(w.ngcc, 2u);
	std::vector<uintptr_t> fast(w.fast + 2, w.fast + w.nfast), gcc(w.gcc + 1, w.gcc + w.ngcc);
	EXPECT_EQ(fast, gcc);
}

__attribute__((noinline)) void plain(int depth, Walks *w)
{
	if (depth == 0)
		capture(w);
	else
		plain(depth - 1, w);
	__asm__ volatile("" ::: "memory");
}

// A frame whose CFA is on %rbp (alloca moves %rsp by a run-time amount).
__attribute__((noinline)) void with_alloca(int depth, size_t n, Walks *w)
{
	char *buf = static_cast<char *>(alloca(n));
	memset(buf, depth, n);
	__asm__ volatile("" : : "r"(buf) : "memory");
	if (depth == 0)
		capture(w);
	else
		with_alloca(depth - 1, n + 48, w);
	__asm__ volatile("" : : "r"(buf) : "memory");
}

void *thread_main(void *arg)
{
	plain(5, static_cast<Walks *>(arg));
	return nullptr;
}

Walks in_handler;
void handler(int) { capture(&in_handler); }

class Stackwalk : public ::testing::Test {
protected:
	static void SetUpTestSuite() { ASSERT_TRUE(nh_unwind_init()); }
};

TEST_F(Stackwalk, PlainCalls)
{
	for (int depth : {0, 1, 7, 30}) {
		Walks w;
		plain(depth, &w);
		expect_same(w);
	}
}

TEST_F(Stackwalk, FramesOnRbpWithAlloca)
{
	for (size_t n : {16, 1000, 20000}) {
		Walks w;
		with_alloca(4, n, &w);
		expect_same(w);
	}
}

TEST_F(Stackwalk, ThreadStackEndsLikeLibgcc)
{
	Walks w;
	pthread_t t;
	ASSERT_EQ(pthread_create(&t, nullptr, thread_main, &w), 0);
	ASSERT_EQ(pthread_join(t, nullptr), 0);
	expect_same(w);
}

TEST_F(Stackwalk, CxxCallsThroughStdFunction)
{
	Walks w;
	std::function<void(int)> f = [&](int d) {
		if (d == 0)
			capture(&w);
		else
			f(d - 1);
	};
	f(6);
	expect_same(w);
}

TEST_F(Stackwalk, SecondWalkFromTheTableIsTheSame)
{
	Walks a, b;
	plain(3, &a);
	plain(3, &b);
	expect_same(a);
	expect_same(b);
	EXPECT_EQ(a.nfast, b.nfast);
}

TEST_F(Stackwalk, DeclinesASignalFrame)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	ASSERT_EQ(sigaction(SIGUSR2, &sa, nullptr), 0);
	raise(SIGUSR2);
	signal(SIGUSR2, SIG_DFL);
	// The handler's caller is the kernel's signal frame (__restore_rt,
	// described as a signal frame): declined, for libgcc to walk.
	EXPECT_EQ(in_handler.nfast, -1);
}

// A rule is kept per code address. A plugin unloaded, and another loaded
// at the same address, whose call returns to the same pc from a different
// frame (sw_plugin.S, built twice): the walk through the second must follow
// its own rule. Loaded in both orders, each twice, so that one of the
// loads lands where another was (the kernel gives a freed range back
// first); the test says where they landed.
void capture_cb(void *w) { capture(static_cast<Walks *>(w)); }

uintptr_t walk_through(const char *path, Walks *w)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	EXPECT_NE(h, nullptr) << dlerror();
	if (!h)
		return 0;
	auto through = reinterpret_cast<void (*)(void (*)(void *), void *)>(dlsym(h, "sw_through"));
	EXPECT_NE(through, nullptr);
	struct link_map *lm = nullptr;
	dlinfo(h, RTLD_DI_LINKMAP, &lm);
	uintptr_t base = lm ? lm->l_addr : 0;
	if (through)
		through(capture_cb, w);
	dlclose(h);
	return base;
}

TEST_F(Stackwalk, RulesOfAnUnloadedPluginAreNotAppliedToTheNextOne)
{
	const char *order[] = {SW_PLUGIN_SMALL, SW_PLUGIN_BIG, SW_PLUGIN_SMALL, SW_PLUGIN_BIG};
	uintptr_t bases[4];
	int reused = 0;
	for (int i = 0; i < 4; i++) {
		Walks w;
		bases[i] = walk_through(order[i], &w);
		SCOPED_TRACE(order[i]);
		expect_same(w);
		for (int j = 0; j < i; j++)
			if (bases[j] == bases[i] && order[j] != order[i])
				reused++;
	}
	RecordProperty("other_plugin_at_same_address", reused);
	EXPECT_GT(reused, 0) << "the two plugins never loaded at the same address: nothing tested";
}

} // namespace
