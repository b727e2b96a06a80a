#!/bin/sh
# tool_test.sh CASE TOOL PROGRAM — one test of the `numaheap` command.
#
# PROGRAM is tests/docs/stats_prog.c built as a plain executable (numaheap
# is preloaded by `numaheap run`); ONNODE (optional 4th argument) is
# tests/docs/onnode_prog.c, linked with libnumaheap.so. Each case prints what it checked and
# exits 0, or prints FAIL lines and exits 1.
set -u
case_name=${1:?usage: tool_test.sh CASE TOOL PROGRAM}
tool=${2:?}
prog=${3:?}
onnode=${4:-}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect_in FILE STRING: the file contains the string.
expect_in() { grep -qF -- "$2" "$1" || { fail "'$2' not in output:"; sed 's/^/  | /' "$1" | head -n 40; }; }
# run_rc EXPECTED CMD...: run, capture stdout+stderr in $tmp/out, check the status.
run_rc() {
	want=$1; shift
	"$@" >"$tmp/out" 2>&1
	rc=$?
	[ "$rc" = "$want" ] || { fail "'$*' exited $rc, expected $want:"; sed 's/^/  | /' "$tmp/out" | head -n 40; }
}

case "$case_name" in
help)
	run_rc 0 "$tool" --help
	expect_in "$tmp/out" "Commands:"
	for c in run topology stats env; do
		run_rc 0 "$tool" "$c" --help
		expect_in "$tmp/out" "usage: numaheap $c"
		run_rc 0 "$tool" help "$c"
		expect_in "$tmp/out" "usage: numaheap $c"
	done
	run_rc 2 "$tool" frobnicate
	expect_in "$tmp/out" "no command 'frobnicate'"
	run_rc 2 "$tool"
	run_rc 0 "$tool" --version
	expect_in "$tmp/out" "numaheap 0."
	;;
run_status)
	# The program's exit status comes back unchanged; a missing program is 127.
	run_rc 7 "$tool" run --no-stats -- sh -c 'exit 7'
	run_rc 0 "$tool" run --no-stats -- "$prog"
	expect_in "$tmp/out" "stats_prog: ok"
	run_rc 127 "$tool" run -- /nonexistent/program
	expect_in "$tmp/out" "cannot run /nonexistent/program"
	run_rc 2 "$tool" run --set
	run_rc 2 "$tool" run
	;;
run_preload)
	# The program really runs on numaheap: LD_PRELOAD names libnumaheap.so,
	# and the text statistics appear at its exit.
	run_rc 0 "$tool" run -- sh -c 'echo "preload=$LD_PRELOAD"; echo "stats=$NUMAHEAP_STATS"'
	expect_in "$tmp/out" "libnumaheap.so"
	expect_in "$tmp/out" "stats=1"
	run_rc 0 "$tool" run -- "$prog"
	expect_in "$tmp/out" "stats_prog: ok"
	expect_in "$tmp/out" "numaheap 0."
	expect_in "$tmp/out" "statistics: cpu_mode"
	expect_in "$tmp/out" "totals:"
	# An LD_PRELOAD already set is kept, after numaheap.
	run_rc 0 env LD_PRELOAD=/nonexistent-keep.so "$tool" run --no-stats -- sh -c 'echo "preload=$LD_PRELOAD"'
	expect_in "$tmp/out" "libnumaheap.so:/nonexistent-keep.so"
	;;
run_set)
	# Names with or without the prefix, any case; values checked by the
	# library's own parser; the settings reach the program.
	run_rc 0 "$tool" run --no-stats --set cache_bytes=4M -s NUMAHEAP_SHOW_CONFIG=1 --set=STATS_INTERVAL=3600s -- "$prog"
	expect_in "$tmp/out" "NUMAHEAP_CACHE_BYTES=4194304 (set)"
	expect_in "$tmp/out" "NUMAHEAP_SHOW_CONFIG=1 (set)"
	run_rc 2 "$tool" run --set STATS_INTERVAL=1h -- true
	expect_in "$tmp/out" "bad value for NUMAHEAP_STATS_INTERVAL"
	run_rc 2 "$tool" run --set NOSUCHTHING=1 -- true
	expect_in "$tmp/out" "unknown variable NUMAHEAP_NOSUCHTHING"
	expect_in "$tmp/out" "NUMAHEAP_CACHE_BYTES"
	expect_in "$tmp/out" "NUMAHEAP_SCAVENGE_DELAY"
	run_rc 2 "$tool" run --set NUMA=sideways -- true
	expect_in "$tmp/out" "expected enum: local, interleave, off"
	run_rc 2 "$tool" run --set CACHE_BYTES=1K -- true
	expect_in "$tmp/out" "bad value for NUMAHEAP_CACHE_BYTES"
	run_rc 2 "$tool" run --set CACHE_BYTES -- true
	expect_in "$tmp/out" "NAME=VALUE"
	;;
run_hardened_onnode)
	# numaheap's own API under settings given to `numaheap run`: plain, and
	# with NUMAHEAP_HARDENED=1 (canaries, guard pages).
	[ -n "$onnode" ] || { echo "FAIL: no onnode program given"; exit 1; }
	run_rc 0 "$tool" run --no-stats -- "$onnode"
	expect_in "$tmp/out" "onnode_prog: ok"
	run_rc 0 "$tool" run --no-stats --set HARDENED=1 -- "$onnode"
	expect_in "$tmp/out" "onnode_prog: ok"
	;;
run_json)
	# --json --stats-file: one JSON dump in the file, rendered by `stats`.
	run_rc 0 "$tool" run --json --stats-file "$tmp/s.json" -- "$prog"
	expect_in "$tmp/s.json" '"cpu_mode":"'
	[ "$(grep -c '^{' "$tmp/s.json")" = 1 ] || fail "expected one dump line in the stats file"
	run_rc 0 "$tool" stats "$tmp/s.json"
	for s in "numaheap 0." "Nodes: memory" "Size classes with activity" "Large objects" "Caches" \
		"Scavenger" "Kernel calls" "Totals" "live objects:" "in use / mapped:"; do
		expect_in "$tmp/out" "$s"
	done
	# stats_prog keeps 400 of its 800 large objects (i % 20 == 0 of 2 x 4000).
	expect_in "$tmp/out" "live large objects: 400"
	run_rc 0 "$tool" stats --keys "$tmp/s.json"
	expect_in "$tmp/out" "nodes[].resident_on_node.<n>"
	expect_in "$tmp/out" "totals.in_use_bytes"
	;;
stats_files)
	# Several dumps with other lines around them: the last by default,
	# all with --all, one with --index; stdin; errors.
	"$tool" run --json --stats-file "$tmp/a.json" -- "$prog" >/dev/null 2>&1 || fail "run a"
	"$tool" run --json --stats-file "$tmp/b.json" --set CACHE_BYTES=128K -- "$prog" >/dev/null 2>&1 || fail "run b"
	{ echo "program output"; cat "$tmp/a.json"; echo "numaheap: warning: something"; cat "$tmp/b.json"; echo "{not json"; } >"$tmp/mixed"
	run_rc 0 "$tool" stats "$tmp/mixed"
	expect_in "$tmp/out" "(dump 2 of 2)"
	run_rc 0 "$tool" stats --all "$tmp/mixed"
	expect_in "$tmp/out" "(dump 1 of 2)"
	expect_in "$tmp/out" "(dump 2 of 2)"
	run_rc 0 "$tool" stats --index 1 "$tmp/mixed"
	expect_in "$tmp/out" "(dump 1 of 2)"
	run_rc 1 "$tool" stats --index 3 "$tmp/mixed"
	"$tool" stats - <"$tmp/mixed" >"$tmp/out" 2>&1 || fail "stats from stdin"
	expect_in "$tmp/out" "(dump 2 of 2)"
	# A pretty-printed (multi-line) object is read too.
	python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), indent=2))' "$tmp/a.json" >"$tmp/pretty" ||
		fail "python3 could not re-indent the dump (is it valid JSON?)"
	run_rc 0 "$tool" stats "$tmp/pretty"
	expect_in "$tmp/out" "Size classes with activity"
	echo "no json here" >"$tmp/bad"
	run_rc 1 "$tool" stats "$tmp/bad"
	expect_in "$tmp/out" "no numaheap JSON statistics"
	run_rc 1 "$tool" stats "$tmp/does-not-exist"
	# Unknown fields of a newer version are shown, not dropped.
	sed 's/"totals":{/"future_section":{"widgets":42},"totals":{"shiny_bytes":1024,/' "$tmp/a.json" >"$tmp/future"
	run_rc 0 "$tool" stats "$tmp/future"
	expect_in "$tmp/out" "widgets"
	expect_in "$tmp/out" "shiny_bytes"
	;;
topology)
	run_rc 0 "$tool" topology
	for s in "Machine (hwloc)" "NUMA node" "Huge pages" "transparent huge pages" "This process" \
		"allowed CPUs" "cgroup CPU limit" "heap node" "cache budget per P" "cpu_mode numaheap would choose"; do
		expect_in "$tmp/out" "$s"
	done
	run_rc 0 "$tool" topology --set PERCPU=0 --cpus --set NUMA=interleave
	expect_in "$tmp/out" "would choose: per-thread"
	expect_in "$tmp/out" "NUMAHEAP_NUMA=interleave"
	run_rc 0 "$tool" topology --set CACHE_BYTES=512K
	expect_in "$tmp/out" "512.0 KiB"
	run_rc 0 env NUMAHEAP_PERCPU=0 "$tool" topology
	expect_in "$tmp/out" "would choose: per-thread"
	run_rc 2 "$tool" topology --set BOGUS=1
	expect_in "$tmp/out" "unknown variable NUMAHEAP_BOGUS"
	;;
env)
	run_rc 0 "$tool" env
	n=$(grep -c '^NUMAHEAP_' "$tmp/out")
	[ "$n" -ge 15 ] || fail "env lists only $n variables"
	expect_in "$tmp/out" "NUMAHEAP_CACHE_BYTES  (size, read at startup)"
	expect_in "$tmp/out" "default: 4 MiB"
	run_rc 0 "$tool" env --markdown
	[ "$(grep -c '^| `NUMAHEAP_' "$tmp/out")" = "$n" ] || fail "markdown rows differ from the text list ($n)"
	run_rc 0 env NUMAHEAP_CACHE_BYTES=1M "$tool" env --current
	expect_in "$tmp/out" "NUMAHEAP_CACHE_BYTES=1048576 (set)"
	run_rc 2 "$tool" env --bogus
	;;
*)
	echo "tool_test.sh: no case '$case_name'"; exit 2 ;;
esac

if [ $fails -ne 0 ]; then
	echo "$case_name: $fails check(s) failed"
	exit 1
fi
echo "$case_name: ok"
