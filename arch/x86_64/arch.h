/* arch/x86_64/arch.h — x86-64 implementation of arch.h; see arch.h. */
#ifndef NUMAHEAP_ARCH_X86_64_H
#define NUMAHEAP_ARCH_X86_64_H

#ifndef __x86_64__
#error "arch/x86_64 built for another architecture"
#endif

#define NH_CACHE_LINE 64

static inline void nh_cpu_relax(void) { __builtin_ia32_pause(); }

static inline uint64_t nh_cycles(void) { return __builtin_ia32_rdtsc(); }

#endif
