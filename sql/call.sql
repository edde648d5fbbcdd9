-- CALL syrpc_call: put a request and wait for its result in one statement.

-- With no worker, it times out: result_id, no result, the request queued.
CALL syrpc_call('call', 'job', '{"n": 1}', 0) \gset c_
SELECT :'c_result_id'::uuid IS NOT NULL AS has_id, :{?c_result} AS has_result;
SELECT type, result_id = :'c_result_id' AS same_id, data
  FROM syrpc_get_request('call', 0);
-- Answered after the call gave up, the result waits for syrpc_get_result.
SELECT syrpc_put_result('call', :'c_result_id', '{"r": 1}');
SELECT syrpc_get_result('call', :'c_result_id', 0);

-- From PL/pgSQL: a DO block (not in a transaction block) may CALL it too.
-- Without a worker it gives up after the timeout, with the request queued.
DO $$
DECLARE
    id uuid;
    r jsonb;
BEGIN
    CALL syrpc_call('call', 'job', '{"n": 2}', 0.05, id, r);
    RAISE NOTICE 'got an id: %, result: %', id IS NOT NULL, r;
END $$;
SELECT queued FROM syrpc_stats WHERE app = 'call';
SELECT count(*) FROM syrpc_get_request('call', 0);

-- A round trip through it is in specs/wakeup.spec (a worker in another
-- session answers while the call waits).

-- It cannot run inside a transaction block: its request must commit
-- before a worker can take it.  Nothing is queued then.
\set VERBOSITY sqlstate
BEGIN;
CALL syrpc_call('call', 'job', '{"n": 3}', 1);
ROLLBACK;
\set VERBOSITY default
BEGIN;
CALL syrpc_call('call', 'job', '{"n": 3}', 1);
ROLLBACK;
SELECT queued FROM syrpc_stats WHERE app = 'call';

-- Bad input is refused as by syrpc_put_request, with nothing queued.
CALL syrpc_call(NULL, 'job', '{}', 0);
CALL syrpc_call('call', 'bad type', '{}', 0);
CALL syrpc_call('call', 'job', NULL, 0);
CALL syrpc_call('call', 'job', '{}', -1);
CALL syrpc_call('call', 'job', '{}', 'NaN');
SELECT queued FROM syrpc_stats WHERE app = 'call';

-- statement_timeout ends its wait just before it would cancel the call, as
-- a timeout: the result_id comes back, the request stays queued.
SET statement_timeout = '200ms';
CALL syrpc_call('call', 'job', '{"n": 4}', NULL) \gset st_
SELECT :'st_result_id' IS NOT NULL AS got_result_id, NOT :{?st_result} AS result_null;
RESET statement_timeout;
SELECT data FROM syrpc_get_request('call', 0);

-- Nobody is left registered to be woken.
SELECT count(*) AS waiters FROM syrpc.waiters();

-- The registry in use: shared memory when preloaded, else the lock manager.
SELECT current_setting('syrpc.wakeup_registry') =
       CASE WHEN current_setting('shared_preload_libraries') ~ '\msyrpc\M'
            THEN 'shared_memory' ELSE 'lock_manager' END AS registry_as_expected;

-- syrpc.async_results: results commit without the flush, and arrive.
SET syrpc.async_results = on;
SELECT syrpc_put_request('call', 'job', '{"n": 5}') AS five \gset
SELECT count(*) FROM syrpc_get_request('call', 0);
SELECT syrpc_put_result('call', :'five', '{"r": 5}');
SELECT syrpc_get_result('call', :'five', 0);
RESET syrpc.async_results;

-- CALL syrpc_put_result_wait_request: a worker's answer and its wait for
-- the next request in one statement.
SELECT syrpc_put_request('ans', 'job', '{"n": 1}') AS a1 \gset
SELECT syrpc_put_request('ans', 'job', '{"n": 2}') AS a2 \gset
SELECT count(*) FROM syrpc_get_request('ans', 0);
-- a request is queued: it is claimed in the answer's transaction
CALL syrpc_put_result_wait_request('ans', :'a1', '{"r": 1}', 0) \gset n_
SELECT :'n_type' AS type, :'n_result_id' = :'a2' AS next_is_a2, :'n_data' AS data;
SELECT syrpc_get_result('ans', :'a1', 0);
-- none queued: the answer is stored, and the wait times out with NULLs
CALL syrpc_put_result_wait_request('ans', :'a2', '{"r": 2}', 0.05);
SELECT syrpc_get_result('ans', :'a2', 0);
SELECT queued, in_flight FROM syrpc_stats WHERE app = 'ans';
-- an answer that cannot be stored is an error, and claims nothing
SELECT syrpc_put_request('ans', 'job', '{"n": 3}') IS NOT NULL AS put;
\set VERBOSITY sqlstate
CALL syrpc_put_result_wait_request('ans', :'a2', '{"r": 2}', 0);
CALL syrpc_put_result_wait_request('ans', NULL, '{}', 0);
CALL syrpc_put_result_wait_request('ans', :'a2', '{}', -1);
BEGIN;
CALL syrpc_put_result_wait_request('ans', :'a2', '{}', 0);
ROLLBACK;
\set VERBOSITY default
SELECT queued, in_flight FROM syrpc_stats WHERE app = 'ans';
