#!/bin/sh
# aarch64_compile.sh SRCDIR — compile every library source for AArch64 with
# Debian's cross compiler (-Werror): the library must keep building there
# (per-thread P's; restartable sequences are x86-64 only for now). Exit 77
# (skipped) when the cross compiler is not installed.
set -u
src=$1
cc=aarch64-linux-gnu-gcc
if ! command -v $cc >/dev/null 2>&1; then
	echo "skipped: $cc not installed (apt-get install gcc-aarch64-linux-gnu)"
	exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
for f in "$src"/src/*.c "$src"/src/os/*.c "$src"/numa/*.c "$src"/arch/*.c; do
	if ! $cc -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -fPIC -fvisibility=hidden \
		-I"$src/src" -I"$src/arch" -I"$src/numa" -I"$src/include" -idirafter /usr/include \
		-c "$f" -o "$out/$(basename "$f").o"; then
		echo "FAIL: $f"
		fail=1
	fi
done
[ $fail = 0 ] && echo "ok: every source compiles for aarch64"
exit $fail
