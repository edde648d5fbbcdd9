-- The extension's statements stay index scans whatever the size of the
-- tables when they were planned: planned once while the tables are empty
-- (as they are most of the time), then run on tables that a backlog has
-- filled, no statement on one request or one result scans a table.
SELECT current_database() AS regress_db \gset
CREATE DATABASE syrpc_plans;
\c syrpc_plans
SET client_min_messages = warning;
CREATE EXTENSION syrpc;
RESET client_min_messages;
-- only the calls below scan tables (not a cleanup they would start)
SET syrpc.cleanup_interval = 0;
SELECT syrpc_configure('plans', lease_time => '1 hour');
-- as autovacuum leaves them: statistics that say the tables are empty
VACUUM ANALYZE syrpc.request, syrpc.result;

-- Every statement of a put + get RPC and a failure, eight times on empty
-- tables: past the five runs after which a cached plan is kept for good.
DO $$
DECLARE
    id uuid;
BEGIN
    FOR i IN 1..8 LOOP
        id := syrpc_put_request('plans', 'job', '{}');
        PERFORM syrpc_get_request('plans', 0);
        PERFORM syrpc_put_result('plans', id, '{}');
        PERFORM syrpc_get_result('plans', id, 0);
        id := syrpc_put_request('plans', 'job', '{}');
        PERFORM syrpc_get_request('plans', 0);
        PERFORM syrpc_fail_request('plans', id, 'planned');
    END LOOP;
END $$;

-- A backlog: 5,000 requests and 20,000 results of another app.
INSERT INTO syrpc.request (result_id, app, type, data, created_at, ready_at, expires_at)
SELECT gen_random_uuid(), 'backlog', 'job', '{}', now(), now() + interval '1 hour',
       now() + interval '1 hour'
  FROM generate_series(1, 5000);
INSERT INTO syrpc.result (result_id, app, data, created_at, expires_at)
SELECT gen_random_uuid(), 'backlog', '{}', now(), now() + interval '1 hour'
  FROM generate_series(1, 20000);

SELECT syrpc_put_request('plans', 'job', '{"n": 1}') AS rid \gset
SELECT syrpc_put_request('plans', 'job', '{"n": 2}') AS rid2 \gset
-- the scans so far (counted per backend until they are flushed)
CREATE TEMP VIEW scans AS
SELECT pg_stat_get_xact_numscans('syrpc.request'::regclass) AS requests,
       pg_stat_get_xact_numscans(format('syrpc.result_%s',
                                        lpad(syrpc_bucket(:'rid')::text, 2, '0'))::regclass)
           AS results;
BEGIN;
SELECT requests AS requests_before, results AS results_before FROM scans \gset
SELECT count(*) AS claimed FROM syrpc_get_request('plans', 0);
SELECT count(*) AS claimed FROM syrpc_get_request('plans', 0);
SELECT syrpc_put_result('plans', :'rid', '{"r": 1}');
SELECT syrpc_fail_request('plans', :'rid2', 'no');
SELECT syrpc_get_result('plans', :'rid', 0) AS taken;
SELECT requests - :requests_before AS seq_scans_of_requests,
       results - :results_before AS seq_scans_of_its_results
  FROM scans;
COMMIT;

-- One plan per statement at most, none per result partition: the
-- statements on one result (and on one request by its result_id) go by
-- the primary key without a plan (store_direct.c), so after RPCs whose
-- results fell in many partitions this backend keeps no plan that names
-- a partition, and only a few on syrpc.request.
DO $$
DECLARE
    id uuid;
BEGIN
    FOR i IN 1..100 LOOP
        id := syrpc_put_request('plans', 'job', '{}');
        PERFORM syrpc_get_request('plans', 0);
        PERFORM syrpc_put_result('plans', id, '{}');
        PERFORM syrpc_get_result('plans', id, 0);
    END LOOP;
END $$;
SELECT count(DISTINCT syrpc_bucket(result_id)) > 32 AS results_in_many_partitions
  FROM syrpc.result WHERE app = 'plans';
SELECT count(*) FILTER (WHERE ident ~ 'syrpc\.result_[0-9]') AS plans_on_partitions,
       count(*) FILTER (WHERE ident LIKE '%syrpc.result%') AS plans_on_results,
       count(*) FILTER (WHERE ident LIKE '%syrpc.request%') <= 6 AS few_plans_on_requests
  FROM pg_backend_memory_contexts
 WHERE name = 'CachedPlanSource';

\c :regress_db
DROP DATABASE syrpc_plans;
