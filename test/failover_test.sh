#!/usr/bin/env bash
# Failover to a synchronous standby, under load.
#
# A primary and a pg_basebackup -R standby, both preloading syrpc, the
# standby synchronous (synchronous_standby_names = '*').  Callers (half of
# them syrpc_call, half put + get) and workers (syrpc_serve) of
# test/bin/crash_load, a `syrpc serve` CLI, all with a multi-host conninfo
# (PGHOST=primary,standby, PGTARGETSESSIONATTRS=read-write).  Halfway: the
# standby's WAL receiver is stopped (SIGSTOP), a syrpc_call times out, the
# primary is stopped with -m immediate, the receiver resumes, and the
# standby is promoted after its synchronous_standby_names is cleared (as an
# HA manager does).  Then:
#   - every request whose put returned is answered or failed (crash_load);
#   - the timed-out syrpc_call did not hand out its result_id before the
#     standby had its request (it waited for synchronous replication), and
#     any result_id it did hand out is known on the new primary;
#   - the serve loops and the CLI found the new primary by themselves.
# Needs the C tests built (test/bin/crash_load) and the CLI installed.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/cluster.sh
source test/tap_lib.sh

WORK=$(mktemp -d /tmp/syrpc-failover.XXXXXX)
chmod 755 "$WORK"; [ "$(id -u)" -eq 0 ] && chown postgres: "$WORK"
PRIMARY=$WORK/primary
STANDBY=$WORK/standby
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$WORK/walreceiver.pid" ] && kill -CONT "$(cat "$WORK/walreceiver.pid")" 2>/dev/null
    for d in "$PRIMARY" "$STANDBY"; do
        [ -d "$d/data" ] && _as_pg "$PGBIN/pg_ctl" -D "$d/data" -m immediate -w stop >/dev/null 2>&1
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

export PGUSER=postgres
pg() { psql -qXAt -h "$1" -p "$2" -d syrpc_ha "${@:3}"; }

# The primary.
_as_pg mkdir -p "$PRIMARY" "$STANDBY"
_as_pg "$PGBIN/initdb" -D "$PRIMARY/data" -U postgres -A trust --no-sync >"$WORK/initdb.log" 2>&1 ||
    { fail "initdb" "$(tail -5 "$WORK/initdb.log")"; tap_end; }
_as_pg sh -c "cat >> '$PRIMARY/data/postgresql.conf'" <<CONF
listen_addresses = ''
unix_socket_directories = '$PRIMARY'
port = 5432
max_connections = 200
shared_preload_libraries = 'syrpc'
synchronous_commit = on
log_min_messages = warning
CONF
_as_pg "$PGBIN/pg_ctl" -D "$PRIMARY/data" -l "$PRIMARY/server.log" -w -t 60 start >/dev/null ||
    { fail "start the primary" "$(tail -5 "$PRIMARY/server.log")"; tap_end; }
psql -qX -h "$PRIMARY" -p 5432 -d postgres -c "CREATE DATABASE syrpc_ha" >/dev/null
pg "$PRIMARY" 5432 -c "CREATE EXTENSION syrpc" 2>/dev/null

# The standby.
if _as_pg "$PGBIN/pg_basebackup" -h "$PRIMARY" -p 5432 -U postgres -D "$STANDBY/data" -R -X stream -c fast >"$WORK/bb.log" 2>&1 &&
   _as_pg sh -c "echo \"port = 5433\" >> '$STANDBY/data/postgresql.conf'; echo \"unix_socket_directories = '$STANDBY'\" >> '$STANDBY/data/postgresql.conf'" &&
   _as_pg "$PGBIN/pg_ctl" -D "$STANDBY/data" -l "$STANDBY/server.log" -w -t 60 start >/dev/null; then
    ok "a primary and a synchronous standby, both preloading syrpc"
else
    fail "a primary and a synchronous standby" "$(cat "$WORK/bb.log" "$STANDBY/server.log" 2>/dev/null | tail -5)"
    tap_end
fi
# Synchronous from now on (before, CREATE DATABASE would wait for it).
pg "$PRIMARY" 5432 -c "ALTER SYSTEM SET synchronous_standby_names = '*'" -c "SELECT pg_reload_conf()" >/dev/null
is_sync() { [ "$(pg "$PRIMARY" 5432 -c "SELECT sync_state FROM pg_stat_replication")" = sync ]; }
wait_until 30 is_sync || fail "the standby is synchronous" "$(pg "$PRIMARY" 5432 -c "SELECT * FROM pg_stat_replication")"

export PGHOST="$PRIMARY,$STANDBY" PGPORT="5432,5433" PGTARGETSESSIONATTRS=read-write
export PGDATABASE=syrpc_ha PGUSER=postgres PGCONNECT_TIMEOUT=5

# The CLI's serve loop, through the failover.
syrpc serve ha_cli --echo 2>"$WORK/cli-serve.err" & pids+=($!)
out=$(syrpc call ha_cli echo '{"before": 1}' --timeout 20 2>&1)
check "syrpc call answered by syrpc serve, through a multi-host conninfo" test "$out" = '{"before": 1}'

# What the failover does, run by crash_load halfway through its load.
cat >"$WORK/failover.sh" <<EOF
set -u
source tools/cluster.sh
unset PGHOST PGPORT PGTARGETSESSIONATTRS
receiver=\$(psql -qXAt -h "$STANDBY" -p 5433 -d postgres -c "SELECT pid FROM pg_stat_wal_receiver")
echo "\$receiver" > "$WORK/walreceiver.pid"
kill -STOP "\$receiver"
# A syrpc_call that times out while the standby cannot have its request.
psql -qXAt -h "$PRIMARY" -p 5432 -d syrpc_ha -c "CALL syrpc_call('ha_nobody', 't', '{}', 0.1)" \
    >"$WORK/call.out" 2>"$WORK/call.err" &
call=\$!
echo \$call > "$WORK/call.pid"
# Until it returns, or waits for synchronous replication (wait event SyncRep).
for i in \$(seq 1 300); do
    kill -0 \$call 2>/dev/null || break
    [ "\$(psql -qXAt -h "$PRIMARY" -p 5432 -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query LIKE 'CALL syrpc_call(''ha_nobody''%'")" != 0 ] &&
        { echo waited > "$WORK/call.state"; break; }
    sleep 0.05
done
kill -0 \$call 2>/dev/null || echo returned > "$WORK/call.state"
_as_pg $PGBIN/pg_ctl -D "$PRIMARY/data" -m immediate -w stop >/dev/null
kill -CONT "\$receiver"
rm -f "$WORK/walreceiver.pid"
wait \$call
psql -qXAt -h "$STANDBY" -p 5433 -d postgres -c "ALTER SYSTEM SET synchronous_standby_names = ''" -c "SELECT pg_reload_conf()" >/dev/null
_as_pg $PGBIN/pg_ctl -D "$STANDBY/data" -w promote >/dev/null
EOF

SYRPC_CRASH_CMD="bash $WORK/failover.sh" test/bin/crash_load ha_app 4 2 8 >"$WORK/load.out" 2>"$WORK/load.err"
sed -n 's/^# /# load: /p' "$WORK/load.out"
if grep -q '^ok 1 ' "$WORK/load.out"; then ok "failover under load: every request put is answered or failed, none lost"
else fail "failover under load: every request put is answered or failed, none lost" "$(cat "$WORK/load.out")" "$(tail -5 "$WORK/load.err")"; fi
if grep -q '^ok 2 ' "$WORK/load.out"; then ok "the serve loops found the new primary and answered after the failover"
else fail "the serve loops found the new primary and answered after the failover" "$(cat "$WORK/load.out")"; fi

state=$(cat "$WORK/call.state" 2>/dev/null)
if [ "$state" = waited ]; then ok "a timed-out syrpc_call waits for the synchronous standby before it hands out its result_id"
else fail "a timed-out syrpc_call waits for the synchronous standby before it hands out its result_id" \
    "state=$state out=$(cat "$WORK/call.out" 2>/dev/null) err=$(cat "$WORK/call.err" 2>/dev/null)"; fi
rid=$(sed -nE 's/^([0-9a-f-]{36})\|.*/\1/p' "$WORK/call.out" 2>/dev/null)
if [ -z "$rid" ]; then
    ok "no result_id left the old primary unknown to the new one (the call was cut by the failover)"
elif [ "$(pg "$STANDBY" 5433 -c "SELECT count(*) FROM syrpc.request WHERE result_id = '$rid'")" = 1 ]; then
    ok "the result_id that the timed-out syrpc_call handed out is known on the new primary"
else
    fail "the result_id that the timed-out syrpc_call handed out is known on the new primary" "$rid"
fi

out=$(syrpc call ha_cli echo '{"after": 1}' --timeout 30 2>&1)
check "syrpc serve (the CLI) reconnected to the new primary by itself" test "$out" = '{"after": 1}'
if pg "$STANDBY" 5433 -c "SELECT pg_is_in_recovery()" | grep -q f &&
   [ "$(pg "$STANDBY" 5433 -c "SELECT count(*) FROM syrpc.waiters()")" -ge 1 ]; then
    ok "the promoted standby's shared-memory registry serves waiters"
else fail "the promoted standby's shared-memory registry serves waiters"; fi
tap_end
