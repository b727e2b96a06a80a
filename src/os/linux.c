/*
 * os/linux.c — the OS contract of os/os.h on Linux. See os.h.
 */

#include "arch.h"

#include "os/os.h"
#include "os/fault.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

struct nh_kstats nh_kstats;

/* Map [addr, addr + n) with extra flags, never over an existing mapping. */
static void *map_fixed(uintptr_t addr, size_t n, int prot, int flags)
{
	if (nh_fault("mmap")) {
		errno = ENOMEM;
		return NULL;
	}
	NH_KSTAT_INC(mmap);
	void *p = mmap((void *)addr, n, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if ((uintptr_t)p != addr) {
		/* A kernel older than 4.17 takes the flag as a hint. */
		NH_KSTAT_INC(munmap);
		munmap(p, n);
		errno = EEXIST;
		return NULL;
	}
	return p;
}

void *os_reserve_at(uintptr_t addr, size_t n) { return map_fixed(addr, n, PROT_NONE, MAP_NORESERVE); }

void *os_map_at(uintptr_t addr, size_t n) { return map_fixed(addr, n, PROT_READ | PROT_WRITE, MAP_NORESERVE); }

/* vm.overcommit_memory (0, 1 or 2), read once, at start-up (arena.c and
 * large.c both ask); -1 if unreadable (no /proc). */
static int overcommit_mode(void)
{
	static int mode = -2;
	if (mode == -2) {
		char buf[8];
		ssize_t n = os_read_file("/proc/sys/vm/overcommit_memory", buf, sizeof buf);
		mode = n > 0 && buf[0] >= '0' && buf[0] <= '2' ? buf[0] - '0' : -1;
	}
	return mode;
}

bool os_commit_strict(void)
{
	/* 0 heuristic and 1 always ignore MAP_NORESERVE mappings; 2 charges
	 * them. Unreadable (no /proc): assume strict, the safe side. */
	int mode = overcommit_mode();
	return mode < 0 || mode == 2;
}

size_t os_map_limit(void)
{
	struct sysinfo si;
	if (overcommit_mode() != 0 || sysinfo(&si) != 0)
		return SIZE_MAX;
	return ((size_t)si.totalram + (size_t)si.totalswap) * si.mem_unit;
}

void *os_map_hugetlb_at(uintptr_t addr, size_t n)
{
	return map_fixed(addr, n, PROT_READ | PROT_WRITE, MAP_HUGETLB | (21 << MAP_HUGE_SHIFT));
}

/* n bytes with protection prot anywhere, aligned to align. */
static void *map_aligned(size_t n, size_t align, int prot)
{
	size_t ps = os_page_size();
	if (align < ps)
		align = ps;
	size_t len = n + (align > ps ? align : 0);
	if (nh_fault("mmap")) {
		errno = ENOMEM;
		return NULL;
	}
	NH_KSTAT_INC(mmap);
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (align > ps) {
		uintptr_t a = ((uintptr_t)p + align - 1) & ~(align - 1);
		size_t head = a - (uintptr_t)p;
		size_t tail = len - head - n;
		if (head) {
			NH_KSTAT_INC(munmap);
			munmap(p, head);
		}
		if (tail) {
			NH_KSTAT_INC(munmap);
			munmap((void *)(a + n), tail);
		}
		p = (void *)a;
	}
	return p;
}

void *os_map(size_t n, size_t align) { return map_aligned(n, align, PROT_READ | PROT_WRITE); }

void *os_reserve_zero(size_t n, size_t align) { return map_aligned(n, align, PROT_READ); }

void *os_reserve(size_t n) { return map_aligned(n, 0, PROT_NONE); }

int os_commit(void *p, size_t n)
{
	if (nh_fault("commit"))
		return -ENOMEM;
	NH_KSTAT_INC(mprotect);
	return mprotect(p, n, PROT_READ | PROT_WRITE) == 0 ? 0 : -errno;
}

int os_commit_range(const void *p, size_t n)
{
	uintptr_t ps = os_page_size(), lo = (uintptr_t)p & ~(ps - 1), hi = ((uintptr_t)p + n + ps - 1) & ~(ps - 1);
	return os_commit((void *)lo, hi - lo);
}

void os_unmap(void *p, size_t n)
{
	NH_KSTAT_INC(munmap);
	munmap(p, n);
}

int os_protect(void *p, size_t n, bool rw)
{
	NH_KSTAT_INC(mprotect);
	return mprotect(p, n, rw ? PROT_READ | PROT_WRITE : PROT_NONE) == 0 ? 0 : -errno;
}

/* madvise, counted in the kernel-call statistics: 0 or -errno. */
static int advise(void *p, size_t n, int advice)
{
	NH_KSTAT_INC(madvise);
	return madvise(p, n, advice) == 0 ? 0 : -errno;
}

int os_release(void *p, size_t n, enum os_release_mode mode)
{
	int r = advise(p, n, mode == RELEASE_FREE ? MADV_FREE : MADV_DONTNEED);
	/* MADV_FREE needs Linux 4.5; DONTNEED is always there. */
	if (r == -EINVAL && mode == RELEASE_FREE)
		r = advise(p, n, MADV_DONTNEED);
	return r;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

int os_populate(void *p, size_t n) { return advise(p, n, MADV_POPULATE_WRITE); }

int os_hugepage(void *p, size_t n, bool enable) { return advise(p, n, enable ? MADV_HUGEPAGE : MADV_NOHUGEPAGE); }

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif

int os_collapse(void *p, size_t n) { return advise(p, n, MADV_COLLAPSE); }

size_t os_absent_pages(void *p, size_t n)
{
	enum { PAGE = 4096, VEC = 512 };
	unsigned char vec[VEC];
	size_t absent = 0;
	if (os_basic_syscalls)
		return SIZE_MAX; /* mincore is not among them (systemd's @system-service) */
	for (size_t off = 0; off < n; off += (size_t)VEC * PAGE) {
		size_t len = n - off < (size_t)VEC * PAGE ? n - off : (size_t)VEC * PAGE;
		if (mincore((char *)p + off, len, vec) != 0)
			return SIZE_MAX;
		for (size_t i = 0; i < (len + PAGE - 1) / PAGE; i++)
			absent += !(vec[i] & 1);
	}
	return absent;
}

/*
 * glibc (2.36 on) decides at every fork whether the process is
 * multi-threaded from __libc_single_threaded, which its pthread_create
 * clears for good. Multi-threaded, its fork takes its own atfork lock and
 * stdio's list lock, so a SIGCHLD handler that forks while the program is
 * inside fork() deadlocks on them (issue 18). numaheap's background thread
 * must not turn a single-threaded program into one where that happens: it
 * calls no libc function that takes a lock (system calls, clock reads, its
 * own formatting), touches no stdio stream and no C++ object, so the
 * single-threaded shortcuts glibc and libstdc++ take on that flag cannot
 * race with it. The flag goes back only if it was set before: the calling
 * thread is then the program's only one, so no other pthread_create can
 * have cleared it meanwhile. Weak, for libcs without it.
 */
extern char __libc_single_threaded __attribute__((weak));
extern void *dlsym(void *, const char *) __attribute__((weak));

/*
 * glibc reads the flag through a hidden alias of its own storage; a program
 * that names __libc_single_threaded gets a copy of it (a copy relocation),
 * which is what the symbol resolves to for everybody else. glibc writes
 * both; so does numaheap. libc's own is the next definition after
 * numaheap's library (which is loaded before libc, preloaded or linked);
 * a static program has no copy, and RTLD_NEXT finds nothing there.
 */
static char *libc_own_single_threaded(void)
{
	return dlsym ? dlsym(RTLD_NEXT, "__libc_single_threaded") : NULL;
}
/* libc's own, once found (os_thread_start): for os_setxid_begin. */
static char *libc_flag;

/* Both copies of the flag, as glibc writes them. */
static void single_threaded_set(char v)
{
	__libc_single_threaded = v;
	if (libc_flag)
		*libc_flag = v;
}

/* The background thread's stack: its deepest path (a statistics or
 * profile dump) uses a few tens of KiB. */
#define OS_THREAD_STACK ((size_t)256 << 10)

int os_thread_start(void *(*fn)(void *), void *arg, unsigned long *tid)
{
	bool single = &__libc_single_threaded && __libc_single_threaded;
	char *own = single ? libc_own_single_threaded() : NULL;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	/* A stack of its own size, not RLIMIT_STACK's (8 MiB, all of it
	 * charged under strict overcommit, in every forked child too); the
	 * default if the program's static TLS does not fit in it. */
	pthread_attr_setstacksize(&attr, OS_THREAD_STACK);
	pthread_t t;
	int r = pthread_create(&t, &attr, fn, arg);
	if (r == EINVAL) {
		pthread_attr_destroy(&attr);
		pthread_attr_init(&attr);
		r = pthread_create(&t, &attr, fn, arg);
	}
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0)
		*tid = (unsigned long)t;
	if (r == 0 && single) {
		if (own)
			libc_flag = own;
		single_threaded_set(1);
	}
	return r;
}

bool os_setxid_begin(void)
{
	if (!(&__libc_single_threaded && __libc_single_threaded))
		return false;
	single_threaded_set(0);
	return true;
}

void os_setxid_end(bool cleared)
{
	if (cleared)
		single_threaded_set(1);
}

void os_thread_join(unsigned long t)
{
	int old;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	pthread_join((pthread_t)t, NULL);
	pthread_setcancelstate(old, NULL);
}

int os_gettid(void) { return (int)syscall(SYS_gettid); }

bool os_thread_alive(int tid) { return syscall(SYS_tgkill, (int)syscall(SYS_getpid), tid, 0) == 0 || errno != ESRCH; }

int os_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
	long r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, timeout_ns == OS_FUTEX_FOREVER ? NULL : &ts,
			 NULL, 0);
	return r == 0 ? 0 : -errno;
}

void os_futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void os_set_thread_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

int os_signal_install(int sig, void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL) == 0 ? 0 : -errno;
}

int os_open(const char *path, int flags, int mode)
{
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

ssize_t os_read(int fd, void *buf, size_t n)
{
	return (ssize_t)syscall(SYS_read, fd, buf, n);
}

int os_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

int os_read_lines(const char *path, char *buf, size_t cap, void (*fn)(char *line, void *arg), void *arg)
{
	int fd = os_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	size_t have = 0;
	for (;;) {
		ssize_t r = os_read(fd, buf + have, cap - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		buf[have] = 0;
		char *line = buf, *nl;
		while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
			*nl = 0;
			fn(line, arg);
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (have == cap - 1)
			have = 0; /* an absurdly long line: drop what was read of it */
	}
	os_close(fd);
	return 0;
}

void os_yield(void) { sched_yield(); }

uint64_t os_nanotime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_process_cputime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_thread_cputime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void os_random(void *buf, size_t n)
{
	unsigned char *b = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(b + got, n - got, GRND_NONBLOCK);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	/* No entropy yet (early boot): mix what differs between runs. */
	uint64_t x = nh_cycles() ^ ((uint64_t)(uintptr_t)&got << 17) ^ (uint64_t)getpid();
	for (size_t i = got; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		b[i] = (unsigned char)x;
	}
}

ssize_t os_read_file(const char *path, char *buf, size_t cap)
{
	int fd = os_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	while (len + 1 < cap) {
		ssize_t r = os_read(fd, buf + len, cap - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			os_close(fd);
			return -e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	os_close(fd);
	return (ssize_t)len;
}

/* The state letter and the name in a /proc/<pid>/stat line ("pid (name) S
 * ..."; the name may hold spaces and parentheses, so the last ')' ends
 * it). 0 if the line is not one. */
static char stat_state(char *line, const char **name)
{
	char *open = strchr(line, '('), *close = strrchr(line, ')');
	if (!open || !close || close < open || close[1] != ' ')
		return 0;
	*close = 0;
	*name = open + 1;
	return close[2];
}

bool os_last_thread(void)
{
	char buf[512];
	const char *name;
	/* The main thread first: while it lives, the program does. */
	if (os_read_file("/proc/self/stat", buf, sizeof buf) <= 0 || stat_state(buf, &name) != 'Z')
		return false;
	int fd = os_open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return false;
	int self = os_gettid();
	bool alone = true;
	char d[4096] __attribute__((aligned(8)));
	long n;
	while (alone && (n = syscall(SYS_getdents64, fd, d, sizeof d)) > 0) {
		for (long off = 0; off < n && alone;) {
			const char *e = d + off;
			unsigned short reclen;
			memcpy(&reclen, e + 16, sizeof reclen); /* d_ino, d_off, then d_reclen */
			off += reclen;
			const char *tid = e + 19;	       /* d_type, then d_name */
			if (*tid < '0' || *tid > '9')
				continue;
			int t = 0;
			for (const char *c = tid; *c >= '0' && *c <= '9'; c++)
				t = t * 10 + (*c - '0');
			if (t == self)
				continue;
			char path[64] = "/proc/self/task/";
			size_t len = strlen(path), k = strnlen(tid, 20);
			memcpy(path + len, tid, k);
			memcpy(path + len + k, "/stat", sizeof "/stat");
			if (os_read_file(path, buf, sizeof buf) <= 0)
				continue; /* gone meanwhile */
			char st = stat_state(buf, &name);
			/* Exited, or io_uring's workers (they end with the process). */
			if (st == 'Z' || st == 'X' || !strncmp(name, "iou-", 4))
				continue;
			alone = false;
		}
	}
	os_close(fd);
	return alone;
}

bool os_basic_syscalls;

int os_seccomp_at_start = -1;

int os_seccomp_mode(void)
{
	char buf[4096];
	if (os_read_file("/proc/thread-self/status", buf, sizeof buf) <= 0)
		return -1;
	const char *k = strstr(buf, "\nSeccomp:");
	if (!k)
		return -1;
	k += sizeof "\nSeccomp:" - 1;
	while (*k == ' ' || *k == '\t')
		k++;
	return *k >= '0' && *k <= '2' ? *k - '0' : -1;
}

void os_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = syscall(SYS_write, fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

size_t os_address_space_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= SIZE_MAX)
		return SIZE_MAX;
	return (size_t)rl.rlim_cur;
}

size_t os_page_size(void)
{
	static size_t ps;
	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}
