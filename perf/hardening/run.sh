#!/bin/sh
# perf/hardening/run.sh — the cost of numaheap's always-on checks and of
# NUMAHEAP_HARDENED=1, measured two ways:
#   instructions  callgrind counts per operation, single thread,
#                 NUMAHEAP_PERCPU=0 (valgrind has no rseq): exact, unaffected
#                 by other load on the machine
#   time          process CPU time per operation, best of R runs, default
#                 settings (per-CPU caches): noisy on a loaded machine
# for libnumaheap.so (checks on), libnumaheap_unchecked.so (the fast paths
# without them) and libnumaheap.so with NUMAHEAP_HARDENED=1.
#
#   perf/hardening/run.sh [--build DIR] [--reps R] [--no-time] [--no-callgrind]
#
# DIR defaults to <repo>/build-perf (configured and built when missing). The
# tables go to stdout in Markdown; docs/reliability.md quotes them.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build-perf
reps=5
do_time=1
do_cg=1
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--no-time) do_time=0; shift ;;
	--no-callgrind) do_cg=0; shift ;;
	-h|--help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
case "$build" in /*) ;; *) build=$(pwd)/$build ;; esac

[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target numaheap numaheap_unchecked -j2 >/dev/null
out=$build/perf-hardening
mkdir -p "$out"
gcc -O2 -g -fno-builtin -o "$out/bench" "$root/perf/hardening/bench.c"

checked=$build/libnumaheap.so
unchecked=$build/libnumaheap_unchecked.so
cases="pair16 pair256 batch medium large realloc"
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)

# run CONFIG CASE N [valgrind args] -> the bench's output line
run() {
	cfg=$1 c=$2 n=$3
	shift 3
	case "$cfg" in
	checked) lib=$checked env="" ;;
	unchecked) lib=$unchecked env="" ;;
	hardened) lib=$checked env="NUMAHEAP_HARDENED=1" ;;
	esac
	env $env LD_PRELOAD="$lib" "$@" "$out/bench" "$c" "$n"
}

echo "numaheap $commit, $(nproc) CPUs, $(uname -r)"
echo

if [ $do_cg -eq 1 ]; then
	command -v valgrind >/dev/null || { echo "run.sh: valgrind is needed for --callgrind" >&2; exit 1; }
	echo "### Instructions per operation (callgrind, NUMAHEAP_PERCPU=0)"
	echo
	echo "| case | checks on | checks off | cost of the checks | hardened | hardened / checks on |"
	echo "|---|---:|---:|---:|---:|---:|"
	for c in $cases; do
		n=200000
		[ "$c" = large ] && n=20000
		line="| $c"
		for cfg in checked unchecked hardened; do
			f=$out/cg.$cfg.$c
			NUMAHEAP_PERCPU=0 run $cfg $c $n valgrind --tool=callgrind --callgrind-out-file="$f" \
				--soname-synonyms=somalloc=nouserintercepts --collect-atstart=no \
				--toggle-collect=run_case >/dev/null 2>&1
			ir=$(sed -n 's/^summary: *//p' "$f" | awk '{print $1}')
			eval "ir_$cfg=$ir"
		done
		# shellcheck disable=SC2154
		awk -v c="$c" -v n="$n" -v a="$ir_checked" -v b="$ir_unchecked" -v h="$ir_hardened" 'BEGIN {
			printf "| %s | %.1f | %.1f | %+.1f (%+.1f%%) | %.1f | %.2fx |\n", c, a/n, b/n, (a-b)/n, 100*(a-b)/b, h/n, h/a }'
	done
	echo
fi

if [ $do_time -eq 1 ]; then
	echo "### CPU time per operation, ns (best of $reps, per-CPU caches)"
	echo
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| case | checks on | checks off | cost of the checks | hardened | hardened / checks on |"
	echo "|---|---:|---:|---:|---:|---:|"
	for c in $cases; do
		n=5000000
		[ "$c" = large ] && n=200000
		[ "$c" = realloc ] && n=1000000
		for cfg in checked unchecked hardened; do
			best=""
			r=0
			while [ $r -lt "$reps" ]; do
				t=$(run $cfg $c $n | awk '{print $3}')
				best=$(awk -v a="$best" -v b="$t" 'BEGIN { if (a == "" || b < a) print b; else print a }')
				r=$((r + 1))
			done
			eval "t_$cfg=$best"
		done
		# shellcheck disable=SC2154
		awk -v c="$c" -v a="$t_checked" -v b="$t_unchecked" -v h="$t_hardened" 'BEGIN {
			printf "| %s | %.1f | %.1f | %+.1f (%+.0f%%) | %.1f | %.2fx |\n", c, a, b, a-b, 100*(a-b)/b, h, h/a }'
	done
	echo
	echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
