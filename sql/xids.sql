-- How many xids each call of a put + get RPC consumes on the table path
-- (the next xid, from a snapshot, which assigns none, before and after).
-- Every xid counts towards the anti-wraparound vacuums of the whole
-- database; a claim that is its own transaction needs no subtransaction.
-- Preloaded, a claim and a take keep their lease and their mark in shared
-- memory (marks.c) and need none: expected/xids_1.out; without preload,
-- expected/xids.out.  Which one this run is (once the library is loaded):
CREATE FUNCTION pg_temp.next_xid() RETURNS bigint LANGUAGE sql
    AS $$SELECT txid_snapshot_xmax(txid_current_snapshot())$$;

SELECT pg_temp.next_xid() AS x \gset
SELECT syrpc_put_request('xids', 'job', '{"n": 1}') AS rid \gset
SELECT pg_temp.next_xid() - :x AS put;
SELECT current_setting('syrpc.wakeup_registry') AS registry;

SELECT pg_temp.next_xid() AS x \gset
SELECT count(*) AS claimed FROM syrpc_get_request('xids', 0);
SELECT pg_temp.next_xid() - :x AS claim_at_once;

SELECT pg_temp.next_xid() AS x \gset
SELECT syrpc_put_result('xids', :'rid', '{"r": 1}');
SELECT pg_temp.next_xid() - :x AS answer;

SELECT pg_temp.next_xid() AS x \gset
SELECT syrpc_get_result('xids', :'rid', 0);
SELECT pg_temp.next_xid() - :x AS take;

-- A claim that may wait (its first look finds the request): the same one
-- xid, in a function and in the procedure.
SELECT syrpc_put_request('xids', 'job', '{"n": 2}') AS rid2 \gset
SELECT pg_temp.next_xid() AS x \gset
SELECT count(*) AS claimed FROM syrpc_get_request('xids', 5);
SELECT pg_temp.next_xid() - :x AS claim_waiting;
SELECT syrpc_put_request('xids', 'job', '{"n": 3}') AS rid3 \gset
SELECT pg_temp.next_xid() AS x \gset
CALL syrpc_wait_request('xids', 5, NULL, NULL, NULL) \gset w_
SELECT pg_temp.next_xid() - :x AS claim_in_procedure, :'w_result_id' = :'rid3' AS same;

-- Inside a transaction block the claim keeps its subtransaction: a lock
-- it leaves must not outlive it into the rest of the caller's work.
SELECT syrpc_put_request('xids', 'job', '{"n": 4}') AS rid4 \gset
SELECT pg_temp.next_xid() AS x \gset
BEGIN;
SELECT count(*) AS claimed FROM syrpc_get_request('xids', 0);
COMMIT;
SELECT pg_temp.next_xid() - :x AS claim_in_block;

-- A batch: three claims in one call, three answers in one call.
SELECT syrpc_put_request('xids', 'job', jsonb_build_object('n', i)) IS NOT NULL AS put
  FROM generate_series(10, 12) i;
SELECT pg_temp.next_xid() AS x \gset
SELECT array_agg(result_id) AS ids, array_agg(data) AS datas
  FROM syrpc_get_requests('xids', 3, 0) \gset
SELECT pg_temp.next_xid() - :x AS claim_of_three;
SELECT pg_temp.next_xid() AS x \gset
SELECT syrpc_put_results('xids', :'ids', :'datas') AS answered;
SELECT pg_temp.next_xid() - :x AS answer_of_three;
