#!/usr/bin/env bash
# Build and run the client library's tests against the cluster in PGHOST:
# client_test.c under valgrind (memory errors and leaks fail the run), then
# the CLI and example tests.  Prints "N passed, N failed" last.
set -uo pipefail
cd "$(dirname "$0")/.."
export PGDATABASE=syrpc_client_test
psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS syrpc_client_test" -c "CREATE DATABASE syrpc_client_test" >/dev/null
psql -qX -c "CREATE EXTENSION syrpc" >/dev/null

mkdir -p test/bin
cc -Wall -Wextra -O1 -g -Iclient $(pkg-config --cflags libpq jansson) -o test/bin/client_test \
    test/client_test.c client/libsyrpc.a $(pkg-config --libs libpq jansson) -lpthread || exit 1

passed=0; failed=0
valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
    --error-exitcode=99 --log-file=test/bin/valgrind.log test/bin/client_test | tee test/bin/client_test.out
rc=${PIPESTATUS[0]}
grep -E "ERROR SUMMARY|in use at exit|All heap blocks|definitely lost|indirectly lost" test/bin/valgrind.log | sed 's/^==[0-9]*== /# valgrind: /' | sort -u
if [ "$rc" -eq 99 ]; then
    cat test/bin/valgrind.log
    echo "not ok - valgrind found memory errors or leaks"
fi
bash test/cli_test.sh
