#!/bin/sh
# check_layers.sh ROOT — the include rules of docs/design.md ("The layers"):
# numa/ includes nothing of src/ but src/os/; src/os/ includes nothing of
# src/ but itself, and arch/; arch/ includes nothing of src/ at all; and no
# header of src/ is over 300 lines, no .c file over 600 (the generated
# src/sizeclasses.h aside).
set -u
root=$1
fail=0
srcheaders=$(cd "$root/src" && ls *.h | tr '\n' ' ')
bad() { echo "FAIL: $*"; fail=1; }
for f in "$root"/numa/* "$root"/src/os/* "$root"/arch/*.c "$root"/arch/*.h "$root"/arch/*/*.h; do
	grep -o '#include "[^"]*"' "$f" | sed 's/#include "//; s/"$//' | while read -r inc; do
		case "$inc" in
		../src/os/* | os/*) case "$f" in */arch/*) echo "FAIL: $f includes $inc (arch/ includes nothing of src/)" ;; esac ;;
		../src/* | ../../src/*) echo "FAIL: $f includes $inc" ;;
		*) for h in $srcheaders; do [ "$inc" = "$h" ] && echo "FAIL: $f includes src/$h"; done ;;
		esac
	done
done >"${TMPDIR:-/tmp}/layers.$$"
if [ -s "${TMPDIR:-/tmp}/layers.$$" ]; then
	cat "${TMPDIR:-/tmp}/layers.$$"
	fail=1
fi
rm -f "${TMPDIR:-/tmp}/layers.$$"
for f in "$root"/src/*.h "$root"/src/os/*.h; do
	[ "$(basename "$f")" = sizeclasses.h ] && continue
	n=$(wc -l <"$f")
	[ "$n" -le 300 ] || bad "$f has $n lines (headers: at most 300)"
done
for f in "$root"/src/*.c "$root"/src/os/*.c "$root"/numa/*.c "$root"/arch/*.c; do
	n=$(wc -l <"$f")
	[ "$n" -le 600 ] || bad "$f has $n lines (at most 600)"
done
[ "$fail" = 0 ] && echo "ok: the layers include downwards only; headers <= 300 lines, .c files <= 600"
exit $fail
