/*
 * namespaces.c — unshare and setns for a process numaheap made
 * multi-threaded.
 *
 * The kernel refuses some calls unless the process has one thread:
 * unshare(CLONE_NEWUSER) (and CLONE_THREAD, CLONE_SIGHAND, CLONE_VM), and
 * setns into a user namespace or a mount namespace (whose fs_struct the
 * threads share), with EINVAL. numaheap's background thread starts at the
 * first heap growth, so `unshare --user` and `nsenter` failed under it, as
 * would sandboxes (bubblewrap, rootless containers) that unshare a user
 * namespace early. These wrappers stop the background thread first and
 * wait until it is gone (scavenger_thread_stop), then make the system
 * call; the next slow path starts the thread again. A program with
 * threads of its own gets the kernel's EINVAL, as it would without
 * numaheap.
 *
 * Owns nothing. Locking: none held; scavenger_thread_stop joins the
 * thread. Not in the fuzz and TSan builds (NH_PREFIX), which replace
 * nothing of the C library.
 */
#define _GNU_SOURCE 1
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "scavenger.h"

#ifndef NH_PREFIX

/* The flags that need a process of one thread. */
#define NH_SOLO_UNSHARE (CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)

NH_API int unshare(int flags)
{
	if (flags & NH_SOLO_UNSHARE)
		scavenger_thread_stop();
	return (int)syscall(SYS_unshare, flags);
}

/* Any namespace type: nstype 0 (whatever fd is) or a pidfd's set of them
 * may name a user or mount namespace. */
NH_API int setns(int fd, int nstype)
{
	scavenger_thread_stop();
	return (int)syscall(SYS_setns, fd, nstype);
}

#endif
