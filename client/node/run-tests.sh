#!/usr/bin/env bash
# The Node.js client's tests (node --test, TAP) against a real server.
#
# Uses the cluster in PGHOST/PGPORT/PGUSER (the syrpc extension installed,
# the library preloaded or not); without PGHOST it starts a throwaway one
# (tools/cluster.sh) and stops it at the end.  Creates its own database
# (syrpc_node_test, or $SYRPC_NODE_TEST_DB) and drops it after.  Installs
# the npm dependencies from the lockfile (npm ci) if node_modules is
# missing.  Prints node's TAP (one "ok N - name" per top-level test, the
# plan "1..N"), then "N passed, N failed" last; exits non-zero if a test
# failed or none ran.
set -uo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
DB=${SYRPC_NODE_TEST_DB:-syrpc_node_test}

# Before any test could run: one failing test line, the plan, the count.
early_failure() {
    echo "not ok 1 - $1"
    echo "1..1"
    echo "0 passed, 1 failed"
    exit 1
}

command -v node >/dev/null || early_failure "node is not installed (apt-get install nodejs npm)"
if [ ! -d node_modules ]; then
    npm ci --no-audit --no-fund >&2 || early_failure "npm ci failed"
fi

OWN_CLUSTER=""
LOG=$(mktemp /tmp/syrpc-node-test.XXXXXX)
cleanup() {
    psql -XAtq -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    [ -n "$OWN_CLUSTER" ] && cluster_stop
    rm -f "$LOG"
}
trap cleanup EXIT
if [ -z "${PGHOST:-}" ]; then
    # shellcheck source=../../tools/cluster.sh
    source "$HERE/../../tools/cluster.sh"
    OWN_CLUSTER=1
    cluster_start "shared_preload_libraries = 'syrpc'" >&2 || early_failure "could not start a cluster"
fi
export PGHOST PGPORT PGUSER

PGOPTIONS="-c client_min_messages=warning" psql -XAtq -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >&2 &&
    psql -XAtq -d "$DB" -c 'CREATE EXTENSION syrpc' >&2 ||
    early_failure "could not create database $DB with the syrpc extension"
export PGDATABASE=$DB

node --test --test-reporter=tap test/*.test.js 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}

passed=$(grep -cE '^ok [0-9]+( |$)' "$LOG")
failed=$(grep -cE '^not ok [0-9]+( |$)' "$LOG")
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
