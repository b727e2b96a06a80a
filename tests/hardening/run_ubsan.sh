#!/bin/sh
# run_ubsan.sh DIR PROGRAM [VAR=VALUE...] — run a test program (linked with
# libnumaheap.so) on the UBSan build of the library in DIR, which the
# program's RUNPATH yields to through LD_LIBRARY_PATH. Fails if the program
# does not load that library, if any test fails, or on any UBSan report.
set -u
dir=$1
prog=$2
shift 2
lib=$(LD_LIBRARY_PATH=$dir ldd "$prog" | awk '/libnumaheap\.so/ {print $3}')
case "$lib" in
"$dir"/*) ;;
*) echo "run_ubsan: $prog loads '$lib', not the UBSan build in $dir" >&2; exit 1 ;;
esac
if ! ldd "$lib" | grep -q libubsan; then
	echo "run_ubsan: $lib is not linked with libubsan" >&2
	exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
env "$@" LD_LIBRARY_PATH="$dir" UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=0 \
	"$prog" >"$log" 2>&1
rc=$?
if grep -q "runtime error:" "$log"; then
	grep -B2 -A20 "runtime error:" "$log" | head -60
	echo "run_ubsan: undefined behaviour reported" >&2
	exit 1
fi
tail -3 "$log"
[ $rc -eq 0 ] || { cat "$log" | tail -60; echo "run_ubsan: $prog exited $rc" >&2; }
exit $rc
