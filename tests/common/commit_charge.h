/*
 * commit_charge.h — what strict overcommit (vm.overcommit_memory=2) charges
 * the calling process: every private writable mapping, in full, whether it
 * was mapped or inherited by fork. Read from /proc/self/maps, so a test
 * can count it without the sysctl. C and C++ (fault_probe.cc,
 * commit_vm_check.c); no heap of its own but stdio's.
 */
#ifndef NUMAHEAP_TESTS_COMMIT_CHARGE_H
#define NUMAHEAP_TESTS_COMMIT_CHARGE_H

#include <stddef.h>
#include <stdio.h>

/* The charge, in bytes; each(line, bytes, arg) is called for every
 * private writable mapping counted (each may be NULL). */
static inline size_t commit_charge_walk(void (*each)(const char *line, size_t bytes, void *arg), void *arg)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	size_t sum = 0;
	unsigned long end = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		/* The file comes in several reads, and the kernel takes each
		 * up again from the end of the last mapping it gave: one that
		 * grew meanwhile (two merged, as numaheap's background thread
		 * makes arena pages ready) is given again from its start, and
		 * was counted twice (CI: 64 MiB of growth read as 148). The
		 * lines are in address order, so only what lies past the
		 * last one counts. */
		if (lo < end)
			lo = end;
		if (hi > end)
			end = hi;
		if (lo < hi && perms[1] == 'w' && perms[3] == 'p') {
			sum += hi - lo;
			if (each)
				each(line, hi - lo, arg);
		}
	}
	if (f)
		fclose(f);
	return sum;
}

static inline size_t commit_charge_bytes(void) { return commit_charge_walk(NULL, NULL); }

#endif /* NUMAHEAP_TESTS_COMMIT_CHARGE_H */
