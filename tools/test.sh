#!/bin/sh
# test.sh — the README's test command: install what is missing, build, and
# run every test (ctest). Exit status is ctest's.
#   tools/test.sh [ctest arguments...]     e.g. tools/test.sh -R api
# Says how long the packages and the build took; ctest ends with its own
# "Total Test time". When a test fails, its own failure lines (googletest's
# failures and "[  FAILED  ]", the checks' "FAIL" and "not ok", numa-vm's messages) are printed
# again at the very end, where a log cut to its head and tail still shows them.
set -eu
cd "$(dirname "$0")/.."
t0=$(date +%s)
tools/install-deps.sh --vm
t1=$(date +%s)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
t2=$(date +%s)
echo "test.sh: packages $((t1 - t0)) s, build $((t2 - t1)) s; now ctest"
cd build
rc=0
ctest --output-on-failure -j "$(nproc)" "$@" || rc=$?
if [ "$rc" != 0 ] && [ -f Testing/Temporary/LastTest.log ]; then
	echo "test.sh: ctest failed (exit $rc); the failing tests' own failure lines:"
	# a googletest failure's location and the two lines of its message
	awk '/^([0-9]+: )?(FAIL|\[  FAILED  \]|not ok|numa-vm: )/ { print; more = 0; next }
		/: Failure$/ { print; more = 2; next }
		more > 0 { print; more-- }' Testing/Temporary/LastTest.log | cut -c1-400 | head -n 80 || true
fi
exit "$rc"
