# TAP for the shell test runners in test/.  Source this file.
#
#   ok NAME / fail NAME [DETAIL...]   one test line ("ok N - NAME" / "not ok N - NAME")
#   check NAME CMD...                 ok if CMD succeeds, else fail
#   wait_until SECONDS CMD...         run CMD until it succeeds, up to SECONDS
#   tap_end                           the plan and "N passed, N failed"; returns non-zero on a failure
n=0; passed=0; failed=0
ok()   { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }
wait_until() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    until "$@"; do [ "$(date +%s%N)" -ge "$deadline" ] && return 1; sleep 0.02; done
}
tap_end() {
    echo "1..$n"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
