#!/bin/sh
# test.sh — the README's test command: install what is missing, build, and
# run every test (ctest). Exit status is ctest's.
#   tools/test.sh [ctest arguments...]     e.g. tools/test.sh -R api
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh --vm
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
cd build
exec ctest --output-on-failure -j "$(nproc)" "$@"
