-- A result's row is read, inserted and updated by its primary key without
-- a plan (store_direct.c): what a plan would have done for free must still
-- happen, for results of every size and for indexes a user added.
SET syrpc.cleanup_interval = 0;
SELECT syrpc_configure('direct', lease_time => '1 hour');

-- A result too big for its page is stored out of line (TOAST) and comes
-- back whole, taken in shared memory (when preloaded) and in its row.
CREATE TEMP TABLE big AS
SELECT jsonb_build_object('blob', string_agg(md5(i::text), '')) AS data
  FROM generate_series(1, 20000) i;      -- 640 kB that does not compress
CREATE FUNCTION pg_temp.round_trip(big jsonb) RETURNS boolean AS $$
DECLARE
    id uuid := syrpc_put_request('direct', 'job', '{}');
BEGIN
    PERFORM syrpc_get_request('direct', 0);
    PERFORM syrpc_put_result('direct', id, big);
    RETURN syrpc_get_result('direct', id, 0) = big;
END $$ LANGUAGE plpgsql;
SELECT pg_temp.round_trip(data) AS whole_in_memory FROM big;
SET syrpc.memory_leases = off;
SELECT pg_temp.round_trip(data) AS whole_in_row FROM big;
RESET syrpc.memory_leases;
SELECT count(*) > 0 AS stored_out_of_line
  FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid
 WHERE c.relnamespace = 'syrpc'::regnamespace AND c.relname LIKE 'result\_%'
   AND pg_relation_size(t.oid) > 0;

-- Indexes of a user's on the results (an expression index, a partial
-- one) get their entries for every result stored, and for its tombstone.
CREATE INDEX result_by_n ON syrpc.result ((data->>'n'));
CREATE INDEX result_taken ON syrpc.result (consumed_at) WHERE consumed_at IS NOT NULL;
SELECT syrpc_put_request('direct', 'job', '{}') AS rid \gset
SELECT count(*) FROM syrpc_get_request('direct', 0);
SELECT syrpc_put_result('direct', :'rid', '{"n": "seven"}');
SET syrpc.memory_leases = off;
SELECT syrpc_get_result('direct', :'rid', 0);
RESET syrpc.memory_leases;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT result_id FROM syrpc.result_00 WHERE data->>'n' = 'seven';
SELECT count(*) AS found_by_expression FROM syrpc.result WHERE data->>'n' = 'seven';
EXPLAIN (COSTS OFF) SELECT result_id FROM syrpc.result_00 WHERE consumed_at IS NOT NULL;
SELECT count(*) AS found_taken FROM syrpc.result
 WHERE consumed_at IS NOT NULL AND result_id = :'rid';
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX syrpc.result_by_n, syrpc.result_taken;

-- A result taken a second time in the same transaction as the first take
-- is already taken: the second look sees the first one's tombstone.
SELECT syrpc_put_request('direct', 'job', '{}') AS rid \gset
SELECT count(*) FROM syrpc_get_request('direct', 0);
SELECT syrpc_put_result('direct', :'rid', '{}');
SET syrpc.memory_leases = off;
SELECT set_config('direct.rid', :'rid', false) IS NOT NULL AS set;
BEGIN;
SELECT syrpc_get_result('direct', :'rid', 0);
DO $$
BEGIN
    PERFORM syrpc_get_result('direct', current_setting('direct.rid')::uuid, 0);
    RAISE NOTICE 'taken twice';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'second take: % %', SQLSTATE, regexp_replace(SQLERRM, '[0-9a-f-]{36}', 'ID');
END $$;
COMMIT;
RESET syrpc.memory_leases;

DELETE FROM syrpc.request WHERE app = 'direct';
DELETE FROM syrpc.result WHERE app = 'direct';
SELECT syrpc_drop_app('direct');
