/*
 * seccomp_filter.h — a seccomp filter for the tests that play a sandbox
 * (hardening/fault_test.cc and fault_probe.cc, vm/seccomp_vm_check.c).
 * The calls in kill[] kill the process (SIGSYS, what systemd's filters do
 * by default), those in deny[] fail with deny_errno, and then every other
 * call is allowed, or, with allow non-NULL, only those in allow[] are and
 * the rest kill. Installed on the calling thread with no_new_privs (both
 * inherited across fork and exec); false if the kernel refuses or the
 * lists are too long. No heap: callable in a child after fork. C and C++.
 */
#ifndef NUMAHEAP_TESTS_SECCOMP_FILTER_H
#define NUMAHEAP_TESTS_SECCOMP_FILTER_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static inline void nh_bpf_op(struct sock_filter *f, size_t *k, unsigned short code, unsigned char jt,
			     unsigned char jf, unsigned int val)
{
	f[*k].code = code;
	f[*k].jt = jt;
	f[*k].jf = jf;
	f[*k].k = val;
	++*k;
}

/* "If the call is nr, return ret", as two instructions. */
static inline void nh_bpf_if(struct sock_filter *f, size_t *k, long nr, unsigned int ret)
{
	nh_bpf_op(f, k, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (unsigned int)nr);
	nh_bpf_op(f, k, BPF_RET | BPF_K, 0, 0, ret);
}

static inline bool nh_seccomp_install(const long *kill, size_t nkill, const long *deny, size_t ndeny, int deny_errno,
				      const long *allow, size_t nallow)
{
	static struct sock_filter f[2048];
	size_t k = 0, i;
	if (2 * (nkill + ndeny + nallow) + 2 > sizeof f / sizeof f[0])
		return false;
	nh_bpf_op(f, &k, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
	for (i = 0; i < nkill; i++)
		nh_bpf_if(f, &k, kill[i], SECCOMP_RET_KILL_PROCESS);
	for (i = 0; i < ndeny; i++)
		nh_bpf_if(f, &k, deny[i], SECCOMP_RET_ERRNO | ((unsigned int)deny_errno & SECCOMP_RET_DATA));
	for (i = 0; i < nallow; i++)
		nh_bpf_if(f, &k, allow[i], SECCOMP_RET_ALLOW);
	nh_bpf_op(f, &k, BPF_RET | BPF_K, 0, 0, allow ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ALLOW);
	struct sock_fprog prog = {(unsigned short)k, f};
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

#endif /* NUMAHEAP_TESTS_SECCOMP_FILTER_H */
