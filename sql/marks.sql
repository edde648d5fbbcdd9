-- Leases and taken results kept in shared memory (marks.c), preloaded:
-- what the rows show, what callers and workers see, and every way a mark
-- ends.  Without preload the same calls write their rows: expected/marks.out
-- (lock_manager); preloaded: expected/marks_1.out (shared_memory).
\i sql/include/try.sql
\i sql/include/request_now.sql
SET syrpc.cleanup_interval = 0;
SELECT syrpc_configure('mk', lease_time => '200 ms', max_attempts => 2);
SELECT current_setting('syrpc.wakeup_registry') AS registry;

-- A claim leaves its row as it was put; the caller, the stats and a
-- second worker see the lease all the same.
SELECT syrpc_put_request('mk', 'job', '{"n": 1}') AS a \gset
SELECT result_id = :'a' AS claimed FROM syrpc_get_request('mk', 0);
SELECT r.attempts AS in_row, n.attempts AS seen
  FROM syrpc.request r JOIN request_now n USING (result_id) WHERE result_id = :'a';
SELECT queued, in_flight FROM syrpc_stats WHERE app = 'mk';
SELECT count(*) AS not_while_leased FROM syrpc_get_request('mk', 0);
SELECT syrpc_get_result('mk', :'a', 0) IS NULL AS still_running;
-- Answered: the request goes, its mark with it, and the result is there.
SELECT syrpc_put_result('mk', :'a', '{"r": 1}');
SELECT syrpc.memory_lease(:'a', 0) IS NULL AS lease_gone,
       (SELECT count(*) FROM syrpc.request WHERE result_id = :'a') AS request_left;
SELECT results_waiting FROM syrpc_stats WHERE app = 'mk';

-- A take leaves the result's row as it is; a second take is refused.
SELECT syrpc_get_result('mk', :'a', 0);
SELECT consumed_at IS NULL AS row_untouched, t.taken
  FROM syrpc.result s JOIN result_now t USING (result_id) WHERE result_id = :'a';
SELECT try(format($$SELECT syrpc_get_result('mk', %L, 0)$$, :'a'));
SELECT results_waiting FROM syrpc_stats WHERE app = 'mk';

-- A take that rolls back, in a transaction or a savepoint, leaves the
-- result to be taken again.
SELECT syrpc_put_request('mk', 'job', '{"n": 2}') AS b \gset
SELECT count(*) FROM syrpc_get_request('mk', 0);
SELECT syrpc_put_result('mk', :'b', '{"r": 2}');
BEGIN;
SELECT syrpc_get_result('mk', :'b', 0);
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT syrpc_get_result('mk', :'b', 0);
ROLLBACK TO SAVEPOINT s;
SELECT syrpc.memory_taken(:'b') AS taken_after_rollback_to_savepoint;
COMMIT;
SELECT syrpc_get_result('mk', :'b', 0);

-- A claim that rolls back, in a transaction or a savepoint, hands the
-- request back at once, its attempt not counted.
SELECT syrpc_put_request('mk', 'job', '{"n": 3}') AS c \gset
BEGIN;
SELECT result_id = :'c' AS claimed FROM syrpc_get_request('mk', 0);
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT result_id = :'c' AS claimed FROM syrpc_get_request('mk', 0);
ROLLBACK TO SAVEPOINT s;
SELECT attempts AS after_savepoint FROM request_now WHERE result_id = :'c';
COMMIT;
-- Claimed and answered in one transaction.
BEGIN;
SELECT result_id = :'c' AS claimed FROM syrpc_get_request('mk', 0);
SELECT syrpc_put_result('mk', :'c', '{"r": 3}');
COMMIT;
SELECT syrpc.memory_lease(:'c', 0) IS NULL AS lease_gone, syrpc_get_result('mk', :'c', 0);

-- A lease that runs out: the next claim moves it into the row (its
-- attempt counted there) and takes the request under a row lease.
SELECT syrpc_put_request('mk', 'job', '{"n": 4}') AS d \gset
SELECT result_id = :'d' AS claimed FROM syrpc_get_request('mk', 0);
SELECT result_id = :'d' AS redelivered FROM syrpc_get_request('mk', 30);
SELECT attempts AS seen FROM request_now WHERE result_id = :'d';
SELECT attempts AS in_row, syrpc.memory_lease(:'d', attempts) IS NULL AS no_mark
  FROM syrpc.request WHERE result_id = :'d';
SELECT syrpc_put_result('mk', :'d', '{"r": 4}');

-- The last attempt's lease runs out with no worker about: its caller,
-- woken at the lease's end, gets SY001, and cleanup moves the attempt
-- into the row, so that the row says failed too.
SELECT syrpc_configure('mk', max_attempts => 1);
SELECT syrpc_put_request('mk', 'job', '{"n": 5}') AS e \gset
SELECT result_id = :'e' AS claimed FROM syrpc_get_request('mk', 0);
SELECT try(format($$SELECT syrpc_get_result('mk', %L, 30)$$, :'e'));
SELECT failed, in_flight FROM syrpc_stats WHERE app = 'mk';
SELECT syrpc_cleanup() >= 0 AS cleaned;
SELECT attempts AS in_row, syrpc.memory_lease(:'e', 0) IS NULL AS mark_gone
  FROM syrpc.request WHERE result_id = :'e';
SELECT try(format($$SELECT syrpc_get_result('mk', %L, 0)$$, :'e'));
DELETE FROM syrpc.request WHERE result_id = :'e';

-- Under REPEATABLE READ a claim cannot take the new snapshot its recheck
-- needs: it writes its row, as does every claim with memory_leases off.
SELECT syrpc_configure('mk', max_attempts => 2);
SELECT syrpc_put_request('mk', 'job', '{"n": 6}') AS f \gset
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT result_id = :'f' AS claimed FROM syrpc_get_request('mk', 0);
COMMIT;
SELECT attempts AS in_row FROM syrpc.request WHERE result_id = :'f';
SELECT syrpc_put_result('mk', :'f', '{"r": 6}');
SET syrpc.memory_leases = off;
SELECT syrpc_get_result('mk', :'f', 0);
SELECT consumed_at IS NOT NULL AS taken_in_row FROM syrpc.result WHERE result_id = :'f';
RESET syrpc.memory_leases;
-- A result taken in its row is refused a second time with leases on.
SELECT try(format($$SELECT syrpc_get_result('mk', %L, 0)$$, :'f'));

-- A claim that writes its row (memory_leases off, REPEATABLE READ) keeps
-- off a request leased in a mark (marks.pml's mutant TABLE_IGNORES_MARKS),
-- and its own lease, in the row, keeps claims in memory off.
SELECT syrpc_put_request('mk', 'job', '{"n": 9}') AS x \gset
SELECT result_id = :'x' AS claimed FROM syrpc_get_request('mk', 0);
SET syrpc.memory_leases = off;
SELECT count(*) AS not_again_in_row FROM syrpc_get_request('mk', 0);
RESET syrpc.memory_leases;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS not_again_repeatable_read FROM syrpc_get_request('mk', 0);
COMMIT;
SELECT syrpc_put_request('mk', 'job', '{"n": 10}') AS y \gset
SET syrpc.memory_leases = off;
SELECT result_id = :'y' AS claimed_in_row FROM syrpc_get_request('mk', 0);
RESET syrpc.memory_leases;
SELECT count(*) AS not_again_in_memory FROM syrpc_get_request('mk', 0);
SELECT attempts AS in_row, syrpc.memory_lease(:'y', attempts) IS NULL AS no_mark_left
  FROM syrpc.request WHERE result_id = :'y';
SELECT syrpc_put_results('mk', ARRAY[:'x', :'y']::uuid[], ARRAY['{}', '{}']::jsonb[]) AS answered;

-- A worker fails a request leased in a mark: the attempt counts in the row.
SELECT syrpc_put_request('mk', 'job', '{"n": 7}') AS g \gset
SELECT result_id = :'g' AS claimed FROM syrpc_get_request('mk', 0);
SELECT syrpc_fail_request('mk', :'g', 'cannot');
SELECT attempts AS in_row, failure, syrpc.memory_lease(:'g', 0) IS NULL AS mark_gone
  FROM syrpc.request WHERE result_id = :'g';
SELECT try(format($$SELECT syrpc_get_result('mk', %L, 0)$$, :'g'));

-- An answer for a request no worker claimed is refused, mark or not.
SELECT syrpc_put_request('mk', 'job', '{"n": 8}') AS h \gset
SELECT try(format($$SELECT syrpc_put_result('mk', %L, '{}')$$, :'h'));
DELETE FROM syrpc.request WHERE app = 'mk';
RESET syrpc.cleanup_interval;
DROP FUNCTION try(text);
