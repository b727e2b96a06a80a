/*
 * A consumer of an installed numaheap: built by tests/override/install_test.sh
 * with find_package(numaheap) (CMakeLists.txt here) and with pkg-config.
 * Prints "consumer: ok <path of the object that defines numaheap_version>".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <numaheap.h>

int main(void)
{
	char *p = malloc(100);
	if (!p || numaheap_node_of(p) < 0) {
		fprintf(stderr, "consumer: malloc is not numaheap's\n");
		return 1;
	}
	strcpy(p, "hello");
	p = realloc(p, 1 << 20);
	if (!p || numaheap_node_of(p) < 0 || strcmp(p, "hello") != 0) {
		fprintf(stderr, "consumer: realloc failed\n");
		return 1;
	}
	free(p);
	if (strcmp(numaheap_version(), NUMAHEAP_VERSION_STRING) != 0) {
		fprintf(stderr, "consumer: header %s, library %s\n", NUMAHEAP_VERSION_STRING, numaheap_version());
		return 1;
	}
	char buf[64];
	if (numaheap_stats_json(buf, sizeof buf) < sizeof buf) {
		fprintf(stderr, "consumer: statistics too short\n");
		return 1;
	}
	Dl_info info;
	const char *from = "?";
	if (dladdr((void *)numaheap_version, &info) && info.dli_fname)
		from = info.dli_fname;
	printf("consumer: ok %s\n", from);
	return 0;
}
