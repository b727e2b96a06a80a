// NUMAHEAP_* options (src/options.c, options.def). Each test sets variables,
// re-runs options_init() (it reads environ) and checks nh_opt and the
// warnings on stderr. The fixture hides any NUMAHEAP_* variable of the
// caller's environment and restores it, and the options, afterwards.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "shim.h"

extern char **environ;

namespace {

int Id(const char *name)
{
	int id = nht_opt_find(name);
	EXPECT_GE(id, 0) << "no option " << name;
	return id;
}

class Options : public ::testing::Test {
      protected:
	void SetUp() override
	{
		std::vector<std::string> names;
		for (char **e = environ; *e; e++)
			if (strncmp(*e, "NUMAHEAP_", 9) == 0) {
				const char *eq = strchr(*e, '=');
				std::string name(*e, eq ? size_t(eq - *e) : strlen(*e));
				saved_.push_back({name, eq ? eq + 1 : ""});
				names.push_back(name);
			}
		for (auto &n : names)
			unsetenv(n.c_str());
	}
	void TearDown() override
	{
		for (auto &n : set_)
			unsetenv(n.c_str());
		for (auto &[n, v] : saved_)
			setenv(n.c_str(), v.c_str(), 1);
		nht_options_init(); // back to what the process started with
	}
	void Set(const std::string &name, const std::string &value)
	{
		setenv(("NUMAHEAP_" + name).c_str(), value.c_str(), 1);
		set_.push_back("NUMAHEAP_" + name);
	}
	void Unset(const std::string &name) { unsetenv(("NUMAHEAP_" + name).c_str()); }
	// options_init() with stderr captured.
	std::string Init()
	{
		testing::internal::CaptureStderr();
		nht_options_init();
		return testing::internal::GetCapturedStderr();
	}

      private:
	std::vector<std::pair<std::string, std::string>> saved_;
	std::vector<std::string> set_;
};

TEST_F(Options, CleanEnvironmentGivesDefaults)
{
	EXPECT_EQ(Init(), "");
	ASSERT_GT(nht_opt_count(), 0);
	for (int i = 0; i < nht_opt_count(); i++) {
		EXPECT_EQ(nht_opt_value(i), nht_opt_default(i)) << nht_opt_name(i);
		EXPECT_FALSE(nht_opt_is_set(i)) << nht_opt_name(i);
	}
	// Spot checks against the documented defaults.
	EXPECT_EQ(nht_opt_value(Id("STATS")), 0);
	EXPECT_EQ(nht_opt_value(Id("CACHE_BYTES")), 4 << 20);
	EXPECT_EQ(nht_opt_value(Id("THP")), 1);
	EXPECT_EQ(nht_opt_value(Id("RELEASE")), 0);
	EXPECT_EQ(nht_opt_value(Id("STRICT")), 0);
	EXPECT_STREQ(nht_opt_stats_file(), "");
}

struct Good {
	const char *name, *value;
	int64_t want;
};

TEST_F(Options, WellFormedValues)
{
	const Good cases[] = {
		{"STATS", "text", 1},
		{"STATS", "json", 2},
		{"STATS", "off", 0},
		{"STATS", "1", 1},
		{"STATS", "2", 2},
		{"CACHE_BYTES", "65536", 65536},
		{"CACHE_BYTES", "64k", 64 << 10},
		{"CACHE_BYTES", "64K", 64 << 10},
		{"CACHE_BYTES", "1M", 1 << 20},
		{"CACHE_BYTES", "4MiB", 4 << 20},
		{"CACHE_BYTES", "2MB", 2 << 20},
		{"CACHE_BYTES", "3mb", 3 << 20},
		{"CACHE_BYTES", "1G", 1 << 30},
		{"CACHE_BYTES", "1048576B", 1 << 20},
		{"THP", "0", 0},
		{"THP", "off", 0},
		{"THP", "no", 0},
		{"THP", "FALSE", 0},
		{"THP", "1", 1},
		{"THP", "YES", 1},
		{"THP", "On", 1},
		{"THP", "true", 1},
		{"THP_ADAPT", "base", 2},
		{"THP_ADAPT", "2", 2},
		{"THP_ADAPT", "off", 0},
		{"THP_ADAPT", "on", 1},
		{"THP_ADAPT", "no", 0}, // an enum grown out of a bool keeps its spellings
		{"THP_ADAPT", "true", 1},
		{"RELEASE", "free", 1},
		{"RELEASE", "dontneed", 0},
		{"RELEASE", "1", 1},
		{"SHOW_CONFIG", "0", 0},
		{"STRICT", "0", 0},
	};
	for (const Good &c : cases) {
		SCOPED_TRACE(std::string("NUMAHEAP_") + c.name + "=" + c.value);
		Set(c.name, c.value);
		EXPECT_EQ(Init(), "") << "no warning for a good value";
		EXPECT_EQ(nht_opt_value(Id(c.name)), c.want);
		EXPECT_TRUE(nht_opt_is_set(Id(c.name)));
		Unset(c.name);
	}
}

struct Bad {
	const char *name, *value, *warning;
};

TEST_F(Options, BadValuesWarnAndKeepTheDefault)
{
	const Bad cases[] = {
		{"STATS", "3", "NUMAHEAP_STATS=3: malformed value, default kept"},
		{"STATS", "yes", "NUMAHEAP_STATS=yes: malformed value, default kept"},
		{"STATS", "", "NUMAHEAP_STATS=: malformed value, default kept"},
		{"CACHE_BYTES", "12x", "NUMAHEAP_CACHE_BYTES=12x: malformed value, default kept"},
		{"CACHE_BYTES", "", "NUMAHEAP_CACHE_BYTES=: malformed value, default kept"},
		{"CACHE_BYTES", "-1", "NUMAHEAP_CACHE_BYTES=-1: malformed value, default kept"},
		{"CACHE_BYTES", "1.5M", "NUMAHEAP_CACHE_BYTES=1.5M: malformed value, default kept"},
		{"CACHE_BYTES", "99999999999999999999", "NUMAHEAP_CACHE_BYTES=99999999999999999999: malformed value"},
		{"CACHE_BYTES", "9999999999T", "NUMAHEAP_CACHE_BYTES=9999999999T: malformed value"},
		{"CACHE_BYTES", "1000", "NUMAHEAP_CACHE_BYTES=1000: out of range, default kept"},
		{"CACHE_BYTES", "2G", "NUMAHEAP_CACHE_BYTES=2G: out of range, default kept"},
		{"CACHE_BYTES", " 1M", "NUMAHEAP_CACHE_BYTES= 1M: malformed value"},
		{"THP", "maybe", "NUMAHEAP_THP=maybe: malformed value, default kept"},
		{"THP", "2", "NUMAHEAP_THP=2: malformed value, default kept"},
		{"RELEASE", "never", "NUMAHEAP_RELEASE=never: malformed value, default kept"},
		{"THP_ADAPT", "3", "NUMAHEAP_THP_ADAPT=3: malformed value, default kept"},
		{"THP_ADAPT", "maybe", "NUMAHEAP_THP_ADAPT=maybe: malformed value, default kept"},
	};
	for (const Bad &c : cases) {
		SCOPED_TRACE(std::string("NUMAHEAP_") + c.name + "=" + c.value);
		Set(c.name, c.value);
		std::string err = Init();
		EXPECT_NE(err.find(std::string("numaheap: warning: ") + c.warning), std::string::npos) << err;
		EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one line: " << err;
		EXPECT_EQ(nht_opt_value(Id(c.name)), nht_opt_default(Id(c.name)));
		Unset(c.name);
	}
}

TEST_F(Options, UnknownVariableWarns)
{
	Set("NO_SUCH_THING", "1");
	std::string err = Init();
	EXPECT_NE(err.find("numaheap: warning: NUMAHEAP_NO_SUCH_THING: unknown variable, ignored"), std::string::npos)
		<< err;
	for (int i = 0; i < nht_opt_count(); i++)
		EXPECT_EQ(nht_opt_value(i), nht_opt_default(i)) << nht_opt_name(i);
}

TEST_F(Options, OtherVariablesIgnored)
{
	setenv("NUMAHEAPX_STATS", "json", 1);
	setenv("XNUMAHEAP_STATS", "json", 1);
	std::string err = Init();
	unsetenv("NUMAHEAPX_STATS");
	unsetenv("XNUMAHEAP_STATS");
	EXPECT_EQ(err, "");
	EXPECT_EQ(nht_opt_value(Id("STATS")), 0);
}

TEST_F(Options, SeveralAtOnce)
{
	Set("STATS", "json");
	Set("THP", "0");
	Set("CACHE_BYTES", "bogus");
	Set("RELEASE", "free");
	std::string err = Init();
	EXPECT_NE(err.find("NUMAHEAP_CACHE_BYTES=bogus"), std::string::npos) << err;
	EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
	EXPECT_EQ(nht_opt_value(Id("STATS")), 2);
	EXPECT_EQ(nht_opt_value(Id("THP")), 0);
	EXPECT_EQ(nht_opt_value(Id("CACHE_BYTES")), 4 << 20);
	EXPECT_EQ(nht_opt_value(Id("RELEASE")), 1);
}

// options_init() defines all of nh_opt from the environment, every time it
// runs: what this suite relies on to restore the defaults.
TEST_F(Options, ReinitResetsToDefaults)
{
	Set("THP", "0");
	Set("STATS_FILE", "/tmp/numaheap-stats.txt");
	Init();
	EXPECT_EQ(nht_opt_value(Id("THP")), 0);
	EXPECT_TRUE(nht_opt_is_set(Id("THP")));
	Unset("THP");
	Unset("STATS_FILE");
	EXPECT_EQ(Init(), "");
	EXPECT_EQ(nht_opt_value(Id("THP")), 1);
	EXPECT_EQ(nht_opt_value(Id("STATS_FILE")), 0);
	EXPECT_FALSE(nht_opt_is_set(Id("THP"))) << "set[] sticks across options_init()";
	EXPECT_FALSE(nht_opt_is_set(Id("STATS_FILE"))) << "set[] sticks across options_init()";
	EXPECT_STREQ(nht_opt_stats_file(), "") << "stats_file sticks across options_init()";
	// A bad value after a good one: the default, and not marked as set.
	Set("RELEASE", "free");
	Init();
	EXPECT_TRUE(nht_opt_is_set(Id("RELEASE")));
	Set("RELEASE", "sometimes");
	Init();
	EXPECT_EQ(nht_opt_value(Id("RELEASE")), 0);
	EXPECT_FALSE(nht_opt_is_set(Id("RELEASE"))) << "set[] sticks across options_init()";
}

TEST_F(Options, StatsFilePath)
{
	Set("STATS_FILE", "/tmp/numaheap-stats.txt");
	EXPECT_EQ(Init(), "");
	EXPECT_STREQ(nht_opt_stats_file(), "/tmp/numaheap-stats.txt");
	EXPECT_EQ(nht_opt_value(Id("STATS_FILE")), 1);
	EXPECT_TRUE(nht_opt_is_set(Id("STATS_FILE")));

	std::string longpath = "/tmp/" + std::string(nht_opt_stats_file_cap() + 10, 'x');
	Set("STATS_FILE", longpath);
	std::string err = Init();
	EXPECT_NE(err.find("numaheap: warning: NUMAHEAP_STATS_FILE: path too long, ignored"), std::string::npos) << err;
	EXPECT_EQ(nht_opt_value(Id("STATS_FILE")), 0);
	// The longest path that fits.
	std::string fits = "/" + std::string(nht_opt_stats_file_cap() - 2, 'y');
	Set("STATS_FILE", fits);
	EXPECT_EQ(Init(), "");
	EXPECT_EQ(nht_opt_stats_file(), fits);
	EXPECT_EQ(nht_opt_value(Id("STATS_FILE")), 1);
}

TEST_F(Options, StrictMakesBadValuesFatal)
{
	GTEST_FLAG_SET(death_test_style, "threadsafe");
	// The variables are set inside the child only.
	EXPECT_DEATH(
		{
			setenv("NUMAHEAP_STRICT", "1", 1);
			setenv("NUMAHEAP_THP", "maybe", 1);
			nht_options_init();
		},
		"NUMAHEAP_THP=maybe: malformed value(.|\n)*numaheap: fatal: NUMAHEAP_STRICT=1 and 1 bad");
	EXPECT_DEATH(
		{
			setenv("NUMAHEAP_STRICT", "yes", 1);
			setenv("NUMAHEAP_TYPO", "1", 1);
			nht_options_init();
		},
		"NUMAHEAP_STRICT=1 and 1 bad");
	// Strict with good values is fine.
	Set("STRICT", "1");
	Set("THP", "off");
	EXPECT_EQ(Init(), "");
	EXPECT_EQ(nht_opt_value(Id("STRICT")), 1);
	EXPECT_EQ(nht_opt_value(Id("THP")), 0);
}

} // namespace
