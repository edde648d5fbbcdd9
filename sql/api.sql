-- The four RPC calls from plain SQL, one statement per transaction.

-- A caller puts a request and gets a result_id.
SELECT syrpc_put_request('echo_app', 'echo', '{"value": "hello"}') AS rid \gset
SELECT :'rid'::uuid IS NOT NULL AS got_result_id;

-- The app appeared on first use, with the default settings.
SELECT app, lease_time, max_attempts, result_ttl, request_ttl FROM syrpc_apps;

-- Nothing to fetch yet: a zero timeout returns NULL at once.
SELECT syrpc_get_result('echo_app', :'rid', 0) IS NULL AS no_result_yet;

SELECT queued, in_flight, failed, results_waiting FROM syrpc_stats;

-- A worker claims it: type, the same result_id, the data.
SELECT type, result_id = :'rid' AS same_id, data
  FROM syrpc_get_request('echo_app', 0);

-- Claimed requests are leased, not gone.
SELECT queued, in_flight, failed, results_waiting FROM syrpc_stats;

-- Nothing else to claim.
SELECT count(*) AS nothing_left FROM syrpc_get_request('echo_app', 0);

-- The worker answers; the caller gets the answer, once.
SELECT syrpc_put_result('echo_app', :'rid', '{"value": "hello"}');
SELECT queued, in_flight, failed, results_waiting FROM syrpc_stats;
SELECT syrpc_get_result('echo_app', :'rid', 1);
SELECT queued, in_flight, failed, results_waiting FROM syrpc_stats;

-- Any JSON value is fine as data, including JSON null and scalars.
SELECT syrpc_put_request('echo_app', 'echo', 'null') AS rid2 \gset
SELECT data FROM syrpc_get_request('echo_app', 0);
SELECT syrpc_put_result('echo_app', :'rid2', '42');
SELECT syrpc_get_result('echo_app', :'rid2', 0);

-- Requests are handed out oldest first.
SELECT count(syrpc_put_request('fifo', 't', to_jsonb(i))) FROM generate_series(1, 5) i;
SELECT data FROM syrpc_get_request('fifo', 0)
UNION ALL SELECT data FROM syrpc_get_request('fifo', 0)
UNION ALL SELECT data FROM syrpc_get_request('fifo', 0);

-- Apps are separate queues.
SELECT count(*) AS other_app_sees_nothing FROM syrpc_get_request('echo_app', 0);

-- A timeout is honoured: the result of a request nobody answers, with
-- timeout 0.2, is NULL.
SELECT syrpc_put_request('no_worker', 't', '{}') AS pending \gset
SELECT clock_timestamp() AS t0 \gset
SELECT syrpc_get_result('no_worker', :'pending', 0.2) IS NULL AS timed_out;
SELECT clock_timestamp() - :'t0'::timestamptz >= '0.2 s' AS waited_whole_timeout;
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM syrpc_get_request('nobody_puts_here', 0.2);
SELECT clock_timestamp() - :'t0'::timestamptz >= '0.2 s' AS waited_whole_timeout;

-- A wait longer than statement_timeout allows ends just before it, as a
-- timeout (NULL, no row), not with an error: endless waits, and waits
-- longer than the statement may take.
SET statement_timeout = '300ms';
SELECT clock_timestamp() AS t0 \gset
SELECT syrpc_get_result('no_worker', :'pending', NULL) IS NULL AS timed_out;
SELECT count(*) FROM syrpc_get_request('nobody_puts_here', NULL);
SELECT count(*) FROM syrpc_get_request('nobody_puts_here', 60);
SELECT clock_timestamp() - :'t0'::timestamptz < '0.9 s' AS within_statement_timeouts;
RESET statement_timeout;

-- A result_id that is neither a request nor a result (unknown, or its
-- result expired) is an error at once, not a wait for nothing.
SELECT clock_timestamp() AS t0 \gset
SELECT syrpc_get_result('echo_app', '00000000-0000-0000-0000-000000000001', 5);
SELECT clock_timestamp() - :'t0'::timestamptz < '1 s' AS did_not_wait;

-- Waiting needs a fresh snapshot per look, so not in REPEATABLE READ;
-- timeout 0 is fine there.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT syrpc_get_result('no_worker', :'pending', 0) IS NULL AS ok;
SELECT syrpc_get_result('no_worker', :'pending', 1);
ROLLBACK;

-- A put inside a transaction that rolls back leaves nothing.
BEGIN;
SELECT syrpc_put_request('rollback_app', 't', '{}') IS NOT NULL AS put;
ROLLBACK;
SELECT count(*) AS nothing_queued FROM syrpc_get_request('rollback_app', 0);
