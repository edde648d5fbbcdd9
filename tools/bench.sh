#!/usr/bin/env bash
# make bench: build, start a throwaway cluster with the library preloaded
# (and autovacuum_naptime = 5s, as the README recommends for queues),
# start the peers' servers (Redis, RabbitMQ: bench/peers.sh), run
# bench/bin/bench over the matrix, then restart the cluster without
# preloading and run 1x1 and 2x4 again (syrpc and its PostgreSQL
# baselines only), so that the two are side by side.
# Saves the Markdown tables under bench/results/ and prints them.
#   BENCH_SECONDS (default 3) x BENCH_ROUNDS (default 3) per system and configuration,
#   BENCH_MATRIX (default 1x1,2x4,4x16,8x64),
#   BENCH_SYNC (default on,off), BENCH_IDLE (default 1000 waiters),
#   BENCH_PEERS (default redis,rabbitmq,notify; "none" for none): a peer whose
#     server or library is missing is skipped, with a line that says so,
#   BENCH_LONG (default 0, off): seconds of a long run of the fastest syrpc
#     configuration (xids consumed, relfrozenxid age of the queue tables)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/cluster.sh
source tools/build.sh
source bench/peers.sh

peers=${BENCH_PEERS:-redis,rabbitmq,notify}
case ",$peers," in *,redis,*|*,rabbitmq,*) bash tools/install-bench-deps.sh || true ;; esac
build_and_install
make -s -C bench >/dev/null
mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d-%H%M).md"
ulimit -n 4096 2>/dev/null || true
# every server this script starts stops on the way out, however it goes;
# the bench runs in the background so that a signal is handled at once
# (bash runs traps only between foreground commands)
BENCH_PID=""
trap 'set +e; [ -z "$BENCH_PID" ] || { kill "$BENCH_PID"; wait "$BENCH_PID"; } 2>/dev/null; cluster_stop; peers_stop' EXIT
trap 'exit 130' INT TERM HUP

run_bench() {   # output file, then bench options
    local file=$1; shift
    psql -qX -c "CREATE EXTENSION syrpc" >/dev/null
    bench/bin/bench -n bench/naive.sql -o "$file" "$@" &
    BENCH_PID=$!
    wait "$BENCH_PID"
    BENCH_PID=""
}

peers_start "$peers"
cluster_start "max_connections = 1200" "autovacuum_naptime = 5s" "shared_preload_libraries = 'syrpc'"
run_bench "$out" -T "${BENCH_SECONDS:-3}" -r "${BENCH_ROUNDS:-3}" -m "${BENCH_MATRIX:-1x1,2x4,4x16,8x64}" \
    -s "${BENCH_SYNC:-on,off}" -i "${BENCH_IDLE:-1000}" -p "$peers" -L "${BENCH_LONG:-0}"
cluster_stop
peers_stop

cluster_start "max_connections = 1200" "autovacuum_naptime = 5s"
run_bench "$out.nopreload" -T "${BENCH_SECONDS:-3}" -r "${BENCH_ROUNDS:-3}" -m 1x1,2x4 -s on -i 0 -p none
cluster_stop
{
    echo
    echo "### The same cluster without shared_preload_libraries"
    echo
    sed -n '/^| W x C/,$p' "$out.nopreload"
} >>"$out"
rm -f "$out.nopreload"
echo
cat "$out"
echo
echo "saved as $out"
