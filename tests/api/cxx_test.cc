// cxx_test.cc — the C++ operator new/delete family, served by numaheap's C
// definitions: plain, array, sized, aligned, nothrow, and the failure
// semantics (std::bad_alloc, new_handler, nullptr for nothrow).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <malloc.h>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "api_util.h"
#include "numaheap.h"

TEST(OperatorNew, PlainAndArrayComeFromNumaheap)
{
	for (size_t n : {size_t(0), size_t(1), size_t(17), size_t(1000), size_t(40000), size_t(1 << 20)}) {
		void *p = ::operator new(n);
		ASSERT_NE(p, nullptr);
		EXPECT_EQ(numaheap_node_of(p), 0) << "operator new(" << n << ")";
		EXPECT_TRUE(aligned_to(p, __STDCPP_DEFAULT_NEW_ALIGNMENT__ <= 16 && n > 8 ? 16 : 8));
		EXPECT_GE(malloc_usable_size(p), n);
		memset(p, 0x11, n);
		::operator delete(p);

		void *a = ::operator new[](n);
		ASSERT_NE(a, nullptr);
		EXPECT_EQ(numaheap_node_of(a), 0) << "operator new[](" << n << ")";
		memset(a, 0x22, n);
		::operator delete[](a);
	}
}

TEST(OperatorNew, ExpressionsAndContainers)
{
	int *i = new int(42);
	EXPECT_EQ(numaheap_node_of(i), 0);
	EXPECT_EQ(*i, 42);
	delete i;
	double *d = new double[1000]();
	EXPECT_EQ(numaheap_node_of(d), 0);
	for (int k = 0; k < 1000; k++)
		EXPECT_EQ(d[k], 0.0);
	delete[] d;
	std::vector<std::unique_ptr<std::string>> v;
	for (int k = 0; k < 2000; k++)
		v.push_back(std::make_unique<std::string>(k % 300, (char)('a' + k % 26)));
	EXPECT_EQ(numaheap_node_of(v.data()), 0);
	for (int k = 0; k < 2000; k++) {
		ASSERT_EQ(v[k]->size(), (size_t)(k % 300));
		EXPECT_EQ(numaheap_node_of(v[k].get()), 0);
	}
	std::map<int, std::string> m;
	for (int k = 0; k < 5000; k++)
		m[k] = std::to_string(k);
	for (int k = 0; k < 5000; k++)
		ASSERT_EQ(m[k], std::to_string(k));
}

TEST(OperatorNew, SizedDelete)
{
	for (size_t n : {size_t(1), size_t(48), size_t(4000), size_t(32768), size_t(50000), size_t(4 << 20)}) {
		void *p = ::operator new(n);
		memset(p, 1, n);
		::operator delete(p, n);
		void *a = ::operator new[](n);
		memset(a, 2, n);
		::operator delete[](a, n);
	}
	struct S {
		char c[200];
	};
	S *s = new S; // the compiler's sized delete for a complete type
	memset(s, 3, sizeof *s);
	delete s;
}

TEST(OperatorNew, AlignedForms)
{
	for (size_t a = 8; a <= (1u << 21); a *= 2)
		for (size_t n : {size_t(1), size_t(24), a, a + 1, size_t(5000), size_t(50000)}) {
			std::align_val_t al{a};
			void *p = ::operator new(n, al);
			ASSERT_NE(p, nullptr);
			EXPECT_TRUE(aligned_to(p, a)) << "new(" << n << ", align " << a << ") = " << p;
			EXPECT_EQ(numaheap_node_of(p), 0);
			memset(p, 0x33, n);
			::operator delete(p, al);

			void *q = ::operator new[](n, al);
			EXPECT_TRUE(aligned_to(q, a));
			memset(q, 0x44, n);
			::operator delete[](q, n, al); // sized + aligned

			void *r = ::operator new(n, al, std::nothrow);
			ASSERT_NE(r, nullptr);
			EXPECT_TRUE(aligned_to(r, a));
			::operator delete(r, al, std::nothrow);

			void *t = ::operator new[](n, al, std::nothrow);
			ASSERT_NE(t, nullptr);
			EXPECT_TRUE(aligned_to(t, a));
			::operator delete[](t, al, std::nothrow);

			void *u = ::operator new(n, al);
			::operator delete(u, n, al);
		}
	struct alignas(256) Over {
		char c[300];
	};
	Over *o = new Over;
	EXPECT_TRUE(aligned_to(o, 256));
	delete o;
	Over *arr = new Over[7];
	EXPECT_TRUE(aligned_to(arr, 256));
	delete[] arr;
}

TEST(OperatorNew, NothrowForms)
{
	void *p = ::operator new(100, std::nothrow);
	ASSERT_NE(p, nullptr);
	EXPECT_EQ(numaheap_node_of(p), 0);
	::operator delete(p, std::nothrow);
	void *a = ::operator new[](100, std::nothrow);
	ASSERT_NE(a, nullptr);
	::operator delete[](a, std::nothrow);
	int *i = new (std::nothrow) int[50];
	ASSERT_NE(i, nullptr);
	delete[] i;
}

TEST(OperatorNew, ImpossibleSizeThrowsBadAlloc)
{
	EXPECT_THROW(escape(::operator new(opaque(SIZE_MAX))), std::bad_alloc);
	EXPECT_THROW(escape(::operator new[](opaque(1ull << 50))), std::bad_alloc);
	EXPECT_THROW(::operator new(opaque(SIZE_MAX), std::align_val_t{64}), std::bad_alloc);
	EXPECT_THROW(::operator new[](opaque(1ull << 50), std::align_val_t{4096}), std::bad_alloc);
	size_t huge = opaque(SIZE_MAX / 4);
	EXPECT_THROW({ char *c = new char[huge]; escape(c); delete[] c; }, std::bad_alloc);
	// The heap still works.
	int *i = new int(5);
	EXPECT_EQ(*i, 5);
	delete i;
}

TEST(OperatorNew, NothrowReturnsNullForImpossibleSize)
{
	EXPECT_EQ(::operator new(opaque(SIZE_MAX), std::nothrow), nullptr);
	EXPECT_EQ(::operator new[](opaque(1ull << 50), std::nothrow), nullptr);
	EXPECT_EQ(::operator new(opaque(SIZE_MAX), std::align_val_t{128}, std::nothrow), nullptr);
	EXPECT_EQ(::operator new[](opaque(SIZE_MAX), std::align_val_t{128}, std::nothrow), nullptr);
	size_t huge = opaque(SIZE_MAX / 4);
	char *c = new (std::nothrow) char[huge];
	EXPECT_EQ(c, nullptr);
}

static int g_handler_calls;
static void handler_gives_up()
{
	g_handler_calls++;
	std::set_new_handler(nullptr); // the next failure throws
}

TEST(OperatorNew, NewHandlerIsCalledBeforeThrowing)
{
	g_handler_calls = 0;
	std::set_new_handler(handler_gives_up);
	EXPECT_THROW(escape(::operator new(opaque(SIZE_MAX))), std::bad_alloc);
	EXPECT_EQ(g_handler_calls, 1);
	EXPECT_EQ(std::get_new_handler(), nullptr);

	g_handler_calls = 0;
	std::set_new_handler(handler_gives_up);
	EXPECT_THROW(::operator new(opaque(SIZE_MAX), std::align_val_t{256}), std::bad_alloc);
	EXPECT_EQ(g_handler_calls, 1);

	// nothrow new calls the handler too, then returns nullptr.
	g_handler_calls = 0;
	std::set_new_handler(handler_gives_up);
	EXPECT_EQ(::operator new(opaque(SIZE_MAX), std::nothrow), nullptr);
	EXPECT_EQ(g_handler_calls, 1);
	std::set_new_handler(nullptr);
}

struct HandlerThrows {};
static void handler_throws() { throw HandlerThrows(); }

TEST(OperatorNew, NewHandlerMayThrowItsOwnException)
{
	std::set_new_handler(handler_throws);
	EXPECT_THROW(escape(::operator new(opaque(SIZE_MAX))), HandlerThrows);
	std::set_new_handler(nullptr);
}

static void *g_reserve;
static void handler_frees_reserve()
{
	// A handler that makes room by freeing a reserve, as programs do.
	free(g_reserve);
	g_reserve = nullptr;
	g_handler_calls++;
	std::set_new_handler(nullptr);
}

TEST(OperatorNew, NewHandlerRunsOnceAndRetries)
{
	// The retry after the handler fails again (the size is impossible), so the
	// handler runs exactly once before bad_alloc: no infinite loop.
	g_reserve = malloc(1000);
	g_handler_calls = 0;
	std::set_new_handler(handler_frees_reserve);
	EXPECT_THROW(escape(::operator new[](opaque(SIZE_MAX))), std::bad_alloc);
	EXPECT_EQ(g_handler_calls, 1);
	EXPECT_EQ(g_reserve, nullptr);
}
