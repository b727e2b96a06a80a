/*
 * fault.h — fault injection, compiled into test builds only.
 *
 * A library built with NH_FAULT_INJECTION (the numaheap_fi target, used by
 * tests) reads NUMAHEAP_FAULT=name[,name...] at start-up, and nh_fault(name)
 * is true for the listed failures, so tests reproduce each one:
 *
 *   mmap          arena and metadata mappings fail (ENOMEM)
 *   commit        making reserved memory ready fails (the commit limit)
 *   mbind         binding memory to a node fails
 *   io_uring      setting up the scavenger's ring fails
 *   thread        the background thread cannot be created
 *   madvise       releasing memory to the OS fails
 *
 * In release builds nh_fault() is the constant false and NUMAHEAP_FAULT is
 * an unknown variable like any other.
 */
#ifndef NUMAHEAP_FAULT_H
#define NUMAHEAP_FAULT_H

#include <stdbool.h>

#ifdef NH_FAULT_INJECTION
bool nh_fault(const char *name);
void nh_fault_init(const char *spec);
#else
#define nh_fault(name) false
#endif

#endif
