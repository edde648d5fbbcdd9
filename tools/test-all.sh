#!/usr/bin/env bash
# Run every test suite against a throwaway cluster:
#   1. the pg_regress suite (sql/, expected/) and the isolation specs (specs/)
#   2. the client library's tests (test/), under valgrind
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

if [ -x test/run-client-tests.sh ]; then
    cluster_start || exit 1
    echo "== client library tests"
    test/run-client-tests.sh 2>&1 | tee "$LOG/client.out"
    tally "$LOG/client.out"
    cluster_stop
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
