/*
 * api.h — the C allocation API under its own names (api.c).
 *
 * api.c defines malloc as nh_malloc, free as nh_free, and so on, and
 * exports each under its C name as an alias (NH_EXPORT): one function, two
 * symbols. Inside the library, code calls the nh_ name (cxx.c's operator
 * new, realloc's move), which is hidden and so reached without the PLT.
 *
 * A build with NH_PREFIX=nh_ (the fuzz and TSan builds, which run beside
 * the sanitizer's own malloc) exports the nh_ functions under those names
 * and replaces nothing. Other prefixes are refused: stats.c's mallinfo2 and
 * the rest take the prefix through NH_NAME, and the two must agree.
 */
#ifndef NUMAHEAP_API_H
#define NUMAHEAP_API_H

#include "internal.h"

#ifdef NH_PREFIX
#define NH_PREFIX_IS_nh_ 1
#if !NH_CAT(NH_PREFIX_IS_, NH_PREFIX)
#error "NH_PREFIX must be nh_ (api.c exports its nh_ functions under their own names)"
#endif
#define NH_API_FN NH_API /* the nh_ names are the exported ones */
#define NH_EXPORT(name, fn)
#else
#define NH_API_FN
/* Export fn (defined in the same file) under the name name as well. */
#define NH_EXPORT(name, fn) extern __typeof__(fn) name __attribute__((alias(#fn), visibility("default")))
#endif

NH_API_FN void *nh_malloc(size_t n);
/* malloc's entry with heap profiling on, which is all of malloc (api.c). */
void *api_malloc_prof_entry(void);
NH_API_FN void nh_free(void *ptr);
NH_API_FN void *nh_calloc(size_t nmemb, size_t size);
NH_API_FN void *nh_realloc(void *ptr, size_t n);
NH_API_FN void *nh_reallocarray(void *ptr, size_t nmemb, size_t size);
NH_API_FN int nh_posix_memalign(void **memptr, size_t align, size_t n);
NH_API_FN void *nh_aligned_alloc(size_t align, size_t n);
NH_API_FN void *nh_memalign(size_t align, size_t n);
NH_API_FN void *nh_valloc(size_t n);
NH_API_FN void *nh_pvalloc(size_t n);
NH_API_FN size_t nh_malloc_usable_size(void *ptr);
NH_API_FN void nh_free_sized(void *ptr, size_t size);
NH_API_FN void nh_free_aligned_sized(void *ptr, size_t align, size_t size);
NH_API_FN int nh_malloc_trim(size_t pad);
NH_API_FN int nh_mallopt(int param, int value);

#endif /* NUMAHEAP_API_H */
