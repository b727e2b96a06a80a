/*
 * os.h — the OS contract. Everything numaheap asks of the kernel for memory
 * goes through these functions, so the rest of src/ reads as the algorithm
 * and every kernel call is counted (nh_kstats) for the "kernel bypass"
 * statistics. Binding memory to nodes lives in numa/.
 *
 * Shared rules: addresses and lengths are multiples of the OS page size
 * (4 KiB); functions never call malloc; errors come back as NULL or a
 * negative errno, never as a crash. Memory states follow Go's mem.go:
 *
 *   reserved  (os_reserve*)  address space only, PROT_NONE; or readable
 *                            zeros (os_reserve_zero), for sparse tables
 *   ready     (os_map*, os_commit)  readable and writable, zero on first
 *                            touch
 *   released  (os_release)   ready, but its physical pages were given back:
 *                            zero on next touch for RELEASE_DONTNEED,
 *                            zero or old contents for RELEASE_FREE
 *
 * Under strict overcommit (vm.overcommit_memory=2) the kernel charges
 * every private writable mapping against its commit limit when it is
 * mapped, MAP_NORESERVE or not, and fork charges it again in the child:
 * what may stay unused is reserved (not writable, not charged) and made
 * ready (os_commit, charged then) as it comes into use.
 */
#ifndef NUMAHEAP_OS_H
#define NUMAHEAP_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Counts of the kernel calls numaheap made, by kind; relaxed atomics. */
struct nh_kstats {
	_Atomic uint64_t mmap, munmap, madvise, mbind, move_pages, mprotect, futex_wait, futex_wake, io_uring_enter;
};
extern struct nh_kstats nh_kstats;
#define NH_KSTAT_INC(field) atomic_fetch_add_explicit(&nh_kstats.field, 1, memory_order_relaxed)

enum os_release_mode { RELEASE_DONTNEED = 0, RELEASE_FREE = 1 };

/*
 * Only the system calls every allocator makes (NUMAHEAP_SYSCALLS, set at
 * start-up): those systemd's @system-service allows, less @privileged and
 * @resources, so no io_uring, mbind, move_pages, sched_setaffinity or
 * mincore, and no rseq registration of numaheap's own. By default when a
 * seccomp filter is on the process: an allow-list such as Debian's
 * redis-server unit (SystemCallFilter=@system-service, ~@privileged
 * @resources) kills the process at the first call it does not list, with
 * no error to fall back on.
 */
extern bool os_basic_syscalls;
/* NUMAHEAP_SYSCALLS's values. */
enum { OS_SYSCALLS_AUTO = 0, OS_SYSCALLS_ALL = 1, OS_SYSCALLS_BASIC = 2 };
/* The calling thread's seccomp mode (/proc/thread-self/status,
 * "Seccomp:"): 0 none, 1 strict, 2 a filter; -1 if that cannot be read. */
int os_seccomp_mode(void);
/* os_seccomp_mode() at start-up: a sandbox that filters later (a
 * privilege-separated child, a program that confines itself) shows as a
 * change from it. */
extern int os_seccomp_at_start;

/*
 * The largest single mapping the kernel would grant now: under its default
 * heuristic overcommit (vm.overcommit_memory=0) it refuses one larger than
 * RAM and swap together, and glibc's malloc(30 GiB) on a 24 GiB machine
 * gives NULL; numaheap's arenas are mapped MAP_NORESERVE or reserved,
 * which that check never sees. SIZE_MAX in the other modes (1: anything
 * goes; 2: commits are charged, arena.c) or if unknown. Read at start-up.
 */
size_t os_map_limit(void);

/* Map n bytes ready at exactly addr, backed by reserved 2 MiB hugetlbfs
 * pages (MAP_HUGETLB), or NULL (errno set) if anything lives there or the
 * kernel refuses. Never replaces an existing mapping. */
void *os_map_hugetlb_at(uintptr_t addr, size_t n);
/* Map n bytes ready anywhere, aligned to align (a power of two); NULL on error. */
void *os_map(size_t n, size_t align);
/* Reserve n bytes of address space anywhere (PROT_NONE, no memory). */
void *os_reserve(size_t n);
/* Like os_map_hugetlb_at, but plain pages, reserved (PROT_NONE): os_commit
 * makes parts ready. */
void *os_reserve_at(uintptr_t addr, size_t n);
/* Like os_reserve_at, but ready (readable and writable, MAP_NORESERVE):
 * for where the kernel does not charge such a mapping (os_commit_strict). */
void *os_map_at(uintptr_t addr, size_t n);
/* Does the kernel charge writable private mappings in full when they are
 * mapped (strict overcommit, vm.overcommit_memory=2)? Read once, at
 * start-up: an arena mapped ready then costs its whole size of commit. */
bool os_commit_strict(void);
/* Reserve n bytes anywhere, aligned to align (a power of two), readable:
 * they read as zero (the kernel's zero page) until os_commit makes parts
 * writable. For tables that lockless readers may index anywhere. */
void *os_reserve_zero(size_t n, size_t align);
/* Make reserved [p, p+n) ready; 0 or -errno (-ENOMEM past the commit limit). */
int os_commit(void *p, size_t n);
/* Make ready the OS pages that hold [p, p+n), any alignment (a part of a
 * table reserved by os_reserve_zero); 0 or -errno. */
int os_commit_range(const void *p, size_t n);
void os_unmap(void *p, size_t n);
/* Give the physical pages of [p, p+n) back to the OS. */
int os_release(void *p, size_t n, enum os_release_mode mode);
/* Fault [p, p+n) in, writable, without changing what it holds
 * (MADV_POPULATE_WRITE; -EINVAL before Linux 5.14). */
int os_populate(void *p, size_t n);
/* Make [p, p+n) accessible (rw) or not (PROT_NONE): guard pages. */
int os_protect(void *p, size_t n, bool rw);
/* In every other loaded object, point the PLT slots of symbol name that
 * are bound to from at to instead (plt.c). */
void os_plt_redirect(const char *name, void *from, void *to);
/* Ask for (or refuse) transparent huge pages on [p, p+n). */
int os_hugepage(void *p, size_t n, bool enable);
/* Make [p, p+n) (whole huge pages) transparent huge pages now, copying
 * what its base pages hold (MADV_COLLAPSE; -EINVAL before Linux 6.1 or
 * where huge pages are refused, -EAGAIN or -ENOMEM when none could be had). */
int os_collapse(void *p, size_t n);
/* How many of the OS pages of [p, p+n) are not resident (mincore);
 * SIZE_MAX on error. Not counted in the statistics' kernel calls (a
 * question, not a change). */
size_t os_absent_pages(void *p, size_t n);

/*
 * Batched release (os/uring.c): add runs, submit them with one system call
 * (io_uring) or one madvise per run, read each run's result (0 or -errno).
 */
#define OS_BATCH_MAX 64
enum os_backend { OS_BACKEND_MADVISE = 0, OS_BACKEND_URING = 1 };
struct io_uring;
struct os_batch {
	enum os_backend backend;
	struct io_uring *ring;
	unsigned n;
	struct {
		void *p;
		size_t len;
		int res;
	} op[OS_BATCH_MAX];
	uint64_t submissions; /* runs submitted through the ring */
	uint64_t syscalls;    /* io_uring_enter or madvise calls */
};
int os_batch_init(struct os_batch *b, bool want_uring); /* the backend in use */
void os_batch_fini(struct os_batch *b);
void os_batch_forget(struct os_batch *b);
unsigned os_batch_submit(struct os_batch *b, enum os_release_mode mode); /* runs released */

/*
 * Start a joinable thread running fn(arg) with every signal blocked,
 * its handle in *t; 0 or an errno. A program that was single-threaded
 * stays so in glibc's eyes (__libc_single_threaded): see os/linux.c.
 */
int os_thread_start(void *(*fn)(void *), void *arg, unsigned long *t);
/*
 * Around a credential call of the C library's (setxid.c): while
 * __libc_single_threaded says one thread only because os_thread_start set
 * it back, glibc's setuid and the rest change only the calling thread's
 * credentials, and the background thread would keep the old ones.
 * os_setxid_begin clears the flag (both copies), so glibc signals every
 * thread it made, the background one included, as in a program with
 * threads of its own; os_setxid_end(its answer) sets it back. Plain
 * stores (libc's copy was found when the thread started): async-signal-
 * safe, as the calls are.
 */
bool os_setxid_begin(void);
void os_setxid_end(bool cleared);
/* Wait until thread t (os_thread_start's) has exited, and reclaim it; the
 * process has one thread fewer when this returns. Not a cancellation
 * point. */
void os_thread_join(unsigned long t);
/* The calling thread's kernel id. */
int os_gettid(void);
/* Whether thread tid of this process still exists in the kernel: a joined
 * thread leaves the thread group a moment after pthread_join returns (the
 * kernel clears the id glibc waits on before it releases the task). */
bool os_thread_alive(int tid);

/*
 * Futex on a 32-bit word shared by the process's threads (FUTEX_*_PRIVATE).
 * os_futex_wait sleeps while *word == val, for at most timeout_ns
 * (OS_FUTEX_FOREVER: no limit; 0 returns at once); 0, or -errno (EAGAIN
 * when *word != val, ETIMEDOUT, EINTR), and may return early for no reason.
 * os_futex_wake wakes up to n sleepers of word. Both are async-signal-safe.
 * Neither counts itself in nh_kstats: the mutex (lock.c) counts its own
 * sleeps and wakes; the background thread's are not the program's.
 */
#define OS_FUTEX_FOREVER UINT64_MAX
int os_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns);
void os_futex_wake(_Atomic uint32_t *word, int n);

/* Name the calling thread (at most 15 characters; ps and top show it). */
void os_set_thread_name(const char *name);
/* Run handler on signal sig (SA_RESTART, nothing blocked meanwhile); 0 or -errno. */
int os_signal_install(int sig, void (*handler)(int));

/*
 * Call fn(line, arg) on each line of a file (procfs), its '\n' replaced by
 * a NUL, reading it through buf (cap bytes): nothing is allocated. A line
 * that does not fit in buf loses its beginning. Stops at the end of the
 * file or at a read error; 0, or -errno if the file cannot be opened.
 */
int os_read_lines(const char *path, char *buf, size_t cap, void (*fn)(char *line, void *arg), void *arg);

void os_yield(void);
uint64_t os_nanotime(void); /* CLOCK_MONOTONIC, nanoseconds */
uint64_t os_realtime_ns(void); /* CLOCK_REALTIME, nanoseconds since the epoch */
uint64_t os_thread_cputime(void); /* this thread's CPU time, nanoseconds */
uint64_t os_process_cputime(void); /* the process's CPU time (all its threads), nanoseconds */
void os_random(void *buf, size_t n);
/* Is the caller the last thread of the process (io_uring's workers aside)?
 * Only ever so once the main thread has exited (pthread_exit): that is
 * read first, one small file; then the other threads are listed. Never
 * allocates. */
bool os_last_thread(void);
/* Read a small file (sysfs, procfs) into buf, NUL-terminated; bytes or -errno. */
ssize_t os_read_file(const char *path, char *buf, size_t cap);
void os_write_all(int fd, const char *p, size_t n);
/*
 * open, read and close as direct system calls, never thread cancellation
 * points (libc's are): numaheap's file I/O (its statistics, profiles and
 * reads of /proc and /sys, above, included) may run in a thread that has a
 * cancellation request pending, and must neither stop halfway nor leave a
 * descriptor or lock behind. -1 with errno on failure, like libc's.
 */
int os_open(const char *path, int flags, int mode);
ssize_t os_read(int fd, void *buf, size_t n);
int os_close(int fd);
/* The process's address-space limit (RLIMIT_AS, ulimit -v) in bytes;
 * SIZE_MAX if there is none. */
size_t os_address_space_limit(void);
/* The OS page size (4 KiB on x86-64; 4, 16 or 64 KiB on aarch64). */
size_t os_page_size(void);

#endif
