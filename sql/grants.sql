-- Grants per app (1.4): an app with grants of its own is for the roles
-- granted on it (and their members) and the owner; an app without them
-- for the roles granted every app ('*'), the group roles by default.
-- Every entry point checks the same way, and a refused call changes
-- nothing.

\i sql/include/try.sql

-- try(sql) as role r, back to the session's role after.
CREATE FUNCTION try_as(r text, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    out text;
BEGIN
    EXECUTE format('SET ROLE %I', r);
    out := try(sql);
    RESET ROLE;
    RETURN out;
END
$$;

-- Everything in the queues and settings, to see that a refused call
-- changed none of it.
CREATE FUNCTION queue_digest() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(r::text || coalesce(syrpc.memory_lease(r.result_id, r.attempts)::text, ''),
                           ',' ORDER BY result_id) FROM syrpc.request r),
        (SELECT string_agg(s::text || syrpc.memory_taken(s.result_id)::text, ',' ORDER BY result_id)
           FROM syrpc.result s),
        (SELECT string_agg(a::text, ',' ORDER BY app) FROM syrpc.app a),
        (SELECT string_agg(g::text, ',' ORDER BY app, role, side) FROM syrpc.app_grant g)))
$$;

-- A fresh install grants the group roles every app.
SELECT app, role, side FROM syrpc_grants ORDER BY side;

CREATE ROLE g_pay_caller;
CREATE ROLE g_pay_worker;
CREATE ROLE g_shop_caller;
CREATE ROLE g_shop_worker;
CREATE ROLE g_group IN ROLE syrpc_caller, syrpc_worker;
CREATE ROLE g_nobody;
CREATE ROLE g_pay_team IN ROLE g_pay_caller;

SELECT syrpc_grant('pay', 'g_pay_caller', 'caller');
SELECT syrpc_grant('pay', 'g_pay_worker', 'worker');
SELECT syrpc_grant('shop', 'g_shop_caller', 'caller');
SELECT syrpc_grant('shop', 'g_shop_worker', 'worker');
-- Granting twice is one grant.
SELECT syrpc_grant('pay', 'g_pay_caller', 'caller');
SELECT app, role, side FROM syrpc_grants WHERE app <> '*' ORDER BY app, side;
-- The app exists once it has grants, with the default settings.
SELECT app, max_attempts FROM syrpc_apps WHERE app IN ('pay', 'shop') ORDER BY app;

-- Every entry point, as every kind of role, on an app with grants ('pay')
-- and on one without ('open'); %2$L is a result_id nobody knows, so that a
-- call that passes the check says so (SY004, SY008); syrpc_call and
-- syrpc_put_result_wait_request say 25001 when they pass (they need a CALL
-- of their own, which try() cannot give).
CREATE TABLE g_entry (n int, name text, side text, sql text);
INSERT INTO g_entry VALUES
    (1, 'syrpc_put_request', 'caller', $$SELECT syrpc_put_request(%1$L, 't', '{}')$$),
    (2, 'syrpc_get_result', 'caller', $$SELECT syrpc_get_result(%1$L, %2$L, 0)$$),
    (3, 'syrpc_wait_result', 'caller', $$CALL syrpc_wait_result(%1$L, %2$L, 0)$$),
    (4, 'syrpc_call', 'caller', $$CALL syrpc_call(%1$L, 't', '{}', 0)$$),
    (5, 'syrpc_get_request', 'worker', $$SELECT * FROM syrpc_get_request(%1$L, 0)$$),
    (6, 'syrpc_wait_request', 'worker', $$CALL syrpc_wait_request(%1$L, 0)$$),
    (7, 'syrpc_put_result', 'worker', $$SELECT syrpc_put_result(%1$L, %2$L, '{}')$$),
    (8, 'syrpc_put_result_get_request', 'worker', $$SELECT * FROM syrpc_put_result_get_request(%1$L, %2$L, '{}')$$),
    (9, 'syrpc_fail_request', 'worker', $$SELECT syrpc_fail_request(%1$L, %2$L, 'no')$$),
    (10, 'syrpc_put_result_wait_request', 'worker', $$CALL syrpc_put_result_wait_request(%1$L, %2$L, '{}', 0)$$),
    (11, 'syrpc_configure', 'owner', $$SELECT syrpc_configure(%1$L, max_attempts => 3)$$),
    (12, 'syrpc_grant', 'owner', $$SELECT syrpc_grant(%1$L, 'g_nobody', 'caller')$$),
    (13, 'syrpc_revoke', 'owner', $$SELECT syrpc_revoke(%1$L, 'g_nobody', 'caller')$$),
    (14, 'syrpc_drop_app', 'owner', $$SELECT syrpc_drop_app(%1$L)$$),
    (15, 'syrpc_cleanup', 'owner', $$SELECT syrpc_cleanup()$$),
    (16, 'syrpc_get_requests', 'worker', $$SELECT * FROM syrpc_get_requests(%1$L, 5, 0)$$),
    (17, 'syrpc_put_results', 'worker', $$SELECT syrpc_put_results(%1$L, ARRAY[%2$L]::uuid[], ARRAY['{}']::jsonb[])$$),
    (18, 'syrpc_wait_requests', 'worker', $$CALL syrpc_wait_requests(%1$L, 5, 0)$$),
    (19, 'syrpc_put_results_wait_requests', 'worker',
     $$CALL syrpc_put_results_wait_requests(%1$L, ARRAY[%2$L]::uuid[], ARRAY['{}']::jsonb[], 5, 0)$$),
    (20, 'syrpc_put_request (deadline)', 'caller',
     $$SELECT syrpc_put_request(%1$L, 't', '{}', now() + interval '1 hour')$$),
    (21, 'syrpc_cancel', 'caller', $$SELECT syrpc_cancel(%1$L, %2$L)$$),
    (22, 'syrpc_put_error', 'worker', $$SELECT syrpc_put_error(%1$L, %2$L, 'no', '{}')$$),
    (23, 'syrpc_is_cancelled', 'worker', $$SELECT syrpc_is_cancelled(%1$L, %2$L)$$),
    (24, 'syrpc_extend_lease', 'worker', $$SELECT syrpc_extend_lease(%1$L, %2$L, 60)$$),
    (25, 'syrpc_release', 'worker', $$SELECT syrpc_release(%1$L, %2$L)$$),
    (26, 'syrpc_claim_requests', 'worker', $$SELECT * FROM syrpc_claim_requests(%1$L, 5, 0)$$);
CREATE TABLE g_outcome (app text, n int, role text, outcome text, changed boolean);

DO $$
DECLARE
    a text;
    e record;
    r text;
    before text;
    out text;
BEGIN
    FOREACH a IN ARRAY ARRAY['pay', 'open'] LOOP
        FOR e IN SELECT * FROM g_entry WHERE n < 14 OR n > 15 ORDER BY n LOOP
            FOREACH r IN ARRAY ARRAY['g_pay_caller', 'g_pay_team', 'g_pay_worker', 'g_shop_caller',
                                     'g_shop_worker', 'g_group', 'g_nobody', current_user::text] LOOP
                before := queue_digest();
                out := try_as(r, format(e.sql, a, gen_random_uuid()));
                INSERT INTO g_outcome
                VALUES (a, e.n, CASE WHEN r = current_user THEN 'owner' ELSE r END,
                        split_part(out, ':', 1), queue_digest() IS DISTINCT FROM before);
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;

-- ok: allowed and done; SY004/SY008/25001: allowed, and said why it
-- could not go on; 42501: refused.
SELECT e.name,
       max(outcome) FILTER (WHERE role = 'g_pay_caller') AS pay_caller,
       max(outcome) FILTER (WHERE role = 'g_pay_team') AS pay_team,
       max(outcome) FILTER (WHERE role = 'g_pay_worker') AS pay_worker,
       max(outcome) FILTER (WHERE role = 'g_shop_caller') AS shop_caller,
       max(outcome) FILTER (WHERE role = 'g_shop_worker') AS shop_worker,
       max(outcome) FILTER (WHERE role = 'g_group') AS "group",
       max(outcome) FILTER (WHERE role = 'g_nobody') AS nobody,
       max(outcome) FILTER (WHERE role = 'owner') AS owner
  FROM g_outcome o JOIN g_entry e USING (n)
 WHERE o.app = 'pay'
 GROUP BY e.n, e.name ORDER BY e.n;

SELECT e.name,
       max(outcome) FILTER (WHERE role = 'g_pay_caller') AS pay_caller,
       max(outcome) FILTER (WHERE role = 'g_group') AS "group",
       max(outcome) FILTER (WHERE role = 'g_nobody') AS nobody,
       max(outcome) FILTER (WHERE role = 'owner') AS owner
  FROM g_outcome o JOIN g_entry e USING (n)
 WHERE o.app = 'open'
 GROUP BY e.n, e.name ORDER BY e.n;

-- A refused call changed nothing.
SELECT count(*) AS refused, count(*) FILTER (WHERE changed) AS refused_and_changed
  FROM g_outcome WHERE outcome = '42501';

-- What a refusal says.
SET ROLE g_shop_worker;
SELECT * FROM syrpc_get_request('pay', 0);
RESET ROLE;
SET ROLE g_nobody;
SELECT syrpc_put_request('open', 't', '{}');
RESET ROLE;

-- The views show a role the apps it may use; the owner sees all.
SET ROLE g_pay_team;
SELECT app FROM syrpc_apps ORDER BY app;
SELECT app, queued FROM syrpc_stats ORDER BY app;
RESET ROLE;
SET ROLE g_nobody;
SELECT count(*) AS apps_seen FROM syrpc_apps;
SELECT count(*) AS stats_seen FROM syrpc_stats;
SELECT * FROM syrpc_grants;
RESET ROLE;
SELECT app FROM syrpc_apps WHERE app IN ('open', 'pay', 'shop') ORDER BY app;

-- A revoke takes effect at once, also in the backend that cached the grant.
SET ROLE g_pay_worker;
SELECT count(*) FROM syrpc_get_request('pay', 0);
RESET ROLE;
SELECT syrpc_revoke('pay', 'g_pay_worker', 'worker');
SET ROLE g_pay_worker;
SELECT count(*) FROM syrpc_get_request('pay', 0);
RESET ROLE;
-- Grants name roles: a role dropped and made again under its name has its
-- grants again, also in a backend that had looked them up before.
SET ROLE g_shop_caller;
SELECT syrpc_put_request('shop', 't', '{}') IS NOT NULL AS put_before;
RESET ROLE;
DROP ROLE g_shop_caller;
CREATE ROLE g_shop_caller;
SET ROLE g_shop_caller;
SELECT syrpc_put_request('shop', 't', '{}') IS NOT NULL AS put_again;
RESET ROLE;
-- Revoking what was not granted says so.
SELECT syrpc_revoke('pay', 'g_pay_worker', 'worker');
-- Revoking the last grant of an app opens it to the grants of all apps,
-- with a warning.
SELECT syrpc_revoke('pay', 'g_pay_caller', 'caller');
SET ROLE g_group;
SELECT syrpc_put_request('pay', 't', '{}') IS NOT NULL AS group_may_put;
RESET ROLE;

-- Bad input to the grant functions.
SELECT try($$SELECT syrpc_grant('pay', 'g_pay_caller', 'boss')$$);
SELECT try($$SELECT syrpc_grant('pay', 'no_such_role', 'caller')$$);
SELECT try($$SELECT syrpc_grant('pay!', 'g_pay_caller', 'caller')$$);
SELECT try($$SELECT syrpc_grant(NULL, 'g_pay_caller', 'caller')$$);
SELECT try($$SELECT syrpc_grant('pay', NULL, 'caller')$$);
SELECT try($$SELECT syrpc_revoke('pay', 'g_pay_caller', NULL)$$);

-- syrpc.create_apps = off: only syrpc_configure creates apps.
SET syrpc.create_apps = off;
SET ROLE g_group;
SELECT syrpc_put_request('made_on_purpose', 't', '{}');
RESET ROLE;
SELECT syrpc_configure('made_on_purpose');
SET ROLE g_group;
SELECT syrpc_put_request('made_on_purpose', 't', '{}') IS NOT NULL AS put;
-- Only a superuser may change the setting.
SET syrpc.create_apps = on;
RESET ROLE;
RESET syrpc.create_apps;

-- syrpc_drop_app: refused while the app has requests, unless forced.
SELECT syrpc_grant('made_on_purpose', 'g_pay_caller', 'caller');
SELECT syrpc_drop_app('made_on_purpose');
SELECT syrpc_drop_app('made_on_purpose', force => true) AS deleted;
SELECT count(*) AS left FROM syrpc_apps WHERE app = 'made_on_purpose';
SELECT count(*) AS grants_left FROM syrpc_grants WHERE app = 'made_on_purpose';
SELECT syrpc_drop_app('made_on_purpose');
SELECT syrpc_configure('empty');
SELECT syrpc_drop_app('empty') AS deleted;

-- Roles are per cluster, grants per database.  CREATE EXTENSION gives the
-- group roles every app only if it makes them; if syrpc made them before
-- (here: before a DROP EXTENSION) they get nothing; if something else made
-- them, CREATE EXTENSION stops unless syrpc.adopt_roles is on.
DROP EXTENSION syrpc;
CREATE EXTENSION syrpc;
SELECT count(*) AS grants FROM syrpc_grants;
SET ROLE g_group;
SELECT try($$SELECT syrpc_put_request('open', 't', '{}')$$);
RESET ROLE;
DROP EXTENSION syrpc;
COMMENT ON ROLE syrpc_caller IS NULL;
CREATE EXTENSION syrpc;
SET syrpc.adopt_roles = on;
CREATE EXTENSION syrpc;
RESET syrpc.adopt_roles;
-- syrpc_caller was adopted and granted every app; syrpc_worker, made by
-- syrpc before, was not.
SELECT app, role, side FROM syrpc_grants ORDER BY side;
SELECT syrpc_grant('*', 'syrpc_worker', 'worker');
SELECT shobj_description('syrpc_caller'::regrole, 'pg_authid') IS NULL AS still_unmarked;
COMMENT ON ROLE syrpc_caller IS 'syrpc group role (made by CREATE EXTENSION syrpc)';

DROP TABLE g_entry, g_outcome;
DROP FUNCTION try_as(text, text), queue_digest(), try(text);
DROP ROLE g_pay_caller, g_pay_worker, g_shop_caller, g_shop_worker, g_group, g_nobody, g_pay_team;
