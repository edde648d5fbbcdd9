-- Leases, retries, the failure after max_attempts, expiry and cleanup.

SELECT syrpc_configure('lease', lease_time => '200 ms', max_attempts => 2);
SELECT app, lease_time, max_attempts FROM syrpc_apps WHERE app = 'lease';

\i sql/include/try.sql
\i sql/include/request_now.sql

-- A worker claims a request and never answers (as if it died).
SELECT syrpc_put_request('lease', 'job', '{"n": 1}') AS rid \gset
SELECT result_id = :'rid' AS first_claim FROM syrpc_get_request('lease', 0);
SELECT count(*) AS not_while_leased FROM syrpc_get_request('lease', 0);
SELECT attempts FROM request_now WHERE result_id = :'rid';

-- A caller waiting meanwhile gets nothing (timeout), not an error.
SELECT syrpc_get_result('lease', :'rid', 0.05) IS NULL AS still_running;

-- A waiting worker gets it again when the lease runs out: the wait ends
-- at the lease's end, not at its own timeout.
SELECT result_id = :'rid' AS redelivered FROM syrpc_get_request('lease', 30);
SELECT attempts FROM request_now WHERE result_id = :'rid';
SELECT queued, in_flight, failed FROM syrpc_stats WHERE app = 'lease';

-- The second lease runs out too: that was the last attempt, and the
-- caller, woken at the lease's end, gets an explicit failure.
SELECT try(format($$SELECT syrpc_get_result('lease', %L, 30)$$, :'rid'));
SELECT queued, in_flight, failed FROM syrpc_stats WHERE app = 'lease';
SELECT count(*) AS not_handed_out_again FROM syrpc_get_request('lease', 0);
-- It keeps failing the same way.
SELECT try(format($$SELECT syrpc_get_result('lease', %L, 0)$$, :'rid'));

-- A late answer from a worker whose lease ran out is still taken: the
-- caller gets it instead of the failure.
SELECT syrpc_put_result('lease', :'rid', '{"late": true}');
SELECT syrpc_get_result('lease', :'rid', 0);

-- From here on only syrpc_cleanup deletes (not a put or answer that
-- starts a new cleanup_interval), so that its count below is known.
SET syrpc.cleanup_interval = 0;
-- A request nobody claims before its request_ttl expires.
SELECT syrpc_put_request('lease', 'job', '{"n": 2}') AS rid2 \gset
UPDATE syrpc.request SET expires_at = clock_timestamp() - interval '1 hour',
                         ready_at = clock_timestamp() - interval '1 hour'
 WHERE result_id = :'rid2';
SELECT count(*) AS expired_not_handed_out FROM syrpc_get_request('lease', 0);
SELECT try(format($$SELECT syrpc_get_result('lease', %L, 0)$$, :'rid2'));

-- An answered result nobody fetches before its result_ttl: gone.
SELECT syrpc_put_request('lease', 'job', '{"n": 3}') AS rid3 \gset
SELECT count(*) FROM syrpc_get_request('lease', 0);
SELECT syrpc_put_result('lease', :'rid3', '{"r": 3}');
UPDATE syrpc.result SET expires_at = clock_timestamp() - interval '1 s'
 WHERE result_id = :'rid3';
\set VERBOSITY sqlstate
SELECT syrpc_get_result('lease', :'rid3', 5) AS expired_result_gone;
\set VERBOSITY default
SELECT results_waiting FROM syrpc_stats WHERE app = 'lease';

-- Cleanup removes what expired: the expired request and the failed one
-- once a result_ttl past their end (until then their callers learn
-- SY002 and SY001), and the expired result.
SELECT syrpc_put_request('lease', 'job', '{"n": 6}') AS rid6 \gset
SELECT count(*) FROM syrpc_get_request('lease', 0);
UPDATE syrpc.request SET attempts = 2, ready_at = clock_timestamp() - interval '1 hour'
 WHERE result_id = :'rid6';
SELECT syrpc_cleanup() AS deleted;
SELECT count(*) AS requests_left FROM syrpc.request WHERE app = 'lease';
SELECT count(*) AS results_left FROM syrpc.result WHERE app = 'lease' AND result_id <> :'rid';

-- Cleanup also runs by itself: a put removes expired rows when none were
-- removed for syrpc.cleanup_interval by any backend (a clock in shared
-- memory when preloaded, else a lock per interval).  Put until one has,
-- for 10 s at most.
CREATE FUNCTION put_until_removed(id uuid) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..1000 LOOP
        PERFORM syrpc_put_request('lease', 'job', '{"n": 0}');
        IF NOT EXISTS (SELECT FROM syrpc.request WHERE result_id = id) THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN false;
END $$;
SET syrpc.cleanup_interval = '10ms';
SELECT syrpc_put_request('lease', 'job', '{"n": 4}') AS rid4 \gset
UPDATE syrpc.request SET expires_at = clock_timestamp() - interval '1 s'
 WHERE result_id = :'rid4';
SELECT put_until_removed(:'rid4') AS expired_request_removed;
-- pg_advisory_unlock_all() (DISCARD ALL, in a pooler) releases the lock
-- that elects a cleanup without preloading; that upsets nothing.
SELECT pg_advisory_unlock_all();
SELECT syrpc_put_request('lease', 'job', '{"n": 5}') AS rid5 \gset
UPDATE syrpc.request SET expires_at = clock_timestamp() - interval '1 s'
 WHERE result_id = :'rid5';
SELECT put_until_removed(:'rid5') AS expired_request_removed;
RESET syrpc.cleanup_interval;
DROP FUNCTION put_until_removed(uuid);
DROP FUNCTION try(text);
