// cpu_pin.h — keeping a test on one CPU, so that its mallocs and frees
// share one per-CPU cache (shared by the api and hardening tests), and
// picking two CPUs for a test that needs two caches (first_two_cpus and
// pin_to_cpu are C too: stress/pinned_prog.c).
#pragma once

#include <sched.h>

// The first two CPUs the calling thread may run on, in *a and *b; 0 if it
// may run on one only.
static inline int first_two_cpus(int *a, int *b)
{
	cpu_set_t s;
	*a = *b = -1;
	if (sched_getaffinity(0, sizeof s, &s) != 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE && *b < 0; c++) {
		if (!CPU_ISSET(c, &s))
			continue;
		if (*a < 0)
			*a = c;
		else
			*b = c;
	}
	return *b >= 0;
}

// The calling thread on cpu alone; 0 or -1.
static inline int pin_to_cpu(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return sched_setaffinity(0, sizeof s, &s);
}

#ifdef __cplusplus

// The calling thread (and the threads it starts from now on) on the CPU it
// runs on now.
inline void pin_to_current_cpu()
{
	int cpu = sched_getcpu();
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu < 0 ? 0 : cpu, &s);
	sched_setaffinity(0, sizeof s, &s);
}

// The same for a scope: the thread's affinity comes back at its end.
class PinnedToCurrentCpu {
public:
	PinnedToCurrentCpu()
	{
		ok_ = sched_getaffinity(0, sizeof saved_, &saved_) == 0;
		pin_to_current_cpu();
	}
	~PinnedToCurrentCpu()
	{
		if (ok_)
			sched_setaffinity(0, sizeof saved_, &saved_);
	}
	PinnedToCurrentCpu(const PinnedToCurrentCpu &) = delete;
	PinnedToCurrentCpu &operator=(const PinnedToCurrentCpu &) = delete;

private:
	cpu_set_t saved_;
	bool ok_;
};
#endif
