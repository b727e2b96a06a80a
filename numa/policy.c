/*
 * numa/policy.c — which heap serves which CPU, and how arenas are bound.
 *
 * Read once at start-up, after the options and the topology (numa.h):
 *
 *   NUMAHEAP_NUMA=local       one heap per node (default). A CPU's P and
 *                             its thread's large objects use the heap of the
 *                             CPU's node; CPUs of a node outside
 *                             NUMAHEAP_NODES (or without memory) use the
 *                             nearest heap node by SLIT distance.
 *   NUMAHEAP_NUMA=interleave  one heap whose arenas are interleaved page by
 *                             page (huge page by huge page under THP) over
 *                             the heap nodes.
 *   NUMAHEAP_NUMA=off         one heap, no binding at all: the kernel's
 *                             default policy (first touch) decides.
 *   NUMAHEAP_NUMA_BIND        preferred (default: the node's memory first,
 *                             others when it is full) or strict (MPOL_BIND:
 *                             the node or nothing).
 *   NUMAHEAP_NODES            a node list ("0,2-3"): heaps only there.
 *
 * Also read here: the CPUs this process may run on (its affinity mask, set
 * by taskset, numactl or a cpuset) and a cgroup CPU limit (cpu.max), which
 * the cache budget honours (numa_cpu_budget_share).
 */
#define _GNU_SOURCE 1

#include "os/os.h"
#include "os/fault.h"
#include "numa.h"

#include <sched.h>

struct numa_policy numa_pol;

static int nearest_heap_node(int node)
{
	int best = -1, bestd = 1 << 30;
	for (int n = 0; n < NUMA_MAX_NODES; n++) {
		if (!(numa_pol.heap_mask & (1u << n)))
			continue;
		int d = node >= 0 && node < NUMA_MAX_NODES && numa_topo.distance[node][n] ? numa_topo.distance[node][n]
											: (n == node ? 10 : 20);
		if (d < bestd) {
			bestd = d;
			best = n;
		}
	}
	return best;
}

static void read_cgroup_limit(void)
{
	char buf[256];
	numa_pol.cgroup_cpus_x100 = 0;
	/* cgroup v2: "max 100000" or "200000 100000" */
	if (os_read_file("/sys/fs/cgroup/cpu.max", buf, sizeof buf) > 0) {
		if (buf[0] == 'm')
			return;
		unsigned long long quota = 0, period = 0;
		const char *s = buf;
		while (*s >= '0' && *s <= '9')
			quota = quota * 10 + (unsigned)(*s++ - '0');
		while (*s == ' ')
			s++;
		while (*s >= '0' && *s <= '9')
			period = period * 10 + (unsigned)(*s++ - '0');
		if (quota && period)
			numa_pol.cgroup_cpus_x100 = (unsigned)((quota * 100 + period - 1) / period);
	}
}

int numa_policy_init(int mode, bool strict, uint32_t nodes)
{
	int r = 0;
	numa_pol.mode = mode;
	numa_pol.strict = strict;
	numa_pol.heap_mask = numa_topo.node_mask & (nodes ? nodes : ~0u);
	if (!numa_pol.heap_mask) {
		r = -1; /* the caller says so */
		numa_pol.heap_mask = numa_topo.node_mask;
	}
	numa_pol.interleave_mask = numa_pol.heap_mask;
	if (numa_pol.mode != NUMA_LOCAL || numa_topo.nnodes <= 1)
		numa_pol.heap_mask = 1u << __builtin_ctz(numa_pol.heap_mask);
	for (int c = 0; c < NUMA_MAX_CPUS; c++)
		numa_pol.cpu_heap[c] = (int8_t)nearest_heap_node(numa_topo.cpu_node[c]);

	cpu_set_t set;
	numa_pol.allowed_cpus = numa_topo.ncpus;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		numa_pol.allowed_cpus = CPU_COUNT(&set);
	read_cgroup_limit();
	return r;
}

void numa_policy_restrict(uint32_t heap_mask)
{
	numa_pol.heap_mask = heap_mask;
	for (int c = 0; c < NUMA_MAX_CPUS; c++)
		numa_pol.cpu_heap[c] = (int8_t)nearest_heap_node(numa_topo.cpu_node[c]);
}

int numa_heap_node_of_cpu(int cpu)
{
	if (cpu < 0 || cpu >= NUMA_MAX_CPUS || numa_pol.cpu_heap[cpu] < 0)
		return __builtin_ctz(numa_pol.heap_mask);
	return numa_pol.cpu_heap[cpu];
}

int numa_bind_heap(void *p, size_t n, int heap_node)
{
	if (numa_topo.nnodes <= 1 || nh_fault("mbind"))
		return nh_fault("mbind") ? -1 : 0;
	switch (numa_pol.mode) {
	case NUMA_OFF:
		return 0;
	case NUMA_INTERLEAVE:
		return numa_bind(p, n, heap_node, NUMA_BIND_INTERLEAVE, numa_pol.interleave_mask);
	default:
		return numa_bind(p, n, heap_node, numa_pol.strict ? NUMA_BIND_STRICT : NUMA_BIND_PREFERRED, 0);
	}
}

int numa_interleave_turn(uint32_t mask, uintptr_t hp)
{
	/* The kernel counts an anonymous mapping's huge pages (2 MiB, a PMD)
	 * from address 0 (vm_pgoff is the address's page number), so the
	 * turn is the huge page's number modulo the nodes, as offset_il_node
	 * takes it. */
	unsigned turn = (unsigned)((hp >> 21) % (uintptr_t)__builtin_popcount(mask));
	while (turn--)
		mask &= mask - 1;
	return __builtin_ctz(mask);
}

int numa_interleave_node(uintptr_t hp)
{
	uint32_t mask = numa_pol.interleave_mask;
	if (numa_pol.mode != NUMA_INTERLEAVE || numa_topo.nnodes <= 1 || (mask & (mask - 1)) == 0)
		return -1;
	return numa_interleave_turn(mask, hp);
}

size_t numa_cpu_budget(size_t budget)
{
	/* A cgroup limit of k CPUs over m allowed ones: the process cannot keep
	 * more than about k CPUs busy, so m caches share k caches' budget. */
	unsigned k100 = numa_pol.cgroup_cpus_x100;
	int m = numa_pol.allowed_cpus;
	if (k100 && m > 0 && (unsigned)m * 100 > k100) {
		size_t scaled = budget * k100 / ((size_t)m * 100);
		return scaled < (64u << 10) ? (64u << 10) : scaled;
	}
	return budget;
}
