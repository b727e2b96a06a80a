/*
 * setxid.c — setuid and the other credential calls with numaheap's
 * background thread out of the way (the shared library only).
 *
 * glibc changes the credentials of every thread of a process (the kernel
 * changes only the caller's) by signalling each of them, but only when it
 * knows the process has more than one: __libc_single_threaded. numaheap
 * leaves that flag set when its background thread is the only other one
 * (os/linux.c, so that fork stays async-signal-safe there), so a program
 * that dropped root with setgid and setuid left the background thread
 * running as root (its /proc/self/task/N/status said uid 0), with the
 * statistics and profile files it writes opened as root. These wrappers
 * stop the thread and wait until it is gone (scavenger_thread_stop), then
 * call the C library's function; the thread that the next slow path starts
 * is created by a thread with the new credentials and has them.
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
#include "scavenger.h"

static void *next_fn(void **cache, const char *name)
{
	void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(cache, f, __ATOMIC_RELEASE);
	}
	return f;
}

/* int name params: the background thread stopped, then the C library's. */
#define NH_SETXID(name, params, args)                                                                  \
	NH_API int name params                                                                         \
	{                                                                                              \
		static void *next;                                                                     \
		int (*f) params = (int (*) params)next_fn(&next, #name);                               \
		scavenger_thread_stop();                                                               \
		if (!f) {                                                                              \
			errno = ENOSYS;                                                                \
			return -1;                                                                     \
		}                                                                                      \
		return f args;                                                                         \
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
