-- syrpc's calls never commit, or change the durability of, work of the
-- caller's that is not theirs.
CREATE TABLE atom_log (n int, sc text);
SELECT syrpc_put_request('atom', 'job', '{}') AS pending \gset
SELECT set_config('atom.pending', :'pending', false) IS NOT NULL AS set;

-- A waiting procedure called from a DO block after an INSERT must not
-- commit the INSERT: a later error rolls it back.
DO $$
DECLARE
    r jsonb;
BEGIN
    INSERT INTO atom_log VALUES (1, 'before wait_result');
    CALL syrpc_wait_result('atom', current_setting('atom.pending')::uuid, 0, r);
    RAISE EXCEPTION 'caller fails after the wait';
END
$$;
DO $$
DECLARE
    t text;
    id uuid;
    d jsonb;
BEGIN
    INSERT INTO atom_log VALUES (2, 'before wait_request');
    CALL syrpc_wait_request('atom_empty', 0.1, t, id, d);
    RAISE EXCEPTION 'caller fails after the wait';
END
$$;
SELECT count(*) AS survived FROM atom_log;

-- With nothing written before, the wait may commit (to drop its snapshot):
-- there is nothing of the caller's to commit.
DO $$
DECLARE
    r jsonb;
BEGIN
    CALL syrpc_wait_result('atom', current_setting('atom.pending')::uuid, 0, r);
    RAISE NOTICE 'result %', r;
END
$$;

-- syrpc_call refuses to run after the caller wrote (it must commit its put).
DO $$
DECLARE
    id uuid;
    r jsonb;
BEGIN
    INSERT INTO atom_log VALUES (3, 'before call');
    CALL syrpc_call('atom', 'job', '{}', 0, id, r);
END
$$;
SELECT count(*) AS survived FROM atom_log;

-- Claims and taken results may commit without the WAL flush
-- (syrpc.async_acks), but user code in the same statement sees, and its
-- writes commit with, the session's synchronous_commit.
CREATE FUNCTION atom_audit(n int) RETURNS text LANGUAGE sql AS $$
    INSERT INTO atom_log VALUES (n, current_setting('synchronous_commit'))
    RETURNING sc
$$;
SHOW synchronous_commit;
SELECT syrpc_put_request('atom_sc', 'job', '{}') AS rid \gset
SELECT atom_audit(10) AS seen_by_user_code, type FROM syrpc_get_request('atom_sc', 0);
SELECT syrpc_put_result('atom_sc', :'rid', '{"r": 1}');
SELECT atom_audit(11) AS seen_by_user_code, r FROM syrpc_get_result('atom_sc', :'rid', 0) r;
SELECT current_setting('synchronous_commit') AS after;
SELECT n, sc FROM atom_log ORDER BY n;
DROP FUNCTION atom_audit(int);
DROP TABLE atom_log;
