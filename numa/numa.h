/*
 * numa/numa.h — topology and memory binding, numaheap's NUMA contract.
 *
 * The topology is read once at start-up from sysfs through src/os's file reads (no
 * malloc, so it is safe inside the allocator's initialisation). Nodes are
 * numbered as the kernel numbers them; numaheap supports node ids below
 * NH_MAX_NODES. A machine without NUMA support looks like one node 0 with
 * every CPU.
 */
#ifndef NUMAHEAP_NUMA_H
#define NUMAHEAP_NUMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NUMA_MAX_NODES 16
#define NUMA_MAX_CPUS 1024

struct numa_topology {
	int nnodes;			    /* nodes with memory, <= NUMA_MAX_NODES */
	int max_node;			    /* highest node id with memory */
	uint32_t node_mask;		    /* bit n: node n has memory */
	int ncpus;			    /* CPUs possible (highest id + 1) */
	int16_t cpu_node[NUMA_MAX_CPUS];    /* node of each CPU, -1 unknown */
	uint8_t distance[NUMA_MAX_NODES][NUMA_MAX_NODES]; /* SLIT, 10 = local */
};

extern struct numa_topology numa_topo;

/* Read the topology (sysfs). Never fails: falls back to one node. */
void numa_init(void);
/* Parse a cpulist/nodelist ("0-3,8,10-11") into a bitmap of nbits bits. */
int numa_parse_list(const char *s, uint64_t *bits, int nbits);

enum numa_bind_mode { NUMA_BIND_PREFERRED = 0, NUMA_BIND_STRICT = 1, NUMA_BIND_INTERLEAVE = 2 };

/* Bind [p, p+n) to node (mbind). 0 or -errno. With one node, does nothing. */
int numa_bind(void *p, size_t n, int node, enum numa_bind_mode mode, uint32_t interleave_mask);
/* Move the page at p to node (move_pages; a huge page moves whole, or is
 * split and moved page by page when node has no free huge page). 0 if it
 * is there now, else -errno or the page's negative status. */
int numa_move_page(void *p, int node);

/* ---- policy (policy.c) ------------------------------------------------- */
enum { NUMA_LOCAL = 0, NUMA_INTERLEAVE = 1, NUMA_OFF = 2 };

struct numa_policy {
	int mode;		  /* NUMA_LOCAL, NUMA_INTERLEAVE, NUMA_OFF */
	bool strict;		  /* MPOL_BIND rather than MPOL_PREFERRED */
	uint32_t heap_mask;	  /* nodes that have a heap */
	uint32_t interleave_mask; /* nodes interleave mode spreads over */
	int8_t cpu_heap[NUMA_MAX_CPUS]; /* heap node serving each CPU */
	int allowed_cpus;	  /* CPUs in this process's affinity mask */
	unsigned cgroup_cpus_x100; /* cgroup CPU limit x 100; 0: none */
};

extern struct numa_policy numa_pol;

/* After numa_init: mode NUMA_LOCAL, NUMA_INTERLEAVE or NUMA_OFF; strict
 * binding; the nodes that may have heaps (bits; 0: all). -1 if nodes named
 * no node with memory (all are used then). */
int numa_policy_init(int mode, bool strict, uint32_t nodes);
/* Only these nodes have heaps after all (the others failed to set up). */
void numa_policy_restrict(uint32_t heap_mask);
/* The heap node for a CPU (nearest heap node to the CPU's node); the first
 * heap node for an unknown CPU (< 0). numa/ does not ask which CPU a thread
 * runs on: arch/ does (nh_cpu_current), and proc_current_node joins the two. */
int numa_heap_node_of_cpu(int cpu);
/* Bind heap memory (arenas, metadata, caches) of heap_node per the policy. */
int numa_bind_heap(void *p, size_t n, int heap_node);
/* Interleave mode on several nodes: the node whose turn the huge page at
 * hp is (where the kernel's MPOL_INTERLEAVE puts a huge page faulted
 * there); -1 in the other modes. */
int numa_interleave_node(uintptr_t hp);
/* The same for interleave mask mask (nonzero), whatever the mode. */
int numa_interleave_turn(uint32_t mask, uintptr_t hp);
/* A P's cache budget, scaled down under a cgroup CPU limit. */
size_t numa_cpu_budget(size_t budget);

#endif
