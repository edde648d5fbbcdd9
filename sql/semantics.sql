-- 1.7: remote errors, cancellation, deadlines, lease extension and release.
\i sql/include/request_now.sql
\i sql/include/try.sql
-- err(sql): the SQLSTATE, message and DETAIL an error gives, ids masked.
CREATE FUNCTION err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text;
    msg text;
    detail text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL;
    RETURN regexp_replace(state || ': ' || msg || coalesce(' / ' || nullif(detail, ''), ''),
                          '[0-9a-f]{8}-[0-9a-f-]{27}', '<id>', 'g');
END
$$;

-- Remote errors: a worker answers with an error; its caller gets SY006,
-- the worker's message as the message, the detail as DETAIL.
SELECT syrpc_put_request('se', 'job', '{"n": 1}') AS e1 \gset
SELECT result_id = :'e1' AS claimed FROM syrpc_get_request('se', 0);
SELECT syrpc_put_error('se', :'e1', 'division by zero', '{"exception": "ZeroDivisionError", "line": 3}');
SELECT err(format('SELECT syrpc_get_result(%L, %L, 0)', 'se', :'e1'));
-- It is not taken: asked again, the same error; a worker cannot answer it again.
SELECT err(format('SELECT syrpc_get_result(%L, %L, 10)', 'se', :'e1'));
SELECT err(format('SELECT syrpc_put_result(%L, %L, %L)', 'se', :'e1', '{}'));
SELECT err(format('SELECT syrpc_put_error(%L, %L, %L)', 'se', :'e1', 'again'));
-- Without a detail (or with JSON null) there is no DETAIL.
SELECT syrpc_put_request('se', 'job', '{"n": 2}') AS e2 \gset
SELECT result_id = :'e2' AS claimed FROM syrpc_get_request('se', 0);
SELECT syrpc_put_error('se', :'e2', 'no detail');
SELECT err(format('SELECT syrpc_get_result(%L, %L, 0)', 'se', :'e2'));
-- The waiting procedure raises it too (syrpc_call: specs/outcomes.spec).
SELECT err(format('CALL syrpc_wait_result(%L, %L, 0)', 'se', :'e2'));
-- Bad input: nothing changes.
SELECT syrpc_put_request('se', 'job', '{"n": 3}') AS e3 \gset
SELECT result_id = :'e3' AS claimed FROM syrpc_get_request('se', 0);
SELECT try(format('SELECT syrpc_put_error(%L, %L, NULL)', 'se', :'e3'));
SELECT try(format('SELECT syrpc_put_error(%L, %L, %L)', 'se', :'e3', ''));
SELECT try(format('SELECT syrpc_put_error(%L, %L, %L)', 'se', :'e3', repeat('x', 1025)));
SELECT try(format('SELECT syrpc_put_error(%L, %L, %L)', 'se_other', :'e3', 'wrong app'));
SELECT try(format('SELECT syrpc_put_error(%L, %L, %L)', 'se', gen_random_uuid(), 'unknown'));
SELECT try(format('SELECT syrpc_put_error(%L, %L, %L, %L::jsonb)', 'se', :'e3', 'too large',
                  json_build_object('x', repeat('x', 1100 * 1024))));
SELECT queued, in_flight FROM syrpc_stats WHERE app = 'se';
SELECT syrpc_put_result('se', :'e3', '{"ok": true}');
SELECT syrpc_get_result('se', :'e3', 0);

-- Cancellation of a queued request: withdrawn, never handed to a worker.
SELECT syrpc_put_request('sc', 'job', '{"n": 1}') AS c1 \gset
SELECT syrpc_cancel('sc', :'c1') AS cancelled;
SELECT count(*) AS claimed FROM syrpc_get_request('sc', 0);
SELECT err(format('SELECT syrpc_get_result(%L, %L, 10)', 'sc', :'c1'));
SELECT err(format('SELECT syrpc_get_result(%L, %L, 0)', 'sc', :'c1'));
-- A second cancel: it has ended.
SELECT syrpc_cancel('sc', :'c1') AS cancelled_again;
SELECT queued, in_flight FROM syrpc_stats WHERE app = 'sc';
-- In flight: marked; the worker sees it; its answer is accepted and dropped.
SELECT syrpc_put_request('sc', 'job', '{"n": 2}') AS c2 \gset
SELECT result_id = :'c2' AS claimed FROM syrpc_get_request('sc', 0);
SELECT syrpc_is_cancelled('sc', :'c2') AS before_cancel;
SELECT syrpc_cancel('sc', :'c2') AS cancelled;
SELECT syrpc_is_cancelled('sc', :'c2') AS after_cancel;
SELECT err(format('SELECT syrpc_extend_lease(%L, %L, 60)', 'sc', :'c2'));
SELECT syrpc_put_result('sc', :'c2', '{"late": true}');
SELECT syrpc_put_error('sc', :'c2', 'late error');
SELECT syrpc_fail_request('sc', :'c2', 'late failure');
SELECT syrpc_release('sc', :'c2');
SELECT err(format('SELECT syrpc_get_result(%L, %L, 0)', 'sc', :'c2'));
SELECT queued, in_flight, failed FROM syrpc_stats WHERE app = 'sc';
-- An answered request cannot be cancelled; its result stays.
SELECT syrpc_put_request('sc', 'job', '{"n": 3}') AS c3 \gset
SELECT result_id = :'c3' AS claimed FROM syrpc_get_request('sc', 0);
SELECT syrpc_put_result('sc', :'c3', '{"r": 3}');
SELECT syrpc_cancel('sc', :'c3') AS cancelled;
SELECT syrpc_is_cancelled('sc', :'c3') AS is_cancelled;
SELECT syrpc_get_result('sc', :'c3', 0);
-- A failed request neither.
SELECT syrpc_put_request('sc', 'job', '{"n": 4}') AS c4 \gset
SELECT result_id = :'c4' AS claimed FROM syrpc_get_request('sc', 0);
SELECT syrpc_fail_request('sc', :'c4', 'cannot');
SELECT syrpc_cancel('sc', :'c4') AS cancelled;
-- Unknown, another app's, NULL: clear errors, nothing changes.
SELECT syrpc_put_request('sc', 'job', '{"n": 5}') AS c5 \gset
SELECT try(format('SELECT syrpc_cancel(%L, %L)', 'sc', gen_random_uuid()));
SELECT try(format('SELECT syrpc_cancel(%L, %L)', 'sc_other', :'c5'));
SELECT try(format('SELECT syrpc_cancel(%L, NULL)', 'sc'));
SELECT try(format('SELECT syrpc_is_cancelled(%L, %L)', 'sc', gen_random_uuid()));
SELECT try(format('SELECT syrpc_is_cancelled(%L, %L)', 'sc_other', :'c5'));
SELECT syrpc_is_cancelled('sc', :'c5') AS queued_is_cancelled;
SELECT data FROM syrpc_get_request('sc', 0);
-- A cancel that rolls back leaves the request as it was.
SELECT syrpc_put_request('sc', 'job', '{"n": 6}') AS c6 \gset
BEGIN;
SELECT syrpc_cancel('sc', :'c6') AS cancelled;
ROLLBACK;
SELECT result_id = :'c6' AS claimed, data FROM syrpc_get_request('sc', 0);

-- Deadlines: a request past its deadline is never handed out; its
-- caller gets SY002.  NULL and 'infinity' mean none.
SELECT syrpc_put_request('sd', 'job', '{"n": 1}', clock_timestamp() - interval '1 s') AS d1 \gset
SELECT count(*) AS claimed FROM syrpc_get_request('sd', 0);
SELECT err(format('SELECT syrpc_get_result(%L, %L, 10)', 'sd', :'d1'));
SELECT syrpc_put_request('sd', 'job', '{"n": 2}', NULL) AS d2 \gset
SELECT syrpc_put_request('sd', 'job', '{"n": 3}', 'infinity') AS d3 \gset
SELECT syrpc_put_request('sd', 'job', '{"n": 4}', clock_timestamp() + interval '1 hour') AS d4 \gset
SELECT expires_at = created_at + (SELECT request_ttl FROM syrpc_apps WHERE app = 'sd') AS ttl_kept
  FROM syrpc.request WHERE result_id IN (:'d2', :'d3');
SELECT expires_at < created_at + interval '1 hour 1 s' AND expires_at > created_at + interval '59 min' AS deadline_kept
  FROM syrpc.request WHERE result_id = :'d4';
-- Workers see the attempt and the deadline (syrpc_claim_requests, and the
-- batch procedures' jsonb).
SELECT data, attempts, deadline = (SELECT expires_at FROM syrpc.request WHERE result_id = c.result_id) AS deadline
  FROM syrpc_claim_requests('sd', 10) c ORDER BY data->>'n';
SELECT syrpc_release('sd', :'d4');
CALL syrpc_wait_requests('sd', 10, 0, NULL) \gset w_
SELECT r->'data' AS data, r->'attempts' AS attempts,
       (r->>'deadline')::timestamptz = (SELECT expires_at FROM syrpc.request WHERE result_id = :'d4') AS deadline
  FROM jsonb_array_elements(:'w_requests'::jsonb) r;
SELECT syrpc_put_results('sd', ARRAY[:'d2', :'d3', :'d4']::uuid[], ARRAY['{}', '{}', '{}']::jsonb[]);
-- A request whose deadline passes while a worker holds it stays until its
-- lease ends (in its row, or in shared memory), and the answer is taken.
SELECT syrpc_configure('sd2', result_ttl => '1 ms', lease_time => '1 hour');
SELECT syrpc_put_request('sd2', 'job', '{"n": 1}', clock_timestamp() + interval '200 ms') AS d5 \gset
SELECT result_id = :'d5' AS claimed FROM syrpc_get_request('sd2', 0);
SELECT pg_sleep(0.3);
SELECT syrpc_cleanup() >= 0 AS cleaned;
SELECT count(*) AS still_there FROM syrpc.request WHERE result_id = :'d5';
SELECT syrpc_configure('sd2', result_ttl => '1 hour');      -- so that its result stays
SELECT syrpc_put_result('sd2', :'d5', '{"late": true}');
SELECT syrpc_get_result('sd2', :'d5', 0);
-- syrpc.call_deadline: syrpc_call's timeout is its request's deadline; a
-- request still queued then has expired (SY002), and no worker gets it.
SET syrpc.call_deadline = on;
\set VERBOSITY sqlstate
CALL syrpc_call('sd', 'job', '{"n": 5}', 0.01);
\set VERBOSITY default
RESET syrpc.call_deadline;
SELECT count(*) AS claimed FROM syrpc_get_request('sd', 0);
-- Off, the same call times out and its request stays queued.
CALL syrpc_call('sd', 'job', '{"n": 6}', 0.01) \gset k_
SELECT data FROM syrpc_get_request('sd', 0);

-- Lease extension: the lease ends seconds from now.
SELECT syrpc_configure('sl', lease_time => '1 s', max_attempts => 5);
SELECT syrpc_put_request('sl', 'job', '{"n": 1}') AS l1 \gset
SELECT result_id = :'l1' AS claimed FROM syrpc_get_request('sl', 0);
SELECT syrpc_extend_lease('sl', :'l1', 3600) - clock_timestamp() BETWEEN interval '59 min' AND interval '1 hour' AS extended;
SELECT ready_at - clock_timestamp() > interval '59 min' AS lease_ends_later FROM request_now WHERE result_id = :'l1';
SELECT pg_sleep(1.1);
SELECT count(*) AS claimed_by_another FROM syrpc_get_request('sl', 0);
SELECT attempts FROM request_now WHERE result_id = :'l1';
-- Bad input, and leases not held: nothing changes.
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, 0)', 'sl', :'l1'));
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, -1)', 'sl', :'l1'));
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, %L)', 'sl', :'l1', 'NaN'));
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, 1e10)', 'sl', :'l1'));
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, NULL)', 'sl', :'l1'));
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, 60)', 'sl_other', :'l1'));
SELECT syrpc_put_request('sl', 'job', '{"n": 2}') AS l2 \gset
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, 60)', 'sl', :'l2'));
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, 60)', 'sl', gen_random_uuid()));
SELECT ready_at - clock_timestamp() > interval '59 min' AS still_extended, attempts
  FROM request_now WHERE result_id = :'l1';
-- A lease that ran out is lost.
SELECT result_id = :'l2' AS claimed FROM syrpc_get_request('sl', 0);
SELECT pg_sleep(1.1);
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, 60)', 'sl', :'l2'));
-- Claimed again (attempt 2): the worker of attempt 1 cannot extend or
-- release the new lease when it says which attempt it holds.
SELECT result_id = :'l2' AS claimed, attempts FROM syrpc_claim_requests('sl', 1);
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, 60, 1)', 'sl', :'l2'));
SELECT try(format('SELECT syrpc_release(%L, %L, attempt => 1)', 'sl', :'l2'));
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, 60, 0)', 'sl', :'l2'));
SELECT syrpc_extend_lease('sl', :'l2', 60, 2) > clock_timestamp() AS extended_by_attempt_2;
SELECT attempts, ready_at > clock_timestamp() + interval '50 s' AS leased FROM request_now WHERE result_id = :'l2';
SELECT syrpc_release('sl', :'l2', attempt => 2);
SELECT attempts FROM request_now WHERE result_id = :'l2';
SELECT syrpc_put_result('sl', :'l1', '{}');
SELECT try(format('SELECT syrpc_extend_lease(%L, %L, 60)', 'sl', :'l1'));

-- Release: claimable again at once (or after the delay), its attempt not counted.
SELECT syrpc_put_request('sr', 'job', '{"n": 1}') AS r1 \gset
SELECT result_id = :'r1' AS claimed FROM syrpc_get_request('sr', 0);
SELECT attempts FROM request_now WHERE result_id = :'r1';
SELECT syrpc_release('sr', :'r1');
SELECT attempts FROM request_now WHERE result_id = :'r1';
SELECT data, attempts FROM syrpc_claim_requests('sr', 1);
SELECT syrpc_release('sr', :'r1', '1 hour');
SELECT count(*) AS claimed_during_delay FROM syrpc_get_request('sr', 0);
SELECT attempts, ready_at - clock_timestamp() > interval '59 min' AS delayed
  FROM request_now WHERE result_id = :'r1';
-- Not leased any more (released), never claimed, bad input: refused, nothing changes.
SELECT try(format('SELECT syrpc_release(%L, %L)', 'sr', :'r1'));
SELECT syrpc_put_request('sr', 'job', '{"n": 2}') AS r2 \gset
SELECT try(format('SELECT syrpc_release(%L, %L)', 'sr', :'r2'));
SELECT try(format('SELECT syrpc_release(%L, %L, %L)', 'sr', :'r2', '-1 s'));
SELECT try(format('SELECT syrpc_release(%L, %L, %L)', 'sr', :'r2', '200 years'));
SELECT try(format('SELECT syrpc_release(%L, %L, NULL)', 'sr', :'r2'));
SELECT try(format('SELECT syrpc_release(%L, %L)', 'sr_other', :'r2'));
SELECT data, attempts FROM syrpc_claim_requests('sr', 1);
-- A release that rolls back keeps a lease in its row.  (A lease in
-- shared memory, as an in-memory call's, is handed back at once.)
SELECT syrpc_release('sr', :'r2');
SET syrpc.memory_leases = off;
SELECT result_id = :'r2' AS claimed FROM syrpc_get_request('sr', 0);
RESET syrpc.memory_leases;
BEGIN;
SELECT syrpc_release('sr', :'r2');
ROLLBACK;
SELECT count(*) AS claimed FROM syrpc_get_request('sr', 0);
SELECT syrpc_put_result('sr', :'r2', '{"r": 2}');
SELECT syrpc_get_result('sr', :'r2', 0);

DROP FUNCTION err(text);
DROP FUNCTION try(text);
