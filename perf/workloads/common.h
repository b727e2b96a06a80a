/*
 * common.h — shared helpers for the perf/ workloads.
 *
 * Every workload is a standalone program:
 *
 *     prog [THREADS [SCALE]]
 *
 * THREADS 0 (the default) means one thread per CPU the process may run on
 * (its affinity mask, so `numactl --cpunodebind=1 prog` uses node 1's CPUs).
 * SCALE (default 1.0) multiplies the fixed amount of work; perf/run passes a
 * small scale in --quick mode. The work done depends only on THREADS and
 * SCALE, never on time, so wall times are comparable between allocators.
 *
 * A workload prints exactly one line starting with "RESULT " on stdout:
 *
 *     RESULT name=larson threads=2 ops=4000000 secs=1.234 ops_per_sec=3241491 ...
 *
 * with optional extra key=value pairs (perf/run puts them in its CSV). A
 * self-check failure prints "CHECK FAILED: ..." on stderr and exits 3.
 *
 * Environment: NH_PERF_PIN=1 pins worker thread i to the i-th CPU of the
 * affinity mask (used by perf/run --numa), NH_PERF_SEED sets the RNG seed.
 */
#ifndef NH_PERF_COMMON_H
#define NH_PERF_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define WL_UNUSED __attribute__((unused))
#define WL_LIKELY(x) __builtin_expect(!!(x), 1)
#define WL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define WL_CACHELINE 64

static WL_UNUSED double wl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noreturn, format(printf, 1, 2))) static WL_UNUSED void wl_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("CHECK FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stderr);
	_exit(3);
}

static WL_UNUSED void *wl_xmalloc(size_t n)
{
	void *p = malloc(n);
	if (WL_UNLIKELY(p == NULL && n != 0))
		wl_fail("malloc(%zu) returned NULL", n);
	return p;
}

static WL_UNUSED void *wl_xcalloc(size_t n, size_t m)
{
	void *p = calloc(n, m);
	if (WL_UNLIKELY(p == NULL && n != 0 && m != 0))
		wl_fail("calloc(%zu, %zu) returned NULL", n, m);
	return p;
}

/* ---- random numbers: splitmix64 seeding a xoshiro256** per thread ------- */

typedef struct {
	uint64_t s[4];
} wl_rng;

static WL_UNUSED uint64_t wl_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static WL_UNUSED void wl_rng_seed(wl_rng *r, uint64_t stream)
{
	const char *e = getenv("NH_PERF_SEED");
	uint64_t x = (e ? strtoull(e, NULL, 0) : 0x6e756d6168656170ULL) + stream * 0x100000001b3ULL;
	for (int i = 0; i < 4; i++)
		r->s[i] = wl_splitmix(&x);
}

static inline uint64_t wl_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t wl_rand(wl_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = wl_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = wl_rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n). */
static inline uint64_t wl_below(wl_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)wl_rand(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline uint64_t wl_range(wl_rng *r, uint64_t lo, uint64_t hi) { return lo + wl_below(r, hi - lo + 1); }

/* Uniform double in [0, 1). */
static inline double wl_unit(wl_rng *r) { return (double)(wl_rand(r) >> 11) * 0x1.0p-53; }

/* log-uniform in [lo, hi]: as many objects of each power-of-two size band. */
static WL_UNUSED uint64_t wl_logrange(wl_rng *r, uint64_t lo, uint64_t hi)
{
	int a = 63 - __builtin_clzll(lo), b = 63 - __builtin_clzll(hi);
	int k = a + (int)wl_below(r, (uint64_t)(b - a + 1));
	uint64_t base = 1ULL << k;
	uint64_t v = base + wl_below(r, base);
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- object content: a tag in the first and last word, cheap to check ---- */

static inline uint64_t wl_tag(const void *p, size_t n) { return ((uintptr_t)p * 0x9e3779b97f4a7c15ULL) ^ n; }

/* Mark an object of n >= 1 bytes. Objects under 8 bytes get one byte. */
static inline void wl_fill(void *p, size_t n)
{
	uint64_t t = wl_tag(p, n);
	if (n >= 16) {
		memcpy(p, &t, 8);
		memcpy((char *)p + n - 8, &t, 8);
	} else if (n >= 8) {
		memcpy(p, &t, 8);
	} else {
		*(unsigned char *)p = (unsigned char)t;
	}
}

static inline void wl_check(const void *p, size_t n)
{
	uint64_t t = wl_tag(p, n), a, b;
	if (n >= 16) {
		memcpy(&a, p, 8);
		memcpy(&b, (const char *)p + n - 8, 8);
		if (WL_UNLIKELY(a != t || b != t))
			wl_fail("object %p of %zu bytes was overwritten", p, n);
	} else if (n >= 8) {
		memcpy(&a, p, 8);
		if (WL_UNLIKELY(a != t))
			wl_fail("object %p of %zu bytes was overwritten", p, n);
	} else if (WL_UNLIKELY(*(const unsigned char *)p != (unsigned char)t)) {
		wl_fail("object %p of %zu bytes was overwritten", p, n);
	}
}

/* Touch every 4 KiB page of a large block (so its memory is really used). */
static inline void wl_touch_pages(void *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i += 4096)
		((volatile unsigned char *)p)[i] = v;
	if (n)
		((volatile unsigned char *)p)[n - 1] = v;
}

/* ---- arguments, CPUs, threads ------------------------------------------ */

typedef struct {
	const char *name;
	int threads;
	double scale;
} wl_args;

static WL_UNUSED int wl_ncpus(void)
{
	cpu_set_t s;
	if (sched_getaffinity(0, sizeof s, &s) == 0)
		return CPU_COUNT(&s) > 0 ? CPU_COUNT(&s) : 1;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static WL_UNUSED wl_args wl_parse(int argc, char **argv, const char *name, const char *usage_extra)
{
	wl_args a = {name, 0, 1.0};
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: %s [THREADS [SCALE]]\n"
		       "  THREADS  worker threads; 0 = one per CPU in the affinity mask (default)\n"
		       "  SCALE    multiplier of the fixed work (default 1.0)\n%s",
		       argv[0], usage_extra ? usage_extra : "");
		exit(0);
	}
	if (argc > 1)
		a.threads = atoi(argv[1]);
	if (argc > 2)
		a.scale = atof(argv[2]);
	if (a.threads <= 0)
		a.threads = wl_ncpus();
	if (a.scale <= 0)
		a.scale = 1.0;
	return a;
}

/* n scaled, at least min. */
static WL_UNUSED uint64_t wl_scaled(double base, double scale, uint64_t min)
{
	double v = base * scale;
	return v < (double)min ? min : (uint64_t)v;
}

/* Pin the calling thread to the i-th CPU of the process's affinity mask when
 * NH_PERF_PIN=1 (the mask is read once, by the first caller). */
static WL_UNUSED void wl_maybe_pin(int i)
{
	static cpu_set_t mask;
	static int ncpu = -1;
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	const char *e = getenv("NH_PERF_PIN");
	if (!e || *e != '1')
		return;
	pthread_mutex_lock(&mu);
	if (ncpu < 0) {
		CPU_ZERO(&mask);
		sched_getaffinity(0, sizeof mask, &mask);
		ncpu = CPU_COUNT(&mask);
	}
	pthread_mutex_unlock(&mu);
	if (ncpu <= 0)
		return;
	int want = i % ncpu, seen = 0;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &mask))
			continue;
		if (seen++ == want) {
			cpu_set_t one;
			CPU_ZERO(&one);
			CPU_SET(c, &one);
			pthread_setaffinity_np(pthread_self(), sizeof one, &one);
			return;
		}
	}
}

typedef void *(*wl_thread_fn)(void *);

/* Start n threads running fn(arg + i*stride) and join them. */
static WL_UNUSED void wl_run_threads(int n, wl_thread_fn fn, void *arg, size_t stride)
{
	pthread_t *t = wl_xmalloc(sizeof(pthread_t) * (size_t)n);
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, fn, (char *)arg + (size_t)i * stride) != 0)
			wl_fail("pthread_create failed");
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
}

/* Peak RSS in KiB: VmHWM of this memory image. (getrusage's ru_maxrss would
 * also count the image of whatever process exec'd us, e.g. a big runner.) */
static WL_UNUSED long wl_maxrss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	if (f) {
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "VmHWM: %ld", &v) == 1)
				break;
		fclose(f);
	}
	if (v < 0) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		v = ru.ru_maxrss;
	}
	return v;
}

/* Current resident set in KiB, from /proc/self/statm. */
static WL_UNUSED long wl_rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Print the RESULT line; extra is "" or " k=v k=v". */
static WL_UNUSED void wl_result(const wl_args *a, uint64_t ops, double secs, const char *extra_fmt, ...)
{
	char extra[512] = "";
	if (extra_fmt) {
		va_list ap;
		va_start(ap, extra_fmt);
		vsnprintf(extra, sizeof extra, extra_fmt, ap);
		va_end(ap);
	}
	printf("RESULT name=%s threads=%d scale=%g ops=%llu secs=%.4f ops_per_sec=%.0f maxrss_kib=%ld%s\n", a->name,
	       a->threads, a->scale, (unsigned long long)ops, secs, secs > 0 ? (double)ops / secs : 0.0,
	       wl_maxrss_kib(), extra);
	fflush(stdout);
}

#endif
