#!/usr/bin/env bash
# Tests of the syrpc CLI and of the examples built against the installed
# library.  Needs PGHOST etc. pointing at a database with the extension.
set -uo pipefail
n=0; passed=0; failed=0
ok()   { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

# wait_until SECONDS CMD...: run CMD until it succeeds, up to SECONDS
wait_until() {
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@"; do [ "$(date +%s)" -ge "$deadline" ] && return 1; sleep 0.05; done
}

WORK=$(mktemp -d /tmp/syrpc-cli.XXXXXX)
pids=()
trap 'kill ${pids[@]} 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

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

syrpc stats >"$WORK/stats"
check "stats prints a table with every app" grep -qE '^cli_echo +0 +0 +0' "$WORK/stats"
syrpc stats cli_exec >"$WORK/stats"
check "stats APP prints that app only" test "$(wc -l <"$WORK/stats")" -eq 2

# the examples, built against the installed library with pkg-config
if cc -o "$WORK/echo_server" client/examples/echo_server.c $(pkg-config --cflags --libs syrpc) 2>"$WORK/cc.err" &&
   cc -o "$WORK/echo_client" client/examples/echo_client.c $(pkg-config --cflags --libs syrpc) 2>>"$WORK/cc.err"; then
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

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
