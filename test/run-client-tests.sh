#!/usr/bin/env bash
# The client library's tests against the cluster in PGHOST: client_test and
# reliability_test under valgrind (memory errors and leaks fail the run),
# then the CLI and example tests.  Each prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export PGDATABASE=syrpc_client_test
psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS syrpc_client_test" \
    -c "CREATE DATABASE syrpc_client_test" >/dev/null
psql -qX -c "CREATE EXTENSION syrpc" >/dev/null
make -s -C test >/dev/null || { echo "not ok - building the tests"; exit 1; }

for t in client_test reliability_test text_test; do
    valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        --error-exitcode=99 --log-file=test/bin/$t.valgrind test/bin/$t
    rc=$?
    grep -E "ERROR SUMMARY|in use at exit|All heap blocks|definitely lost|indirectly lost" test/bin/$t.valgrind \
        | sed "s/^==[0-9]*== /# valgrind ($t): /" | sort -u
    if [ "$rc" -eq 99 ]; then
        cat test/bin/$t.valgrind
        echo "not ok - valgrind found memory errors or leaks in $t"
    fi
done
bash test/cli_test.sh
