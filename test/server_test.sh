#!/usr/bin/env bash
# Server behaviour that needs more than one session, database or cluster:
# dead clients, cleanup in every database, concurrent puts and idle
# workers, pg_dump / pg_restore, and a hot standby.  Starts its own
# clusters (with and without shared_preload_libraries) and stops them.
# Prints TAP lines, a plan, and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/cluster.sh

source test/tap_lib.sh

q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
START=$(date +%s)
section() { echo "# $1 (at $(( $(date +%s) - START )) s)"; }

is() { [ "$(q -c "$2")" = "$1" ]; }    # is EXPECTED SQL
is_in() { [ "$(q -d "$1" -c "$3")" = "$2" ]; }    # is_in DATABASE EXPECTED SQL

pids=()
STANDBY=""
cleanup() {
    [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
    wait 2>/dev/null
    if [ -n "$STANDBY" ]; then
        _as_pg "$PGBIN/pg_ctl" -D "$STANDBY/data" -m immediate -w stop >/dev/null 2>&1
        rm -rf "$STANDBY"
    fi
    cluster_stop
    [ -n "${WORK:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
# A worker client killed while its backend waits: the backend notices the
# closed socket, leaves, and the next request goes to a live worker at once.
dead_workers() {    # $1: label of the registry
    local label=$1 app=dead_$1 rid
    q -c "SELECT syrpc_configure('$app', lease_time => '60 s')" >/dev/null
    for how in KILL TERM; do
        psql -qXAt -c "CALL syrpc_wait_request('$app', 120)" >/dev/null 2>&1 & local dead=$!
        if ! wait_until 10 is 1 "SELECT count(*) FROM syrpc.waiters() WHERE kind = 'request'"; then
            fail "$label: SIG$how to a waiting worker client" "the worker never waited"; kill $dead; continue
        fi
        local backend
        backend=$(q -c "SELECT pid FROM syrpc.waiters() WHERE kind = 'request'")
        kill -s "$how" $dead; wait $dead 2>/dev/null
        if wait_until 10 is 0 "SELECT count(*) FROM pg_stat_activity WHERE pid = $backend"; then
            ok "$label: SIG$how to a waiting worker client: its backend leaves"
        else
            fail "$label: SIG$how to a waiting worker client: its backend leaves" \
                "backend $backend still there: $(q -c "SELECT state, wait_event FROM pg_stat_activity WHERE pid = $backend")"
        fi
    done
    # Both dead workers' backends gone or not: a live worker must get the next request.
    psql -qXAt -c "SELECT data->>'n' FROM syrpc_get_request('$app', 20)" >"$WORK/live.out" 2>&1 & local live=$!
    wait_until 10 is 1 "SELECT count(*) FROM syrpc.waiters() WHERE kind = 'request'"
    rid=$(q -c "SELECT syrpc_put_request('$app', 'job', '{\"n\": 7}')")
    local t0; t0=$(date +%s%N)
    wait $live
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    if [ "$(cat "$WORK/live.out")" = 7 ] && [ $ms -lt 5000 ]; then
        ok "$label: the next request goes to the live worker (${ms} ms)"
    else
        fail "$label: the next request goes to the live worker" "got '$(cat "$WORK/live.out")' after $ms ms" \
            "$(q -c "SELECT attempts, ready_at > now() FROM syrpc.request WHERE result_id = '$rid'")"
    fi
    # A caller killed while it waits for its result does not take it either.
    rid=$(q -c "SELECT syrpc_put_request('$app', 'job', '{\"n\": 8}')")
    psql -qXAt -c "SELECT syrpc_get_result('$app', '$rid', 120)" >/dev/null 2>&1 & local caller=$!
    wait_until 10 is 1 "SELECT count(*) FROM syrpc.waiters() WHERE kind = 'result'"
    kill -KILL $caller; wait $caller 2>/dev/null
    wait_until 10 is 0 "SELECT count(*) FROM syrpc.waiters() WHERE kind = 'result'"
    q -c "SELECT syrpc_put_result('$app', result_id, data) FROM syrpc_get_request('$app', 0)" >/dev/null
    if [ "$(q -c "SELECT syrpc_get_result('$app', '$rid', 0)")" = '{"n": 8}' ]; then
        ok "$label: a killed caller's backend does not take its result"
    else
        fail "$label: a killed caller's backend does not take its result"
    fi
}

# ---------------------------------------------------------------------------
# Two puts committing at once wake two idle workers, never the same one
# twice: every round, both requests are claimed without waiting for a
# worker's next look (a lease_time of 60 s).
concurrent_puts() {   # $1: label
    local label=$1 app=pick_$1 rounds=25 missed=0 r
    q -c "SELECT syrpc_configure('$app', lease_time => '60 s')" >/dev/null
    cat >"$WORK/put.sql" <<SQL
SELECT syrpc_put_request('$app', 'job', '{}');
SQL
    for r in $(seq $rounds); do
        for w in 1 2; do
            psql -qXAt -c "SELECT count(*) FROM syrpc_get_request('$app', 5)" >"$WORK/w$w.out" 2>&1 &
            eval "wp$w=\$!"
        done
        wait_until 10 is 2 "SELECT count(*) FROM syrpc.waiters() WHERE kind = 'request'"
        pgbench -n -c 2 -t 1 -f "$WORK/put.sql" >"$WORK/pgbench.out" 2>&1 || { cat "$WORK/pgbench.out"; break; }
        wait $wp1 $wp2
        [ "$(cat "$WORK/w1.out")$(cat "$WORK/w2.out")" = 11 ] || missed=$((missed + 1))
        q -c "DELETE FROM syrpc.request WHERE app = '$app'" >/dev/null
    done
    if [ $missed -eq 0 ]; then ok "$label: two puts at once wake two idle workers ($rounds rounds)"
    else fail "$label: two puts at once wake two idle workers" "$missed of $rounds rounds left a worker asleep"; fi
}

WORK=$(mktemp -d /tmp/syrpc-server.XXXXXX)
chmod 777 "$WORK"

# ---- without shared_preload_libraries: the lock-manager registry
cluster_start "syrpc.cleanup_interval = 200" >/dev/null || { echo "not ok 1 - cluster start"; echo "1..1"; echo "0 passed, 1 failed"; exit 1; }
q -c "CREATE EXTENSION syrpc" >/dev/null
section "dead_workers lock_manager"
dead_workers lock_manager
section "concurrent_puts lock_manager"
concurrent_puts lock_manager
cluster_stop

# ---- with shared_preload_libraries: the shared-memory registry
cluster_start "shared_preload_libraries = 'syrpc'" "syrpc.cleanup_interval = 200" "wal_level = replica" >/dev/null \
    || { echo "not ok $((n + 1)) - cluster start"; echo "1..$((n + 1))"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
q -c "CREATE EXTENSION syrpc" >/dev/null
section "dead_workers shared_memory"
dead_workers shared_memory
section "concurrent_puts shared_memory"
concurrent_puts shared_memory

# ---------------------------------------------------------------------------
# Cleanup in every database: a busy database must not starve a quiet one.
section "cleanup in every database"
q -c "CREATE DATABASE syrpc_busy" >/dev/null
q -c "CREATE DATABASE syrpc_quiet" >/dev/null
q -d syrpc_busy -c "CREATE EXTENSION syrpc" >/dev/null
q -d syrpc_quiet -c "CREATE EXTENSION syrpc" >/dev/null
q -d syrpc_quiet -c "SELECT syrpc_configure('quiet', request_ttl => '1 ms', result_ttl => '1 ms')" >/dev/null  # gone a result_ttl after they expired
q -d syrpc_quiet -c "SELECT count(syrpc_put_request('quiet', 'old', '{}')) FROM generate_series(1, 30)" >/dev/null
# the busy database puts without a pause for up to 6 s (a cluster-wide
# clock would then always be just reset by it)
psql -qXAt -d syrpc_busy -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
        LOOP PERFORM syrpc_put_request('busy', 'job', '{}'); COMMIT;
             EXIT WHEN clock_timestamp() > t0 + '6 s'; END LOOP; END \$\$" >/dev/null 2>&1 &
pids+=($!)
wait_until 10 is_in syrpc_busy t "SELECT count(*) > 100 FROM syrpc.request"
# the quiet one puts every 300 ms until its expired requests are gone (5 s at most)
q -d syrpc_quiet -c "DO \$\$ BEGIN FOR i IN 1..17 LOOP
        EXIT WHEN (SELECT count(*) FROM syrpc.request WHERE type = 'old') = 0;
        PERFORM syrpc_put_request('quiet', 'new', '{}'); COMMIT; PERFORM pg_sleep(0.3);
    END LOOP; END \$\$" >/dev/null
left=$(q -d syrpc_quiet -c "SELECT count(*) FROM syrpc.request WHERE type = 'old'")
busy=$(q -d syrpc_busy -c "SELECT count(*) FROM syrpc.request")
if [ "$left" = 0 ] && [ "$busy" -gt 100 ]; then ok "cleanup runs in a quiet database while another is busy"
else fail "cleanup runs in a quiet database while another is busy" "$left of 30 expired requests left; busy database put $busy"; fi
kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; pids=()

# ---------------------------------------------------------------------------
# pg_dump / pg_restore keep the app settings (requests and results stay behind).
section "pg_dump and pg_restore"
q -c "CREATE DATABASE syrpc_dump" >/dev/null
q -d syrpc_dump -c "CREATE EXTENSION syrpc" >/dev/null
q -d syrpc_dump -c "SELECT syrpc_configure('kept', lease_time => '42 s', max_attempts => 5, result_ttl => '1 min', request_ttl => '2 hours')" >/dev/null
q -d syrpc_dump -c "SELECT syrpc_put_request('kept', 'job', '{}')" >/dev/null
pg_dump -Fc -d syrpc_dump -f "$WORK/dump" 2>"$WORK/dump.err"
q -c "CREATE DATABASE syrpc_restored" >/dev/null
pg_restore -d syrpc_restored "$WORK/dump" 2>"$WORK/restore.err"; rc=$?
settings="SELECT app, lease_time, max_attempts, result_ttl, request_ttl FROM syrpc_apps ORDER BY app"
before=$(q -d syrpc_dump -c "$settings"); after=$(q -d syrpc_restored -c "$settings")
if [ $rc -eq 0 ] && [ -n "$before" ] && [ "$before" = "$after" ]; then ok "pg_dump / pg_restore keep the app settings"
else fail "pg_dump / pg_restore keep the app settings" "rc=$rc before: $before" "after: $after" "$(cat "$WORK/restore.err")"; fi
if [ "$(q -d syrpc_restored -c "SELECT count(*) FROM syrpc.request")" = 0 ]; then
    ok "queued requests are not restored (see the README)"
else fail "queued requests are not restored"; fi
if [ "$(q -d syrpc_restored -c "SELECT syrpc_put_request('kept', 'job', '{}') IS NOT NULL")" = t ]; then
    ok "the restored database serves calls"
else fail "the restored database serves calls"; fi

# ---------------------------------------------------------------------------
# A request that crashes the server each time a worker runs it: a lease in
# shared memory (marks.c) is lost with the crash, so after a restart the
# request, older than the marks, is leased in its row, with a commit that
# waits for its flush: it fails after max_attempts instead of for ever.
section "a request that crashes the server each time it runs"
q -c "SELECT syrpc_configure('poison', max_attempts => 2, lease_time => '300 ms')" >/dev/null
rid=$(q -c "SELECT syrpc_put_request('poison', 'job', '{}')")
claims=""
for i in 1 2 3 4; do
    wait_until 10 is t "SELECT coalesce(bool_and(ready_at <= now()), true) FROM syrpc.request WHERE app = 'poison'"
    claims="$claims$(q -c "SELECT count(*) FROM syrpc_get_request('poison', 0)")"
    [ $i -lt 4 ] && cluster_crash_restart
done
attempts=$(q -c "SELECT attempts FROM syrpc.request WHERE result_id = '$rid'")
caller=$(q -c "SELECT syrpc_get_result('poison', '$rid', 0)" 2>&1)
if [ "$claims" = 1110 ] && [ "$attempts" = 2 ] && [[ "$caller" == *"failed after 2 attempts"* ]]; then
    ok "a request that crashes the server each time fails after max_attempts (claims $claims)"
else
    fail "a request that crashes the server each time fails after max_attempts" \
        "claims $claims (want 1110), attempts in the row $attempts (want 2)" "caller: $caller"
fi

# ---------------------------------------------------------------------------
# DROP EXTENSION with calls blocked for ever: they give way (end as
# timeouts) instead of holding the command, and every new call behind it.
section "DROP EXTENSION with blocked calls"
q -c "CREATE DATABASE syrpc_drop" >/dev/null
q -d syrpc_drop -c "CREATE EXTENSION syrpc" >/dev/null
rid=$(q -d syrpc_drop -c "SELECT syrpc_put_request('gw', 'job', '{}')")
timeout 60 psql -qXAt -d syrpc_drop -c "SELECT count(*) FROM syrpc_get_request('gw_idle', NULL)" >"$WORK/gw1.out" 2>&1 & gw1=$!
timeout 60 psql -qXAt -d syrpc_drop -c "CALL syrpc_wait_result('gw', '$rid', NULL)" >"$WORK/gw2.out" 2>&1 & gw2=$!
pids+=($gw1 $gw2)
wait_until 10 is 2 "SELECT count(*) FROM pg_stat_activity WHERE datname = 'syrpc_drop' AND wait_event = 'Extension'"
t0=$(date +%s%N)
drop=$(psql -qXAt -d syrpc_drop -c "SET statement_timeout = '20s'" -c "DROP EXTENSION syrpc" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait $gw1 $gw2
if [ $rc -eq 0 ] && [ $ms -lt 5000 ] && [ "$(cat "$WORK/gw1.out")" = 0 ]; then
    ok "DROP EXTENSION with calls blocked without a timeout: they give way (${ms} ms)"
else
    fail "DROP EXTENSION with calls blocked without a timeout: they give way" "rc=$rc after $ms ms: $drop" \
        "worker: $(cat "$WORK/gw1.out")" "caller: $(cat "$WORK/gw2.out")"
fi
pids=()

# ---------------------------------------------------------------------------
# A hot standby: every call that writes says clearly that it cannot run there.
section "hot standby"
STANDBY=$(mktemp -d /tmp/syrpc-standby.XXXXXX)
chmod 755 "$STANDBY"; [ "$(id -u)" -eq 0 ] && chown postgres: "$STANDBY"
if _as_pg "$PGBIN/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres -D "$STANDBY/data" -R -X stream -c fast >"$STANDBY/bb.log" 2>&1 \
   && _as_pg sh -c "echo \"port = 5433\" >> '$STANDBY/data/postgresql.conf'; echo \"unix_socket_directories = '$STANDBY'\" >> '$STANDBY/data/postgresql.conf'" \
   && _as_pg "$PGBIN/pg_ctl" -D "$STANDBY/data" -l "$STANDBY/server.log" -w -t 60 start >/dev/null; then
    sb() { psql -qXAt -h "$STANDBY" -p 5433 -d postgres "$@"; }
    rid=$(q -c "SELECT syrpc_put_request('sb', 'job', '{}')")
    q -c "SELECT syrpc_put_request('sb', 'job', '{}')" >/dev/null
    sb_has() { [ "$(sb -c "SELECT count(*) FROM syrpc.request WHERE app = 'sb'" 2>/dev/null)" = "$1" ]; }
    wait_until 20 sb_has 2
    bad=""
    for sql in "SELECT syrpc_put_request('sb', 'job', '{}')" \
               "SELECT * FROM syrpc_get_request('sb', 0)" \
               "SELECT * FROM syrpc_get_request('sb', 5)" \
               "SELECT syrpc_get_result('sb', '$rid', 0)" \
               "SELECT syrpc_put_result('sb', '$rid', '{}')" \
               "SELECT syrpc_fail_request('sb', '$rid', 'no')" \
               "CALL syrpc_wait_request('sb', 0)" \
               "CALL syrpc_wait_result('sb', '$rid', 0)" \
               "CALL syrpc_call('sb', 'job', '{}', 0)" \
               "SELECT syrpc_configure('sb', max_attempts => 2)" \
               "SELECT syrpc_cleanup()"; do
        out=$(sb -v VERBOSITY=verbose -c "$sql" 2>&1)
        echo "$out" | grep -q "25006: .* cannot run on a standby" || bad="$bad | $sql: $out"
    done
    if [ -z "$bad" ]; then ok "on a standby every call says 25006 ... cannot run on a standby"
    else fail "on a standby every call says 25006 ... cannot run on a standby" "$bad"; fi
    if [ "$(sb -c "SELECT queued FROM syrpc_stats WHERE app = 'sb'")" = 2 ]; then ok "syrpc_stats works on a standby"
    else fail "syrpc_stats works on a standby"; fi
    if [ "$(sb -c "SELECT 'alive'")" = alive ]; then ok "the standby session goes on after the errors"
    else fail "the standby session goes on after the errors"; fi
else
    fail "start a hot standby" "$(cat "$STANDBY/bb.log" "$STANDBY/server.log" 2>/dev/null | tail -5)"
fi

rm -rf "$WORK"
tap_end
