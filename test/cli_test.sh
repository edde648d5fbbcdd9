#!/usr/bin/env bash
# Tests of the syrpc CLI and of the examples built against the installed
# library.  Needs PGHOST etc. pointing at a database with the extension.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/tap_lib.sh"


# prom_check FILE: FILE is in Prometheus's text exposition format: every
# line a HELP, a TYPE or a sample (label values escaped); a name's HELP and
# TYPE once each and before its samples, which come together.  Says what
# is wrong on stdout.
prom_check() {
    local name='[a-zA-Z_:][a-zA-Z0-9_:]*' lname='[a-zA-Z_][a-zA-Z0-9_]*' lval='"([^"\\]|\\[\\"n])*"'
    local value='([-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]?Inf|NaN)'
    local help="^# HELP ($name) [^ ].*$" type="^# TYPE ($name) (counter|gauge|summary|histogram|untyped)$"
    local sample="^($name)(\{$lname=$lval(,$lname=$lval)*\})? $value( -?[0-9]+)?$"
    local line m helped=" " typed=" " seen=" " cur="" bad=0 lines=0
    while IFS= read -r line; do
        lines=$((lines + 1))
        if [[ $line =~ $help ]]; then
            m=${BASH_REMATCH[1]}
            [[ $helped == *" $m "* || $seen == *" $m "* ]] && { echo "HELP of $m again or after its samples"; bad=1; }
            helped+="$m "
        elif [[ $line =~ $type ]]; then
            m=${BASH_REMATCH[1]}
            [[ $typed == *" $m "* || $seen == *" $m "* ]] && { echo "TYPE of $m again or after its samples"; bad=1; }
            typed+="$m "
        elif [[ $line =~ $sample ]]; then
            m=${BASH_REMATCH[1]}
            [[ $typed == *" $m "* && $helped == *" $m "* ]] || { echo "sample before its HELP and TYPE: $line"; bad=1; }
            if [ "$m" != "$cur" ]; then
                [[ $seen == *" $m "* ]] && { echo "samples of $m apart: $line"; bad=1; }
                seen+="$m "; cur=$m
            fi
        else
            echo "not in the exposition format: $line"; bad=1
        fi
    done <"$1"
    [ $lines -gt 0 ] || { echo "empty"; bad=1; }
    return $bad
}

# rates FILE BLOCK: the rates (requests_per_s answered_per_s) of each row
# of block BLOCK (1, 2, ...) of stats --watch output
rates() { awk -v b="$2" 'BEGIN { n = 1 } /^$/ { n++; next } n == b && $1 != "app" { print $(NF-1), $NF }' "$1"; }

# jsonb_equal A B: the server says A and B are equal as jsonb
jsonb_equal() {
    [ "$(echo "SELECT :'a'::jsonb = :'b'::jsonb" | psql -qXAt -v a="$1" -v b="$2" 2>&1)" = t ]
}

# quiet SQL on the default database (for CREATE/DROP DATABASE)
sql() { psql -qXAt -d postgres -c "SET client_min_messages = warning" -c "$1" >/dev/null; }

WORK=$(mktemp -d /tmp/syrpc-cli.XXXXXX)
pids=()
cleanup() {
    kill ${pids[@]} 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"
    sql "DROP DATABASE IF EXISTS syrpc_cli_noext WITH (FORCE)"
    sql "DROP DATABASE IF EXISTS syrpc_cli_schema WITH (FORCE)"
    sql "DROP DATABASE IF EXISTS syrpc_cli_old WITH (FORCE)"
    sql "DROP DATABASE IF EXISTS syrpc_cli_10 WITH (FORCE)"
    sql "DROP DATABASE IF EXISTS syrpc_cli_16 WITH (FORCE)"
}
trap cleanup EXIT

for cmd in "" call cancel serve stats metrics; do
    syrpc $cmd --help >"$WORK/help" 2>&1
    check "syrpc $cmd --help exits 0 and prints usage" grep -q '^Usage: syrpc' "$WORK/help"
done
syrpc --version | grep -q '^syrpc [0-9]' && ok "syrpc --version" || fail "syrpc --version"
syrpc frobnicate >/dev/null 2>&1; rc=$?
check "unknown command exits 2" test $rc -eq 2

# serve --echo, then call
syrpc serve cli_echo --echo 2>"$WORK/serve.err" & pids+=($!)
out=$(syrpc call cli_echo echo '{"value":"hello"}' --timeout 10); rc=$?
if [ $rc -eq 0 ] && [ "$out" = '{"value": "hello"}' ]; then ok "call through serve --echo"
else fail "call through serve --echo" "rc=$rc out=$out" "$(cat "$WORK/serve.err")"; fi

# timeout: no server for this app
start=$(date +%s%N)
syrpc call cli_nobody echo '{}' --timeout 1 >/dev/null 2>"$WORK/err"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ $rc -eq 3 ] && [ $ms -ge 1000 ]; then ok "timeout exits 3 after the timeout (${ms} ms)"
else fail "timeout exits 3 after the timeout" "rc=$rc after $ms ms" "$(cat "$WORK/err")"; fi

syrpc call cli_echo echo '{not json' >/dev/null 2>&1; rc=$?
check "invalid JSON exits 2" test $rc -eq 2
syrpc call 'bad app' echo '{}' --timeout 1 >/dev/null 2>"$WORK/err"; rc=$?
check "bad app name exits 1 with the server's message" grep -q "invalid character" "$WORK/err"
syrpc -d "host=/nonexistent" call cli_echo echo '{}' >/dev/null 2>&1; rc=$?
check "connection failure exits 4" test $rc -eq 4

# serve --exec: a command per request, data on stdin, JSON on stdout
syrpc serve cli_exec --exec 'if [ "$SYRPC_TYPE" = fail ]; then exit 3; fi; cat' 2>"$WORK/exec.err" & pids+=($!)
out=$(syrpc call cli_exec echo '[1, 2, {"x": "y"}]' --timeout 10)
check "serve --exec answers with the command's output" test "$out" = '[1, 2, {"x": "y"}]'

# serve --exec with a command that fails: a remote error (extension 1.7); the caller prints its
# message and detail on stderr, nothing on stdout, and exits 6
# remote_error NAME TYPE RC MESSAGE DETAIL: syrpc call cli_exec TYPE exits RC, with "syrpc: remote
# error: MESSAGE" and "DETAIL: JSON" (DETAIL as jsonb) on stderr
remote_error() {
    local out rc got
    out=$(syrpc call cli_exec "$2" '{}' --timeout 10 2>"$WORK/err"); rc=$?
    got=$(sed -n 's/^DETAIL: //p' "$WORK/err")
    if [ $rc -eq "$3" ] && [ -z "$out" ] && grep -qxF "syrpc: remote error: $4" "$WORK/err" && jsonb_equal "$got" "$5"; then
        ok "$1"
    else fail "$1" "rc=$rc out=$out" "$(cat "$WORK/err")"; fi
}
remote_error "serve --exec: a command that exits 3 is a remote error, call exits 6" fail 6 \
    "the command exited with status 3" '{"exit_status": 3}'
syrpc serve cli_exec2 --exec 'case "$SYRPC_TYPE" in
    stderr) printf "oops: bad input\\n\\377\\n" >&2; exit 2;;
    kill) kill -9 $$;;
    silent) true;;
    *) cat;;
    esac' 2>"$WORK/exec2.err" & pids+=($!)
syrpc call cli_exec2 stderr '{}' --timeout 10 >/dev/null 2>"$WORK/err"; rc=$?
got=$(sed -n 's/^DETAIL: //p' "$WORK/err")
if [ $rc -eq 6 ] && grep -qxF "syrpc: remote error: the command exited with status 2" "$WORK/err" &&
   jsonb_equal "$got" '{"exit_status": 2, "stderr": "oops: bad input\n\ufffd\n"}'; then
    ok "serve --exec: the detail has the command's stderr (invalid UTF-8 replaced)"
else fail "serve --exec: the detail has the command's stderr (invalid UTF-8 replaced)" "rc=$rc" "$(cat "$WORK/err")"; fi
check "... and the stderr went to serve's stderr too" grep -q "oops: bad input" "$WORK/exec2.err"
syrpc call cli_exec2 kill '{}' --timeout 10 >/dev/null 2>"$WORK/err"; rc=$?
got=$(sed -n 's/^DETAIL: //p' "$WORK/err")
if [ $rc -eq 6 ] && grep -qE "^syrpc: remote error: the command was killed by signal 9 \(.+\)$" "$WORK/err" &&
   jsonb_equal "$got" '{"signal": 9}'; then ok "serve --exec: a command killed by a signal is a remote error"
else fail "serve --exec: a command killed by a signal is a remote error" "rc=$rc" "$(cat "$WORK/err")"; fi
syrpc call cli_exec2 silent '{}' --timeout 10 >/dev/null 2>"$WORK/err"; rc=$?
got=$(sed -n 's/^DETAIL: //p' "$WORK/err")
if [ $rc -eq 6 ] && grep -qxF "syrpc: remote error: the command printed nothing" "$WORK/err" &&
   jsonb_equal "$got" '{"exit_status": 0}'; then ok "serve --exec: a command that prints nothing is a remote error"
else fail "serve --exec: a command that prints nothing is a remote error" "rc=$rc" "$(cat "$WORK/err")"; fi
out=$(syrpc call cli_exec2 echo '[1]' --timeout 10 2>"$WORK/err")
check "... and serve goes on" test "$out" = '[1]'

# request failed: one attempt, a lease of 100 ms, and a worker that claims and never answers
psql -qXAt -c "SELECT syrpc_configure('cli_fail', lease_time => '100 ms', max_attempts => 1)" >/dev/null
syrpc call cli_fail job '{}' --timeout 10 >/dev/null 2>"$WORK/err" & caller=$!
wait_until 10 psql -qXAt -c "SELECT count(*) FROM syrpc_get_request('cli_fail', 0)" | grep -q 1
wait $caller; rc=$?
check "a request that failed its last attempt exits 5" test $rc -eq 5
grep -q "failed after 1 attempts" "$WORK/err" && ok "... and says so" || fail "... and says so" "$(cat "$WORK/err")"

# cancel: a call whose request a worker holds, cancelled from the shell; the call exits 7 (its
# request in the table: the server cancels an in-memory call only in its own session)
syrpc -d "options='-c syrpc.memory_calls=off'" call cli_cancel job '{}' --timeout 20 >"$WORK/out" 2>"$WORK/cancel.err" & caller=$!
id=$(psql -qXAt -c "SELECT result_id FROM syrpc_get_request('cli_cancel', 10)")
out=$(syrpc cancel cli_cancel "$id" 2>"$WORK/err"); rc=$?
if [ $rc -eq 0 ] && [ "$out" = cancelled ]; then ok "cancel of a request in flight prints cancelled, exits 0"
else fail "cancel of a request in flight prints cancelled, exits 0" "id=$id rc=$rc out=$out" "$(cat "$WORK/err")"; fi
wait $caller; rc=$?
if [ $rc -eq 7 ] && grep -q "^syrpc: cancelled: request $id was cancelled" "$WORK/cancel.err" && [ ! -s "$WORK/out" ]; then
    ok "... and its call exits 7, saying so"
else fail "... and its call exits 7, saying so" "rc=$rc" "$(cat "$WORK/cancel.err" "$WORK/out")"; fi
out=$(syrpc cancel cli_cancel "$id" 2>"$WORK/err"); rc=$?
check "a second cancel prints already ended, exits 0" test $rc -eq 0 -a "$out" = "already ended"
syrpc cancel cli_cancel 00000000-0000-0000-0000-000000000001 >/dev/null 2>"$WORK/err"; rc=$?
check "cancel of an unknown result_id exits 1" test $rc -eq 1
syrpc cancel cli_cancel >/dev/null 2>"$WORK/err"; rc=$?
check "cancel without RESULT_ID: usage, exit 2" test $rc -eq 2 -a "$(grep -c '^Usage: syrpc cancel' "$WORK/err")" -eq 1

# exact numbers: call sends its argument as is, serve --echo and --exec answer the server's text
for v in '0.12345678901234567890123' '12345678901234567.5' '1.10' '9007199254740993.0' \
         '123456789012345678901234567890' '1e400' '{"a": [1.10, -0.0, 1e-7]}'; do
    out=$(syrpc call cli_echo echo "$v" --timeout 10 2>"$WORK/err"); rc=$?
    if [ $rc -eq 0 ] && jsonb_equal "$v" "$out"; then ok "call through serve --echo keeps ${v:0:40}"
    else fail "call through serve --echo keeps $v" "rc=$rc out=${out:0:80}" "$(cat "$WORK/err")"; fi
done
out=$(syrpc call cli_exec echo '[123456789012345678901234567890, 0.12345678901234567890123]' --timeout 10 2>"$WORK/err")
check "call through serve --exec keeps every digit" jsonb_equal '[123456789012345678901234567890, 0.12345678901234567890123]' "$out"

# --exec whose output is not JSON: the request fails with the server's reason, serve goes on
syrpc serve cli_notjson --exec 'echo this is not JSON' 2>"$WORK/notjson.err" & pids+=($!)
for i in 1 2; do
    syrpc call cli_notjson job '{}' --timeout 10 >/dev/null 2>"$WORK/err"; rc=$?
    if [ $rc -eq 5 ] && grep -q "invalid input syntax for type json" "$WORK/err"; then
        ok "serve --exec with output that is not JSON: the call exits 5 with the reason ($i)"
    else fail "serve --exec with output that is not JSON: the call exits 5 with the reason ($i)" "rc=$rc" "$(cat "$WORK/err")"; fi
done
check "... and serve goes on" kill -0 "${pids[-1]}"

# arguments checked: exit 2
for t in nan inf 1e10 -1 '' 5x; do
    syrpc call cli_echo echo '{}' --timeout "$t" >/dev/null 2>"$WORK/err"; rc=$?
    check "call --timeout '$t' exits 2" test $rc -eq 2
done
for count in abc -3 1x 0 ''; do
    timeout 10 syrpc serve cli_count --echo --count "$count" >/dev/null 2>"$WORK/err"; rc=$?
    check "serve --count '$count' exits 2" test $rc -eq 2
done
syrpc serve cli_count --echo --count 2 2>"$WORK/count.err" & counted=$!
syrpc call cli_count echo 1 --timeout 10 >/dev/null && syrpc call cli_count echo 2 --timeout 10 >/dev/null
wait $counted; rc=$?
check "serve --count 2 exits 0 after two answers" test $rc -eq 0
# serve --batch N: 1 to 1000 (else exit 2); six queued requests served in batches of 4, each its own answer
for batch in 0 1001 abc -1 4x ''; do
    timeout 10 syrpc serve cli_batch --echo --batch "$batch" >/dev/null 2>"$WORK/err"; rc=$?
    check "serve --batch '$batch' exits 2" test $rc -eq 2
done
ids=$(psql -qXAt -c "SELECT syrpc_put_request('cli_batch', 'echo', jsonb_build_object('i', i, 'n', 12345678901234567890.5))
                     FROM generate_series(1, 6) i")
timeout 30 syrpc serve cli_batch --echo --batch 4 --count 6 2>"$WORK/batch.err"; rc=$?
check "serve --batch 4 --count 6 exits 0 after six answers" test $rc -eq 0
got=$(for id in $ids; do psql -qXAt -c "SELECT syrpc_get_result('cli_batch', '$id', 5)"; done | tr '\n' ' ')
want=$(for i in 1 2 3 4 5 6; do printf '{"i": %d, "n": 12345678901234567890.5} ' $i; done)
if [ "$got" = "$want" ]; then ok "... each request its own answer, every digit kept"
else fail "... each request its own answer, every digit kept" "got: $got" "$(cat "$WORK/batch.err")"; fi
out=$(syrpc call cli_echo echo '9223372036854775808' --timeout 10 2>&1); rc=$?
check "call accepts JSON that jansson would refuse (an integer beyond 64 bits)" test $rc -eq 0 -a "$out" = 9223372036854775808

# the extension missing from the database: said so, with a hint
sql "DROP DATABASE IF EXISTS syrpc_cli_noext WITH (FORCE)"
sql "CREATE DATABASE syrpc_cli_noext"
syrpc -d dbname=syrpc_cli_noext call cli_x echo '{}' --timeout 1 >/dev/null 2>"$WORK/err"; rc=$?
if [ $rc -eq 1 ] && grep -q 'the syrpc extension is not installed in database "syrpc_cli_noext"' "$WORK/err" &&
   grep -q '^HINT: Run CREATE EXTENSION syrpc' "$WORK/err"; then ok "call without the extension says so, with a hint (exit 1)"
else fail "call without the extension says so, with a hint (exit 1)" "rc=$rc" "$(cat "$WORK/err")"; fi
syrpc -d dbname=syrpc_cli_noext stats >/dev/null 2>"$WORK/err"; rc=$?
if [ $rc -eq 1 ] && grep -q 'not installed in database "syrpc_cli_noext"' "$WORK/err"; then ok "stats without the extension says so"
else fail "stats without the extension says so" "rc=$rc" "$(cat "$WORK/err")"; fi

# the extension in a schema that is not on search_path
sql "DROP DATABASE IF EXISTS syrpc_cli_schema WITH (FORCE)"
sql "CREATE DATABASE syrpc_cli_schema"
psql -qX -d syrpc_cli_schema -c "CREATE SCHEMA rpc" -c "CREATE EXTENSION syrpc SCHEMA rpc" >/dev/null
syrpc -d dbname=syrpc_cli_schema serve cli_schema --echo 2>"$WORK/schema.err" & pids+=($!)
out=$(syrpc -d dbname=syrpc_cli_schema call cli_schema echo '{"in": "rpc"}' --timeout 10 2>"$WORK/err"); rc=$?
if [ $rc -eq 0 ] && [ "$out" = '{"in": "rpc"}' ]; then ok "serve and call with the extension in schema rpc"
else fail "serve and call with the extension in schema rpc" "rc=$rc out=$out" "$(cat "$WORK/err" "$WORK/schema.err")"; fi
syrpc -d dbname=syrpc_cli_schema stats >"$WORK/stats" 2>&1
check "stats with the extension in schema rpc" grep -qE '^cli_schema +0 +0 +0' "$WORK/stats"

syrpc stats >"$WORK/stats"
check "stats prints a table with every app" grep -qE '^cli_echo +0 +0 +0' "$WORK/stats"
syrpc stats cli_exec >"$WORK/stats"
check "stats APP prints that app only" test "$(wc -l <"$WORK/stats")" -eq 2

# stats --watch: a block per interval, separated by a blank line when stdout is not a tty
timeout 30 syrpc stats cli_echo --watch 0.2 --count 2 >"$WORK/watch" 2>"$WORK/err"; rc=$?
check "stats --watch 0.2 --count 2 exits 0" test $rc -eq 0
if [ "$(grep -cE '^app +queued +in_flight +failed +oldest_queued_s +results_waiting +workers_waiting +requests_per_s +answered_per_s$' "$WORK/watch")" -eq 2 ] &&
   [ "$(grep -c '^$' "$WORK/watch")" -eq 1 ] && [ "$(wc -l <"$WORK/watch")" -eq 5 ] && [ "$(sed -n 3p "$WORK/watch")" = "" ]; then
    ok "stats --watch --count 2: two tables of one app, a blank line between them"
else fail "stats --watch --count 2: two tables of one app, a blank line between them" "$(cat "$WORK/watch" "$WORK/err")"; fi
check "... the first with no rates (-)" test "$(rates "$WORK/watch" 1)" = "- -"
timeout 30 syrpc stats --watch --count 1 cli_echo >"$WORK/watch1" 2>"$WORK/err"; rc=$?
check "stats --watch --count 1 (the default interval): one table" test $rc -eq 0 -a "$(wc -l <"$WORK/watch1")" -eq 2
check "... printed without ANSI codes" bash -c "! grep -q $'\e' '$WORK/watch'"
if command -v script >/dev/null; then     # util-linux: a pseudo-terminal for stdout
    timeout 30 script -qec "syrpc stats cli_echo --watch 0.2 --count 2" /dev/null >"$WORK/tty" 2>&1 </dev/null
    check "stats --watch on a terminal clears the screen before each table" \
        test "$(grep -o $'\e\\[H\e\\[2J' "$WORK/tty" | wc -l)" -eq 2
fi

# rates from the counters of syrpc_stats_latency, which need shared_preload_libraries
preloaded=$(psql -qXAt -c "SELECT current_setting('shared_preload_libraries') ~ 'syrpc'")
syrpc serve cli_watch --echo 2>"$WORK/watch.err" & pids+=($!)
syrpc call cli_watch echo '{}' --timeout 10 >/dev/null; calls=1      # the app is there from the first table
timeout 60 syrpc stats --watch 1 --count 3 cli_watch >"$WORK/watch" 2>"$WORK/err" & watcher=$!
while kill -0 $watcher 2>/dev/null; do
    syrpc call cli_watch echo '{}' --timeout 10 >/dev/null && calls=$((calls + 1))
done
wait $watcher; rc=$?
if [ "$preloaded" = t ]; then
    r=$(rates "$WORK/watch" 2; rates "$WORK/watch" 3)
    if [ $rc -eq 0 ] && [ $calls -gt 0 ] && awk '$1 > 0 && $2 > 0 { found = 1 } END { exit !found }' <<<"$r" &&
       ! grep -q -- - <<<"$r"; then
        ok "stats --watch: requests and answers per second after $calls calls"
    else fail "stats --watch: requests and answers per second after $calls calls" "rc=$rc" "$(cat "$WORK/watch" "$WORK/err")"; fi
else
    check "stats --watch without shared_preload_libraries: no counters, rates -" \
        test "$(rates "$WORK/watch" 3)" = "- -"
fi
for sig in TERM INT; do
    syrpc stats --watch 0.2 >"$WORK/watch" 2>&1 & watcher=$!
    wait_until 20 grep -q '^app' "$WORK/watch"
    kill -$sig $watcher; timeout 20 tail --pid=$watcher -f /dev/null; wait $watcher; rc=$?
    check "stats --watch exits 0 on SIG$sig" test $rc -eq 0
done

# metrics: the exposition format, NULLs left out, APP
psql -qXAt -c "SELECT syrpc_put_request('cli_queued', 'job', '{}')" >/dev/null     # no worker: stays queued
syrpc metrics >"$WORK/metrics" 2>"$WORK/err"; rc=$?
why=$(prom_check "$WORK/metrics")
if [ $rc -eq 0 ] && [ -z "$why" ] && [ ! -s "$WORK/err" ]; then ok "metrics prints the exposition format"
else fail "metrics prints the exposition format" "rc=$rc $why" "$(head -c 2000 "$WORK/metrics" "$WORK/err")"; fi
for m in 'syrpc_requests_queued{app="cli_echo"} 0' 'syrpc_requests_queued{app="cli_queued"} 1' \
         'syrpc_requests_in_flight{app="cli_echo"} 0' 'syrpc_requests_failed{app="cli_echo"} 0' \
         'syrpc_results_waiting{app="cli_echo"} 0' 'syrpc_workers_waiting{app="cli_watch"} 1' \
         '# TYPE syrpc_oldest_queued_age_seconds gauge'; do
    check "metrics has $m" grep -qxF "$m" "$WORK/metrics"
done
check "metrics: oldest_queued_age of a queued request, in seconds" \
    grep -qE '^syrpc_oldest_queued_age_seconds\{app="cli_queued"\} [0-9.]+$' "$WORK/metrics"
check "metrics leaves out NULLs (oldest_queued_age with nothing queued)" \
    bash -c "! grep -q 'syrpc_oldest_queued_age_seconds{app=\"cli_echo\"}' '$WORK/metrics'"
if [ "$preloaded" = t ]; then
    nreq=$(sed -nE 's/^syrpc_requests_total\{app="cli_watch"\} ([0-9]+)$/\1/p' "$WORK/metrics")
    a=$(sed -nE 's/^syrpc_answered_total\{app="cli_watch"\} ([0-9]+)$/\1/p' "$WORK/metrics")
    if [ -n "$nreq" ] && [ -n "$a" ] && [ "$nreq" -ge $calls ] && [ "$a" -ge $calls ]; then
        ok "metrics: requests_total and answered_total count the $calls calls"
    else fail "metrics: requests_total and answered_total count the $calls calls" "requests_total=$nreq answered_total=$a"; fi
    for m in '# TYPE syrpc_requests_total counter' '# TYPE syrpc_answered_total counter' \
             '# TYPE syrpc_failed_total counter' '# TYPE syrpc_expired_total counter' \
             '# TYPE syrpc_queue_wait_seconds gauge'; do
        check "metrics has $m" grep -qxF "$m" "$WORK/metrics"
    done
    for m in queue_wait service round_trip; do
        check "metrics: syrpc_${m}_seconds of cli_watch, quantiles 0.5 and 0.99" test "$(grep -cE \
            "^syrpc_${m}_seconds\\{app=\"cli_watch\",quantile=\"0\\.(5|99)\"\\} [0-9.]+(e-?[0-9]+)?$" "$WORK/metrics")" -eq 2
    done
    check "metrics: no latency where there were no samples (cli_queued)" \
        bash -c "! grep -q 'seconds{app=\"cli_queued\",quantile' '$WORK/metrics'"
else
    check "metrics without shared_preload_libraries: no counters" bash -c "! grep -q _total '$WORK/metrics'"
fi
syrpc metrics cli_watch >"$WORK/metrics"; rc=$?
if [ $rc -eq 0 ] && [ -z "$(prom_check "$WORK/metrics")" ] && grep -q 'app="cli_watch"' "$WORK/metrics" &&
   ! grep -v '^#' "$WORK/metrics" | grep -vq 'app="cli_watch"'; then ok "metrics APP: that app only"
else fail "metrics APP: that app only" "$(head -c 2000 "$WORK/metrics")"; fi
syrpc metrics cli_unknown >"$WORK/metrics"; rc=$?
check "metrics of an app that is not there: nothing, exit 0" test $rc -eq 0 -a ! -s "$WORK/metrics"

# label values escaped (names from the API cannot have these; the table can)
psql -qX -d syrpc_cli_schema -c "INSERT INTO syrpc.app (app) VALUES (E'we\"ird\\\\app\\nname')"
syrpc -d dbname=syrpc_cli_schema metrics >"$WORK/metrics" 2>"$WORK/err"; rc=$?
why=$(prom_check "$WORK/metrics")
if [ $rc -eq 0 ] && [ -z "$why" ] && grep -qxF 'syrpc_requests_queued{app="we\"ird\\app\nname"} 0' "$WORK/metrics"; then
    ok "metrics escapes \\, \" and newline in label values (extension in schema rpc)"
else fail "metrics escapes \\, \" and newline in label values (extension in schema rpc)" "rc=$rc $why" "$(cat "$WORK/metrics" "$WORK/err")"; fi

# extensions older than syrpc_stats_latency (1.3) and than workers_waiting (1.0)
sql "DROP DATABASE IF EXISTS syrpc_cli_old WITH (FORCE)"
sql "CREATE DATABASE syrpc_cli_old"
sql "DROP DATABASE IF EXISTS syrpc_cli_10 WITH (FORCE)"
sql "CREATE DATABASE syrpc_cli_10"
for db in syrpc_cli_old:1.3 syrpc_cli_10:1.0; do
    psql -qX -d ${db%:*} -c "SET client_min_messages = warning" -c "CREATE EXTENSION syrpc VERSION '${db#*:}'" \
        -c "SELECT syrpc_put_request('cli_old', 'job', '{}')" >/dev/null 2>"$WORK/err" || cat "$WORK/err"
    syrpc -d dbname=${db%:*} metrics >"$WORK/metrics" 2>"$WORK/err"; rc=$?
    why=$(prom_check "$WORK/metrics")
    if [ $rc -eq 0 ] && [ -z "$why" ] && [ ! -s "$WORK/err" ] && grep -qxF 'syrpc_requests_queued{app="cli_old"} 1' "$WORK/metrics" &&
       ! grep -qE '_total|quantile' "$WORK/metrics"; then ok "metrics on extension ${db#*:}: syrpc_stats only, nothing said"
    else fail "metrics on extension ${db#*:}: syrpc_stats only, nothing said" "rc=$rc $why" "$(cat "$WORK/metrics" "$WORK/err")"; fi
    timeout 30 syrpc -d dbname=${db%:*} stats --watch 0.2 --count 2 >"$WORK/watch" 2>"$WORK/err"; rc=$?
    check "stats --watch on extension ${db#*:}: rates -" test $rc -eq 0 -a "$(rates "$WORK/watch" 2)" = "- -"
done
check "metrics on extension 1.0: no workers_waiting" bash -c "! grep -q workers_waiting '$WORK/metrics'"

# extension 1.6: no remote errors; serve --exec answers a failing command as before, cancel says it needs 1.7
sql "DROP DATABASE IF EXISTS syrpc_cli_16 WITH (FORCE)"
sql "CREATE DATABASE syrpc_cli_16"
psql -qX -d syrpc_cli_16 -c "SET client_min_messages = warning" -c "CREATE EXTENSION syrpc VERSION '1.6'" >/dev/null
syrpc -d dbname=syrpc_cli_16 serve cli_old16 --exec 'exit 3' 2>"$WORK/exec16.err" & pids+=($!)
out=$(syrpc -d dbname=syrpc_cli_16 call cli_old16 job '{}' --timeout 10 2>"$WORK/err"); rc=$?
if [ $rc -eq 0 ] && [ "$out" = '{"error": "command failed", "status": 3}' ]; then
    ok "serve --exec on extension 1.6: a failing command answers {\"error\": \"command failed\", ...} as before"
else fail "serve --exec on extension 1.6: a failing command answers {\"error\": \"command failed\", ...} as before" \
    "rc=$rc out=$out" "$(cat "$WORK/err" "$WORK/exec16.err")"; fi
syrpc -d dbname=syrpc_cli_16 cancel cli_old16 00000000-0000-0000-0000-000000000001 >/dev/null 2>"$WORK/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "syrpc_cancel needs extension 1.7 or later (the database has 1.6)" "$WORK/err"; then
    ok "cancel on extension 1.6 says it needs 1.7 (exit 1)"
else fail "cancel on extension 1.6 says it needs 1.7 (exit 1)" "rc=$rc" "$(cat "$WORK/err")"; fi
syrpc -d dbname=syrpc_cli_10 stats >"$WORK/stats"
check "stats on extension 1.0: workers_waiting -" grep -qE '^cli_old +1 +0 +0 +[0-9.]+ +0 +-$' "$WORK/stats"

# errors: usage and exit 2; nothing on stdout when there is nothing to say
for args in "--watch 0" "--watch -1" "--watch 1e10" "--watch 5x" "--watch .01" "--watch 0.2 --count 0" \
            "--watch --count x" "--watch -0.5" "--count 2" "--count" "a b" "--watch 1 a b" "--bogus"; do
    timeout 10 syrpc stats $args >/dev/null 2>"$WORK/err"; rc=$?
    check "stats $args: usage, exit 2" test $rc -eq 2 -a "$(grep -c '^Usage: syrpc stats' "$WORK/err")" -eq 1
done
for args in "a b" "--bogus"; do
    timeout 10 syrpc metrics $args >/dev/null 2>"$WORK/err"; rc=$?
    check "metrics $args: usage, exit 2" test $rc -eq 2 -a "$(grep -c '^Usage: syrpc metrics' "$WORK/err")" -eq 1
done
syrpc -d dbname=syrpc_cli_noext metrics >"$WORK/metrics" 2>"$WORK/err"; rc=$?
check "metrics without the extension: exit 1, nothing printed" test $rc -eq 1 -a ! -s "$WORK/metrics"
syrpc -d "host=/nonexistent" metrics >"$WORK/metrics" 2>/dev/null; rc=$?
check "metrics with no server: exit 4, nothing printed" test $rc -eq 4 -a ! -s "$WORK/metrics"
timeout 10 syrpc -d "host=/nonexistent" stats --watch 1 >/dev/null 2>&1; rc=$?
check "stats --watch with no server: exit 4" test $rc -eq 4

# the examples, built against the installed library with pkg-config
if cc -o "$WORK/echo_server" client/c/examples/echo_server.c $(pkg-config --cflags --libs syrpc) 2>"$WORK/cc.err" &&
   cc -o "$WORK/echo_client" client/c/examples/echo_client.c $(pkg-config --cflags --libs syrpc) 2>>"$WORK/cc.err"; then
    ok "examples compile with pkg-config --cflags --libs syrpc"
    "$WORK/echo_server" cli_example & pids+=($!)
    out=$("$WORK/echo_client" cli_example)
    check "echo_client gets its data back from echo_server" grep -q 'get_result  -> \[{"foo": "bar"}, {"baz": 9001}\]' <<<"$out"
else
    fail "examples compile with pkg-config --cflags --libs syrpc" "$(cat "$WORK/cc.err")"
fi

# SIGTERM stops serve cleanly
kill -TERM "${pids[0]}"; wait "${pids[0]}"; rc=$?
check "serve exits 0 on SIGTERM" test $rc -eq 0

tap_end
