/*
 * onnode_prog.c — numaheap's own API under the settings `numaheap run`
 * passes: numaheap_malloc_onnode (small and large) and free, then plain
 * malloc/free. Linked with libnumaheap.so (the API lives there). Exits 0
 * and prints "onnode_prog: ok" when every object is usable and freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numaheap.h"

int main(void)
{
	static const size_t sizes[] = {1, 8, 100, 4096, 32768, 40000, 100000, 1 << 20};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *p = numaheap_malloc_onnode(sizes[i], 0);
		if (!p) {
			fprintf(stderr, "onnode_prog: numaheap_malloc_onnode(%zu, 0) failed\n", sizes[i]);
			return 1;
		}
		memset(p, 0x5a, sizes[i]);
		if (numaheap_node_of(p) < 0) {
			fprintf(stderr, "onnode_prog: %p (size %zu) not numaheap's\n", (void *)p, sizes[i]);
			return 1;
		}
		free(p);
	}
	char *q = malloc(100);
	if (!q)
		return 1;
	memset(q, 1, 100);
	free(q);
	printf("onnode_prog: ok\n");
	return 0;
}
