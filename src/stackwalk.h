/*
 * stackwalk.h — a fast stack walk for heap profiles (stackwalk.c).
 *
 * libgcc's _Unwind_Backtrace interprets each frame's DWARF call-frame
 * program from the start every time: ~1,500 instructions a frame, ~15,000
 * a sample, which made the samples most of what profiling costs on
 * allocation-heavy programs. This walker reads the same .eh_frame tables
 * (found through _dl_find_object and .eh_frame_hdr) but keeps, per code
 * address, the one rule a walk needs (where the CFA is, where %rbp was
 * saved; the return address is at CFA - 8 on x86-64) in a table, so a
 * frame seen before costs a hash lookup and two loads.
 *
 * x86-64 only. It declines (returns -1) whatever it does not handle:
 * another architecture, a glibc without _dl_find_object, call-frame
 * programs with expressions or registers other than %rsp/%rbp for the CFA,
 * signal frames, 64-bit DWARF. The caller then walks with libgcc.
 */
#ifndef NUMAHEAP_STACKWALK_H
#define NUMAHEAP_STACKWALK_H

#include <stdbool.h>
#include <stdint.h>

/* Map the rule table; false if the walker is not available here. Once, at
 * profiling's initialisation. */
bool nh_unwind_init(void);

/* How many objects the process has unloaded so far (dl_iterate_phdr's
 * count; 0 where the walker is not available). It takes the dynamic
 * linker's list lock, which a thread may hold while it calls malloc (from a
 * dl_iterate_phdr callback): call it holding no allocator lock. */
uint64_t nh_unwind_unloads(void);

/* The calling thread's stack: pcs[0] an address inside this function's
 * caller chain's innermost frame (nh_unwind's own), then the return
 * addresses outwards, at most max. unloads: nh_unwind_unloads(), read just
 * before; rules kept from before an unload are read again. The count, or
 * -1 if this walker cannot walk this stack (see above). No malloc, no
 * system call, no lock of the dynamic linker's; the rule table is not
 * locked: the caller serialises calls (prof.c: prof_lock). */
int nh_unwind(uintptr_t *pcs, unsigned max, uint64_t unloads);

#endif /* NUMAHEAP_STACKWALK_H */
