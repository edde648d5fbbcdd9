#!/usr/bin/env bash
# The shared-memory protocols checked by spin over every interleaving: the
# waiter protocol (extension/waiters.pml), for both registries (shared
# memory; lock manager with -DLOCKMGR), the in-memory hand-off of
# syrpc_call (extension/handoff.pml, handoff.c, issue #12), and the claims
# in shared memory (extension/marks.pml, marks.c, issue #13); and their
# mutants found wrong: a check that cannot fail proves nothing.  No server
# needed.
set -uo pipefail
cd "$(dirname "$0")/.."
source test/tap_lib.sh
WORK=$(mktemp -d /tmp/syrpc-model.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# verify NAME DEFINES...: 0 if spin finds no error, 1 if it finds one, 2 if
# it could not run; the states searched in $WORK/NAME.out.  MODEL: the file.
MODEL=extension/waiters.pml
verify() {
    local name=$1 dir="$WORK/$1"
    shift
    mkdir -p "$dir"
    ( cd "$dir" && spin -a "$@" "$OLDPWD/$MODEL" >spin.out 2>&1 &&
      cc -O2 -w -DSAFETY -DCOLLAPSE -o pan pan.c >cc.out 2>&1 &&
      ./pan -m200000 >pan.out 2>&1 ) || { cat "$dir"/*.out >"$WORK/$name.out" 2>/dev/null; return 2; }
    cp "$dir/pan.out" "$WORK/$name.out"
    grep -q '^State-vector' "$dir/pan.out" || return 2
    grep -qE 'errors: 0$' "$dir/pan.out" && return 0
    return 1
}

states() { sed -nE 's/^ *([0-9.e+]+) states, stored.*/\1/p' "$WORK/$1.out" | head -n 1; }

if ! command -v spin >/dev/null; then
    fail "spin is installed (apt-get install spin)"
    tap_end
    exit
fi

for registry in shmem lockmgr; do
    flags=()
    [ "$registry" = lockmgr ] && flags=(-DLOCKMGR)
    # 2 workers and 2 puts: 0.6 M states; 2 x 3: 26 M (shared memory, 1 min,
    # 1.3 GB), 3.7 M (lock manager); 3 x 2 (lock manager): 3.9 M
    sizes=("-DW=2 -DP=2" "-DW=2 -DP=3")
    [ "$registry" = lockmgr ] && sizes+=("-DW=3 -DP=2")
    for size in "${sizes[@]}"; do
        name="$registry-$(echo "$size" | tr -d ' D-' | tr '=' '_')"
        # shellcheck disable=SC2086
        verify "$name" "${flags[@]}" $size; rc=$?
        if [ $rc -eq 0 ]; then ok "$registry registry, ${size//-D/}: no request left while a worker sleeps ($(states "$name") states)"
        else fail "$registry registry, ${size//-D/}: no request left while a worker sleeps" "$(tail -n 20 "$WORK/$name.out")"; fi
    done
    mutants=(NO_PASS_ON)
    [ "$registry" = shmem ] && mutants+=(NO_CAS) || mutants+=(NO_PICK_LOCK)
    for m in "${mutants[@]}"; do
        verify "$registry-$m" "${flags[@]}" -DW=2 -DP=2 "-D$m"; rc=$?
        if [ $rc -eq 1 ]; then ok "$registry registry: spin finds the bug of mutant $m"
        else fail "$registry registry: spin finds the bug of mutant $m" "rc=$rc" "$(tail -n 20 "$WORK/$registry-$m.out")"; fi
    done
done

# The table epoch by which a worker skips a look at the table that can find
# nothing (shared-memory registry only; rpc.c claim_from_table): 2 workers
# and 2 puts, 5.3 M states, 5 s, 0.35 GB; and its two mutants.
verify "shmem-epoch" -DEPOCH -DW=2 -DP=2; rc=$?
if [ $rc -eq 0 ]; then ok "shmem registry with the table epoch, W=2 P=2: no request left while a worker sleeps ($(states shmem-epoch) states)"
else fail "shmem registry with the table epoch, W=2 P=2: no request left while a worker sleeps" "$(tail -n 20 "$WORK/shmem-epoch.out")"; fi
for m in NO_BUMP EPOCH_LATE; do
    verify "shmem-epoch-$m" -DEPOCH -DW=2 -DP=2 "-D$m"; rc=$?
    if [ $rc -eq 1 ]; then ok "table epoch: spin finds the bug of mutant $m"
    else fail "table epoch: spin finds the bug of mutant $m" "rc=$rc" "$(tail -n 20 "$WORK/shmem-epoch-$m.out")"; fi
done

MODEL=extension/handoff.pml
# 2 workers and 2 calls: 41 k states; 3 x 2: 0.3 M; 2 x 3 (3 attempts):
# 0.6 M; 3 x 3 (not run here: 10 s, 0.4 GB): 4.7 M
for size in "-DW=2 -DCALLS=2" "-DW=3 -DCALLS=2" "-DW=2 -DCALLS=3 -DMAX_ATTEMPTS=3"; do
    name="handoff-$(echo "$size" | tr -d ' D-' | tr '=' '_')"
    # shellcheck disable=SC2086
    verify "$name" $size; rc=$?
    if [ $rc -eq 0 ]; then ok "hand-off, ${size//-D/}: one outcome per call, no answer lost or astray ($(states "$name") states)"
    else fail "hand-off, ${size//-D/}: one outcome per call, no answer lost or astray" "$(tail -n 20 "$WORK/$name.out")"; fi
done
for m in NO_ANSWERING NO_GEN NO_REUSE_CHECK; do
    verify "handoff-$m" "-D$m"; rc=$?
    if [ $rc -eq 1 ]; then ok "hand-off: spin finds the bug of mutant $m"
    else fail "hand-off: spin finds the bug of mutant $m" "rc=$rc" "$(tail -n 20 "$WORK/handoff-$m.out")"; fi
done

MODEL=extension/marks.pml
# Claims in shared memory (marks.c, issue #13).  Claims in memory only, 2
# workers x 2 requests: 1.9 k states; 3 x 2: 54 k; 3 x 3: 0.73 M (1.2 s);
# with table claims that add a marker (-DTABLE) 3 x 2: 0.3 M; with leases
# that run out (-DEXPIRY: at least once) 2 x 2: 35 k, 3 x 2: 1.7 M (2.3 s,
# 0.2 GB), 2 x 2 with 2 races and 2 deaths: 0.2 M; with both, 2 x 2: 0.22 M
# (-DTABLE).  Not run here: -DEXPIRY -DTABLE 3 x 2, 18 M states, 30 s, 1 GB;
# -DTABLE_FULL (a table claim with no room for its marker, which marks.c
# does not make: it claims nothing then) and its mutants NO_CHECK_AFTER and
# NO_LOCK_RECHECK.
for size in "-DW=2 -DP=2" "-DW=3 -DP=2" "-DW=3 -DP=3" "-DTABLE -DW=3 -DP=2" \
            "-DEXPIRY -DW=2 -DP=2" "-DEXPIRY -DW=3 -DP=2" "-DEXPIRY -DRACES=2 -DDEATHS=2 -DW=2 -DP=2" \
            "-DEXPIRY -DTABLE -DW=2 -DP=2"; do
    name="marks-$(echo "$size" | tr -d ' -' | tr '=' '_')"
    what="one holder at a time, none after the deletion, each answered once, no mark left"
    case "$size" in *EXPIRY*) what="no second holder while a lease runs, none after the deletion, each answered once, no mark left" ;; esac
    # shellcheck disable=SC2086
    verify "$name" $size; rc=$?
    if [ $rc -eq 0 ]; then ok "marks, ${size//-D/}: $what ($(states "$name") states)"
    else fail "marks, ${size//-D/}: $what" "$(tail -n 20 "$WORK/$name.out")"; fi
done
for m in NO_RECHECK RECHECK_OLD_SNAPSHOT SNAPSHOT_BEFORE_MARK REMOVE_BEFORE_COMMIT ANSWER_ABORT_REMOVES \
         CLAIM_ABORT_KEEPS "TABLE TABLE_IGNORES_MARKS" \
         "EXPIRY UPDATE_UNMARKS_EARLY" "EXPIRY NO_BASE_CHECK" "EXPIRY CALLBACK_OWN_ONLY"; do
    flags=()
    for f in $m; do flags+=("-D$f"); done
    name="marks-${m// /-}" mutant=${m##* } with=""
    [ "$mutant" != "$m" ] && with=" (with ${m% *})"
    verify "$name" -DW=2 -DP=2 "${flags[@]}"; rc=$?
    if [ $rc -eq 1 ]; then ok "marks: spin finds the bug of mutant $mutant$with"
    else fail "marks: spin finds the bug of mutant $mutant$with" "rc=$rc" "$(tail -n 20 "$WORK/$name.out")"; fi
done
tap_end
