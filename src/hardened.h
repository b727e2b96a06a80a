/*
 * hardened.h — hardened mode: canaries, guard pages, shuffled caches
 * (hardened.c). The C API (api.c) calls hardened_* instead of the core
 * while nh_hardened is set.
 */
#ifndef NUMAHEAP_HARDENED_H
#define NUMAHEAP_HARDENED_H

#include "internal.h"

/* Hardened mode (hardened.c). */
#define nh_hardened (nh_fast.hardened)

uint64_t nh_random(void);
void hardened_shuffle(uintptr_t *v, unsigned n);
void *hardened_alloc(size_t n, size_t align, bool zero);
void *hardened_alloc_onnode(size_t n, int node);
void hardened_free(uintptr_t p);
size_t hardened_usable_size(uintptr_t p);
void *hardened_realloc(uintptr_t p, size_t n);

#endif /* NUMAHEAP_HARDENED_H */
