#!/bin/sh
# prof_check.sh PROG LIB — numaheap's heap profile against the truth, read by
# real pprof clients.
#
# prof_prog allocates from three call sites, 50%, 30% and 20% of 96 MiB kept
# live, and from a fourth that frees everything it allocates. Under numaheap
# (preloaded, NUMAHEAP_PROF=1) its profile is read with `go tool pprof -top`
# (Debian golang-go): each site's in-use bytes must be within 10% of the
# truth (and those of three smaller sites, through calloc, aligned_alloc
# and a class past malloc's fast path, within 15%: they have fewer
# samples), the churning site must hold nothing in use but show in
# alloc_space, and every sample must carry a numa_node label. The same run
# in gperftools' text format (a .heap file) must give the same figures, and
# gperftools' own heap profiler (libtcmalloc.so.4, HEAPPROFILE) on the same
# program must rank the sites the same way.
#
# The sampling rate is 16 KiB here, not the default 512 KiB: with 96 MiB
# live that is thousands of samples per site, a standard error near 2%, so
# the 10% bound is five standard errors wide and the test does not flake.
set -eu
prog=$1 lib=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v go >/dev/null || { echo "prof_check: go (Debian golang-go) is not installed: tools/install-deps.sh installs it"; exit 1; }
export GOCACHE="$tmp/gocache" HOME="$tmp" GOFLAGS= GOTOOLCHAIN=local

export NUMAHEAP_PROF_FILE="$tmp/exit.%p.pb.gz" # the dump at exit, beside the explicit one
LD_PRELOAD=$lib NUMAHEAP_PROF=1 NUMAHEAP_PROF_RATE=16K "$prog" "$tmp/prof.pb.gz" >"$tmp/truth"
LD_PRELOAD=$lib NUMAHEAP_PROF=1 NUMAHEAP_PROF_RATE=16K "$prog" "$tmp/prof.heap" >/dev/null
[ -s "$tmp/prof.pb.gz" ] && [ -s "$tmp/prof.heap" ] || { echo "prof_check: no profile written"; exit 1; }

top() { # top FILE [pprof options]: the flat bytes of each function
	f=$1
	shift
	go tool pprof -top -unit=B -nodecount=50 "$@" "$prog" "$f" 2>"$tmp/err" | awk '$1 ~ /^[0-9]+B$/ { sub(/B$/, "", $1); print $NF, $1 }' ||
		{ cat "$tmp/err" >&2; exit 1; }
}

check() { # check LABEL FILE-OF-"function bytes"
	bad=0
	for site in site_small:0.1 site_medium:0.1 site_large:0.1 site_calloc:0.15 site_aligned:0.15 site_mid:0.15; do
		tol=${site#*:} site=${site%:*}
		want=$(awk -v s=$site '$1 == s { print $2 }' "$tmp/truth")
		got=$(awk -v s=$site '$1 == s { print $2 }' "$2")
		got=${got:-0}
		awk -v l="$1" -v s=$site -v g="$got" -v w="$want" -v t="$tol" 'BEGIN {
			printf "%s: %-12s in use %10d bytes, truth %10d (%.3f)\n", l, s, g, w, g / w; exit !(g >= (1 - t) * w && g <= (1 + t) * w) }' || bad=1
	done
	[ "$bad" = 0 ] || { echo "prof_check: $1: a site is off by more than its bound"; cat "$2"; exit 1; }
}

top "$tmp/prof.pb.gz" -sample_index=inuse_space >"$tmp/inuse"
check "pprof, inuse_space" "$tmp/inuse"
top "$tmp/prof.pb.gz" -sample_index=alloc_space >"$tmp/alloc"
churn=$(awk '$1 == "site_churn" { print $2 }' "$tmp/alloc")
[ -n "$churn" ] || { echo "prof_check: site_churn missing from alloc_space"; cat "$tmp/alloc"; exit 1; }
awk -v c="$churn" 'BEGIN { printf "pprof, alloc_space: site_churn allocated %d bytes (truth 100663296)\n", c;
	exit !(c >= 0.9 * 100663296 && c <= 1.1 * 100663296) }' || { echo "prof_check: site_churn's alloc_space is off"; exit 1; }
if awk '$1 == "site_churn" && $2 > 1048576 { found = 1 } END { exit !found }' "$tmp/inuse"; then
	echo "prof_check: site_churn holds memory in use, but it freed everything"
	exit 1
fi
go tool pprof -raw "$prog" "$tmp/prof.pb.gz" >"$tmp/raw" 2>/dev/null
samples=$(awk '/^Samples:/ { on = 1; next } /^Locations/ { on = 0 } on && /^ *[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+: / { n++ } END { print n + 0 }' "$tmp/raw")
labelled=$(grep -c "numa_node:\[" "$tmp/raw" || true)
echo "pprof -raw: $samples samples, $labelled with a numa_node label"
[ "$samples" -gt 0 ] && [ "$labelled" -ge "$samples" ] || { echo "prof_check: samples without a numa_node label"; exit 1; }

top "$tmp/prof.heap" >"$tmp/text"
check "gperftools text format" "$tmp/text"

gp=/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4
[ -e "$gp" ] || { echo "prof_check: $gp (Debian libgoogle-perftools4) is not installed"; exit 1; }
(cd "$tmp" && LD_PRELOAD=$gp HEAPPROFILE="$tmp/gp" "$prog" "$tmp/none" >/dev/null 2>&1)
top "$(ls "$tmp"/gp.*.heap | tail -n 1)" -sample_index=inuse_space >"$tmp/gp"
order() { awk '$1 ~ /^site_/ { print $1 }' "$1" | tr '\n' ' '; }
echo "top sites: numaheap [$(order "$tmp/inuse")], gperftools [$(order "$tmp/gp")]"
[ "$(order "$tmp/inuse")" = "$(order "$tmp/gp")" ] || { echo "prof_check: numaheap and gperftools disagree on the top sites"; exit 1; }
echo "prof_check: ok"
