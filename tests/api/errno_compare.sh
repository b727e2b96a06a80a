#!/bin/sh
# errno_compare.sh PROBE LIBNUMAHEAP — run errno_probe on glibc's malloc and
# with numaheap preloaded (in the environment's mode) and compare what each
# entry point returned and left in errno. The only differences allowed are
# the ones docs/migration.md lists as on purpose, in errno_expected_diff.txt.
set -eu
probe=$1 lib=$2 allowed=$(dirname "$0")/errno_expected_diff.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
env -u LD_PRELOAD NUMAHEAP_HARDENED= "$probe" >"$tmp/glibc"
LD_PRELOAD="$lib" "$probe" >"$tmp/numaheap"
n=$(wc -l <"$tmp/glibc")
[ "$n" -ge 50 ] || { echo "errno_compare: the probe printed only $n lines"; exit 1; }
# Lines where numaheap differs, minus the allowed ones.
grep -vxF -f "$tmp/glibc" "$tmp/numaheap" >"$tmp/diff" || true
grep -vxF -f "$allowed" "$tmp/diff" >"$tmp/bad" || true
if [ -s "$tmp/bad" ]; then
	echo "errno_compare: numaheap differs from glibc:"
	diff "$tmp/glibc" "$tmp/numaheap" || true
	exit 1
fi
echo "errno_compare: $n calls compared, $(wc -l <"$tmp/diff") differences, all documented"
