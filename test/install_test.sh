#!/usr/bin/env bash
# A fresh install (CREATE EXTENSION: the full script of the default version)
# and an install upgraded from 1.0 through every upgrade script must give the same
# objects: the same members, function definitions, privileges, comments,
# columns, indexes, constraints, views, event triggers and dumped tables.
# Starts a cluster of its own.  TAP lines, a plan, "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/cluster.sh
source test/tap_lib.sh
WORK=$(mktemp -d /tmp/syrpc-install.XXXXXX)
trap 'cluster_stop; rm -rf "$WORK"' EXIT
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }

cluster_start >/dev/null || { echo "not ok 1 - cluster start"; echo "1..1"; echo "0 passed, 1 failed"; exit 1; }
q -c "CREATE DATABASE syrpc_fresh" -c "CREATE DATABASE syrpc_upgraded" >/dev/null
q -d syrpc_fresh -c "CREATE EXTENSION syrpc" >/dev/null
q -d syrpc_upgraded -c "CREATE EXTENSION syrpc VERSION '1.0'" -c "ALTER EXTENSION syrpc UPDATE" >/dev/null

# Everything that makes up the installed extension, without oids.
catalog() {
    q -d "$1" <<'SQL'
WITH members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
     WHERE e.extname = 'syrpc' AND d.deptype = 'e'
), acl(obj, acl) AS (
    SELECT p.oid, array(SELECT a::text FROM unnest(p.proacl) a ORDER BY 1) FROM pg_proc p
    UNION ALL
    SELECT c.oid, array(SELECT a::text FROM unnest(c.relacl) a ORDER BY 1) FROM pg_class c
)
SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM members
UNION ALL
SELECT 'function ' || pg_get_functiondef(p.oid) || ' acl ' || coalesce((SELECT acl FROM acl WHERE obj = p.oid)::text, '')
       || ' comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '')
  FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
UNION ALL
SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text || ' ' || coalesce(c.reloptions::text, '')
       || ' acl ' || coalesce((SELECT acl FROM acl WHERE obj = c.oid)::text, '')
       || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '')
       || coalesce(' view ' || pg_get_viewdef(c.oid), '')
       || coalesce(' partition ' || pg_get_expr(c.relpartbound, c.oid), '')
  FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
UNION ALL
SELECT 'column ' || a.attrelid::regclass || ' ' || a.attnum || ' ' || a.attname || ' '
       || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' '
       || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE c.relnamespace = 'syrpc'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'syrpc'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'syrpc'::regnamespace
UNION ALL
SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evttags::text || ' ' || evtfoid::regproc || ' ' || evtenabled::text
  FROM pg_event_trigger
UNION ALL
SELECT 'schema ' || nspname || ' ' || coalesce(nspacl::text, '') || ' ' || coalesce(obj_description(oid, 'pg_namespace'), '')
  FROM pg_namespace WHERE nspname = 'syrpc'
UNION ALL
SELECT 'extension ' || extversion || ' ' || extrelocatable || ' '
       || coalesce((SELECT array_agg(c::regclass::text ORDER BY 1) FROM unnest(extconfig) c)::text, '') || ' '
       || coalesce(extcondition::text, '')
  FROM pg_extension WHERE extname = 'syrpc'
ORDER BY 1;
SQL
}
catalog syrpc_fresh >"$WORK/fresh.txt" 2>"$WORK/fresh.err" || fail "read the fresh install's catalog" "$(cat "$WORK/fresh.err")"
catalog syrpc_upgraded >"$WORK/upgraded.txt" 2>"$WORK/upgraded.err" || fail "read the upgraded install's catalog" "$(cat "$WORK/upgraded.err")"
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" extension/syrpc.control)
if [ "$(grep -c '^member' "$WORK/fresh.txt")" -gt 80 ] && [ "$(q -d syrpc_fresh -c "SELECT extversion FROM pg_extension WHERE extname = 'syrpc'")" = "$version" ]; then
    ok "a fresh install is $version with $(grep -c '^member' "$WORK/fresh.txt") member objects"
else fail "a fresh install is $version with its member objects" "$(head -3 "$WORK/fresh.txt")"; fi
if [ -s "$WORK/fresh.txt" ] && diff -u "$WORK/upgraded.txt" "$WORK/fresh.txt" >"$WORK/diff.txt"; then
    ok "a fresh install and one upgraded from 1.0 have the same catalog ($(wc -l <"$WORK/fresh.txt") lines compared)"
else
    fail "a fresh install and one upgraded from 1.0 have the same catalog" "$(head -40 "$WORK/diff.txt" | sed 's/^/  /')"
fi
# and the fresh install works
rid=$(q -d syrpc_fresh -c "SELECT syrpc_put_request('inst', 'job', '{\"n\": 1}')")
q -d syrpc_fresh -c "SELECT syrpc_put_result('inst', result_id, data) FROM syrpc_get_request('inst', 0)" >/dev/null
if [ "$(q -d syrpc_fresh -c "SELECT syrpc_get_result('inst', '$rid', 0)")" = '{"n": 1}' ]; then ok "a round trip on the fresh install"
else fail "a round trip on the fresh install"; fi

tap_end
