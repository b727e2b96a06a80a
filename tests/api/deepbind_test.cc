// deepbind_test.cc — a library opened with RTLD_DEEPBIND (PHP's extensions,
// some plugin hosts) shares numaheap's heap with the program: libnumaheap.so's
// dlopen clears the flag (src/dlopen.c), unless NUMAHEAP_DEEPBIND=keep.
// Before it, the plugin's free was glibc's, and a block crossing from the
// program aborted in glibc ("free(): invalid pointer"); Debian's php-cli did
// so at start-up. And dlopen stays the C library's as far as its caller is
// concerned: a bare name is found through the caller's own RUNPATH.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

#include "numaheap.h"

namespace {

struct Plugin {
	void *h = nullptr;
	void *(*malloc_)(size_t) = nullptr;
	void *(*realloc_)(void *, size_t) = nullptr;
	void (*free_)(void *) = nullptr;
	void *(*free_fn)() = nullptr;
	explicit Plugin(const char *path, int mode)
	{
		h = dlopen(path, mode);
		if (!h)
			return;
		malloc_ = (void *(*)(size_t))dlsym(h, "plugin_malloc");
		realloc_ = (void *(*)(void *, size_t))dlsym(h, "plugin_realloc");
		free_ = (void (*)(void *))dlsym(h, "plugin_free");
		free_fn = (void *(*)())dlsym(h, "plugin_free_fn");
	}
	~Plugin()
	{
		if (h)
			dlclose(h);
	}
	bool ok() const { return h && malloc_ && realloc_ && free_ && free_fn; }
};

void *numaheap_free() { return dlsym(RTLD_DEFAULT, "free"); }

} // namespace

TEST(Deepbind, PluginCallsNumaheapsFree)
{
	Plugin p(NH_DEEPBIND_PLUGIN, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	ASSERT_TRUE(p.ok()) << dlerror();
	EXPECT_EQ(p.free_fn(), numaheap_free());
	Dl_info info{};
	ASSERT_NE(dladdr(p.free_fn(), &info), 0);
	EXPECT_NE(strstr(info.dli_fname, "libnumaheap"), nullptr) << info.dli_fname;
}

TEST(Deepbind, BlocksCrossBothWays)
{
	Plugin p(NH_DEEPBIND_PLUGIN, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	ASSERT_TRUE(p.ok()) << dlerror();
	GTEST_FLAG_SET(death_test_style, "threadsafe"); // numaheap's background thread runs
	EXPECT_EXIT(
		{
			for (size_t n : {size_t(24), size_t(700), size_t(40000), size_t(3) << 20}) {
				char *a = (char *)malloc(n); // the program's block, freed by the plugin
				memset(a, 1, n);
				p.free_(a);
				char *b = (char *)p.malloc_(n); // the plugin's, freed by the program
				if (!b || numaheap_node_of(b) != 0)
					exit(2); // not numaheap's block
				memset(b, 2, n);
				b = (char *)p.realloc_(b, 2 * n);
				if (!b || b[n - 1] != 2)
					exit(3);
				free(b);
			}
			exit(0);
		},
		testing::ExitedWithCode(0), "");
}

// The caller's RUNPATH (the test's, which names the plugin's directory)
// finds a bare name: glibc sees the program as dlopen's caller, not numaheap.
TEST(Deepbind, BareNameIsFoundThroughTheCallersRunpath)
{
	for (int deep : {0, RTLD_DEEPBIND}) {
		void *h = dlopen(NH_DEEPBIND_PLUGIN_NAME, RTLD_NOW | RTLD_LOCAL | deep);
		EXPECT_NE(h, nullptr) << dlerror();
		if (h)
			dlclose(h);
	}
	EXPECT_NE(dlopen(nullptr, RTLD_NOW), nullptr); // the program itself
	EXPECT_EQ(dlopen("/nonexistent/libnothing.so", RTLD_NOW), nullptr);
	EXPECT_NE(dlerror(), nullptr);
}

// NUMAHEAP_DEEPBIND=keep, read when numaheap starts (in the death test's
// fresh process): the flag goes through, and the plugin's free is glibc's.
TEST(Deepbind, KeepPassesTheFlagOn)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe"); // a new process: it reads the variable
	setenv("NUMAHEAP_DEEPBIND", "keep", 1);
	EXPECT_EXIT(
		{
			Plugin p(NH_DEEPBIND_PLUGIN, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
			if (!p.ok())
				exit(2);
			exit(p.free_fn() != numaheap_free() ? 0 : 1);
		},
		testing::ExitedWithCode(0), "");
	unsetenv("NUMAHEAP_DEEPBIND");
}
