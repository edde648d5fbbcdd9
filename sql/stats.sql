-- Counters and latencies per app (1.4), counted at commit, in shared
-- memory when syrpc is preloaded; NULL without (expected/stats.out without
-- preload, expected/stats_1.out with).
SELECT syrpc_put_request('st', 't', '{"n": 1}') AS a \gset
SELECT current_setting('syrpc.wakeup_registry') AS registry;
SELECT syrpc_put_request('st', 't', '{"n": 2}') AS b \gset
-- A put that rolls back, and one in a subtransaction rolled back, count nothing.
BEGIN;
SELECT syrpc_put_request('st', 't', '{"n": 0}') IS NOT NULL AS put;
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT syrpc_put_request('st', 't', '{"n": 0}') IS NOT NULL AS put;
ROLLBACK TO SAVEPOINT s;
COMMIT;

SELECT result_id = :'a' AS claimed FROM syrpc_get_request('st', 0);
SELECT syrpc_put_result('st', :'a', '{"r": 1}');
SELECT syrpc_get_result('st', :'a', 0);
SELECT result_id = :'b' AS claimed FROM syrpc_get_request('st', 0);
SELECT syrpc_fail_request('st', :'b', 'cannot');

SELECT requests_total, answered_total, failed_total, expired_total, window_seconds,
       queue_wait_p50_ms > 0 AS queue_wait, queue_wait_p99_ms >= queue_wait_p50_ms AS p99_at_least_p50,
       service_p50_ms > 0 AS service, round_trip_p50_ms > 0 AS round_trip
  FROM syrpc_stats_latency WHERE app = 'st';

-- Cleanup counts what expired, and what failed after max_attempts (a
-- request a worker failed was counted then, not again).
SELECT syrpc_configure('st', max_attempts => 1);
SELECT syrpc_put_request('st', 't', '{"n": 3}') AS c \gset
UPDATE syrpc.request SET expires_at = now() - interval '1 hour', ready_at = now() - interval '1 hour'
 WHERE result_id = :'c';
SELECT syrpc_put_request('st', 't', '{"n": 4}') AS d \gset
-- (its lease in the row, whose end the UPDATE below moves back)
SET syrpc.memory_leases = off;
SELECT result_id = :'d' AS claimed FROM syrpc_get_request('st', 0);
RESET syrpc.memory_leases;
UPDATE syrpc.request SET ready_at = now() - interval '1 hour' WHERE result_id IN (:'d', :'b');
SELECT syrpc_cleanup() AS deleted;
SELECT requests_total, answered_total, failed_total, expired_total
  FROM syrpc_stats_latency WHERE app = 'st';

-- An app nothing happened to since the server started has no counters.
SELECT syrpc_configure('st_quiet');
SELECT requests_total, queue_wait_p50_ms FROM syrpc_stats_latency WHERE app = 'st_quiet';
