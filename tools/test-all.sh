#!/usr/bin/env bash
# Run every test suite against throwaway clusters:
#   1. the pg_regress suite (sql/, expected/) and the isolation specs (specs/),
#      without and with shared_preload_libraries = 'syrpc'
#   2. the model of the waiter protocol (spin), the client library's and
#      reliability tests (test/), under valgrind,
#      the CLI and example tests, pgbouncer, and test/server_test.sh if there
#      is one
#   3. a server crash under load, a failover to a synchronous standby under
#      load, and a short soak
# Every runner is checked, not only its "ok" lines counted (tools/tap.sh):
# one that crashes, exits non-zero, prints no plan ("1..N") or a different
# number of tests than its plan counts as a failure, and "# FAILED: ..." says
# why.  pg_regress and pg_isolation_regress are held to their exit status,
# their closing line and the number of tests in sql/ and specs/.
# Prints "N passed, N failed" last; exits non-zero if anything failed or
# nothing passed.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/cluster.sh
source tools/build.sh
source tools/tap.sh

LOG=$(mktemp -d /tmp/syrpc-test.XXXXXX)
trap 'cluster_stop; rm -rf "$LOG"' EXIT

# A failure outside any runner (the build, a cluster that does not start).
fail_outside() {
    TAP_FAILED=$((TAP_FAILED + 1))
    echo "# FAILED: $1"
}

# Stop here: the count so far, and a non-zero exit.
give_up() {
    fail_outside "$1"
    echo
    tap_summary
    exit 1
}

# regress_run NAME LOG PLAN MAKE-ARGS...: make installcheck (pg_regress or
# pg_isolation_regress) with MAKE-ARGS, which should run PLAN tests.  Each
# "... ok" line is a pass, each "... FAILED" a failure, and the run one
# failure more when its exit status, its closing line ("All N tests
# passed." or "F of N tests failed.") or its number of tests disagree.
regress_run() {
    local name=$1 log=$2 plan=$3 rc ok bad summary all f n why=()
    shift 3
    make -s installcheck "$@" >"$log" 2>&1
    rc=$?
    grep -E '\.\.\. ' "$log"
    ok=$(grep -cE '^(test )? *[A-Za-z0-9_.-]+ +\.\.\. +ok( |$)' "$log")
    bad=$(grep -ciE '\.\.\. +failed' "$log")
    summary=$(grep -E '^ *(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed)\.' "$log" | tail -n 1)
    [ -n "$summary" ] && echo "$summary"
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        why+=("make installcheck exited with status $rc, with no test failed")
    elif [ "$rc" -eq 0 ] && [ "$bad" -gt 0 ]; then
        why+=("make installcheck exited with status 0, with $bad tests failed")
    fi
    [ "$ok" -gt 0 ] || why+=("no '... ok' line")
    [ $((ok + bad)) -eq "$plan" ] || why+=("ran $((ok + bad)) tests of the $plan in the directory")
    all=$(sed -nE 's/^ *All ([0-9]+) tests passed\..*/\1/p' <<<"$summary")
    f=$(sed -nE 's/^ *([0-9]+) of [0-9]+ tests failed\..*/\1/p' <<<"$summary")
    n=$(sed -nE 's/^ *[0-9]+ of ([0-9]+) tests failed\..*/\1/p' <<<"$summary")
    if [ -z "$summary" ]; then
        why+=("no closing 'All N tests passed.' or 'N of M tests failed.'")
    elif [ -n "$all" ] && { [ "$all" -ne "$ok" ] || [ "$bad" -ne 0 ]; }; then
        why+=("said '$summary' but printed $ok ok and $bad FAILED")
    elif [ -n "$f" ] && { [ "$f" -ne "$bad" ] || [ "$n" -ne $((ok + bad)) ]; }; then
        why+=("said '$summary' but printed $ok ok and $bad FAILED")
    fi
    TAP_PASSED=$((TAP_PASSED + ok))
    TAP_FAILED=$((TAP_FAILED + bad))
    if [ "$rc" -ne 0 ]; then
        [ -f regression.diffs ] && cat regression.diffs
        [ -f output_iso/regression.diffs ] && cat output_iso/regression.diffs
    fi
    if [ ${#why[@]} -gt 0 ]; then
        TAP_FAILED=$((TAP_FAILED + 1))
        [ $((ok + bad)) -gt 0 ] || cat "$log"
        printf '# FAILED: %s: %s\n' "$name" "$(IFS=';'; echo "${why[*]}" | sed 's/;/; /g')"
    fi
}

run_sql_suites() {   # $1: label
    local nsql nspec
    nsql=$(find sql -maxdepth 1 -name '*.sql' | wc -l)
    nspec=$(find specs -maxdepth 1 -name '*.spec' 2>/dev/null | wc -l)
    echo "== SQL regression tests ($1)"
    regress_run "pg_regress ($1)" "$LOG/regress.out" "$nsql" ISOLATION=
    if [ "$nspec" -gt 0 ]; then
        echo "== isolation tests ($1)"
        regress_run "pg_isolation_regress ($1)" "$LOG/isolation.out" "$nspec" REGRESS=
    fi
}

build_and_install || give_up "building and installing the extension and the client"

echo "== exported symbols (test/symbols_test.sh)"
tap_run test/symbols_test.sh "$LOG/symbols.out" bash test/symbols_test.sh

echo "== the waiter protocol's model, in spin (test/model_test.sh)"
tap_run test/model_test.sh "$LOG/model.out" bash test/model_test.sh

echo "== install script against the upgrade path (test/install_test.sh)"
tap_run test/install_test.sh "$LOG/install.out" bash test/install_test.sh

cluster_start || give_up "starting a cluster"
run_sql_suites "without shared_preload_libraries"
cluster_stop

# The rest runs with the library preloaded, as the demo and bench do.
# autovacuum_naptime = 5s so that the short soak sees vacuum at work.
cluster_start "shared_preload_libraries = 'syrpc'" "autovacuum_naptime = 5s" ||
    give_up "starting a cluster with shared_preload_libraries = 'syrpc'"
run_sql_suites "with shared_preload_libraries = 'syrpc'"

echo "== client library, reliability and CLI tests"
tap_run test/run-client-tests.sh "$LOG/client.out" test/run-client-tests.sh

echo "== pgbouncer in transaction pooling mode"
tap_run test/pgbouncer_test.sh "$LOG/pgbouncer.out" env PGDATABASE=syrpc_client_test bash test/pgbouncer_test.sh

# The server tests start clusters of their own.
echo "== server tests (test/server_test.sh)"
tap_run test/server_test.sh "$LOG/server.out" bash test/server_test.sh

echo "== Python client (client/python)"
tap_run client/python/run-tests.sh "$LOG/python.out" bash client/python/run-tests.sh

echo "== Node.js client (client/node)"
tap_run client/node/run-tests.sh "$LOG/node.out" bash client/node/run-tests.sh

echo "== server crash under load (pg_ctl stop -m immediate, restart)"
export PGDATABASE=syrpc_client_test
crash_load() {
    # libpq's complaints about the crash go to a file, shown on failure
    SYRPC_CRASH_CMD="bash -c 'source tools/cluster.sh; CLUSTER_DIR=$CLUSTER_DIR cluster_crash_restart'" \
        test/bin/crash_load crash_app 4 2 6 2>"$LOG/crash.err"
}
tap_run test/bin/crash_load "$LOG/crash.out" crash_load || tail -n 20 "$LOG/crash.err" | sed 's/^/# stderr: /'

echo "== failover to a synchronous standby under load (test/failover_test.sh)"
tap_run test/failover_test.sh "$LOG/failover.out" bash test/failover_test.sh

echo "== soak (${SOAK_SECONDS:-40} s; SOAK_SECONDS=600 make test for a long one)"
tap_run test/bin/soak "$LOG/soak.out" test/bin/soak soak_app "${SOAK_SECONDS:-40}" 5 2
unset PGDATABASE
cluster_stop

echo
tap_summary
