-- syrpc_configure: settings take effect at once, also for apps whose
-- settings a backend has already cached.
\i sql/include/request_now.sql
SELECT syrpc_put_request('cfg', 'job', '{}') IS NOT NULL AS put;
SELECT count(*) FROM syrpc_get_request('cfg', 0);
SELECT ready_at - created_at BETWEEN '29 s' AND '31 s' AS default_lease
  FROM request_now WHERE app = 'cfg';

SELECT syrpc_configure('cfg', lease_time => '1 hour', max_attempts => 7);
SELECT app, lease_time, max_attempts, result_ttl, request_ttl FROM syrpc_apps WHERE app = 'cfg';
DELETE FROM syrpc.request WHERE app = 'cfg';
SELECT syrpc_put_request('cfg', 'job', '{}') IS NOT NULL AS put;
SELECT count(*) FROM syrpc_get_request('cfg', 0);
SELECT ready_at - created_at BETWEEN '59 min' AND '61 min' AS new_lease
  FROM request_now WHERE app = 'cfg';

-- NULL keeps a setting; a new app can be configured before first use.
SELECT syrpc_configure('cfg', result_ttl => '1 min');
SELECT syrpc_configure('cfg_new', request_ttl => '5 min');
SELECT app, lease_time, max_attempts, result_ttl, request_ttl FROM syrpc_apps
 WHERE app LIKE 'cfg%' ORDER BY app;

-- A put in a transaction that rolls back does not leave the app behind,
-- in the table or in the cache.
BEGIN;
SELECT syrpc_put_request('cfg_gone', 'job', '{}') IS NOT NULL AS put;
ROLLBACK;
SELECT count(*) AS app_rows FROM syrpc_apps WHERE app = 'cfg_gone';
SELECT syrpc_put_request('cfg_gone', 'job', '{}') IS NOT NULL AS put;
SELECT count(*) AS app_rows FROM syrpc_apps WHERE app = 'cfg_gone';

-- Intervals beyond what a timestamp can take are refused, whatever their
-- unit, and nothing changes.
SELECT syrpc_configure('cfg_big', lease_time => '2562047788 hours');
SELECT syrpc_configure('cfg_big', lease_time => '101 years');
SELECT syrpc_configure('cfg_big', result_ttl => '1300 months');
SELECT syrpc_configure('cfg_big', request_ttl => '36600 days');
SELECT syrpc_configure('cfg_big', request_ttl => '-178000000 years');
SELECT count(*) AS cfg_big_rows FROM syrpc_apps WHERE app = 'cfg_big';
SELECT syrpc_configure('cfg_big', lease_time => '100 years', request_ttl => '100 years');
SELECT app, lease_time, request_ttl FROM syrpc_apps WHERE app = 'cfg_big';

-- A row with an interval a timestamp cannot take (written before the
-- check, or by hand) neither hands a request out twice nor stops the
-- cleanup of other apps.
UPDATE syrpc.app SET lease_time = '2562047788 hours', result_ttl = '2562047788 hours'
 WHERE app = 'cfg_big';
SELECT syrpc_put_request('cfg_big', 'job', '{}') IS NOT NULL AS put;
SELECT count(*) AS first_claim FROM syrpc_get_request('cfg_big', 0);
SELECT count(*) AS second_claim FROM syrpc_get_request('cfg_big', 0);
SELECT syrpc_configure('cfg_other', request_ttl => '1 ms', result_ttl => '1 ms');
SELECT syrpc_put_request('cfg_other', 'job', '{}') IS NOT NULL AS put;
SELECT pg_sleep(0.01);
SELECT syrpc_cleanup() >= 1 AS cleaned;
SELECT count(*) AS other_left FROM syrpc.request WHERE app = 'cfg_other';
DELETE FROM syrpc.request WHERE app = 'cfg_big';
