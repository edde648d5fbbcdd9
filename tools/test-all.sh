#!/usr/bin/env bash
# Run every test suite against throwaway clusters:
#   1. the pg_regress suite (sql/, expected/) and the isolation specs (specs/),
#      without and with shared_preload_libraries = 'syrpc'
#   2. the client library's and reliability tests (test/), under valgrind,
#      and the CLI and example tests
#   3. a server crash under load, and a short soak
# Prints "N passed, N failed" last; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/cluster.sh
source tools/build.sh

passed=0
failed=0
LOG=$(mktemp -d /tmp/syrpc-test.XXXXXX)
trap 'cluster_stop; rm -rf "$LOG"' EXIT

# tally FILE: count pg_regress-style "... ok" / "... FAILED" lines
tally() {
    local ok bad
    ok=$(grep -cE '^(not ok|ok|test) .*\.\.\. *ok|^ok [0-9]+ ' "$1" || true)
    bad=$(grep -cE '\.\.\. *FAILED|^not ok ' "$1" || true)
    passed=$((passed + ok))
    failed=$((failed + bad))
}

build_and_install || exit 1

run_sql_suites() {   # $1: label
    echo "== SQL regression and isolation tests ($1)"
    make -s installcheck >"$LOG/installcheck.out" 2>&1
    local rc=$?
    grep -E '\.\.\. ' "$LOG/installcheck.out"
    tally "$LOG/installcheck.out"
    if [ $rc -ne 0 ]; then
        [ -f regression.diffs ] && cat regression.diffs
        [ -f output_iso/regression.diffs ] && cat output_iso/regression.diffs
        # a failure before any test ran still counts as one
        grep -qE '\.\.\. ' "$LOG/installcheck.out" || { cat "$LOG/installcheck.out"; failed=$((failed + 1)); }
    fi
}

cluster_start || exit 1
run_sql_suites "without shared_preload_libraries"
cluster_stop

# The rest runs with the library preloaded, as the demo and bench do.
# autovacuum_naptime = 5s so that the short soak sees vacuum at work.
cluster_start "shared_preload_libraries = 'syrpc'" "autovacuum_naptime = 5s" || exit 1
run_sql_suites "with shared_preload_libraries = 'syrpc'"

echo "== client library, reliability and CLI tests"
test/run-client-tests.sh 2>&1 | tee "$LOG/client.out"
tally "$LOG/client.out"

echo "== pgbouncer in transaction pooling mode"
PGDATABASE=syrpc_client_test bash test/pgbouncer_test.sh 2>&1 | tee "$LOG/pgbouncer.out"
tally "$LOG/pgbouncer.out"

echo "== server crash under load (pg_ctl stop -m immediate, restart)"
export PGDATABASE=syrpc_client_test
SYRPC_CRASH_CMD="bash -c 'source tools/cluster.sh; CLUSTER_DIR=$CLUSTER_DIR cluster_crash_restart'" \
    test/bin/crash_load crash_app 4 2 6 2>/dev/null | tee "$LOG/crash.out"
tally "$LOG/crash.out"

echo "== soak (${SOAK_SECONDS:-40} s; SOAK_SECONDS=600 make test for a long one)"
test/bin/soak soak_app "${SOAK_SECONDS:-40}" 5 2 | tee "$LOG/soak.out"
tally "$LOG/soak.out"
unset PGDATABASE
cluster_stop

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
