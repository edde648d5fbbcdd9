#!/usr/bin/env bash
# The main job: build, install, start a throwaway cluster, create the
# extension, and run echo RPCs between a worker and a caller in separate
# sessions: first in plain SQL with psql, then with the C client library
# (when built).  Stops the cluster at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/cluster.sh
source tools/build.sh

build_and_install
cluster_start "shared_preload_libraries = 'syrpc'"
trap cluster_stop EXIT
psql -qX -c "CREATE EXTENSION syrpc" >/dev/null
echo "cluster up at $PGHOST; CREATE EXTENSION syrpc done"
echo

ms_now() { date +%s%3N; }

echo "== plain SQL: a worker session and a caller session (psql)"
# The worker: wait up to 10 s for a request, answer it with its own data.
psql -qXAt -v ON_ERROR_STOP=1 >/tmp/syrpc-demo-worker.$$ 2>&1 <<'SQL' &
SELECT type, result_id, data FROM syrpc_get_request('echo_app', 10) \gset
SELECT format('worker: got %s request %s with %s', :'type', :'result_id', :'data');
SELECT syrpc_put_result('echo_app', :'result_id', :'data');
SQL
worker=$!

t0=$(ms_now)
rid=$(psql -qXAt -c "SELECT syrpc_put_request('echo_app', 'echo', '{\"value\": \"hello\"}')")
echo "caller: put_request('echo_app', 'echo', {\"value\": \"hello\"}) -> $rid"
result=$(psql -qXAt -c "SELECT syrpc_get_result('echo_app', '$rid', 10)")
t1=$(ms_now)
wait $worker
sed 's/^/  /' /tmp/syrpc-demo-worker.$$ | grep -v '^  $' || true
rm -f /tmp/syrpc-demo-worker.$$
echo "caller: get_result -> $result   ($((t1 - t0)) ms for the round trip, psql start-up included)"
[ "$result" = '{"value": "hello"}' ] || { echo "unexpected result"; exit 1; }

if [ -x client/c/examples/echo_server ] && [ -x client/c/examples/echo_client ]; then
    echo
    echo "== C client library: examples/echo_server and examples/echo_client"
    client/c/examples/echo_server echo_app &
    server=$!
    client/c/examples/echo_client echo_app
    client/c/examples/echo_client echo_app --count 2000
    kill $server; wait $server 2>/dev/null || true
fi
echo
psql -qX -c "SELECT * FROM syrpc_stats"
echo "done; stopping the cluster"
