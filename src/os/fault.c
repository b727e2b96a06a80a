/*
 * fault.c — the fault-injection switchboard of test builds; see fault.h.
 */
#include "os/fault.h"
#ifdef NH_FAULT_INJECTION
#include <string.h>

static char spec[256];

void nh_fault_init(const char *s)
{
	size_t n = strlen(s);
	if (n >= sizeof spec)
		n = sizeof spec - 1;
	memcpy(spec, s, n);
	spec[n] = 0;
}

bool nh_fault(const char *name)
{
	size_t n = strlen(name);
	for (const char *p = spec; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}
#endif
