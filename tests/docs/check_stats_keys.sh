#!/bin/sh
# check_stats_keys.sh TOOL PROGRAM DOC — every key of numaheap's JSON
# statistics is documented in docs/stats.md.
#
# Runs PROGRAM under `numaheap run --json`, lists the key paths of its dump
# with `numaheap stats --keys` (nodes[].mapped_bytes, totals.allocs, ...;
# node ids as <n>), and requires each path, in backquotes, in DOC.
set -u
tool=${1:?usage: check_stats_keys.sh TOOL PROGRAM DOC}
prog=${2:?}
doc=${3:?}
[ -f "$doc" ] || { echo "FAIL: $doc is missing"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

if ! "$tool" run --json --stats-file "$tmp/stats.json" -- "$prog" >"$tmp/out" 2>&1; then
	echo "FAIL: $prog under numaheap run failed:"; cat "$tmp/out"; exit 1
fi
if ! "$tool" stats --keys "$tmp/stats.json" >"$tmp/keys"; then
	echo "FAIL: numaheap stats --keys failed on:"; head -c 2000 "$tmp/stats.json"; exit 1
fi
total=$(wc -l <"$tmp/keys")
if [ "$total" -lt 40 ]; then
	echo "FAIL: only $total keys in the dump:"; cat "$tmp/keys"; exit 1
fi
missing=0
while read -r k; do
	if ! grep -qF "\`$k\`" "$doc"; then
		echo "FAIL: JSON key $k is not documented in docs/stats.md (as \`$k\`)"
		missing=$((missing + 1))
	fi
done <"$tmp/keys"
echo "checked $total JSON key paths"
[ $missing -eq 0 ] || { echo "$missing undocumented"; exit 1; }
echo "all documented"
