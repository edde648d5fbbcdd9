#!/usr/bin/env bash
# make bench: build, start a throwaway cluster, run bench/bin/bench, save
# the Markdown table under bench/results/ and print it.
#   BENCH_SECONDS (default 8), BENCH_MATRIX (default 1x1,2x4,4x16,8x64),
#   BENCH_SYNC (default on,off), BENCH_IDLE (default 1000 waiters)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/cluster.sh
source tools/build.sh

build_and_install
make -s -C bench >/dev/null
cluster_start "max_connections = 1200"
trap cluster_stop EXIT
psql -qX -c "CREATE EXTENSION syrpc" >/dev/null
mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d-%H%M).md"
ulimit -n 4096 2>/dev/null || true
bench/bin/bench -T "${BENCH_SECONDS:-8}" -m "${BENCH_MATRIX:-1x1,2x4,4x16,8x64}" \
    -s "${BENCH_SYNC:-on,off}" -i "${BENCH_IDLE:-1000}" -n bench/naive.sql -o "$out"
echo
cat "$out"
echo
echo "saved as $out"
