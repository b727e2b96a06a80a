#!/bin/sh
# run_memcheck.sh VALGRIND PROGRAM [ARGS...] — valgrind memcheck on a test
# program with numaheap as its allocator: valgrind's malloc replacement is
# kept to libc (somalloc=nouserintercepts), so memcheck checks numaheap's own
# code (uninitialised values, invalid accesses, bad system call arguments)
# and the program's use of numaheap's memory as plain mapped memory.
# Fair scheduling: valgrind runs one thread at a time, and with its default
# lock a thread that sleeps (the soaks' main thread and RSS sampler) could
# wait minutes for its turn behind busy ones: a 20 s soak ran 375 s and
# missed its samples.
set -u
vg=$1
shift
if [ -z "$vg" ] || [ ! -x "$vg" ]; then
	echo "run_memcheck: valgrind not found (tools/install-deps.sh installs it)" >&2
	exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$vg" -q --fair-sched=yes --error-exitcode=99 --soname-synonyms=somalloc=nouserintercepts --child-silent-after-fork=yes \
	--track-origins=no "$@" >"$log" 2>&1
rc=$?
if grep -q "^==[0-9]*== " "$log"; then
	grep "^==[0-9]*== " "$log" | head -80
	echo "run_memcheck: memcheck reported errors" >&2
	exit 1
fi
tail -3 "$log"
[ $rc -eq 0 ] || { tail -60 "$log"; echo "run_memcheck: exit status $rc" >&2; }
exit $rc
