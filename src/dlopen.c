/*
 * dlopen.c — dlopen without RTLD_DEEPBIND: libnumaheap.so's dlopen, in
 * front of the C library's (the shared library only; the static one
 * leaves dlopen alone).
 *
 * A library opened with RTLD_DEEPBIND looks its symbols up in itself and
 * its own dependencies before the global scope, where a preloaded (or
 * linked) numaheap is: its malloc and free are the C library's. Blocks
 * then cross between two heaps, and the first free of one by the other
 * aborts ("free(): invalid pointer" from glibc, "invalid free" from
 * numaheap). Debian's php-cli did so at start-up (its extensions are
 * opened with the flag; pdo.so frees a block the program allocated), as
 * it does under jemalloc, tcmalloc, mimalloc and snmalloc (php-src issue
 * 10670). glibc 2.34 removed __malloc_hook and __free_hook, through which
 * some allocators used to reach such libraries.
 *
 * With NUMAHEAP_DEEPBIND=strip (the default) dlopen clears the flag, and
 * the library binds malloc to numaheap as every other object does; its
 * other symbols then also resolve in the global scope first, as without
 * the flag (what the flag was for: a plugin whose names clash with the
 * program's). NUMAHEAP_DEEPBIND=keep passes it on.
 *
 * dlopen is caller-sensitive: glibc reads its return address to find the
 * calling object, whose namespace it opens in and whose RUNPATH it
 * searches. So the entry is a tail jump written in assembly (arch.h,
 * NH_DLOPEN_STUB), which leaves the program's return address where glibc
 * looks for it; a C wrapper would make numaheap the caller, or not,
 * depending on the compiler. This file finds the next dlopen.
 *
 * Owns: nh_dlopen_next (the C library's dlopen, found by the first call)
 * and nh_dlopen_mask (the bits of mode kept).
 * Locking: none. Threads that resolve at once store the same values.
 * The mask is stored before the pointer (release); a stub that reads the
 * pointer set may still read the mask's initial value (keep) on a weakly
 * ordered CPU, for a dlopen that races the very first one.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>

#include "arch.h"
#include "internal.h"
#include "alloc.h"
#include "options.h"
#include "report.h"

enum { DEEPBIND_STRIP = 0, DEEPBIND_KEEP = 1 };

void *nh_dlopen_next;
int nh_dlopen_mask = ~0;

/* Called by the stub while nh_dlopen_next is NULL: by a program's dlopen,
 * never from inside the allocator, so dlsym may allocate. */
void *nh_dlopen_resolve(void);
void *nh_dlopen_resolve(void)
{
	nh_ensure_init(); /* NUMAHEAP_DEEPBIND is read with the other options */
	void *next = dlsym(RTLD_NEXT, "dlopen");
	if (!next) {
		nh_warn("cannot find the C library's dlopen (dlsym: %s); dlopen fails", dlerror());
		return NULL;
	}
	nh_dlopen_mask = NH_OPTION(DEEPBIND) == DEEPBIND_STRIP ? ~RTLD_DEEPBIND : ~0;
	__atomic_store_n(&nh_dlopen_next, next, __ATOMIC_RELEASE);
	return next;
}

__asm__(NH_DLOPEN_STUB);
