-- Upgrade 1.0 -> 1.1 -> 1.4 with requests and results in the queues.
DROP EXTENSION syrpc;
CREATE EXTENSION syrpc VERSION '1.0';
-- syrpc_stats of 1.0-1.5 does not see the leases that claims keep in
-- shared memory when preloaded (1.6): until the update to 1.6 below,
-- claims write their rows.
SET syrpc.memory_leases = off;
SELECT extversion FROM pg_extension WHERE extname = 'syrpc';

SELECT syrpc_put_request('up', 'job', '{"n": 1}') AS queued \gset
SELECT syrpc_put_request('up', 'job', '{"n": 2}') AS answered \gset
SELECT syrpc_put_request('up', 'job', '{"n": 3}') AS leased \gset
SELECT count(*) FROM syrpc_get_request('up', 0);
SELECT syrpc_put_result('up', :'queued', '{"r": 1}');
SELECT count(*) FROM syrpc_get_request('up', 0);
SELECT count(*) FROM syrpc_get_request('up', 0);
SELECT syrpc_put_result('up', :'answered', '{"r": 2}');

ALTER EXTENSION syrpc UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'syrpc';

-- What was queued survives: the waiting result, the leased request.
SELECT syrpc_get_result('up', :'queued', 0);
SELECT syrpc_get_result('up', :'answered', 0);
SELECT queued, in_flight FROM syrpc_stats WHERE app = 'up';

-- 1.1's call: answer the leased request and claim the next in one go.
SELECT syrpc_put_request('up', 'job', '{"n": 4}') AS next \gset
SELECT type, result_id = :'next' AS next_claimed, data
  FROM syrpc_put_result_get_request('up', :'leased', '{"r": 3}');
SELECT syrpc_get_result('up', :'leased', 0);
-- With nothing left to claim it answers and returns no row.
SELECT count(*) AS no_next FROM syrpc_put_result_get_request('up', :'next', '{"r": 4}');
SELECT syrpc_get_result('up', :'next', 0);
-- A failed answer claims nothing.
SELECT syrpc_put_request('up', 'job', '{"n": 5}') IS NOT NULL AS put;
\set VERBOSITY sqlstate
SELECT * FROM syrpc_put_result_get_request('up', :'next', '{}');
\set VERBOSITY default
SELECT queued, in_flight FROM syrpc_stats WHERE app = 'up';

-- The privileges of the new function follow the others'.
SELECT has_function_privilege('syrpc_worker', 'syrpc_put_result_get_request(text, uuid, jsonb)', 'EXECUTE') AS worker,
       has_function_privilege('syrpc_caller', 'syrpc_put_result_get_request(text, uuid, jsonb)', 'EXECUTE') AS caller,
       has_function_privilege('public', 'syrpc_put_result_get_request(text, uuid, jsonb)', 'EXECUTE') AS public;

-- 1.1 -> 1.2, with a request queued and a worker's lease on another.
SELECT result_id AS five FROM syrpc_get_request('up', 0) \gset
SELECT syrpc_put_request('up', 'job', '{"n": 6}') IS NOT NULL AS put;
ALTER EXTENSION syrpc UPDATE;
RESET syrpc.memory_leases;
SELECT extversion FROM pg_extension WHERE extname = 'syrpc';
SELECT queued, in_flight, workers_waiting FROM syrpc_stats WHERE app = 'up';
SELECT syrpc_put_result('up', :'five', '{"r": 5}');
SELECT syrpc_get_result('up', :'five', 0);
SELECT data FROM syrpc_get_request('up', 0);
-- 1.2's syrpc_call; since 1.4 EXECUTE is PUBLIC's and syrpc's own grants
-- decide, and an updated database grants the group roles every app, as
-- before; no function is SECURITY DEFINER any more; nothing left of 1.1's
-- wait_key.
SELECT has_function_privilege('public', 'syrpc_call(text, text, jsonb, float8, uuid, jsonb)', 'EXECUTE') AS public,
       has_function_privilege('public', 'syrpc.waiters()', 'EXECUTE') AS public_waiters;
SELECT app, role, side FROM syrpc_grants ORDER BY side;
SELECT count(*) AS definers
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.refclassid = 'pg_extension'::regclass
 WHERE p.prosecdef;
SELECT count(*) AS wait_key_left FROM pg_proc WHERE proname = 'wait_key';
CALL syrpc_call('up', 'job', '{"n": 7}', 0) \gset c_
SELECT result_id = :'c_result_id' AS queued_by_call, data
  FROM syrpc_get_request('up', 0);
-- 1.3: a claimed request can be failed; the settings are dumped; DDL on
-- the extension makes waiters give way; workers_waiting is volatile.
SELECT syrpc_put_request('up', 'job', '{"n": 8}') AS eight \gset
SELECT result_id = :'eight' AS claimed FROM syrpc_get_request('up', 0);
SELECT syrpc_fail_request('up', :'eight', 'upgraded');
SELECT failed FROM syrpc_stats WHERE app = 'up';
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'syrpc';
SELECT evtname, evtevent, evttags FROM pg_event_trigger WHERE evtname = 'syrpc_give_way';
SELECT provolatile FROM pg_proc WHERE oid = 'syrpc.workers_waiting(text)'::regprocedure;
