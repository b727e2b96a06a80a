#!/bin/sh
# run_fuzz.sh run FUZZER SECONDS WORKDIR SEEDDIR   — fuzz for SECONDS
# run_fuzz.sh replay FUZZER DIR...                 — run every file once
#
# A run starts from a copy of the seed corpus in WORKDIR/corpus (new inputs
# go there, the checked-in seeds stay as they are) and saves any crash in
# WORKDIR/artifacts/. Exit status: 0 when nothing failed.
set -u
mode=$1
fuzzer=$2
shift 2
case "$mode" in
run)
	secs=$1 work=$2 seeds=$3
	mkdir -p "$work/corpus" "$work/artifacts"
	cp -n "$seeds"/* "$work/corpus/" 2>/dev/null
	"$fuzzer" -max_total_time="$secs" -timeout=60 -rss_limit_mb=4096 -max_len=1024 -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1
	rc=$?
	grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)" "$work/log"
	if [ $rc -ne 0 ]; then
		tail -60 "$work/log"
		echo "run_fuzz: the fuzzer failed (exit $rc); the input is in $work/artifacts/:" >&2
		ls -l "$work/artifacts/" >&2
		echo "run_fuzz: copy it into tests/fuzz/regressions/ to make it a regression test" >&2
		exit 1
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
	echo "fuzz: $runs inputs in $secs s, no failure"
	[ -n "$runs" ] && [ "$runs" -gt 0 ]
	;;
replay)
	files=""
	n=0
	for d in "$@"; do
		for f in "$d"/*; do
			[ -f "$f" ] || continue
			files="$files $f"
			n=$((n + 1))
		done
	done
	if [ $n -eq 0 ]; then
		echo "run_fuzz: no inputs in $*" >&2
		exit 1
	fi
	log=$(mktemp)
	# shellcheck disable=SC2086
	"$fuzzer" -runs=1 $files >"$log" 2>&1
	rc=$?
	tail -5 "$log"
	[ $rc -eq 0 ] || tail -60 "$log"
	rm -f "$log"
	echo "fuzz: replayed $n inputs, exit status $rc"
	exit $rc
	;;
*)
	echo "usage: run_fuzz.sh run|replay ..." >&2
	exit 2
	;;
esac
