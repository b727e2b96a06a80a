#!/bin/sh
# install-deps.sh — install the Debian packages numaheap builds, tests and
# benchmarks with. Idempotent: does nothing when everything is there.
# Needs root (or sudo) for apt-get. Usage: tools/install-deps.sh [--perf] [--vm]
set -eu

pkgs="build-essential cmake pkg-config libnuma-dev libhwloc-dev liburing-dev libgtest-dev
      python3 git sqlite3 g++ clang libclang-rt-14-dev numactl hwloc valgrind gcc-aarch64-linux-gnu"
for a in "$@"; do
	case "$a" in
	--perf) pkgs="$pkgs libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 hyperfine gnuplot-nox redis-server redis-tools linux-perf" ;;
	--vm) pkgs="$pkgs qemu-system-x86 linux-image-amd64 busybox-static cpio" ;;
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
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
