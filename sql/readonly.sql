-- Errors inside a claim leave a usable session, and a read-only
-- transaction gets a clear error from every call that writes.
SELECT syrpc_put_request('ro', 'job', '{"n": 1}') AS rid \gset

-- default_transaction_read_only: a clear 25006, and the session goes on
-- (the next ROLLBACK used to end the backend with a FATAL error).
SET default_transaction_read_only = on;
SELECT * FROM syrpc_get_request('ro', 0);
ROLLBACK;
SELECT 1 AS session_alive;
CALL syrpc_wait_request('ro', 0);
ROLLBACK;
SELECT 1 AS session_alive;
SELECT syrpc_put_request('ro', 'job', '{}');
SELECT syrpc_get_result('ro', :'rid', 0);
SELECT syrpc_put_result('ro', :'rid', '{}');
SELECT syrpc_fail_request('ro', :'rid', 'no');
SELECT * FROM syrpc_put_result_get_request('ro', :'rid', '{}');
CALL syrpc_wait_result('ro', :'rid', 0);
CALL syrpc_call('ro', 'job', '{}', 0);
CALL syrpc_put_result_wait_request('ro', :'rid', '{}', 0);
SELECT syrpc_configure('ro', max_attempts => 2);
SELECT syrpc_cleanup();
RESET default_transaction_read_only;

-- The same in an explicit read-only transaction block.
BEGIN READ ONLY;
SELECT * FROM syrpc_get_request('ro', 0);
ROLLBACK;
SELECT 1 AS session_alive;

-- Reading the stats is fine in a read-only transaction.
BEGIN READ ONLY;
SELECT app, queued FROM syrpc_stats WHERE app = 'ro';
COMMIT;

-- Nothing of the refused calls changed the queue.
SELECT queued, in_flight FROM syrpc_stats WHERE app = 'ro';
SELECT data FROM syrpc_get_request('ro', 0);
