#!/bin/sh
# prof_check.sh PROG LIB — the heap profile against the truth.
#
# Runs prof_prog under numaheap (preloaded) with NUMAHEAP_PROF=1, then reads
# the profile with `go tool pprof -top` (a real pprof client) and checks that
# each call site's share of the in-use bytes is within 10% of what prof_prog
# allocated there (50%, 30%, 20% of 96 MiB), that the churning site holds
# nothing in use but shows in alloc_space, and that every sample has a
# numa_node label. Also writes the gperftools text format and checks the
# same shares from it.
set -eu
prog=$1 lib=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v go >/dev/null || { echo "prof_check: go (Debian golang-go) is not installed: tools/install-deps.sh installs it"; exit 1; }
export GOCACHE="$tmp/gocache" HOME="$tmp"

LD_PRELOAD=$lib NUMAHEAP_PROF=1 "$prog" "$tmp/prof.pb.gz" >"$tmp/truth"
LD_PRELOAD=$lib NUMAHEAP_PROF=1 "$prog" "$tmp/prof.heap" >/dev/null
[ -s "$tmp/prof.pb.gz" ] || { echo "prof_check: no profile written"; exit 1; }

share() { # share FILE-OF-TOP FUNCTION: the function's flat share of the total, 0-1
	awk -v f="$2" '$NF == f { v = $1 } /^Showing nodes accounting for/ { for (i = 1; i <= NF; i++) if ($i == "total") t = $(i - 1) }
		END { printf "%s %s\n", v, t }' "$1"
}
to_bytes() { # "12.5MB" -> bytes
	echo "$1" | awk '{ n = $1 + 0; u = $1; gsub(/[0-9.]/, "", u);
		m = u == "kB" ? 1e3 : u == "MB" ? 1e6 : u == "GB" ? 1e9 : u == "B" || u == "" ? 1 : -1;
		if (u == "KB") m = 1024; printf "%.0f\n", n * m }'
}
check() { # check LABEL TOPFILE
	fail=0
	total=$(awk '/^Showing nodes accounting for/ { for (i = 1; i <= NF; i++) if ($i == "total") print $(i - 1) }' "$2")
	total=$(to_bytes "$total")
	for site in site_small site_medium site_large; do
		want=$(awk -v s=$site '$1 == s { print $2 }' "$tmp/truth")
		got=$(awk -v f=$site '$NF == f { print $1 }' "$2")
		got=$(to_bytes "${got:-0}")
		echo "$1: $site in use $got bytes, truth $want" | awk '{ printf "%s (%.3f of the truth)\n", $0, $6 / $9 }'
		awk -v g="$got" -v w="$want" 'BEGIN { exit !(g >= 0.9 * w && g <= 1.1 * w) }' || fail=1
	done
	[ "$fail" = 0 ] || { echo "prof_check: $1: a site is off by more than 10%"; cat "$2"; exit 1; }
}

go tool pprof -top -sample_index=inuse_space -nodecount=50 "$prog" "$tmp/prof.pb.gz" >"$tmp/top" 2>"$tmp/err" ||
	{ cat "$tmp/err"; exit 1; }
check "pprof inuse_space" "$tmp/top"
go tool pprof -top -sample_index=alloc_space -nodecount=50 "$prog" "$tmp/prof.pb.gz" >"$tmp/alloc" 2>/dev/null
churn=$(awk '$NF == "site_churn" { print $1 }' "$tmp/alloc")
[ -n "$churn" ] || { echo "prof_check: site_churn missing from alloc_space"; cat "$tmp/alloc"; exit 1; }
echo "pprof alloc_space: site_churn allocated $churn"
inuse_churn=$(awk '$NF == "site_churn" { print $1 }' "$tmp/top")
[ -z "$inuse_churn" ] || [ "$(to_bytes "$inuse_churn")" -lt 1048576 ] ||
	{ echo "prof_check: site_churn holds $inuse_churn in use, freed all"; exit 1; }
go tool pprof -raw "$prog" "$tmp/prof.pb.gz" >"$tmp/raw" 2>/dev/null
samples=$(awk '/^Samples:/ { on = 1; next } /^Locations/ { on = 0 } on && /^ *[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+:/ { n++ } END { print n + 0 }' "$tmp/raw")
labelled=$(grep -c "numa_node:\[" "$tmp/raw" || true)
echo "pprof -raw: $samples samples, $labelled numa_node labels"
[ "$samples" -gt 0 ] && [ "$labelled" -ge "$samples" ] || { echo "prof_check: samples without a numa_node label"; exit 1; }

# gperftools' text format, read by the same pprof.
go tool pprof -top -nodecount=50 "$prog" "$tmp/prof.heap" >"$tmp/toptext" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
check "text format" "$tmp/toptext"
echo "prof_check: ok"
