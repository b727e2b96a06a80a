/*
 * sizeclass.h — from a request size to its size class (sizeclass.c, sizeclasses.h).
 */
#ifndef NUMAHEAP_SIZECLASS_H
#define NUMAHEAP_SIZECLASS_H

#include "internal.h"

/* Apply NUMAHEAP_MIN_ALIGN to the size-to-class table (sizeclass.c). */
void sizeclass_init(void);

NH_INLINE unsigned nh_size_to_class(size_t n)
{
	if (n <= NH_SMALL_SIZE_MAX)
		return nh_size_to_class8[(n + NH_SMALL_SIZE_DIV - 1) / NH_SMALL_SIZE_DIV];
	return nh_size_to_class128[(n - NH_SMALL_SIZE_MAX + NH_LARGE_SIZE_DIV - 1) / NH_LARGE_SIZE_DIV];
}

#endif /* NUMAHEAP_SIZECLASS_H */
