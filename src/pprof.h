/*
 * pprof.h — writing a heap profile in pprof's format (pprof.c).
 *
 * The format is profile.proto (github.com/google/pprof), gzipped: what
 * `go tool pprof` and every pprof-compatible viewer read. Samples carry
 * four values (alloc_objects, alloc_space, inuse_objects, inuse_space),
 * already scaled by the caller, a stack of return addresses (leaf first)
 * and the NUMA node of the memory as a numeric label "numa_node". The
 * process's executable mappings (/proc/self/maps) go in too, so pprof
 * finds the binaries and symbolises by itself.
 *
 * Allocation-free: the encoder's buffers come from os_map and go back with
 * os_unmap, so it runs inside the allocator, with no allocator lock held.
 */
#ifndef NUMAHEAP_PPROF_H
#define NUMAHEAP_PPROF_H

#include <stddef.h>
#include <stdint.h>

#define PPROF_MAX_DEPTH 64

struct pprof_sample {
	const uintptr_t *pcs; /* return addresses, leaf first */
	unsigned npc;
	int node;
	int64_t v[4]; /* alloc_objects, alloc_space, inuse_objects, inuse_space */
};

/* Write the profile to fd; 0, or -1 if memory could not be mapped or the
 * write failed. period: the sampling rate in bytes (pprof's period). */
int pprof_write(int fd, const struct pprof_sample *s, size_t n, uint64_t period, uint64_t time_ns,
		uint64_t duration_ns);

/* The same samples in gperftools' text heap-profile format (google-pprof
 * reads it), with the process's mappings appended. */
int pprof_write_text(int fd, const struct pprof_sample *s, size_t n, uint64_t period);

#endif /* NUMAHEAP_PPROF_H */
