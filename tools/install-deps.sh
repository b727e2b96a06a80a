#!/bin/sh
# install-deps.sh — install the Debian packages numaheap builds, tests and
# benchmarks with. Idempotent: does nothing when everything is there.
# Needs root (or sudo) for apt-get. Usage: tools/install-deps.sh [--perf] [--vm]
#
# Packages are installed without their Recommends, so everything a test
# needs is named here, Recommends included: libc6-dev-arm64-cross (the C
# library headers of the aarch64 cross compiler; only recommended by
# gcc-aarch64-linux-gnu), llvm-14 (llvm-symbolizer, which TSan needs to
# match tests/hardening/tsan.supp's function names; only recommended by
# clang-14, through llvm-14-dev) and xz-utils (numa-vm unpacks the
# xz-compressed kernel once instead of having QEMU emulate its decompression
# at every boot). golang-go (go tool pprof) and libgoogle-perftools4
# (gperftools' heap profiler) read and check the heap profiles (tests/prof).
#
# Another apt or dpkg at work (unattended-upgrades on a machine that has just
# booted, another engineer's apt-get) holds their locks: apt-get waits for
# dpkg's (DPkg::Lock::Timeout), and this script retries while a lock apt-get
# does not wait for (apt-get update's lists, the download cache) is held, for
# up to NH_APT_LOCK_WAIT seconds (default 1200).
set -eu

pkgs="build-essential cmake pkg-config libnuma-dev libhwloc-dev liburing-dev libgtest-dev
      python3 git sqlite3 g++ clang libclang-rt-14-dev llvm-14 numactl hwloc valgrind
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross golang-go libgoogle-perftools4"
for a in "$@"; do
	case "$a" in
	--perf) pkgs="$pkgs libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 hyperfine gnuplot-nox redis-server redis-tools linux-perf" ;;
	--vm) pkgs="$pkgs qemu-system-x86 linux-image-amd64 busybox-static cpio xz-utils" ;;
	*) echo "usage: $0 [--perf] [--vm]" >&2; exit 2 ;;
	esac
done

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
wait_limit=${NH_APT_LOCK_WAIT:-1200}

# apt_get ARGS...: apt-get ARGS, again every 5 s while it fails only because
# another process holds an apt or dpkg lock, up to wait_limit seconds in all.
# Its messages go to stderr; its output is dropped.
apt_get() {
	err=$(mktemp)
	start=$(date +%s)
	said=""
	while :; do
		# shellcheck disable=SC2086
		if $SUDO apt-get -o DPkg::Lock::Timeout="$wait_limit" "$@" >/dev/null 2>"$err"; then
			cat "$err" >&2
			rm -f "$err"
			return 0
		fi
		if grep -qE "Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock" "$err" &&
			[ $(($(date +%s) - start)) -lt "$wait_limit" ]; then
			if [ -z "$said" ]; then
				echo "install-deps: waiting for another apt or dpkg to finish: $(grep -m1 -E 'lock' "$err")" >&2
				said=1
			fi
			sleep 5
			continue
		fi
		cat "$err" >&2
		rm -f "$err"
		echo "install-deps: apt-get $* failed" >&2
		return 1
	done
}

echo "install-deps: installing$missing" >&2
apt_get update -qq
# shellcheck disable=SC2086
apt_get install -y -qq --no-install-recommends $missing
