-- Batches (1.6): a busy worker claims several requests at once and
-- answers several in one transaction.
\i sql/include/try.sql
\i sql/include/request_now.sql
CREATE TEMP TABLE put AS
SELECT i, syrpc_put_request('bt', 'job', jsonb_build_object('n', i)) AS result_id
  FROM generate_series(1, 5) i;

-- Up to max, oldest first, each under a lease of its own.
CREATE TEMP TABLE got AS SELECT * FROM syrpc_get_requests('bt', 3, 0);
SELECT g.data, p.i FROM got g JOIN put p USING (result_id) ORDER BY p.i;
SELECT count(*) AS leased FROM request_now WHERE app = 'bt' AND attempts = 1;
-- The rest, fewer than max; then none (no row, no wait).
SELECT data FROM syrpc_get_requests('bt', 10, 0) ORDER BY data->>'n';
SELECT count(*) AS none_left FROM syrpc_get_requests('bt', 10, 0);

-- Answers in one call: all stored, every caller gets its own.
SELECT syrpc_put_results('bt', array_agg(result_id ORDER BY result_id),
                         array_agg(jsonb_build_object('echo', data) ORDER BY result_id)) AS answered
  FROM got;
SELECT p.i, syrpc_get_result('bt', p.result_id, 0) AS result
  FROM put p JOIN got USING (result_id) ORDER BY p.i;

-- All or none: one answer that cannot be stored (a request never
-- claimed) refuses the batch, and the other answer is not stored either.
SELECT syrpc_put_request('bt', 'job', '{"n": 6}') IS NOT NULL AS put;
SELECT result_id AS claimed FROM syrpc_get_request('bt', 0) \gset
SELECT syrpc_put_request('bt', 'job', '{"n": 7}') AS unclaimed \gset
SELECT try(format($$SELECT syrpc_put_results('bt', ARRAY[%L, %L]::uuid[], ARRAY['{}', '{}']::jsonb[])$$,
                  :'claimed', :'unclaimed'));
SELECT attempts AS still_leased FROM request_now WHERE result_id = :'claimed';
SELECT syrpc_get_result('bt', :'claimed', 0) IS NULL AS no_result;
-- An empty batch answers nothing.
SELECT syrpc_put_results('bt', '{}', '{}') AS answered;

-- Bad input: a clear error, and nothing changed.
CREATE TEMP TABLE before AS SELECT to_jsonb(r) AS row FROM request_now r;
SELECT try($$SELECT * FROM syrpc_get_requests('bt', 0, 0)$$);
SELECT try($$SELECT * FROM syrpc_get_requests('bt', 1001, 0)$$);
SELECT try($$SELECT * FROM syrpc_get_requests('bt', NULL, 0)$$);
SELECT try(format($$SELECT syrpc_put_results('bt', ARRAY[%L]::uuid[], '{}')$$, :'claimed'));
SELECT try(format($$SELECT syrpc_put_results('bt', ARRAY[%L, NULL]::uuid[], ARRAY['{}', '{}']::jsonb[])$$, :'claimed'));
SELECT try(format($$SELECT syrpc_put_results('bt', ARRAY[%L]::uuid[], ARRAY[NULL]::jsonb[])$$, :'claimed'));
SELECT try(format($$SELECT syrpc_put_results('bt', NULL, ARRAY['{}']::jsonb[])$$));
SELECT try(format($$SELECT syrpc_put_results('bt', ARRAY[[%L]]::uuid[], ARRAY[['{}']]::jsonb[])$$, :'claimed'));
SELECT try(format($$SELECT syrpc_put_results('bt', (SELECT array_agg(gen_random_uuid()) FROM generate_series(1, 1001)),
                                                  (SELECT array_agg('{}'::jsonb) FROM generate_series(1, 1001)))$$));
SET syrpc.max_payload_size = '1kB';
SELECT try(format($$SELECT syrpc_put_results('bt', ARRAY[%L, %L]::uuid[],
                                             ARRAY['{}', jsonb_build_object('x', repeat('x', 2000))])$$,
                  :'claimed', :'claimed'));
RESET syrpc.max_payload_size;
-- The same result_id twice: the second is already answered.
SELECT try(format($$SELECT syrpc_put_results('bt', ARRAY[%L, %L]::uuid[], ARRAY['{}', '{}']::jsonb[])$$,
                  :'claimed', :'claimed'));
SELECT count(*) AS changed FROM (
    (SELECT row FROM before EXCEPT ALL SELECT to_jsonb(r) FROM request_now r)
    UNION ALL
    (SELECT to_jsonb(r) FROM request_now r EXCEPT ALL SELECT row FROM before)) d;

-- The procedures: the same as jsonb arrays, waiting without a snapshot.
CALL syrpc_wait_requests('bt', 5, 0) \gset w_
SELECT (:'w_requests'::jsonb)->0->'result_id' = to_jsonb(:'unclaimed'::text) AS is_unclaimed,
       (:'w_requests'::jsonb)->0->'data' AS data;
CALL syrpc_wait_requests('bt', 5, 0);
SELECT syrpc_put_request('bt', 'job', '{"n": 8}') AS eight \gset
CALL syrpc_put_results_wait_requests('bt', ARRAY[:'claimed']::uuid[], ARRAY['{"r": 1}']::jsonb[], 5, 0) \gset w_
SELECT jsonb_array_length(:'w_requests') AS claimed_next,
       (:'w_requests'::jsonb)->0->>'type' AS type,
       (:'w_requests'::jsonb)->0->'result_id' = to_jsonb(:'eight'::text) AS is_eight,
       (:'w_requests'::jsonb)->0->'data' AS data;
SELECT syrpc_get_result('bt', :'claimed', 0);
-- With nothing to answer and nothing queued, it waits (here: not) and
-- returns an empty array.
CALL syrpc_put_results_wait_requests('bt', '{}', '{}', 5, 0);
SELECT try($$CALL syrpc_wait_requests('bt', 0, 0)$$);
-- It commits the answers before it waits: not inside a transaction.
BEGIN;
SELECT try(format($$CALL syrpc_put_results_wait_requests('bt', '{}', '{}', 5, 0)$$));
ROLLBACK;
SELECT syrpc_put_results('bt', ARRAY[:'unclaimed', :'eight']::uuid[], ARRAY['{}', '{}']::jsonb[]);
SELECT syrpc_get_result('bt', :'eight', 0);
DELETE FROM syrpc.request WHERE app = 'bt';
DROP FUNCTION try(text);
