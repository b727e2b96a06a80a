/*
 * deepbind_plugin.c — a plugin for deepbind_test.cc, opened with
 * RTLD_DEEPBIND: its malloc, realloc and free are whatever its own lookup
 * scope binds them to (libc's, unless numaheap's dlopen cleared the flag).
 */
#include <stdlib.h>

void *plugin_malloc(size_t n) { return malloc(n); }
void *plugin_realloc(void *p, size_t n) { return realloc(p, n); }
void plugin_free(void *p) { free(p); }
/* The free this object's calls reach. */
void *plugin_free_fn(void) { return (void *)free; }
