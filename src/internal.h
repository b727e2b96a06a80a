/*
 * internal.h — the constants every part of numaheap shares: compiler
 * attributes, the public names, and the shape of the address space (node
 * slices, arenas, huge pages). Types and functions live in the header of
 * their concept (mheap.h, mcache.h, ...); docs/design.md has the map.
 */
#ifndef NUMAHEAP_INTERNAL_H
#define NUMAHEAP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "sizeclasses.h"

#define NH_LIKELY(x) __builtin_expect(!!(x), 1)
#define NH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NH_NOINLINE __attribute__((noinline))
#define NH_COLD __attribute__((cold, noinline))
#define NH_INLINE static inline __attribute__((always_inline))
#define NH_HIDDEN __attribute__((visibility("hidden")))
#define NH_ALIGNED(n) __attribute__((aligned(n)))
#define NH_NORETURN __attribute__((noreturn))

/*
 * The public names. A build with NH_PREFIX=x_ exports x_malloc, x_free...
 * instead of replacing malloc (and no C++ operators): the sanitizer builds
 * of the tests run numaheap that way, beside the sanitizer's own malloc.
 */
#define NH_CAT2(a, b) a##b
#define NH_CAT(a, b) NH_CAT2(a, b)
#ifdef NH_PREFIX
#define NH_NAME(x) NH_CAT(NH_PREFIX, x)
#else
#define NH_NAME(x) x
#endif
#define NH_API __attribute__((visibility("default")))

#define NH_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NH_MAX(a, b) ((a) > (b) ? (a) : (b))


/* ------------------------------------------------------------------------
 * The address space.
 *
 * Every node's heap lives in its own 2 TiB slice of virtual address space,
 * starting at NH_HEAP_BASE. The slice of a pointer is therefore its node, the
 * heap's range check is one subtraction and compare, and a pointer outside
 * [NH_HEAP_BASE, NH_HEAP_END) was not handed out by numaheap. Arenas are
 * mapped at fixed addresses inside the slice (MAP_FIXED_NOREPLACE, moving on
 * when something else lives there), growing upwards from the slice's start.
 *
 *   NH_HEAP_BASE                                               NH_HEAP_END
 *   | node 0: 2 TiB | node 1: 2 TiB | ...                | node 15 |
 *     |arena|arena|...   64 MiB each, 8192 pages of 8 KiB
 * ------------------------------------------------------------------------ */
#define NH_HEAP_BASE ((uintptr_t)0x100000000000ULL) /* 16 TiB */
#define NH_NODE_SHIFT 41			    /* 2 TiB per node */
#define NH_MAX_NODES 16
#define NH_HEAP_RANGE ((uintptr_t)NH_MAX_NODES << NH_NODE_SHIFT)
#define NH_HEAP_END (NH_HEAP_BASE + NH_HEAP_RANGE)

#define NH_ARENA_SHIFT 26 /* 64 MiB arenas */
#define NH_ARENA_BYTES ((uintptr_t)1 << NH_ARENA_SHIFT)
#define NH_PAGES_PER_ARENA (NH_ARENA_BYTES >> NH_PAGE_SHIFT) /* 8192 */
#define NH_ARENAS_PER_NODE ((uintptr_t)1 << (NH_NODE_SHIFT - NH_ARENA_SHIFT))

#define NH_HUGE_SHIFT 21 /* 2 MiB transparent huge pages */
#define NH_HUGE_BYTES ((uintptr_t)1 << NH_HUGE_SHIFT)
#define NH_PAGES_PER_HUGE (NH_HUGE_BYTES >> NH_PAGE_SHIFT) /* 256 */

#define NH_MAX_CPUS 1024

/*
 * A P's cache has a header for every node and class (mcache.h), at this
 * byte offset of its slab; free's page table (arena.h) holds it for each
 * page of a small span, so a free knows both without another load.
 */
#define NH_HOFF(node, cls) ((((unsigned)(node)) * NH_NUM_CLASSES + (unsigned)(cls)) << 4)

/* The large-span cache of each node (mheap.c): spans up to 256 KiB, at most
 * 16 of one size, 4 MiB in all. */
#define NH_LARGE_CACHE_PAGES 32
#define NH_LARGE_CACHE_DEPTH 16
#define NH_LARGE_CACHE_BYTES ((size_t)4 << 20)

/*
 * Large objects the cache can hold are rounded the way size classes are:
 * exact up to 16 pages, to an even number of pages above (at most 1/17
 * more, finer than tcmalloc's or jemalloc's classes). Half as many sizes
 * above 16 pages, so a freed span fits a later request more often (rptest:
 * 57% of large mallocs served by the cache instead of 48% at 2 MiB, 80% at
 * 4 MiB), and the usable size stays a function of the request:
 * malloc(malloc_usable_size(p)) gets the same size.
 */
NH_INLINE size_t large_round_pages(size_t npages)
{
	return npages > 16 && npages <= NH_LARGE_CACHE_PAGES ? (npages + 1) & ~(size_t)1 : npages;
}

/* The start of each node's heap that stays on base pages, and the start
 * that begins on base pages and is made huge once the heap stops growing
 * where the program fills it (arena.c). */
#define NH_SMALL_HEAP_BYTES ((uintptr_t)4 << 20)
#define NH_SMALL_HEAP_BASE_BYTES ((uintptr_t)16 << 20)

#endif /* NUMAHEAP_INTERNAL_H */
