-- The waiting procedures: CALL syrpc_wait_request / syrpc_wait_result.
SELECT syrpc_put_request('proc', 'job', '{"n": 1}') AS rid \gset

-- A worker takes it with CALL; the output is one row.
CALL syrpc_wait_request('proc', 1) \gset w_
SELECT :'w_type' AS type, :'w_result_id' = :'rid' AS same_id, :'w_data' AS data;
-- Nothing left: NULLs after the timeout.
CALL syrpc_wait_request('proc', 0.1);

SELECT syrpc_put_result('proc', :'rid', '{"r": 1}');
CALL syrpc_wait_result('proc', :'rid', 1);
-- taken once
\set VERBOSITY sqlstate
CALL syrpc_wait_result('proc', :'rid', 0);
\set VERBOSITY default
SELECT syrpc_put_request('proc_no_worker', 't', '{}') AS pending \gset
CALL syrpc_wait_result('proc_no_worker', :'pending', 0.1);

-- Inside a transaction block they cannot drop their snapshot, but work.
BEGIN;
SELECT syrpc_put_request('proc', 'job', '{"n": 2}') AS rid2 \gset
CALL syrpc_wait_request('proc', 0) \gset w_
COMMIT;
SELECT :'w_type' AS type, :'w_result_id' = :'rid2' AS same_id, :'w_data' AS data;
CALL syrpc_wait_request('proc', 0);

-- Bad input is refused as by the functions.
CALL syrpc_wait_request('bad app', 0);
CALL syrpc_wait_result('proc', NULL, 0);
CALL syrpc_wait_result('proc', gen_random_uuid(), -1);

-- statement_timeout and cancel work as for the functions: a wait ends
-- before statement_timeout, as a timeout.
SET statement_timeout = '200ms';
CALL syrpc_wait_result('proc_no_worker', :'pending', NULL);
CALL syrpc_wait_request('proc_nobody', 30);
RESET statement_timeout;

-- While it waits, a CALL holds no snapshot (backend_xmin is NULL), unlike
-- a SELECT; checked from another session in test/reliability_test.c.
