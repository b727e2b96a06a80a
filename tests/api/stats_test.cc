// stats_test.cc — malloc_trim, mallinfo2, malloc_stats, and numaheap's own
// statistics API (numaheap_stats_json, numaheap_stats_print, numaheap_release).
#include <gtest/gtest.h>

#include <cerrno>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <malloc.h>
#include <map>
#include <memory>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "api_util.h"
#include "../common/cpu_pin.h"
#include "numaheap.h"

// ---- a tiny JSON parser: enough to say the output is valid and to walk it --------

struct Json {
	enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
	double num = 0;
	bool b = false;
	std::string str;
	std::vector<Json> arr;
	std::vector<std::pair<std::string, Json>> obj;

	const Json *get(const std::string &k) const
	{
		for (auto &kv : obj)
			if (kv.first == k)
				return &kv.second;
		return nullptr;
	}
	bool has(const std::string &k) const { return get(k) != nullptr; }
};

class JsonParser {
public:
	explicit JsonParser(const std::string &s) : s_(s) {}

	// Parses the whole text; false (with a position) on any error.
	bool parse(Json &out)
	{
		ws();
		if (!value(out, 0))
			return false;
		ws();
		return i_ == s_.size();
	}
	size_t pos() const { return i_; }

private:
	const std::string &s_;
	size_t i_ = 0;

	void ws()
	{
		while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
			i_++;
	}
	bool lit(const char *w)
	{
		size_t n = strlen(w);
		if (s_.compare(i_, n, w) != 0)
			return false;
		i_ += n;
		return true;
	}
	bool string(std::string &out)
	{
		if (i_ >= s_.size() || s_[i_] != '"')
			return false;
		i_++;
		while (i_ < s_.size() && s_[i_] != '"') {
			char c = s_[i_++];
			if ((unsigned char)c < 0x20)
				return false;
			if (c == '\\') {
				if (i_ >= s_.size())
					return false;
				char e = s_[i_++];
				if (e == 'u') {
					if (i_ + 4 > s_.size())
						return false;
					for (int k = 0; k < 4; k++)
						if (!isxdigit((unsigned char)s_[i_ + k]))
							return false;
					i_ += 4;
					c = '?';
				} else if (strchr("\"\\/bfnrt", e)) {
					c = e;
				} else {
					return false;
				}
			}
			out += c;
		}
		if (i_ >= s_.size())
			return false;
		i_++;
		return true;
	}
	bool number(double &out)
	{
		size_t st = i_;
		if (i_ < s_.size() && s_[i_] == '-')
			i_++;
		if (i_ >= s_.size() || !isdigit((unsigned char)s_[i_]))
			return false;
		if (s_[i_] == '0' && i_ + 1 < s_.size() && isdigit((unsigned char)s_[i_ + 1]))
			return false; // no leading zeros
		while (i_ < s_.size() && isdigit((unsigned char)s_[i_]))
			i_++;
		if (i_ < s_.size() && s_[i_] == '.') {
			i_++;
			if (i_ >= s_.size() || !isdigit((unsigned char)s_[i_]))
				return false;
			while (i_ < s_.size() && isdigit((unsigned char)s_[i_]))
				i_++;
		}
		if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
			i_++;
			if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-'))
				i_++;
			if (i_ >= s_.size() || !isdigit((unsigned char)s_[i_]))
				return false;
			while (i_ < s_.size() && isdigit((unsigned char)s_[i_]))
				i_++;
		}
		out = strtod(s_.substr(st, i_ - st).c_str(), nullptr);
		return true;
	}
	bool value(Json &v, int depth)
	{
		if (depth > 32 || i_ >= s_.size())
			return false;
		char c = s_[i_];
		if (c == '{') {
			v.kind = Json::Object;
			i_++;
			ws();
			if (i_ < s_.size() && s_[i_] == '}') {
				i_++;
				return true;
			}
			for (;;) {
				ws();
				std::string k;
				if (!string(k))
					return false;
				for (auto &kv : v.obj)
					if (kv.first == k)
						return false; // duplicate key
				ws();
				if (!lit(":"))
					return false;
				ws();
				Json child;
				if (!value(child, depth + 1))
					return false;
				v.obj.emplace_back(k, std::move(child));
				ws();
				if (lit(","))
					continue;
				return lit("}");
			}
		}
		if (c == '[') {
			v.kind = Json::Array;
			i_++;
			ws();
			if (i_ < s_.size() && s_[i_] == ']') {
				i_++;
				return true;
			}
			for (;;) {
				ws();
				Json child;
				if (!value(child, depth + 1))
					return false;
				v.arr.push_back(std::move(child));
				ws();
				if (lit(","))
					continue;
				return lit("]");
			}
		}
		if (c == '"') {
			v.kind = Json::String;
			return string(v.str);
		}
		if (lit("true")) {
			v.kind = Json::Bool;
			v.b = true;
			return true;
		}
		if (lit("false")) {
			v.kind = Json::Bool;
			return true;
		}
		if (lit("null"))
			return true;
		v.kind = Json::Number;
		return number(v.num);
	}
};

TEST(JsonParser, SelfTest)
{
	Json j;
	std::string good = "{\"a\":[1,2.5,-3e2,{\"b\":\"x\\\"y\"}],\"c\":true,\"d\":null}";
	ASSERT_TRUE(JsonParser(good).parse(j));
	ASSERT_EQ(j.kind, Json::Object);
	ASSERT_EQ(j.get("a")->arr.size(), 4u);
	EXPECT_EQ(j.get("a")->arr[2].num, -300);
	EXPECT_EQ(j.get("a")->arr[3].get("b")->str, "x\"y");
	for (const char *bad : {"{", "{\"a\":}", "{\"a\":1,}", "[1 2]", "{\"a\":1}x", "{\"a\":01}", "{a:1}",
				"{\"a\":1,\"a\":2}"}) {
		Json k;
		EXPECT_FALSE(JsonParser(bad).parse(k)) << bad;
	}
}

// ---- numaheap_stats_json -----------------------------------------------------------

static std::string stats_json()
{
	size_t need = numaheap_stats_json(nullptr, 0);
	EXPECT_GT(need, 0u);
	// The object can grow between calls (counters get more digits): leave room.
	std::vector<char> buf(need + 4096);
	size_t n = numaheap_stats_json(buf.data(), buf.size());
	EXPECT_LT(n, buf.size());
	EXPECT_EQ(strlen(buf.data()), n) << "the return value is the length written when it fits";
	return std::string(buf.data());
}

static uint64_t num(const Json *j)
{
	EXPECT_NE(j, nullptr);
	if (!j)
		return 0;
	EXPECT_EQ(j->kind, Json::Number);
	EXPECT_GE(j->num, 0);
	return (uint64_t)j->num;
}

TEST(StatsJson, IsValidJsonWithTheDocumentedKeys)
{
	void *keep = malloc(100); // something in use
	void *big = malloc(1 << 20);
	std::string s = stats_json();
	Json j;
	JsonParser parser(s);
	ASSERT_TRUE(parser.parse(j)) << "invalid JSON at offset " << parser.pos() << ": " << s;
	ASSERT_EQ(j.kind, Json::Object);
	for (const char *k : {"version", "cpu_mode", "nodes", "classes", "large", "caches", "totals", "kernel_calls"})
		EXPECT_TRUE(j.has(k)) << "missing key " << k;
	ASSERT_TRUE(j.has("version"));
	EXPECT_EQ(j.get("version")->str, NUMAHEAP_VERSION_STRING);
	EXPECT_EQ(j.get("cpu_mode")->kind, Json::String);

	const Json *nodes = j.get("nodes");
	ASSERT_NE(nodes, nullptr);
	ASSERT_EQ(nodes->kind, Json::Array);
	ASSERT_GE(nodes->arr.size(), 1u);
	bool node0 = false;
	for (const Json &n : nodes->arr) {
		for (const char *k : {"node", "mapped_bytes", "in_use_bytes", "huge_page_bytes", "released_bytes"})
			EXPECT_TRUE(n.has(k)) << "node entry missing " << k;
		if (n.has("node") && num(n.get("node")) == 0) {
			node0 = true;
			EXPECT_GT(num(n.get("mapped_bytes")), 0u);
			EXPECT_GE(num(n.get("mapped_bytes")), num(n.get("in_use_bytes")));
		}
	}
	EXPECT_TRUE(node0) << "node 0 holds this test's allocations";

	const Json *classes = j.get("classes");
	ASSERT_NE(classes, nullptr);
	ASSERT_EQ(classes->kind, Json::Array);
	EXPECT_EQ(classes->arr.size(), 66u) << "66 small size classes";
	uint64_t prev_size = 0;
	for (const Json &c : classes->arr) {
		for (const char *k : {"class", "size", "spans", "objects_in_use", "objects_cached", "allocs", "frees"})
			ASSERT_TRUE(c.has(k)) << "class entry missing " << k;
		uint64_t size = num(c.get("size"));
		EXPECT_GT(size, prev_size) << "class sizes increase";
		prev_size = size;
		EXPECT_LE(num(c.get("frees")), num(c.get("allocs"))) << "class " << num(c.get("class"));
	}
	EXPECT_EQ(prev_size, kMaxSmall);
	EXPECT_EQ(num(classes->arr[0].get("size")), 8u) << "the 8-byte class, used with NUMAHEAP_MIN_ALIGN=8";

	const Json *large = j.get("large");
	ASSERT_NE(large, nullptr);
	EXPECT_EQ(large->kind, Json::Object);
	EXPECT_GE(num(large->get("in_use_bytes")), (uint64_t)(1 << 20));
	EXPECT_EQ(j.get("caches")->kind, Json::Object);
	EXPECT_EQ(j.get("kernel_calls")->kind, Json::Object);
	EXPECT_GT(num(j.get("kernel_calls")->get("mmap")), 0u);

	const Json *totals = j.get("totals");
	ASSERT_NE(totals, nullptr);
	for (const char *k : {"allocs", "frees", "in_use_bytes", "mapped_bytes"})
		EXPECT_TRUE(totals->has(k)) << "totals missing " << k;
	EXPECT_GE(num(totals->get("allocs")), num(totals->get("frees")));
	EXPECT_GE(num(totals->get("mapped_bytes")), num(totals->get("in_use_bytes")));
	EXPECT_GE(num(totals->get("in_use_bytes")), (uint64_t)(1 << 20) + 100);
	free(keep);
	free(big);
}

TEST(StatsJson, ReturnValueAndTruncation)
{
	std::vector<char> full(1 << 20);
	size_t len = numaheap_stats_json(full.data(), full.size());
	ASSERT_GT(len, 200u);
	ASSERT_EQ(strlen(full.data()), len);
	EXPECT_EQ(full[0], '{');
	EXPECT_EQ(full[len - 1], '}');

	// A NULL buffer of capacity 0 only measures.
	size_t need = numaheap_stats_json(nullptr, 0);
	EXPECT_GT(need, 200u);

	// Capacity 0 with a buffer: nothing written.
	char untouched[4] = {'X', 'X', 'X', 'X'};
	EXPECT_GT(numaheap_stats_json(untouched, 0), 200u);
	EXPECT_EQ(untouched[0], 'X');

	// Capacity 1: just the NUL.
	char one[2] = {'X', 'X'};
	EXPECT_GT(numaheap_stats_json(one, 1), 200u);
	EXPECT_EQ(one[0], '\0');
	EXPECT_EQ(one[1], 'X');

	// A small buffer: truncated to cap - 1 bytes, NUL-terminated, no overrun,
	// and the return value says how much the whole object needs.
	for (size_t cap : {size_t(2), size_t(10), size_t(64), size_t(100), size_t(1000)}) {
		std::vector<char> b(cap + 16, '#');
		size_t r = numaheap_stats_json(b.data(), cap);
		EXPECT_GE(r, cap) << "truncated output reports the needed length, cap " << cap;
		EXPECT_EQ(strlen(b.data()), cap - 1) << "cap " << cap;
		for (size_t k = cap; k < b.size(); k++)
			ASSERT_EQ(b[k], '#') << "wrote past cap " << cap;
		// The prefix is the start of the full object (its first, constant keys).
		size_t same = std::min(cap - 1, (size_t)20);
		EXPECT_EQ(memcmp(b.data(), full.data(), same), 0) << "cap " << cap;
	}

	// A buffer of exactly the needed length + 1 holds all of it.
	size_t exact = numaheap_stats_json(nullptr, 0);
	std::vector<char> e(exact + 1, '#');
	size_t r = numaheap_stats_json(e.data(), exact + 1);
	// Counters may change between the two calls; if the length is the same it fits exactly.
	if (r == exact) {
		EXPECT_EQ(strlen(e.data()), exact);
	} else {
		EXPECT_EQ(strlen(e.data()), std::min(r, exact));
	}
}

// One counter of one of the statistics' objects ("large", "scavenger"...), read now.
static uint64_t stats_counter(const char *obj, const char *key)
{
	Json j;
	std::string s = stats_json();
	EXPECT_TRUE(JsonParser(s).parse(j));
	return num(j.get(obj)->get(key));
}

static uint64_t large_counter(const char *key) { return stats_counter("large", key); }

TEST(StatsJson, CountersFollowAllocations)
{
	auto large_allocs = [] { return large_counter("allocs"); };
	uint64_t before = large_allocs();
	std::vector<void *> v;
	for (int i = 0; i < 50; i++)
		v.push_back(malloc(100000 + i));
	uint64_t after = large_allocs();
	EXPECT_GE(after - before, 50u);
	EXPECT_LE(after - before, 60u);
	for (void *p : v)
		free(p);
}

// A field of the class that serves n bytes, in the statistics s.
static uint64_t class_field_of(const std::string &s, size_t n, const char *key)
{
	Json j;
	EXPECT_TRUE(JsonParser(s).parse(j));
	for (const Json &c : j.get("classes")->arr)
		if (num(c.get("size")) >= n)
			return num(c.get(key));
	ADD_FAILURE() << "no class for " << n << " bytes";
	return 0;
}

// The same, now.
static uint64_t class_field(size_t n, const char *key) { return class_field_of(stats_json(), n, key); }

// A class's allocation count is also heap profiling's sample clock on each
// P (mcache.c): the statistics take its intervals out, so every block
// counts once, sampled (a span of its own, a whole page) or not. Runs also
// as api.prof.* with NUMAHEAP_PROF=1 and a rate of 4 KiB.
TEST(StatsJson, ClassAllocationCountsAreExactUnderTheSampleClock)
{
	const size_t n = 176;
	std::vector<void *> v(20000);
	// Both snapshots taken before either is parsed: the parser allocates.
	std::string before = stats_json();
	for (auto &p : v)
		p = malloc(n);
	std::string after = stats_json();
	size_t sampled = 0;
	for (void *p : v) {
		ASSERT_NE(p, nullptr);
		sampled += malloc_usable_size(p) >= 4096;
	}
	EXPECT_EQ(class_field_of(after, n, "allocs") - class_field_of(before, n, "allocs") + sampled, v.size())
		<< sampled << " sampled";
	const char *prof = getenv("NUMAHEAP_PROF");
	if (prof && !strcmp(prof, "1"))
		EXPECT_GT(sampled, 100u) << "3.4 MB at one sample per 4 KiB: about 860";
	else
		EXPECT_EQ(sampled, 0u);
	for (void *p : v)
		free(p);
}

// 20,000 objects of 1,500 bytes (30 MB): far more than the caches hold, so
// most of them go back to their spans, and spans fall empty.
static void fill_and_free(std::vector<void *> &v)
{
	for (auto &p : v) {
		p = malloc(1500);
		ASSERT_NE(p, nullptr);
		memset(p, 7, 1500);
	}
	for (auto it = v.rbegin(); it != v.rend(); ++it)
		free(*it);
}

TEST(StatsJson, EmptySpansAreKeptForTheNextRefillsAndGivenBackByTrim)
{
	std::vector<void *> v(20000);
	fill_and_free(v);
	uint64_t kept = class_field(1500, "empty_spans");
	EXPECT_GT(kept, 0u) << "empty spans kept for the next refills";
	EXPECT_LE(kept, class_field(1500, "spans"));
	// 1 MiB worth per class and heap: spans of this class are at least a page.
	Json j;
	std::string s = stats_json();
	ASSERT_TRUE(JsonParser(s).parse(j));
	EXPECT_LE(kept * kPage, (uint64_t)j.get("nodes")->arr.size() << 20);
	// The next allocations take them back: all of the class's spans are in use.
	for (auto &p : v) {
		p = malloc(1500);
		ASSERT_NE(p, nullptr);
	}
	EXPECT_EQ(class_field(1500, "empty_spans"), 0u) << "the refills took the kept spans";
	for (auto it = v.rbegin(); it != v.rend(); ++it)
		free(*it);
	EXPECT_GT(class_field(1500, "empty_spans"), 0u);
	malloc_trim(0);
	EXPECT_EQ(class_field(1500, "empty_spans"), 0u) << "malloc_trim gives them back to the page heap";
}

TEST(StatsJson, EmptySpansGoBackWhenTheClassIsIdle)
{
	std::vector<void *> v(20000);
	fill_and_free(v);
	ASSERT_GT(class_field(1500, "empty_spans"), 0u);
	// The background thread gives them back once the class has taken
	// nothing from its central list for a pass (passes come at least once
	// a second). Nothing here allocates 1,500 bytes meanwhile.
	uint64_t kept = 0;
	for (int i = 0; i < 100; i++) {
		kept = class_field(1500, "empty_spans");
		if (kept == 0)
			break;
		usleep(100000);
	}
	EXPECT_EQ(kept, 0u) << "still kept after 10 s of idleness";
}

TEST(StatsJson, LargeSpanCacheServesARoundedSize)
{
	// 17 pages round up to 18: a freed 17-page object is the span a later
	// 18-page request takes back from the large-span cache, with a hit counted.
	auto cache_hits = [] { return large_counter("cache_hits"); };
	void *p = malloc(16 * kPage + 1);
	ASSERT_NE(p, nullptr);
	EXPECT_EQ(malloc_usable_size(p), 18 * kPage);
	memset(p, 0x5a, 16 * kPage + 1);
	uint64_t before = cache_hits();
	free(p);
	void *q = malloc(18 * kPage);
	ASSERT_NE(q, nullptr);
	EXPECT_EQ(q, p) << "the freed span should come back from the cache";
	EXPECT_EQ(cache_hits() - before, 1u);
	EXPECT_EQ(malloc_usable_size(q), 18 * kPage);
	// calloc from the cache zeroes what the last owner wrote.
	free(q);
	unsigned char *z = (unsigned char *)calloc(1, 17 * kPage + 100);
	ASSERT_NE(z, nullptr);
	EXPECT_TRUE(all_bytes(z, 17 * kPage + 100, 0));
	free(z);
}

TEST(StatsPrint, TextAndJsonToAFileDescriptor)
{
	char path[] = "/tmp/nh_stats_XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	numaheap_stats_print(fd, 1);
	off_t json_end = lseek(fd, 0, SEEK_CUR);
	numaheap_stats_print(fd, 0);
	off_t end = lseek(fd, 0, SEEK_CUR);
	close(fd);
	FILE *f = fopen(path, "r");
	ASSERT_NE(f, nullptr);
	std::string all;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		all.append(buf, n);
	fclose(f);
	unlink(path);
	ASSERT_EQ((off_t)all.size(), end);
	ASSERT_GT(json_end, 0);
	std::string json = all.substr(0, json_end);
	while (!json.empty() && (json.back() == '\n' || json.back() == ' '))
		json.pop_back();
	Json j;
	EXPECT_TRUE(JsonParser(json).parse(j)) << json;
	EXPECT_TRUE(j.has("totals"));
	std::string text = all.substr(json_end);
	EXPECT_GT(text.size(), 100u);
	EXPECT_NE(text.find("node"), std::string::npos) << text;
}

TEST(MallocStats, PrintsToStderr)
{
	::testing::internal::CaptureStderr();
	malloc_stats();
	std::string out = ::testing::internal::GetCapturedStderr();
	EXPECT_GT(out.size(), 100u);
	EXPECT_NE(out.find("node"), std::string::npos) << out;
}

// A thread with a cancellation request pending calls malloc_stats: the
// statistics must all be written and malloc_stats must return (glibc's is no
// cancellation point either, since 2.28); the request is acted on at the
// thread's next cancellation point. fd 2 goes to a pipe meanwhile.
static pthread_barrier_t cancel_gate;
static std::atomic<int> cancel_stats_returned{0};

static void *stats_with_cancel_pending(void *)
{
	pthread_barrier_wait(&cancel_gate); // not a cancellation point
	malloc_stats();
	cancel_stats_returned.store(1);
	pthread_testcancel();
	return nullptr;
}

TEST(MallocStats, IsNotACancellationPoint)
{
	int pipefd[2];
	ASSERT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
	fcntl(pipefd[0], F_SETPIPE_SZ, 1 << 20); // room for the whole text
	fflush(stderr);
	int saved = dup(2);
	ASSERT_GE(saved, 0);
	ASSERT_EQ(dup2(pipefd[1], 2), 2);
	ASSERT_EQ(pthread_barrier_init(&cancel_gate, nullptr, 2), 0);
	pthread_t t;
	ASSERT_EQ(pthread_create(&t, nullptr, stats_with_cancel_pending, nullptr), 0);
	ASSERT_EQ(pthread_cancel(t), 0);
	pthread_barrier_wait(&cancel_gate);
	void *rv = nullptr;
	ASSERT_EQ(pthread_join(t, &rv), 0);
	dup2(saved, 2);
	close(saved);
	close(pipefd[1]);
	pthread_barrier_destroy(&cancel_gate);
	std::string out;
	char buf[4096];
	ssize_t r;
	while ((r = read(pipefd[0], buf, sizeof buf)) > 0)
		out.append(buf, (size_t)r);
	close(pipefd[0]);
	EXPECT_EQ(rv, PTHREAD_CANCELED);
	EXPECT_EQ(cancel_stats_returned.load(), 1) << "the thread was cancelled inside malloc_stats";
	EXPECT_NE(out.find("node"), std::string::npos) << "malloc_stats wrote: [" << out << "]";
}

// ---- malloc_info -------------------------------------------------------------------------

// The count="..." of the <size> line whose class holds n-byte objects, summed
// over the heaps; -1 if there is none.
static long long malloc_info_count(const std::string &xml, unsigned n)
{
	long long sum = -1;
	for (size_t at = 0; (at = xml.find("<size from=\"", at)) != std::string::npos; at++) {
		unsigned from = 0, to = 0;
		unsigned long long total = 0, count = 0;
		if (sscanf(xml.c_str() + at, "<size from=\"%u\" to=\"%u\" total=\"%llu\" count=\"%llu\"/>", &from, &to,
			   &total, &count) != 4)
			return -2;
		if (from <= n && n <= to)
			sum = (sum < 0 ? 0 : sum) + (long long)count;
	}
	return sum;
}

static std::string malloc_info_xml()
{
	char *buf = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	EXPECT_NE(f, nullptr);
	EXPECT_EQ(malloc_info(0, f), 0);
	fclose(f);
	std::string s(buf, len);
	free(buf);
	return s;
}

TEST(MallocInfo, EachHeapCountsItsOwnObjects)
{
	const unsigned kSize = 200, kN = 3000;
	long long before = malloc_info_count(malloc_info_xml(), kSize);
	std::vector<void *> v;
	for (unsigned i = 0; i < kN; i++)
		v.push_back(malloc(kSize));
	std::string xml = malloc_info_xml();
	EXPECT_NE(xml.find("<heap nr=\""), std::string::npos);
	EXPECT_NE(xml.find("<sizes>"), std::string::npos);
	long long during = malloc_info_count(xml, kSize);
	// Objects in use are counted once, in the heap that holds them: the
	// heaps' counts add up to the allocations (with other tests' leftovers).
	EXPECT_GE(during - (before < 0 ? 0 : before), (long long)kN) << xml;
	EXPECT_LE(during - (before < 0 ? 0 : before), (long long)kN + 64) << xml;
	for (void *p : v)
		free(p);
	EXPECT_LE(malloc_info_count(malloc_info_xml(), kSize), (before < 0 ? 0 : before) + 64);
	errno = 0;
	EXPECT_EQ(malloc_info(1, stdout), -1) << "options other than 0";
	EXPECT_EQ(errno, EINVAL) << "as glibc";
}

// ---- mallinfo2 -----------------------------------------------------------------------

static void expect_consistent(const struct mallinfo2 &m)
{
	EXPECT_GT(m.arena, 0u);
	EXPECT_GE(m.arena, m.uordblks);
	EXPECT_EQ(m.fordblks, m.arena - m.uordblks);
	EXPECT_LE(m.hblkhd, m.uordblks);
	EXPECT_LE(m.keepcost, m.arena);
}

TEST(Mallinfo2, InUseBytesFollowAllocations)
{
	std::vector<void *> small, large; // their own storage is allocated before measuring
	small.reserve(20000);
	large.reserve(40);
	struct mallinfo2 m0 = mallinfo2();
	expect_consistent(m0);

	// Small objects: the in-use bytes grow by their usable sizes.
	size_t small_bytes = 0;
	for (int i = 0; i < 20000; i++) {
		void *p = malloc(16 + (i % 500));
		small_bytes += malloc_usable_size(p);
		small.push_back(p);
	}
	struct mallinfo2 m1 = mallinfo2();
	expect_consistent(m1);
	int64_t grew = (int64_t)m1.uordblks - (int64_t)m0.uordblks;
	EXPECT_GE(grew, (int64_t)small_bytes - (256 << 10)) << "allocated " << small_bytes;
	EXPECT_LE(grew, (int64_t)small_bytes + (1 << 20)) << "allocated " << small_bytes;
	EXPECT_GE(m1.arena, m0.arena);

	// Large objects: uordblks and hblkhd grow by the page-rounded sizes.
	size_t large_bytes = 0;
	for (int i = 0; i < 40; i++) {
		void *p = malloc(100000 * (i + 1));
		large_bytes += malloc_usable_size(p);
		large.push_back(p);
	}
	struct mallinfo2 m2 = mallinfo2();
	expect_consistent(m2);
	EXPECT_EQ(m2.hblkhd - m1.hblkhd, large_bytes);
	grew = (int64_t)m2.uordblks - (int64_t)m1.uordblks;
	EXPECT_GE(grew, (int64_t)large_bytes - (256 << 10));
	EXPECT_LE(grew, (int64_t)large_bytes + (1 << 20));

	// And shrink back when it is all freed.
	for (void *p : large)
		free(p);
	for (void *p : small)
		free(p);
	struct mallinfo2 m3 = mallinfo2();
	expect_consistent(m3);
	EXPECT_EQ(m3.hblkhd, m0.hblkhd);
	EXPECT_LE(m3.uordblks, m0.uordblks + (1 << 20));
}

TEST(Mallinfo2, OldMallinfoAgrees)
{
	struct mallinfo2 m2 = mallinfo2();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
	// Both read the same figures (clamped to int); the heap is small here.
	EXPECT_EQ((size_t)m.arena, std::min(m2.arena, (size_t)INT32_MAX));
	EXPECT_GE(m.uordblks, 0);
}

// ---- malloc_trim / numaheap_release ---------------------------------------------------

// malloc_trim and numaheap_release drain every CPU's cache (moving the
// calling thread onto each CPU that holds objects), then release. The test
// stays on one CPU all the same, so that a later call finds nothing the
// first could have missed.
TEST(MallocTrim, ReturnsOneAfterFreeingALargeHeap)
{
	PinnedToCurrentCpu pin;
	std::vector<void *> v;
	for (int i = 0; i < 64; i++) {
		void *p = malloc(1 << 20);
		ASSERT_NE(p, nullptr);
		memset(p, 0xAB, 1 << 20); // touch: the memory is really there
		v.push_back(p);
	}
	for (int i = 0; i < 20000; i++) {
		void *p = malloc(200);
		memset(p, 1, 200);
		v.push_back(p);
	}
	for (void *p : v)
		free(p);
	struct mallinfo2 before = mallinfo2();
	EXPECT_EQ(malloc_trim(0), 1) << "64 MiB of freed pages must be given back";
	struct mallinfo2 after = mallinfo2();
	EXPECT_GE(after.keepcost, before.keepcost + (32u << 20)) << "released bytes grow";
	expect_consistent(after);
	// Nothing left to give back now.
	EXPECT_EQ(numaheap_release(), 0u);
	EXPECT_EQ(malloc_trim(0), 0);
	// Released memory is reused and comes back zeroed or rewritten correctly.
	void *p = malloc(8 << 20);
	ASSERT_NE(p, nullptr);
	memset(p, 0x5a, 8 << 20);
	EXPECT_TRUE(all_bytes(p, 8 << 20, 0x5a));
	free(p);
	void *z = calloc(1, 8 << 20);
	ASSERT_NE(z, nullptr);
	EXPECT_TRUE(all_bytes(z, 8 << 20, 0));
	free(z);
}

// Objects cached by classes of up to 1 KiB, every cache.
static uint64_t cached_objects()
{
	std::string s = stats_json();
	Json j;
	JsonParser parser(s);
	EXPECT_TRUE(parser.parse(j));
	uint64_t n = 0;
	if (const Json *classes = j.get("classes"))
		for (const Json &c : classes->arr)
			if (num(c.get("size")) <= 1024)
				n += num(c.get("objects_cached"));
	return n;
}

// What a thread on another CPU freed sits in that CPU's cache, holding its
// spans' pages. malloc_trim from a thread pinned to one CPU drains it too
// (moving itself there and back: its mask is what it was), before the
// background thread would find that cache idle (NUMAHEAP_CACHE_IDLE, 2 s).
TEST(MallocTrim, DrainsOtherCpusCaches)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		GTEST_SKIP() << "one CPU";
	cpu_set_t saved, one;
	ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
	int me, them;
	if (!first_two_cpus(&me, &them))
		GTEST_SKIP() << "this process may use one CPU";
	CPU_ZERO(&one);
	CPU_SET(me, &one);
	ASSERT_EQ(pin_to_cpu(me), 0);
	std::thread t([&] {
		ASSERT_EQ(pin_to_cpu(them), 0);
		std::vector<void *> v;
		for (int i = 0; i < 20000; i++) {
			void *p = malloc(64 + i % 8 * 16);
			memset(p, 1, 64);
			v.push_back(p);
		}
		for (void *p : v)
			free(p);
	});
	t.join();
	uint64_t before = cached_objects();
	numaheap_release();
	uint64_t after = cached_objects();
	cpu_set_t now;
	ASSERT_EQ(sched_getaffinity(0, sizeof now, &now), 0);
	EXPECT_TRUE(CPU_EQUAL(&now, &one)) << "the calling thread's mask changed";
	sched_setaffinity(0, sizeof saved, &saved);
	bool percpu = stats_json().find("\"cpu_mode\":\"rseq\"") != std::string::npos;
	if (percpu) {
		EXPECT_GT(before, 1000u) << "the other CPU's cache held the freed objects";
	}
	EXPECT_EQ(after, 0u) << before << " objects cached before the release";
}

TEST(MallocTrim, EndsPreFaulting)
{
	// Growing back into released memory starts the background thread's
	// pre-faulting (NUMAHEAP_PREFAULT), which keeps 16 MiB of free pages
	// resident ahead of the program until the heap has stopped growing for
	// 20 ms. A malloc_trim right after the growth ends it: otherwise the
	// thread faults straight back in what the trim gave back.
	//
	// malloc_trim calls are paced (5% of the time, each charged 1 us per
	// 4 KiB it releases, a burst of 1 s): the first round releases with
	// numaheap_release, which is not, and the test first waits out what
	// the tests before it charged, so that its one malloc_trim of 64 MiB
	// gets its turn also in a slow (sanitizer) build. A paced call would
	// release nothing, and the test would see that, not pre-faulting.
	usleep(1100000);
	const size_t kBlock = 256 << 10, kN = 256; // 64 MiB in 256 KiB objects
	std::vector<void *> v(kN);
	for (int round = 0; round < 2; round++) {
		for (auto &p : v) {
			p = malloc(kBlock);
			ASSERT_NE(p, nullptr);
			memset(p, round + 1, kBlock);
		}
		for (void *p : v)
			free(p);
		if (round == 0)
			numaheap_release();
		else
			ASSERT_EQ(malloc_trim(0), 1) << "the trim was paced or released nothing";
	}
	usleep(100000); // the episode would have faulted its window back in by now
	// Pre-faulting faults in a whole huge page at a time: anything it did
	// shows as 2 MiB or more. Less can be other tests' leftovers, which the
	// background thread may drain from idle caches meanwhile (1.3 MiB once,
	// on a loaded machine).
	EXPECT_LT(numaheap_release(), (size_t)2 << 20) << "memory faulted back in after malloc_trim";
}

TEST(MallocTrim, ReleaseReportsBytes)
{
	void *p = malloc(16 << 20);
	ASSERT_NE(p, nullptr);
	memset(p, 1, 16 << 20);
	free(p);
	size_t released = numaheap_release();
	EXPECT_GE(released, (size_t)(16 << 20));
	// Whole OS pages: free pages of the heap, and OS pages inside spans
	// that only free slots cover (4 KiB ones on x86-64).
	EXPECT_EQ(released % (size_t)sysconf(_SC_PAGESIZE), 0u);
}

static uint64_t scavenger_field(const char *key) { return stats_counter("scavenger", key); }

// A program that calls malloc_trim all the time (stress-ng's malloc
// stressor: after one operation in eight) has the calls paced: they may
// take 5% of the time, and a call before its turn releases nothing and
// returns 0. numaheap_release is never paced, and once the program stops
// trimming for a while a call releases again.
TEST(MallocTrim, CallsThatComeTooOftenArePaced)
{
	// Earlier tests in this process may have spent the calls' budget (each
	// call is charged its time and 1 us per 4 KiB it released, twenty times
	// over, against a 1 s burst: a 64 MiB trim spends 0.33 s of it); so that
	// the first calls here have their turn, wait it back first.
	usleep(1500000);
	const uint64_t paced0 = scavenger_field("trims_paced");
	const uint64_t trims0 = scavenger_field("trims");
	unsigned calls = 0, released = 0;
	// Trims back to back: after their burst (50 ms of trimming), calls
	// must be turned away. A few MiB freed before each, so each has work.
	for (int i = 0; i < 200000 && scavenger_field("trims_paced") == paced0; i++) {
		void *p = malloc(4 << 20);
		ASSERT_NE(p, nullptr);
		memset(p, 1, 4 << 20);
		free(p);
		released += malloc_trim(0);
		calls++;
	}
	const uint64_t paced = scavenger_field("trims_paced") - paced0;
	ASSERT_GT(paced, 0u) << calls << " back-to-back malloc_trim calls, none paced";
	EXPECT_GT(released, 0u) << "the first calls release";
	EXPECT_EQ(scavenger_field("trims") - trims0 + paced, calls) << "every call either releases or is paced";
	// While paced: numaheap_release still releases.
	void *p = malloc(8 << 20);
	ASSERT_NE(p, nullptr);
	memset(p, 2, 8 << 20);
	free(p);
	EXPECT_GE(numaheap_release(), (size_t)(8 << 20)) << "numaheap_release is not paced";
	// After a pause of twenty times the last call's cost (well under 1 s
	// here: each call releases a few MiB), calls release again.
	usleep(1500000);
	p = malloc(8 << 20);
	ASSERT_NE(p, nullptr);
	memset(p, 3, 8 << 20);
	free(p);
	EXPECT_EQ(malloc_trim(0), 1) << "a call after a pause releases";
}

TEST(MallocTrim, CallocAfterTrimIsZeroed)
{
	// Runs that mix released pages (given back by malloc_trim) and dirty
	// pages (freed after the trim) must both come back zeroed from calloc.
	for (int r = 0; r < 6; r++) {
		size_t n = (size_t)(1 + r) << 20;
		char *a = (char *)malloc(n);
		char *b = (char *)malloc(n);
		ASSERT_NE(a, nullptr);
		ASSERT_NE(b, nullptr);
		memset(a, 0xAA, n);
		memset(b, 0xBB, n);
		free(a);
		malloc_trim(0);
		free(b);
		for (size_t m : {2 * n, n, n / 2 + 1}) {
			char *z = (char *)calloc(1, m);
			ASSERT_NE(z, nullptr);
			ASSERT_TRUE(all_bytes(z, m, 0)) << "calloc(" << m << ") after trim, round " << r;
			memset(z, 0xCC, m); // dirty again for the next size
			free(z);
		}
	}
}
