#!/usr/bin/env bash
# syrpc through pgbouncer in transaction pooling mode: callers and workers
# (the C library, the CLI and plain SQL, using the blocking SQL calls)
# complete round trips.  A blocked call holds its server connection while
# it waits, so the pool is sized for the clients that wait at once.  Needs PGHOST etc. of
# a cluster with a database syrpc_client_test that has the extension.  Prints TAP
# (a plan last) and "N passed, N failed"; exits non-zero if a test failed.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/tap_lib.sh"

DIR=$(mktemp -d /tmp/syrpc-pgb.XXXXXX)
chmod 755 "$DIR"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cat >"$DIR/pgbouncer.ini" <<INI
[databases]
syrpc_client_test = host=$PGHOST port=$PGPORT dbname=syrpc_client_test user=postgres
[pgbouncer]
listen_addr =
unix_socket_dir = $DIR
listen_port = 6432
auth_type = trust
auth_file = $DIR/users.txt
pool_mode = transaction
default_pool_size = 10
max_client_conn = 100
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
admin_users = postgres
INI
echo '"postgres" ""' >"$DIR/users.txt"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$DIR"
as_pg pgbouncer -d "$DIR/pgbouncer.ini" || { echo "not ok 1 - pgbouncer did not start"; echo "1..1"; echo "0 passed, 1 failed"; exit 1; }
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null
    if [ -f "$DIR/pgbouncer.pid" ]; then
        local pid; pid=$(cat "$DIR/pgbouncer.pid")
        kill "$pid" 2>/dev/null
        # let it exit (up to 5 s) before its directory goes
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT
BOUNCER="host=$DIR port=6432 dbname=syrpc_client_test user=postgres"

# Two workers and eight callers through the pooler.
for i in 1 2; do
    PGHOST=$DIR PGPORT=6432 PGDATABASE=syrpc_client_test client/c/examples/echo_server pgb_app 2>"$DIR/server$i.err" & pids+=($!)
done
cpids=()
for i in $(seq 8); do
    PGHOST=$DIR PGPORT=6432 PGDATABASE=syrpc_client_test client/c/examples/echo_client pgb_app --count 200 \
        >"$DIR/client$i.out" 2>&1 & cpids+=($!)
done
bad=0
for p in "${cpids[@]}"; do wait "$p" || bad=$((bad + 1)); done
if [ $bad -eq 0 ]; then ok "8 callers x 200 round trips, 2 workers, through pgbouncer (transaction pooling)"
else fail "8 callers x 200 round trips through pgbouncer" "$bad callers failed" "$(cat "$DIR"/client*.out | head -5)"; fi
grep -h "round trips" "$DIR"/client*.out | head -1 | sed 's/^/# /'

servers=$(psql -XAt -d syrpc_client_test -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'syrpc_client_test' AND backend_type = 'client backend' AND application_name = '' AND pid <> pg_backend_pid()")
if [ "$servers" -le 10 ]; then ok "the pool's server connections were used ($servers of at most 10)"
else fail "at most 10 server connections" "there are $servers"; fi

out=$(syrpc -d "$BOUNCER" call pgb_app echo '{"value":"hello"}' --timeout 10)
[ "$out" = '{"value": "hello"}' ] && ok "syrpc call through pgbouncer" || fail "syrpc call through pgbouncer" "$out"

# the plain SQL calls work too: a wait is a single statement
rid=$(psql -XAt -d "$BOUNCER" -c "SELECT syrpc_put_request('pgb_app', 'echo', '{\"sql\": 1}')")
got=$(psql -XAt -d "$BOUNCER" -c "SELECT syrpc_get_result('pgb_app', '$rid', 10)")
[ "$got" = '{"sql": 1}' ] && ok "plain SQL put_request/get_result through pgbouncer" || fail "plain SQL through pgbouncer" "$got"
got=$(psql -XAt -d "$BOUNCER" -c "CALL syrpc_call('pgb_app', 'echo', '{\"sql\": 2}', 10)")
[ "${got#*|}" = '{"sql": 2}' ] && ok "CALL syrpc_call through pgbouncer" || fail "CALL syrpc_call through pgbouncer" "$got"

tap_end
