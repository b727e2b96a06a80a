/*
 * cxx.c — the C++ operator new and delete family, exported from C.
 *
 * A C++ program that loads numaheap (linked or preloaded) gets these
 * definitions instead of libstdc++'s, so every C++ allocation goes through
 * the same heap: they call api.c's nh_malloc, nh_posix_memalign and nh_free
 * directly. The symbols are the Itanium C++ ABI's mangled names; being C,
 * they need no C++ runtime from numaheap.
 *
 * Failure semantics are the standard's: a throwing new that cannot allocate
 * calls the installed std::new_handler and retries, and with no handler
 * throws std::bad_alloc; the nothrow forms return NULL. Both come from the
 * program's own libstdc++ through weak references, which are always there
 * in a C++ program (the only kind that calls these). The exception unwinds
 * through this file's frames, so it is compiled with -fexceptions.
 */

#include "report.h"
#include "api.h"

#include <errno.h>

#ifndef NH_PREFIX /* a prefixed build leaves operator new alone */

typedef void (*new_handler_t)(void);
/* std::get_new_handler() and std::__throw_bad_alloc() from libstdc++. */
extern new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

/* Returns NULL only for nothrow; otherwise allocates, or throws, or aborts. */
NH_NOINLINE static void *new_failed(size_t n, size_t align, bool nothrow)
{
	for (;;) {
		new_handler_t h = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
		if (!h) {
			if (nothrow)
				return NULL;
			if (_ZSt17__throw_bad_allocv)
				_ZSt17__throw_bad_allocv();
			nh_fatal("operator new(%zu): out of memory and no C++ runtime to throw std::bad_alloc", n);
		}
		h(); /* may free memory, throw, or abort */
		void *p = NULL;
		if (align <= 16)
			p = nh_malloc(n);
		else if (nh_posix_memalign(&p, align, n) != 0)
			p = NULL;
		if (p)
			return p;
	}
}

static inline void *new_impl(size_t n, bool nothrow)
{
	void *p = nh_malloc(n);
	if (NH_LIKELY(p != NULL))
		return p;
	return new_failed(n, 0, nothrow);
}

static inline void *new_aligned(size_t n, size_t align, bool nothrow)
{
	void *p = NULL;
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (NH_LIKELY(nh_posix_memalign(&p, align, n) == 0))
		return p;
	return new_failed(n, align, nothrow);
}

/* operator new(size_t), new[](size_t) */
NH_API void *_Znwm(size_t n) { return new_impl(n, false); }
NH_API void *_Znam(size_t n) { return new_impl(n, false); }
/* nothrow */
NH_API void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return new_impl(n, true); }
NH_API void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return new_impl(n, true); }
/* aligned (C++17) */
NH_API void *_ZnwmSt11align_val_t(size_t n, size_t a) { return new_aligned(n, a, false); }
NH_API void *_ZnamSt11align_val_t(size_t n, size_t a) { return new_aligned(n, a, false); }
NH_API void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *nt)
{
	(void)nt;
	return new_aligned(n, a, true);
}
NH_API void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *nt)
{
	(void)nt;
	return new_aligned(n, a, true);
}

/* operator delete: plain, array, sized, aligned, nothrow. */
NH_API void _ZdlPv(void *p) { nh_free(p); }
NH_API void _ZdaPv(void *p) { nh_free(p); }
NH_API void _ZdlPvm(void *p, size_t n) { (void)n; nh_free(p); }
NH_API void _ZdaPvm(void *p, size_t n) { (void)n; nh_free(p); }
NH_API void _ZdlPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; nh_free(p); }
NH_API void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; nh_free(p); }
NH_API void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; nh_free(p); }
NH_API void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; nh_free(p); }
NH_API void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; nh_free(p); }
NH_API void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; nh_free(p); }
NH_API void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *nt)
{
	(void)a;
	(void)nt;
	nh_free(p);
}
NH_API void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *nt)
{
	(void)a;
	(void)nt;
	nh_free(p);
}

#endif /* NH_PREFIX */
