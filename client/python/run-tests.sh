#!/usr/bin/env bash
# The Python client's test suite (pytest, Debian's python3-pytest) against
# the cluster in PGHOST/PGPORT/PGUSER (a superuser): it creates and drops
# its own databases (syrpc_python_test and a few more) and starts its own
# pgbouncer.  Prints pytest's output as comments, then TAP (one "ok N -
# name" or "not ok N - name" per test, the plan "1..N") and, last,
# "N passed, N failed".  Exits non-zero if a test failed, pytest failed as
# a whole, or it ran no test (pytest's exit 5).
set -uo pipefail
cd "$(dirname "$0")"
PYTHON=/usr/bin/python3
TMP=$(mktemp -d /tmp/syrpc-python-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# Not from the project root, where the extension's syrpc.so would be
# imported as "syrpc": here, the package of this directory comes first.
timeout -k 10 600 "$PYTHON" -m pytest -p no:cacheprovider -q -rfE --junitxml="$TMP/junit.xml" \
    -o junit_family=xunit1 tests "$@" 2>&1 | sed -u 's/^/# /'
rc=${PIPESTATUS[0]}

"$PYTHON" - "$TMP/junit.xml" "$rc" <<'PY'
import sys
import xml.etree.ElementTree as ET

path, rc = sys.argv[1], int(sys.argv[2])
lines, passed, failed = [], 0, 0
try:
    cases = list(ET.parse(path).getroot().iter("testcase"))
except (OSError, ET.ParseError) as exc:
    cases = []
    print("# no junit report: %s" % exc)
for case in cases:
    name = "%s::%s" % (case.get("classname", "").replace("tests.", ""), case.get("name"))
    bad = case.find("failure") is not None or case.find("error") is not None
    skipped = case.find("skipped")
    if bad:
        failed += 1
        lines.append("not ok %d - %s" % (len(lines) + 1, name))
    else:
        passed += 1
        note = " # SKIP %s" % (skipped.get("message") or "") if skipped is not None else ""
        lines.append("ok %d - %s%s" % (len(lines) + 1, name, note))
why = None
if rc == 5 or not cases:
    why = "pytest ran no tests (exit status %d)" % rc
elif rc != 0 and failed == 0:
    why = "pytest exited with status %d with no test failed" % rc
if why:
    failed += 1
    lines.append("not ok %d - %s" % (len(lines) + 1, why))
print("\n".join(lines))
print("1..%d" % len(lines))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
