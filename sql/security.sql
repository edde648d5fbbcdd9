-- Privileges: nothing for PUBLIC; syrpc_caller and syrpc_worker get what
-- their side needs.

CREATE ROLE syrpc_test_nobody LOGIN;
CREATE ROLE syrpc_test_caller LOGIN IN ROLE syrpc_caller;
CREATE ROLE syrpc_test_worker LOGIN IN ROLE syrpc_worker;

SELECT syrpc_put_request('sec', 't', '{}') AS rid \gset

-- Every internal object is in schema syrpc, owned by the extension.
SELECT count(*) AS not_extension_members
  FROM pg_class c
 WHERE c.relnamespace = 'syrpc'::regnamespace
   AND c.relkind IN ('r', 'p', 'v')
   AND NOT EXISTS (SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')
   AND NOT c.relispartition;

-- No function is SECURITY DEFINER (since 1.4): each checks its caller's
-- grants, then runs as its owner with search_path pinned by its C code.
SELECT p.proname, p.proconfig
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.refclassid = 'pg_extension'::regclass
 WHERE p.prosecdef
 ORDER BY p.proname;

-- A role without the grants gets permission denied for everything.
SET ROLE syrpc_test_nobody;
SELECT syrpc_put_request('sec', 't', '{}');
SELECT * FROM syrpc_get_request('sec', 0);
SELECT syrpc_put_result('sec', :'rid', '{}');
SELECT syrpc_get_result('sec', :'rid', 0);
SELECT * FROM syrpc_stats;
SELECT * FROM syrpc.request;
SELECT * FROM syrpc.result;
SELECT syrpc_configure('sec', max_attempts => 10);
CALL syrpc_wait_request('sec', 0);
CALL syrpc_wait_result('sec', :'rid', 0);
CALL syrpc_call('sec', 't', '{}', 0);
CALL syrpc_put_result_wait_request('sec', :'rid', '{}', 0);
RESET ROLE;

-- A caller can put requests and get results, not serve.
SET ROLE syrpc_test_caller;
SELECT syrpc_put_request('sec', 't', '{"from": "caller"}') IS NOT NULL AS put;
SELECT syrpc_get_result('sec', :'rid', 0) IS NULL AS no_result_yet;
SELECT * FROM syrpc_get_request('sec', 0);
CALL syrpc_wait_request('sec', 0);
CALL syrpc_wait_result('sec', :'rid', 0);
CALL syrpc_call('sec', 't', '{"from": "call"}', 0) \gset c_
SELECT :'c_result_id'::uuid IS NOT NULL AS call_put;
CALL syrpc_put_result_wait_request('sec', :'rid', '{}', 0);
SELECT app, queued FROM syrpc_stats WHERE app = 'sec';
SELECT * FROM syrpc.request;
RESET ROLE;

-- A worker can get requests and put results, not put requests.
SET ROLE syrpc_test_worker;
SELECT type, result_id = :'rid' AS first FROM syrpc_get_request('sec', 0);
SELECT syrpc_put_result('sec', :'rid', '{"ok": true}');
SELECT syrpc_put_request('sec', 't', '{}');
SELECT syrpc_configure('sec', max_attempts => 10);
CALL syrpc_wait_request('sec', 0) \gset w_
SELECT :'w_type' AS type, :'w_data' AS data;
CALL syrpc_wait_result('sec', :'rid', 0);
CALL syrpc_call('sec', 't', '{}', 0);
-- (allowed: it runs, and says the result_id is not in flight)
\set VERBOSITY sqlstate
CALL syrpc_put_result_wait_request('sec', gen_random_uuid(), '{}', 0);
\set VERBOSITY default
RESET ROLE;

SET ROLE syrpc_test_caller;
SELECT syrpc_get_result('sec', :'rid', 0);
RESET ROLE;

-- Hostile search_path: a fake jsonb operator or function in a schema the
-- caller controls does not change what syrpc runs.
CREATE SCHEMA evil;
CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE sql
    AS $$ SELECT '00000000-0000-0000-0000-00000000dead'::uuid $$;
CREATE FUNCTION evil.fail(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'evil min() called'; END $$;
CREATE AGGREGATE evil.min(timestamptz) (sfunc = evil.fail, stype = timestamptz);
SET search_path = evil, public;
SELECT syrpc_put_request('sec', 't', '{}') <> '00000000-0000-0000-0000-00000000dead' AS real_uuid;
-- the waiting procedures are not SECURITY DEFINER: they pin search_path
-- themselves (the wait below runs the query that uses min())
SET search_path = evil, pg_catalog, public;
CALL syrpc_wait_request('sec_empty', 0.05);
-- syrpc_call too (it puts as its owner, then waits)
CALL syrpc_call('sec_evil', 't', '{}', 0.05) \gset e_
SELECT :'e_result_id' <> '00000000-0000-0000-0000-00000000dead' AS real_uuid;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA evil CASCADE;
RESET client_min_messages;

DROP ROLE syrpc_test_nobody, syrpc_test_caller, syrpc_test_worker;
