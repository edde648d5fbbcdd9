-- syrpc_configure: settings take effect at once, also for apps whose
-- settings a backend has already cached.
SELECT syrpc_put_request('cfg', 'job', '{}') IS NOT NULL AS put;
SELECT count(*) FROM syrpc_get_request('cfg', 0);
SELECT ready_at - created_at BETWEEN '29 s' AND '31 s' AS default_lease
  FROM syrpc.request WHERE app = 'cfg';

SELECT syrpc_configure('cfg', lease_time => '1 hour', max_attempts => 7);
SELECT app, lease_time, max_attempts, result_ttl, request_ttl FROM syrpc_apps WHERE app = 'cfg';
DELETE FROM syrpc.request WHERE app = 'cfg';
SELECT syrpc_put_request('cfg', 'job', '{}') IS NOT NULL AS put;
SELECT count(*) FROM syrpc_get_request('cfg', 0);
SELECT ready_at - created_at BETWEEN '59 min' AND '61 min' AS new_lease
  FROM syrpc.request WHERE app = 'cfg';

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
