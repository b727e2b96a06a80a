/*
 * setxid.c — setuid and the other credential calls reaching numaheap's
 * background thread too (the shared library only).
 *
 * glibc changes the credentials of every thread of a process (the kernel
 * changes only the caller's) by signalling each of them, but only when it
 * knows the process has more than one: __libc_single_threaded. numaheap
 * leaves that flag set when its background thread is the only other one
 * (os/linux.c, so that fork stays async-signal-safe there), so a program
 * that dropped root with setgid and setuid left the background thread
 * running as root (its /proc/self/task/N/status said uid 0), with the
 * statistics and profile files it writes opened as root. These wrappers
 * clear the flag for the call (os_setxid_begin), so that glibc changes
 * every thread's credentials, the background thread's included, the way
 * it does in a program with threads of its own, then set it back. (They
 * used to stop the thread and let the next slow path start another: a
 * server that switches its effective uid for every request, as file
 * servers do, paid a thread's exit and start, and its io_uring ring's,
 * each time.)
 *
 * The C library's functions are found with dlsym(RTLD_NEXT) on first use,
 * by a call of the program's (never from inside the allocator, so dlsym
 * may allocate). Not in the static library: a fully static program has no
 * next definition to find.
 *
 * Owns: the C library's functions' addresses. Locking: none; threads that
 * look one up at once store the same address.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <sys/types.h>
#include <unistd.h>

#include "internal.h"
#include "os/os.h"

static void *next_fn(void **cache, const char *name)
{
	void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(cache, f, __ATOMIC_RELEASE);
	}
	return f;
}

/* int name params: the C library's, with glibc told of every thread. */
#define NH_SETXID(name, params, args)                                                                  \
	NH_API int name params                                                                         \
	{                                                                                              \
		static void *next;                                                                     \
		int (*f) params = (int (*) params)next_fn(&next, #name);                               \
		if (!f) {                                                                              \
			errno = ENOSYS;                                                                \
			return -1;                                                                     \
		}                                                                                      \
		bool cleared = os_setxid_begin();                                                      \
		int ret = f args;                                                                      \
		os_setxid_end(cleared);                                                                \
		return ret;                                                                            \
	}

NH_SETXID(setuid, (uid_t u), (u))
NH_SETXID(setgid, (gid_t g), (g))
NH_SETXID(seteuid, (uid_t u), (u))
NH_SETXID(setegid, (gid_t g), (g))
NH_SETXID(setreuid, (uid_t r, uid_t e), (r, e))
NH_SETXID(setregid, (gid_t r, gid_t e), (r, e))
NH_SETXID(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
NH_SETXID(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
NH_SETXID(setgroups, (size_t n, const gid_t *list), (n, list))
NH_SETXID(initgroups, (const char *user, gid_t group), (user, group))
