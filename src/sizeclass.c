/*
 * sizeclass.c — the run-time size-to-class table.
 *
 * Owns nh_size_to_class8, the table malloc's fast path reads (the rest of
 * the size-class tables are constants in the generated sizeclasses.h). It is
 * the generated table, writable for one reason: NUMAHEAP_MIN_ALIGN=8 sends
 * requests of 0-8 bytes to the 8-byte class instead of the 16-byte one, for
 * programs that want the memory and do not rely on glibc's 16-byte minimum
 * alignment. Written once, at initialisation; a malloc racing with that
 * write (a thread that started before numaheap initialised) gets one of two
 * valid classes.
 */

#include "options.h"

#include "report.h"

uint8_t nh_size_to_class8[NH_SIZE_TO_CLASS8_LEN] NH_ALIGNED(64) = NH_SIZE_TO_CLASS8_INIT;

void sizeclass_init(void)
{
	int64_t a = NH_OPTION(MIN_ALIGN);
	if (a != 8 && a != 16) {
		nh_warn("NUMAHEAP_MIN_ALIGN=%lld: 8 or 16, default 16 kept", (long long)a);
		return;
	}
	if (a == 8) {
		nh_size_to_class8[0] = 1;
		nh_size_to_class8[1] = 1;
	}
}
