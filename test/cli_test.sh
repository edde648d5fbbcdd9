#!/usr/bin/env bash
# Tests of the syrpc CLI and of the examples built against the installed
# library.  Needs PGHOST etc. pointing at a database with the extension.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/tap_lib.sh"


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
}
trap cleanup EXIT

for cmd in "" call serve stats; do
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
out=$(syrpc call cli_exec fail '{}' --timeout 10)
check "serve --exec reports a failing command" test "$out" = '{"error": "command failed", "status": 3}'

# request failed: one attempt, a lease of 100 ms, and a worker that claims and never answers
psql -qXAt -c "SELECT syrpc_configure('cli_fail', lease_time => '100 ms', max_attempts => 1)" >/dev/null
syrpc call cli_fail job '{}' --timeout 10 >/dev/null 2>"$WORK/err" & caller=$!
wait_until 10 psql -qXAt -c "SELECT count(*) FROM syrpc_get_request('cli_fail', 0)" | grep -q 1
wait $caller; rc=$?
check "a request that failed its last attempt exits 5" test $rc -eq 5
grep -q "failed after 1 attempts" "$WORK/err" && ok "... and says so" || fail "... and says so" "$(cat "$WORK/err")"

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
