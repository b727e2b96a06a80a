/*
 * numaheap.h — numaheap's own API.
 *
 * numaheap replaces malloc, free and the rest of the C and C++ allocation
 * API (link -lnumaheap or LD_PRELOAD=libnumaheap.so); this header adds what
 * the standard API cannot say. Every function is safe from any thread.
 */
#ifndef NUMAHEAP_H
#define NUMAHEAP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NUMAHEAP_VERSION_MAJOR 0
#define NUMAHEAP_VERSION_MINOR 1
#define NUMAHEAP_VERSION_PATCH 0
#define NUMAHEAP_VERSION_STRING "0.1.0"

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *numaheap_version(void);

/*
 * Give every free page back to the OS now (synchronously), after returning
 * the objects cached by every CPU (per-CPU mode: the calling thread moves
 * onto each CPU whose cache holds objects, then back to its own CPU mask)
 * or by the thread itself (per-thread mode). Returns the bytes released.
 * malloc_trim(0) does the same.
 */
size_t numaheap_release(void);

/* The NUMA node whose heap holds ptr, or -1 if numaheap did not allocate it. */
int numaheap_node_of(const void *ptr);

/*
 * Allocate size bytes from the heap of NUMA node `node`, whatever CPU the
 * caller runs on; free it with free(). A node without a heap of its own
 * (NUMAHEAP_NODES, NUMAHEAP_NUMA=interleave|off) is served by the nearest
 * heap. NULL with errno EINVAL for a node the machine does not have, ENOMEM
 * when memory runs out.
 */
void *numaheap_malloc_onnode(size_t size, int node);

/*
 * The statistics as one JSON object (see docs/stats.md), written to buf as a
 * NUL-terminated string of at most cap bytes. Returns the length the whole
 * object needs (excluding the NUL), which may exceed cap - 1: then the
 * output was truncated and a larger buffer gets all of it.
 */
size_t numaheap_stats_json(char *buf, size_t cap);

/* Print the statistics to a file descriptor: text (json == 0) or JSON. */
void numaheap_stats_print(int fd, int json);

/*
 * Write the heap profile (NUMAHEAP_PROF=1) to path: pprof's format, gzipped
 * (`go tool pprof -top PROGRAM FILE`), or gperftools' text format if path
 * ends in ".heap". "%p" in path becomes the process id; NULL means
 * NUMAHEAP_PROF_FILE. Returns 0, or -1 with errno set (EINVAL when
 * profiling is off). See docs/profiling.md.
 */
int numaheap_prof_dump(const char *path);

#ifdef __cplusplus
}
#endif

#endif /* NUMAHEAP_H */
