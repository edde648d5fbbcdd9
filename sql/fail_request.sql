-- syrpc_fail_request: a worker gives up a request it cannot handle.
\i sql/include/request_now.sql
SELECT syrpc_put_request('fr', 'job', '{"n": 1}') AS rid \gset
SELECT result_id = :'rid' AS claimed FROM syrpc_get_request('fr', 0);
SELECT syrpc_fail_request('fr', :'rid', 'cannot parse the data');
SELECT queued, in_flight, failed FROM syrpc_stats WHERE app = 'fr';

-- Its caller learns why at once, and no worker gets it again.
SELECT set_config('fr.rid', :'rid', false) IS NOT NULL AS set;
SELECT clock_timestamp() AS t0 \gset
DO $$
DECLARE
    state text;
    msg text;
    detail text;
BEGIN
    PERFORM syrpc_get_result('fr', current_setting('fr.rid')::uuid, 10);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE '%: % (%)', state, replace(msg, current_setting('fr.rid'), '<id>'), detail;
END
$$;
SELECT clock_timestamp() - :'t0'::timestamptz < '5 s' AS at_once;
SELECT count(*) AS claimed_again FROM syrpc_get_request('fr', 0);

-- It is no longer in flight: no answer, no second failure.
\set VERBOSITY sqlstate
SELECT syrpc_put_result('fr', :'rid', '{}');
SELECT syrpc_fail_request('fr', :'rid', 'again');
\set VERBOSITY default

-- Only a claimed request of the app can be failed; the reason is checked.
SELECT syrpc_put_request('fr', 'job', '{"n": 2}') AS rid2 \gset
\set VERBOSITY sqlstate
SELECT syrpc_fail_request('fr', :'rid2', 'not claimed yet');
SELECT syrpc_fail_request('fr_other', :'rid2', 'wrong app');
SELECT syrpc_fail_request('fr', '00000000-0000-0000-0000-000000000001', 'unknown');
\set VERBOSITY default
SELECT count(*) FROM syrpc_get_request('fr', 0);
SELECT syrpc_fail_request('fr', :'rid2', NULL);
SELECT syrpc_fail_request('fr', :'rid2', '');
SELECT syrpc_fail_request('fr', :'rid2', repeat('x', 1025));
SELECT queued, in_flight, failed FROM syrpc_stats WHERE app = 'fr';

-- Cleanup removes a failed request once a result would have expired.
SELECT syrpc_configure('fr', result_ttl => '1 ms');
SELECT syrpc_fail_request('fr', :'rid2', 'give up');
SELECT pg_sleep(0.01);
SELECT syrpc_cleanup() >= 2 AS cleaned;
SELECT count(*) AS left FROM syrpc.request WHERE app = 'fr';

-- Only workers may fail requests.
CREATE ROLE syrpc_test_fr_caller IN ROLE syrpc_caller;
SELECT syrpc_put_request('fr', 'job', '{}') AS frc \gset
SELECT result_id = :'frc' AS claimed FROM syrpc_get_request('fr', 0);
SET ROLE syrpc_test_fr_caller;
SELECT syrpc_fail_request('fr', :'frc', 'not mine to fail');
RESET ROLE;
SELECT attempts, failure FROM request_now WHERE result_id = :'frc';
DROP ROLE syrpc_test_fr_caller;
