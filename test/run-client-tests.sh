#!/usr/bin/env bash
# The client library's tests against the cluster in PGHOST: every
# test/*_test.c program under valgrind (memory errors and leaks fail the
# run), then the CLI and example tests.  One TAP stream: each runner's
# tests renumbered in order, a runner that crashes, exits non-zero, or
# prints no plan or the wrong number of tests one "not ok" line more (see
# tools/tap.sh), then "1..N" and "N passed, N failed".  Exits non-zero if
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/tap.sh
export PGDATABASE=syrpc_client_test
LOG=$(mktemp -d /tmp/syrpc-client-tests.XXXXXX)
trap 'rm -rf "$LOG"' EXIT

finish() {
    echo "1..$TAP_N"
    tap_summary
    exit
}

psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS syrpc_client_test" \
    -c "CREATE DATABASE syrpc_client_test" >/dev/null &&
    psql -qX -c "CREATE EXTENSION syrpc" >/dev/null || {
    TAP_N=1; TAP_FAILED=1; echo "not ok 1 - creating the database syrpc_client_test"; finish
}
make -s -C test >"$LOG/build.out" 2>&1 || {
    sed 's/^/# /' "$LOG/build.out"
    TAP_N=1; TAP_FAILED=1; echo "not ok 1 - building the tests"; finish
}

# test/bin/NAME under valgrind; valgrind's exit status 99 says it found
# memory errors or leaks, and then its report goes to the output.
under_valgrind() {
    local vlog=test/bin/$1.valgrind rc
    valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        --error-exitcode=99 --log-file="$vlog" "test/bin/$1"
    rc=$?
    grep -E "ERROR SUMMARY|in use at exit|All heap blocks|definitely lost|indirectly lost" "$vlog" \
        | sed "s/^==[0-9]*== /# valgrind ($1): /" | sort -u
    if [ "$rc" -eq 99 ]; then
        sed 's/^/# /' "$vlog"
        echo "# valgrind found memory errors or leaks in $1 (exit status 99)"
    fi
    return "$rc"
}

# Every test/*_test.c (test/Makefile builds them all); from the sources,
# so that a stale binary of a removed test does not run.
for src in test/*_test.c; do
    t=$(basename "$src" .c)
    tap_nest "$t" "$LOG/$t.out" under_valgrind "$t"
done
tap_nest cli_test.sh "$LOG/cli.out" bash test/cli_test.sh
finish
