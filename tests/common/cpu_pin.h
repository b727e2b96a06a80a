// cpu_pin.h — keeping a test on one CPU, so that its mallocs and frees
// share one per-CPU cache (shared by the api and hardening tests).
#pragma once

#include <sched.h>

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
