/*
 * errno_probe.c — what every allocation entry point returns and leaves in
 * errno, on failure and on success. Built without numaheap and run twice by
 * errno_compare.sh, once on glibc's malloc and once with numaheap preloaded:
 * the two outputs must be the same (issue 18: programs read errno).
 */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SENTINEL = 12345 };

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case ENOMEM: return "ENOMEM";
	case EINVAL: return "EINVAL";
	case SENTINEL: return "unchanged";
	default: return "other";
	}
}

/* A pointer result: NULL or not, and errno. */
#define PTR(name, expr)                                                                  \
	do {                                                                             \
		errno = SENTINEL;                                                        \
		void *r_ = (expr);                                                       \
		int e_ = errno;                                                          \
		printf("%-44s %s errno=%s\n", name, r_ ? "ptr " : "NULL", errname(e_)); \
		free(r_);                                                                \
	} while (0)

/* An int result (posix_memalign). */
#define INT(name, expr)                                                                  \
	do {                                                                             \
		errno = SENTINEL;                                                        \
		int r_ = (expr);                                                         \
		int e_ = errno;                                                          \
		printf("%-44s ret=%s errno=%s\n", name, errname(r_), errname(e_));       \
	} while (0)

/* A call with no result that must leave errno alone. */
#define VOID(name, stmt)                                                 \
	do {                                                             \
		errno = SENTINEL;                                        \
		stmt;                                                    \
		printf("%-44s errno=%s\n", name, errname(errno));        \
	} while (0)

int main(void)
{
	const size_t huge = SIZE_MAX, half = SIZE_MAX / 2 + 1;
	void *q = NULL;

	/* Failures. */
	PTR("malloc(SIZE_MAX)", malloc(huge));
	PTR("malloc(PTRDIFF_MAX)", malloc(PTRDIFF_MAX));
	PTR("malloc(SIZE_MAX/2+1)", malloc(half));
	PTR("calloc(SIZE_MAX/2+1, 2) overflow", calloc(half, 2));
	PTR("calloc(1, SIZE_MAX)", calloc(1, huge));
	PTR("calloc(SIZE_MAX, 0)", calloc(huge, 0));
	PTR("realloc(NULL, SIZE_MAX)", realloc(NULL, huge));
	void *keep = malloc(100);
	memset(keep, 7, 100);
	PTR("realloc(p, SIZE_MAX)", realloc(keep, huge));
	PTR("realloc(p, PTRDIFF_MAX)", realloc(keep, PTRDIFF_MAX));
	PTR("reallocarray(p, SIZE_MAX, 2) overflow", reallocarray(keep, huge, 2));
	PTR("reallocarray(p, 1, SIZE_MAX)", reallocarray(keep, 1, huge));
	void *big = malloc(1 << 20);
	PTR("realloc(large p, SIZE_MAX)", realloc(big, huge));
	INT("posix_memalign(align 3)", posix_memalign(&q, 3, 16));
	INT("posix_memalign(align 0)", posix_memalign(&q, 0, 16));
	INT("posix_memalign(align 4)", posix_memalign(&q, 4, 16));
	INT("posix_memalign(align 24)", posix_memalign(&q, 24, 16));
	INT("posix_memalign(16, SIZE_MAX)", posix_memalign(&q, 16, huge));
	INT("posix_memalign(4096, SIZE_MAX)", posix_memalign(&q, 4096, huge));
	INT("posix_memalign(2^62, 16)", posix_memalign(&q, (size_t)1 << 62, 16));
	PTR("aligned_alloc(align 0, 16)", aligned_alloc(0, 16));
	PTR("aligned_alloc(align 3, 16)", aligned_alloc(3, 16));
	PTR("aligned_alloc(align 24, 48)", aligned_alloc(24, 48));
	PTR("aligned_alloc(16, SIZE_MAX)", aligned_alloc(16, huge));
	PTR("aligned_alloc(2^62, 16)", aligned_alloc((size_t)1 << 62, 16));
	PTR("memalign(SIZE_MAX/2+2, 16)", memalign(half + 1, 16));
	PTR("memalign(64, SIZE_MAX)", memalign(64, huge));
	PTR("memalign(2^62, 16)", memalign((size_t)1 << 62, 16));
	PTR("valloc(SIZE_MAX)", valloc(huge));
	PTR("pvalloc(SIZE_MAX)", pvalloc(huge));
	PTR("pvalloc(SIZE_MAX - 4096)", pvalloc(huge - 4096));

	/* Successes leave errno alone. */
	PTR("malloc(0)", malloc(0));
	PTR("malloc(24)", malloc(24));
	PTR("malloc(100000)", malloc(100000));
	PTR("malloc(8 MiB)", malloc(8 << 20));
	PTR("calloc(10, 10)", calloc(10, 10));
	PTR("calloc(0, 10)", calloc(0, 10));
	PTR("realloc(NULL, 10)", realloc(NULL, 10));
	PTR("aligned_alloc(64, 64)", aligned_alloc(64, 64));
	PTR("memalign(4096, 100)", memalign(4096, 100));
	PTR("memalign(3, 100) (rounded up)", memalign(3, 100));
	PTR("valloc(100)", valloc(100));
	PTR("pvalloc(100)", pvalloc(100));
	INT("posix_memalign(64, 100)", posix_memalign(&q, 64, 100));
	free(q);
	INT("posix_memalign(64, 0)", posix_memalign(&q, 64, 0));
	free(q);
	void *p = malloc(50);
	PTR("realloc(p, 5000)", (p = realloc(p, 5000), p ? malloc(1) : NULL));
	PTR("realloc(p, 20)", (p = realloc(p, 20), p ? malloc(1) : NULL));
	PTR("reallocarray(p, 10, 10)", (p = reallocarray(p, 10, 10), p ? malloc(1) : NULL));
	VOID("free(p)", free(p));
	VOID("free(NULL)", free(NULL));
	void *l = malloc(32 << 20);
	VOID("free(32 MiB)", free(l));
	void *s = malloc(40);
	VOID("malloc_usable_size(p)", (void)malloc_usable_size(s));
	VOID("malloc_usable_size(NULL)", (void)malloc_usable_size(NULL));
	VOID("free_sized-like free(p)", free(s));
	VOID("malloc_trim(0)", (void)malloc_trim(0));
	VOID("mallinfo2()", (void)mallinfo2());

	/* The realloc that failed kept the block. */
	int intact = 1;
	for (int i = 0; i < 100; i++)
		intact &= ((unsigned char *)keep)[i] == 7;
	printf("%-44s %s\n", "failed realloc kept the block", intact ? "yes" : "NO");
	free(keep);
	return 0;
}
