#!/bin/sh
# install_test.sh BUILD_DIR — install numaheap from BUILD_DIR into a temporary
# prefix (cmake --install BUILD_DIR --prefix TMP), then build and run two
# consumers against the installed files only:
#   1. a CMake project using find_package(numaheap) (tests/override/consumer),
#      linking numaheap::numaheap and numaheap::numaheap_static;
#   2. the same program built with the flags pkg-config gives for numaheap.pc.
# Each consumer must print "consumer: ok" with numaheap_version() coming from
# the installed library (shared) or the executable itself (static).
set -u
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nh-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PREFIX=$TMP/prefix
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# from "consumer: ok PATH" — the real path of the object that served numaheap
from() {
	case "$1" in
	"consumer: ok "*) realpath "${1#consumer: ok }" 2>/dev/null || echo "?" ;;
	*) echo "?" ;;
	esac
}

if ! cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1; then
	cat "$TMP/install.log"
	bad "cmake --install failed"
	exit 1
fi
ok "cmake --install $BUILD --prefix $PREFIX"

# What must be there.
for f in include/numaheap.h; do
	[ -f "$PREFIX/$f" ] && ok "installed $f" || bad "missing $PREFIX/$f"
done
for pat in 'libnumaheap.so' 'libnumaheap.so.0' 'libnumaheap.a' 'numaheap.pc' 'numaheapConfig.cmake' \
	'numaheapConfigVersion.cmake' 'numaheapTargets.cmake'; do
	found=$(find "$PREFIX" -name "$pat" | head -n 1)
	[ -n "$found" ] && ok "installed ${found#"$PREFIX"/}" || bad "no $pat installed under $PREFIX"
done
LIBDIR=$(dirname "$(find "$PREFIX" -name 'libnumaheap.so' | head -n 1)")

# 1. find_package(numaheap)
C=$TMP/cmake-consumer
if cmake -S "$HERE/consumer" -B "$C" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release \
	>"$TMP/c-configure.log" 2>&1 && cmake --build "$C" >"$TMP/c-build.log" 2>&1; then
	ok "find_package(numaheap) consumer configured and built"
	out=$("$C/consumer_shared" 2>&1)
	if [ "$(from "$out")" = "$(realpath "$LIBDIR/libnumaheap.so")" ]; then
		ok "consumer_shared: $out"
	else
		bad "consumer_shared (expected numaheap from $LIBDIR): $out"
	fi
	out=$("$C/consumer_static" 2>&1)
	if [ "$(from "$out")" = "$(realpath "$C/consumer_static")" ]; then
		ok "consumer_static: $out"
	else
		bad "consumer_static (expected numaheap inside the executable): $out"
	fi
else
	cat "$TMP/c-configure.log" "$TMP/c-build.log" 2>/dev/null | tail -n 30
	bad "find_package(numaheap) consumer did not configure or build"
fi

# 2. pkg-config
export PKG_CONFIG_PATH="$(dirname "$(find "$PREFIX" -name numaheap.pc | head -n 1)")"
if ! command -v pkg-config >/dev/null; then
	bad "pkg-config is not installed (tools/install-deps.sh installs it)"
elif flags=$(pkg-config --cflags --libs numaheap 2>&1); then
	ok "pkg-config --cflags --libs numaheap: $flags"
	case "$flags" in
	*"$PREFIX"*) ;;
	*) bad "numaheap.pc does not point into the install prefix $PREFIX (prefix fixed at configure time?): $(grep '^prefix=' "$PKG_CONFIG_PATH/numaheap.pc")" ;;
	esac
	# shellcheck disable=SC2086
	if cc -o "$TMP/pc_consumer" "$HERE/consumer/main.c" $flags -ldl >"$TMP/pc-build.log" 2>&1; then
		out=$(LD_LIBRARY_PATH=$(pkg-config --variable=libdir numaheap) "$TMP/pc_consumer" 2>&1)
		if [ "$(from "$out")" = "$(realpath "$LIBDIR/libnumaheap.so")" ]; then
			ok "pkg-config consumer: $out"
		else
			bad "pkg-config consumer (expected numaheap from $LIBDIR): $out"
		fi
	else
		tail -n 10 "$TMP/pc-build.log"
		bad "the pkg-config consumer does not build with: $flags"
	fi
	# The static archive with what pkg-config --static says it needs.
	sflags="$(pkg-config --cflags numaheap) $(pkg-config --variable=libdir numaheap)/libnumaheap.a"
	sflags="$sflags $(pkg-config --static --libs numaheap | sed 's/-lnumaheap\( \|$\)/ /')"
	# shellcheck disable=SC2086
	if cc -o "$TMP/pc_consumer_static" "$HERE/consumer/main.c" $sflags -ldl >"$TMP/pcs-build.log" 2>&1; then
		out=$("$TMP/pc_consumer_static" 2>&1)
		if [ "$(from "$out")" = "$(realpath "$TMP/pc_consumer_static")" ]; then
			ok "pkg-config --static consumer: $out"
		else
			bad "pkg-config --static consumer (expected numaheap inside the executable): $out"
		fi
	else
		tail -n 10 "$TMP/pcs-build.log"
		bad "libnumaheap.a does not link with pkg-config --static's flags: $sflags"
	fi
else
	bad "pkg-config --cflags --libs numaheap: $flags"
fi

if [ $fails -ne 0 ]; then
	echo "install_test: $fails failure(s)"
	exit 1
fi
echo "install_test: ok"
