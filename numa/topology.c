/*
 * numa/topology.c — the machine's NUMA topology from sysfs, and mbind.
 * See numa.h. Runs inside malloc's initialisation: no malloc, no stdio.
 */
#define _GNU_SOURCE 1

#include "arch.h"

#include "os/os.h"

#include "numa.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MPOL_PREFERRED
#define MPOL_PREFERRED 1
#define MPOL_BIND 2
#define MPOL_INTERLEAVE 3
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

struct numa_topology numa_topo;

static const char *parse_uint(const char *s, int *out)
{
	if (*s < '0' || *s > '9')
		return NULL;
	int v = 0;
	while (*s >= '0' && *s <= '9') {
		if (v > 1000000)
			return NULL;
		v = v * 10 + (*s++ - '0');
	}
	*out = v;
	return s;
}

int numa_parse_list(const char *s, uint64_t *bits, int nbits)
{
	for (int i = 0; i < (nbits + 63) / 64; i++)
		bits[i] = 0;
	int count = 0;
	while (*s && *s != '\n') {
		int lo, hi;
		if (!(s = parse_uint(s, &lo)))
			return -1;
		hi = lo;
		if (*s == '-' && !(s = parse_uint(s + 1, &hi)))
			return -1;
		if (hi < lo)
			return -1;
		for (int i = lo; i <= hi && i < nbits; i++) {
			if (!(bits[i / 64] & (1ull << (i % 64))))
				count++;
			bits[i / 64] |= 1ull << (i % 64);
		}
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -1;
	}
	return count;
}

static void one_node(void)
{
	numa_topo.nnodes = 1;
	numa_topo.max_node = 0;
	numa_topo.node_mask = 1;
	numa_topo.distance[0][0] = 10;
	long n = sysconf(_SC_NPROCESSORS_CONF);
	numa_topo.ncpus = n > 0 && n <= NUMA_MAX_CPUS ? (int)n : 1;
	for (int c = 0; c < NUMA_MAX_CPUS; c++)
		numa_topo.cpu_node[c] = c < numa_topo.ncpus ? 0 : -1;
}

/* "/sys/devices/system/node/node<n>/<file>" into path (64 bytes), n < 100. */
static void node_path(char *path, int n, const char *file)
{
	int len = 0;
	const char *pre = "/sys/devices/system/node/node";
	while (pre[len])
		path[len] = pre[len], len++;
	if (n >= 10)
		path[len++] = (char)('0' + n / 10);
	path[len++] = (char)('0' + n % 10);
	path[len++] = '/';
	for (int i = 0; file[i]; i++)
		path[len++] = file[i];
	path[len] = 0;
}

/* Node n's row of the distance table: "10 21 21 10". */
static void read_distances(int n, char *buf, size_t cap)
{
	char path[64];
	node_path(path, n, "distance");
	if (os_read_file(path, buf, cap) <= 0)
		return;
	const char *s = buf;
	for (int m = 0; m < NUMA_MAX_NODES && *s; m++) {
		int v;
		while (*s == ' ')
			s++;
		if (!(s = parse_uint(s, &v)))
			break;
		numa_topo.distance[n][m] = (uint8_t)(v > 255 ? 255 : v);
	}
}

/*
 * The CPUs of node n (which need not have memory), and its distances if it
 * has memory. Returns the highest CPU id it has, or maxcpu if higher.
 */
static int read_node(int n, char *buf, size_t cap, int maxcpu)
{
	char path[64];
	uint64_t cpus[NUMA_MAX_CPUS / 64];
	node_path(path, n, "cpulist");
	if (os_read_file(path, buf, cap) < 0)
		return maxcpu;
	if (numa_parse_list(buf, cpus, NUMA_MAX_CPUS) < 0)
		return maxcpu;
	/* A CPU of a memoryless node belongs to the nearest node with memory:
	 * approximated by node 0 if absent; distances refine below. */
	int home = n < NUMA_MAX_NODES && (numa_topo.node_mask & (1u << n)) ? n : -2 - n;
	for (int c = 0; c < NUMA_MAX_CPUS; c++)
		if (cpus[c / 64] & (1ull << (c % 64))) {
			numa_topo.cpu_node[c] = (int16_t)(home >= 0 ? home : 0);
			if (c > maxcpu)
				maxcpu = c;
		}
	if (n < NUMA_MAX_NODES && home >= 0)
		read_distances(n, buf, cap);
	return maxcpu;
}

/*
 * How many CPU ids there may be: past the highest one a node has, the
 * hot-pluggable ones (their ids are below the possible count) and what
 * sysconf says is configured. CPUs no node claimed go to the lowest node
 * with memory.
 */
static void count_cpus(int maxcpu, char *buf, size_t cap)
{
	uint64_t cpus[NUMA_MAX_CPUS / 64];
	long conf = sysconf(_SC_NPROCESSORS_CONF);
	numa_topo.ncpus = maxcpu + 1;
	if (os_read_file("/sys/devices/system/cpu/possible", buf, cap) > 0 &&
	    numa_parse_list(buf, cpus, NUMA_MAX_CPUS) > 0)
		for (int c = NUMA_MAX_CPUS - 1; c >= 0; c--)
			if (cpus[c / 64] & (1ull << (c % 64))) {
				if (c + 1 > numa_topo.ncpus)
					numa_topo.ncpus = c + 1;
				break;
			}
	if (conf > numa_topo.ncpus && conf <= NUMA_MAX_CPUS)
		numa_topo.ncpus = (int)conf;
	if (numa_topo.ncpus <= 0)
		numa_topo.ncpus = 1;
	for (int c = 0; c < numa_topo.ncpus; c++)
		if (numa_topo.cpu_node[c] < 0)
			numa_topo.cpu_node[c] = (int16_t)(31 - __builtin_clz(numa_topo.node_mask & -numa_topo.node_mask));
}

void numa_init(void)
{
	char buf[4096];
	uint64_t nodes[1];

	for (int c = 0; c < NUMA_MAX_CPUS; c++)
		numa_topo.cpu_node[c] = -1;
	if (os_read_file("/sys/devices/system/node/has_memory", buf, sizeof buf) <= 0 &&
	    os_read_file("/sys/devices/system/node/online", buf, sizeof buf) <= 0) {
		one_node();
		return;
	}
	if (numa_parse_list(buf, nodes, NUMA_MAX_NODES) <= 0) {
		one_node();
		return;
	}
	numa_topo.node_mask = (uint32_t)nodes[0];
	numa_topo.nnodes = (int)nh_popcount64(numa_topo.node_mask);
	numa_topo.max_node = 31 - __builtin_clz(numa_topo.node_mask);

	/* Nodes without memory still own CPUs; read every online node. */
	int maxcpu = -1;
	for (int n = 0; n < 64 && n < NUMA_MAX_NODES * 4; n++)
		maxcpu = read_node(n, buf, sizeof buf, maxcpu);
	count_cpus(maxcpu, buf, sizeof buf);
}

int numa_bind(void *p, size_t n, int node, enum numa_bind_mode mode, uint32_t interleave_mask)
{
	/* Basic system calls only (os.h): the kernel's first touch places it. */
	if (numa_topo.nnodes <= 1 || os_basic_syscalls)
		return 0;
	unsigned long mask[NUMA_MAX_NODES / (8 * sizeof(unsigned long)) + 1] = {0};
	int policy;
	switch (mode) {
	case NUMA_BIND_STRICT:
		policy = MPOL_BIND;
		mask[0] = 1ul << node;
		break;
	case NUMA_BIND_INTERLEAVE:
		policy = MPOL_INTERLEAVE;
		mask[0] = interleave_mask;
		break;
	default:
		policy = MPOL_PREFERRED;
		mask[0] = 1ul << node;
		break;
	}
	NH_KSTAT_INC(mbind);
	long r = syscall(SYS_mbind, p, n, policy, mask, NUMA_MAX_NODES + 1, 0);
	return r == 0 ? 0 : -errno;
}

#define MPOL_MF_MOVE (1 << 1)

int numa_move_page(void *p, int node)
{
	int status = -1;
	if (os_basic_syscalls)
		return -EPERM;
	NH_KSTAT_INC(move_pages);
	long r = syscall(SYS_move_pages, 0, 1ul, &p, &node, &status, MPOL_MF_MOVE);
	if (r != 0)
		return -errno;
	return status == node ? 0 : (status < 0 ? status : -EAGAIN);
}
