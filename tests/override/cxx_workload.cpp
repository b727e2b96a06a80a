// cxx_workload.cpp — a deterministic C++ program for the override tests.
//
// It exercises what a C++ program asks of operator new/delete: STL
// containers, std::string, shared_ptr/weak_ptr, objects freed by another
// thread, aligned new of over-aligned types (C++17), exceptions carrying
// heap-allocated strings, std::bad_alloc from an impossible new[], nothrow
// new, and a new_handler. The output is the same whatever malloc serves it;
// run it with and without LD_PRELOAD=libnumaheap.so and compare.
//
// With NH_EXPECT_NUMAHEAP=1 in the environment it also checks, without
// printing anything, that numaheap is the allocator in use: its
// numaheap_node_of() must be found (dlsym) and must claim the memory of
// new, new[] and aligned new. Exit status: 0 ok, 1 a check failed.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <dlfcn.h>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <queue>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

static int failures = 0;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			std::fprintf(stderr, "cxx_workload: %s:%d: check failed: %s\n", \
				     __FILE__, __LINE__, #cond);                     \
			failures++;                                                  \
		}                                                                    \
	} while (0)

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h;
}

static uint64_t hash_str(const std::string &s)
{
	uint64_t h = 1469598103934665603ULL;
	for (unsigned char c : s)
		h = (h ^ c) * 1099511628211ULL;
	return h;
}

// ---- numaheap detection (only with NH_EXPECT_NUMAHEAP=1) -------------------
typedef int (*node_of_fn)(const void *);
static node_of_fn nh_node_of = nullptr;
static bool expect_numaheap = false;

static void expect_ours(const void *p, const char *what)
{
	if (!expect_numaheap)
		return;
	if (!nh_node_of || nh_node_of(p) < 0) {
		std::fprintf(stderr, "cxx_workload: %s (%p) was not allocated by numaheap\n", what, p);
		failures++;
	}
}

// ---- STL containers and strings -------------------------------------------------
static void containers()
{
	std::vector<std::string> words;
	for (int i = 0; i < 200000; i++) {
		std::string s = "w" + std::to_string((i * 7919) % 100003);
		if (i % 3 == 0)
			s += std::string(i % 97, 'x'); // some beyond the SSO buffer
		words.push_back(std::move(s));
	}
	std::sort(words.begin(), words.end());
	words.erase(std::unique(words.begin(), words.end()), words.end());

	std::map<std::string, int> m;
	std::unordered_map<std::string, std::vector<int>> um;
	for (size_t i = 0; i < words.size(); i++) {
		m[words[i]] = (int)i;
		um[words[i].substr(0, 4)].push_back((int)i);
	}
	for (size_t i = 0; i < words.size(); i += 2)
		m.erase(words[i]);

	std::list<std::pair<int, std::string>> lst;
	std::deque<int> dq;
	std::set<int> st;
	std::unordered_set<long> us;
	for (int i = 0; i < 100000; i++) {
		lst.emplace_back(i, std::to_string(i));
		if (i % 2)
			dq.push_front(i);
		else
			dq.push_back(i);
		st.insert((i * 31) % 50021);
		us.insert((long)i * i);
	}
	lst.remove_if([](const std::pair<int, std::string> &p) { return p.first % 3 == 0; });
	std::priority_queue<int> pq(dq.begin(), dq.end());
	long pqsum = 0;
	for (int i = 0; i < 1000; i++) {
		pqsum += pq.top();
		pq.pop();
	}

	// Growing and shrinking vectors of vectors (realloc-like patterns).
	std::vector<std::vector<double>> vv(1000);
	for (int r = 0; r < 20; r++)
		for (size_t i = 0; i < vv.size(); i++) {
			vv[i].resize((i * 37 + r * 11) % 300);
			std::fill(vv[i].begin(), vv[i].end(), 0.5 * r);
			if (r % 5 == 4)
				vv[i].shrink_to_fit();
		}
	double vsum = 0;
	for (auto &v : vv)
		vsum = std::accumulate(v.begin(), v.end(), vsum);

	std::ostringstream os;
	for (auto it = m.begin(); it != m.end() && std::distance(m.begin(), it) < 50; ++it)
		os << it->first << '=' << it->second << ';';
	std::string big = os.str();
	for (int i = 0; i < 12; i++)
		big += big.substr(0, 4096);

	uint64_t h = 0;
	for (auto &kv : m)
		h = mix(h, hash_str(kv.first) + kv.second);
	size_t umtotal = 0;
	for (auto &kv : um)
		umtotal += kv.second.size();

	std::printf("containers: words=%zu map=%zu um=%zu/%zu list=%zu deque=%zu set=%zu uset=%zu\n",
		    words.size(), m.size(), um.size(), umtotal, lst.size(), dq.size(), st.size(), us.size());
	std::printf("containers: pqsum=%ld vsum=%.1f big=%zu hash=%016llx\n", pqsum, vsum, big.size(),
		    (unsigned long long)h);

	expect_ours(words.data(), "vector storage");
	expect_ours(big.data(), "std::string storage");
}

// ---- shared_ptr, weak_ptr, polymorphic objects -------------------------------------
struct Shape {
	virtual ~Shape() = default;
	virtual double area() const = 0;
	std::string name;
};
struct Rect : Shape {
	double w, h;
	Rect(double a, double b) : w(a), h(b) { name = "rect"; }
	double area() const override { return w * h; }
};
struct Circle : Shape {
	double r;
	explicit Circle(double a) : r(a) { name = "circle-with-a-longer-name"; }
	double area() const override { return 3.0 * r * r; }
};
struct TreeNode {
	int v;
	std::vector<std::shared_ptr<TreeNode>> kids;
	std::weak_ptr<TreeNode> parent;
};

static void smart_pointers()
{
	std::vector<std::shared_ptr<Shape>> shapes;
	for (int i = 0; i < 100000; i++) {
		if (i % 2)
			shapes.push_back(std::make_shared<Rect>(i % 10, i % 7));
		else
			shapes.push_back(std::shared_ptr<Shape>(new Circle(i % 5)));
	}
	std::vector<std::shared_ptr<Shape>> copy(shapes.begin(), shapes.begin() + 50000);
	shapes.erase(shapes.begin(), shapes.begin() + 25000);
	double area = 0;
	long uses = 0;
	for (auto &s : shapes) {
		area += s->area();
		uses += s.use_count();
	}

	auto root = std::make_shared<TreeNode>();
	root->v = 0;
	std::vector<std::shared_ptr<TreeNode>> frontier{root};
	int made = 1;
	while (made < 50000) {
		std::vector<std::shared_ptr<TreeNode>> next;
		for (auto &n : frontier)
			for (int k = 0; k < 3 && made < 50000; k++) {
				auto c = std::make_shared<TreeNode>();
				c->v = made++;
				c->parent = n;
				n->kids.push_back(c);
				next.push_back(c);
			}
		frontier.swap(next);
	}
	long depth = 0;
	for (auto p = frontier.back(); p; p = p->parent.lock())
		depth++;
	std::weak_ptr<TreeNode> w = frontier.front();
	frontier.clear();
	bool alive = !w.expired();
	root.reset(); // frees the whole tree
	bool dead = w.expired();
	std::unique_ptr<int[]> arr(new int[12345]());
	expect_ours(arr.get(), "new int[]");
	std::printf("smart: shapes=%zu area=%.0f uses=%ld depth=%ld alive=%d dead=%d arr0=%d\n", shapes.size(),
		    area, uses, depth, alive, dead, arr[0]);
}

// ---- threads: allocate here, free there -----------------------------------------------
static void threads()
{
	const int nthreads = 4, per = 50000;
	std::mutex mu;
	std::condition_variable cv;
	std::deque<std::vector<std::string> *> handoff;
	bool done = false;
	std::atomic<long> produced{0}, consumed{0};

	std::thread consumer([&] {
		for (;;) {
			std::unique_lock<std::mutex> lk(mu);
			cv.wait(lk, [&] { return done || !handoff.empty(); });
			if (handoff.empty() && done)
				return;
			auto *v = handoff.front();
			handoff.pop_front();
			lk.unlock();
			for (auto &s : *v)
				consumed += (long)s.size();
			delete v; // freed on a thread other than the one that allocated
		}
	});
	std::vector<std::thread> producers;
	std::vector<uint64_t> hashes(nthreads);
	for (int t = 0; t < nthreads; t++)
		producers.emplace_back([&, t] {
			uint64_t h = 0;
			std::vector<std::unique_ptr<char[]>> keep;
			for (int i = 0; i < per; i++) {
				auto *v = new std::vector<std::string>();
				for (int k = 0; k < 1 + i % 5; k++) {
					v->push_back(std::to_string(t) + ":" + std::to_string(i) + std::string(k * 9, 'k'));
					produced += (long)v->back().size();
				}
				h = mix(h, hash_str(v->front()));
				{
					std::lock_guard<std::mutex> lk(mu);
					handoff.push_back(v);
				}
				cv.notify_one();
				keep.emplace_back(new char[16 + (i % 200) * 8]);
				if (keep.size() > 64)
					keep.erase(keep.begin(), keep.begin() + 32);
			}
			hashes[t] = h;
		});
	for (auto &th : producers)
		th.join();
	{
		std::lock_guard<std::mutex> lk(mu);
		done = true;
	}
	cv.notify_all();
	consumer.join();

	// Short-lived threads that each allocate and exit (thread cache teardown).
	std::vector<long> sums(32);
	for (int round = 0; round < 4; round++) {
		std::vector<std::thread> ts;
		for (int t = 0; t < 8; t++)
			ts.emplace_back([&sums, round, t] {
				std::map<int, std::string> m;
				for (int i = 0; i < 2000; i++)
					m[i] = std::string(i % 50, 'a' + t);
				long s = 0;
				for (auto &kv : m)
					s += (long)kv.second.size();
				sums[round * 8 + t] = s;
			});
		for (auto &th : ts)
			th.join();
	}
	uint64_t h = 0;
	for (auto x : hashes)
		h = mix(h, x);
	std::printf("threads: produced=%ld consumed=%ld hash=%016llx shortlived=%ld\n", produced.load(),
		    consumed.load(), (unsigned long long)h, std::accumulate(sums.begin(), sums.end(), 0L));
}

// ---- over-aligned types ------------------------------------------------------------------
struct alignas(64) Line {
	char b[64];
};
struct alignas(256) Big256 {
	double d[40];
};
struct alignas(4096) Page {
	char b[100];
};
struct alignas(65536) Huge64k {
	int x;
};

static void aligned()
{
	int bad = 0;
	std::vector<Line *> lines;
	for (int i = 0; i < 10000; i++) {
		Line *l = new Line();
		bad += ((uintptr_t)l % 64) != 0;
		l->b[0] = (char)i;
		lines.push_back(l);
	}
	expect_ours(lines[0], "new Line (alignas 64)");
	for (auto *l : lines)
		delete l;
	for (int i = 0; i < 1000; i++) {
		Big256 *b = new Big256[1 + i % 7];
		bad += ((uintptr_t)b % 256) != 0;
		b[0].d[0] = i;
		delete[] b;
		Page *p = new Page;
		bad += ((uintptr_t)p % 4096) != 0;
		p->b[99] = 1;
		if (i == 0)
			expect_ours(p, "new Page (alignas 4096)");
		delete p;
	}
	for (int i = 0; i < 50; i++) {
		Huge64k *h = new Huge64k[2];
		bad += ((uintptr_t)h % 65536) != 0;
		h[1].x = i;
		delete[] h;
	}
	// A vector of over-aligned elements uses aligned new through std::allocator.
	std::vector<Line> vl(3000);
	bad += ((uintptr_t)vl.data() % 64) != 0;
	Line *nt = new (std::nothrow) Line;
	bad += nt == nullptr || ((uintptr_t)nt % 64) != 0;
	delete nt;
	CHECK(bad == 0);
	std::printf("aligned: misaligned=%d\n", bad);
}

// ---- exceptions and allocation failure -------------------------------------------------
static int handler_calls = 0;
static void my_handler()
{
	handler_calls++;
	std::set_new_handler(nullptr); // next failure throws
}

static void exceptions()
{
	long caught = 0, msglen = 0;
	for (int i = 0; i < 20000; i++) {
		try {
			if (i % 2)
				throw std::runtime_error("error number " + std::to_string(i) + std::string(i % 64, '!'));
			std::vector<int> v(4);
			(void)v.at(10 + i % 5);
		} catch (const std::out_of_range &e) {
			caught++;
			msglen += (long)std::strlen(e.what()) > 0;
		} catch (const std::exception &e) {
			caught++;
			msglen += (long)std::strlen(e.what());
		}
	}

	// Impossible sizes: std::bad_alloc, never a crash or a NULL.
	volatile size_t huge = SIZE_MAX / 2;
	int bad_alloc = 0;
	try {
		char *p = new char[huge];
		p[0] = 1;
		std::printf("new char[SIZE_MAX/2] returned non-NULL?\n");
		delete[] p;
	} catch (const std::bad_alloc &) {
		bad_alloc++;
	}
	try {
		std::vector<long> v;
		v.reserve(v.max_size() / 2 + 1);
	} catch (const std::bad_alloc &) {
		bad_alloc++;
	} catch (const std::length_error &) {
		bad_alloc++;
	}
	try {
		auto *q = new Page[huge / sizeof(Page) / 2];
		q[0].b[0] = 1;
		delete[] q;
	} catch (const std::bad_alloc &) {
		bad_alloc++;
	}
	char *n1 = new (std::nothrow) char[huge];
	int nothrow_null = n1 == nullptr;
	delete[] n1;

	// The new_handler is called before bad_alloc is thrown.
	std::set_new_handler(my_handler);
	try {
		char *p = new char[huge];
		delete[] p;
	} catch (const std::bad_alloc &) {
		bad_alloc++;
	}
	std::set_new_handler(nullptr);
	CHECK(bad_alloc == 4);
	CHECK(nothrow_null == 1);
	CHECK(handler_calls == 1);
	std::printf("exceptions: caught=%ld msglen=%ld bad_alloc=%d nothrow_null=%d handler_calls=%d\n", caught,
		    msglen, bad_alloc, nothrow_null, handler_calls);
}

int main()
{
	const char *e = std::getenv("NH_EXPECT_NUMAHEAP");
	expect_numaheap = e && std::strcmp(e, "1") == 0;
	if (expect_numaheap) {
		nh_node_of = (node_of_fn)dlsym(RTLD_DEFAULT, "numaheap_node_of");
		if (!nh_node_of) {
			std::fprintf(stderr, "cxx_workload: numaheap_node_of not found: numaheap is not loaded\n");
			return 1;
		}
		int *p = new int(1);
		expect_ours(p, "new int");
		delete p;
	}
	containers();
	smart_pointers();
	threads();
	aligned();
	exceptions();
	if (failures) {
		std::fprintf(stderr, "cxx_workload: %d check(s) failed\n", failures);
		return 1;
	}
	std::printf("cxx_workload: ok\n");
	return 0;
}
