#!/bin/sh
# test.sh — the README's test command: install what is missing, build, and
# run every test (ctest). Exit status is ctest's.
#   tools/test.sh [ctest arguments...]     e.g. tools/test.sh -R api
# Says how long the packages and the build took; ctest ends with its own
# "Total Test time".
set -eu
cd "$(dirname "$0")/.."
t0=$(date +%s)
tools/install-deps.sh --vm
t1=$(date +%s)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
t2=$(date +%s)
echo "test.sh: packages $((t1 - t0)) s, build $((t2 - t1)) s; now ctest"
cd build
exec ctest --output-on-failure -j "$(nproc)" "$@"
