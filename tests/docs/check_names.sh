#!/bin/sh
# check_names.sh ROOT — every NUMAHEAP_* environment variable the library
# mentions is documented in docs/tuning.md.
#
# Names are collected from src/ numa/ arch/ include/ (whole identifiers,
# NUMAHEAP_[A-Z0-9_]+) and from src/options.def (NH_OPT(NAME, ...) means
# NUMAHEAP_NAME). C macros are not environment variables: names that appear
# after #define/#ifndef/#ifdef/#undef/defined( (header guards, version
# macros) are left out. Each remaining name must appear in docs/tuning.md
# as a whole word.
set -u
root=${1:?usage: check_names.sh ROOT}
doc="$root/docs/tuning.md"
[ -f "$doc" ] || { echo "FAIL: $doc is missing"; exit 1; }
dirs="$root/src $root/numa $root/arch $root/include"

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

grep -rhoE 'NUMAHEAP_[A-Z0-9_]*[A-Z0-9]' $dirs | sort -u >"$tmp/all"
sed -n 's/^NH_OPT(\([A-Z0-9_]*\),.*/NUMAHEAP_\1/p' "$root/src/options.def" | sort -u >"$tmp/opts"
grep -rhoE '(#[[:space:]]*(define|ifndef|ifdef|undef)[[:space:]]+|defined[[:space:]]*\(?[[:space:]]*)NUMAHEAP_[A-Z0-9_]+' $dirs |
	grep -oE 'NUMAHEAP_[A-Z0-9_]+' | sort -u >"$tmp/macros"

[ -s "$tmp/opts" ] || { echo "FAIL: no NH_OPT entries found in src/options.def"; exit 1; }
sort -u "$tmp/all" "$tmp/opts" | comm -23 - "$tmp/macros" >"$tmp/vars"

n=0
missing=0
while read -r v; do
	n=$((n + 1))
	if grep -qE "(^|[^A-Z0-9_])$v([^A-Z0-9_]|\$)" "$doc"; then
		:
	else
		echo "FAIL: $v is used by the library but not documented in docs/tuning.md"
		missing=$((missing + 1))
	fi
done <"$tmp/vars"
echo "checked $n NUMAHEAP_* variables (left out as C macros: $(tr '\n' ' ' <"$tmp/macros"))"
if [ $missing -ne 0 ]; then
	echo "$missing undocumented; document them in docs/tuning.md (tools/gen-docs regenerates the table of src/options.def)"
	exit 1
fi
[ $n -ge $(wc -l <"$tmp/opts") ] || { echo "FAIL: fewer names than options"; exit 1; }
echo "all documented"
