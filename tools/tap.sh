# Run test runners and count what they report, without believing a runner
# that stops early.  Source this file.
#
# A runner prints TAP: "ok N - name" or "not ok N - name" per test, a plan
# "1..N" (first or last), and "N passed, N failed" last; it exits 0 if and
# only if every test passed.
#
#   tap_run NAME LOG CMD...    run CMD, show its output (stdout and stderr)
#                              and keep it in LOG, then tap_check it
#   tap_check NAME LOG RC      count the tests in LOG, of a runner that
#                              exited with status RC
#   tap_nest NAME LOG CMD...   tap_run for a runner inside a runner: its
#                              tests are renumbered into this script's own
#                              sequence (TAP_N), its plan and closing line
#                              become comments, and a failure of the runner
#                              itself is one "not ok" line more; the caller
#                              prints "1..$TAP_N" and tap_summary at the end
#   tap_summary                print "N passed, N failed" of all runners so
#                              far; its status is 0 if nothing failed and
#                              something passed
#
# Every "ok" line counts as a pass (TAP_PASSED) and every "not ok" line as a
# failure (TAP_FAILED).  The runner itself counts as one failure more, and
# "# FAILED: NAME: why" says why, when it was killed by a signal, exited
# non-zero with no test failed (or 0 with one failed), printed no plan or
# more than one, printed more or fewer test lines than its plan, or printed
# no closing line or one that disagrees with its test lines.

TAP_PASSED=0
TAP_FAILED=0
TAP_N=0
TAP_WHY=""      # why the last runner checked failed as a whole, or ""
TAP_RC=0        # the exit status of the last runner run

_tap_test_line='^(not )?ok [0-9]+( |$)'

tap_check() {
    local name=$1 log=$2 rc=$3 ok bad plans plan summary why=()
    ok=$(grep -cE '^ok [0-9]+( |$)' "$log")
    bad=$(grep -cE '^not ok [0-9]+( |$)' "$log")
    plans=$(grep -cE '^1\.\.[0-9]+$' "$log")
    if [ "$rc" -gt 128 ]; then
        why+=("killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))")
    elif [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        why+=("exited with status $rc, with no test failed")
    elif [ "$rc" -eq 0 ] && [ "$bad" -gt 0 ]; then
        why+=("exited with status 0, with $bad tests failed")
    fi
    if [ "$plans" -eq 0 ]; then
        why+=("printed no plan (1..N) after $((ok + bad)) tests")
    elif [ "$plans" -gt 1 ]; then
        why+=("printed $plans plans")
    else
        plan=$(grep -E '^1\.\.[0-9]+$' "$log")
        plan=${plan#1..}
        [ "$plan" -eq $((ok + bad)) ] || why+=("planned $plan tests, printed $((ok + bad))")
    fi
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -z "$summary" ]; then
        why+=("printed no closing 'N passed, N failed'")
    elif [ "$summary" != "$ok passed, $bad failed" ]; then
        why+=("said '$summary' but printed $ok ok and $bad not ok")
    fi
    TAP_PASSED=$((TAP_PASSED + ok))
    TAP_FAILED=$((TAP_FAILED + bad))
    TAP_WHY=""
    if [ ${#why[@]} -gt 0 ]; then
        TAP_WHY=$(IFS=';'; echo "${why[*]}" | sed 's/;/; /g')
        TAP_FAILED=$((TAP_FAILED + 1))
        echo "# FAILED: $name: $TAP_WHY"
    fi
    [ -z "$TAP_WHY" ] && [ "$bad" -eq 0 ]
}

tap_run() {
    local name=$1 log=$2
    shift 2
    "$@" 2>&1 | tee "$log"
    TAP_RC=${PIPESTATUS[0]}
    tap_check "$name" "$log" "$TAP_RC"
}

tap_nest() {
    local name=$1 log=$2 before=$TAP_N ran
    shift 2
    "$@" 2>&1 | tee "$log" | awk -v n="$TAP_N" -v name="$name" '
        /^(not )?ok [0-9]+( |$)/ {
            match($0, /^(not )?ok [0-9]+/)
            head = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
            sub(/[0-9]+$/, "", head); sub(/^ *(- *)?/, "", rest)
            print head (++n) " - " name ": " rest; fflush(); next
        }
        /^1\.\.[0-9]+$/ || /^[0-9]+ passed, [0-9]+ failed$/ { print "# " name ": " $0; fflush(); next }
        { print; fflush() }'
    TAP_RC=${PIPESTATUS[0]}
    ran=$(grep -cE "$_tap_test_line" "$log")
    TAP_N=$((before + ran))
    # tap_check prints "# FAILED: ..." and counts the runner's failure
    if ! tap_check "$name" "$log" "$TAP_RC" && [ -n "$TAP_WHY" ]; then
        TAP_N=$((TAP_N + 1))
        echo "not ok $TAP_N - $name: $TAP_WHY"
    fi
}

tap_summary() {
    echo "$TAP_PASSED passed, $TAP_FAILED failed"
    [ "$TAP_FAILED" -eq 0 ] && [ "$TAP_PASSED" -gt 0 ]
}
