/* syrpc--1.3--1.4.sql: grants per app and per database; counters and latencies per app */

\echo Use "ALTER EXTENSION syrpc UPDATE TO '1.4'" to load this file. \quit

/*
 * Who may use which app, per database (see access.c): the side 'caller'
 * or 'worker' of an app, or of every app without grants of its own ('*'),
 * for a role and its members.  Roles by name, so that grants survive a
 * restore into another cluster.  No unique key: a restore may bring back
 * a row that CREATE EXTENSION has just made, and a duplicate grants
 * nothing more.
 */
CREATE TABLE syrpc.app_grant (
    app        text        NOT NULL,
    role       name        NOT NULL,
    side       text        NOT NULL CHECK (side IN ('caller', 'worker')),
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX app_grant_app ON syrpc.app_grant (app);
COMMENT ON TABLE syrpc.app_grant IS
    'who may use which app: use syrpc_grant and syrpc_revoke';
SELECT pg_catalog.pg_extension_config_dump('syrpc.app_grant', '');

/* An updated database keeps what it had: the group roles use every app. */
INSERT INTO syrpc.app_grant (app, role, side)
VALUES ('*', 'syrpc_caller', 'caller'), ('*', 'syrpc_worker', 'worker');

/* Mark the group roles as syrpc's, so that CREATE EXTENSION elsewhere knows them. */
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['syrpc_caller', 'syrpc_worker'] LOOP
        IF pg_catalog.shobj_description(
               (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r), 'pg_authid') IS NULL THEN
            EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r,
                'syrpc group role (made by CREATE EXTENSION syrpc)');
        END IF;
    END LOOP;
END
$$;

/*
 * The entry points decide who may call them (access.c), so they are no
 * longer SECURITY DEFINER (a definer function cannot tell who called it)
 * and EXECUTE is for PUBLIC: a role that is granted no app gets
 * 42501 from every one of them, before anything is done.  They switch to
 * their owner and pin search_path themselves, as the procedures did.
 */
ALTER FUNCTION syrpc_put_request(text, text, jsonb) SECURITY INVOKER RESET search_path;
ALTER FUNCTION syrpc_get_request(text, float8) SECURITY INVOKER RESET search_path;
ALTER FUNCTION syrpc_put_result(text, uuid, jsonb) SECURITY INVOKER RESET search_path;
ALTER FUNCTION syrpc_get_result(text, uuid, float8) SECURITY INVOKER RESET search_path;
ALTER FUNCTION syrpc_put_result_get_request(text, uuid, jsonb) SECURITY INVOKER RESET search_path;
ALTER FUNCTION syrpc_fail_request(text, uuid, text) SECURITY INVOKER RESET search_path;
ALTER FUNCTION syrpc_configure(text, interval, integer, interval, interval) SECURITY INVOKER RESET search_path;
ALTER FUNCTION syrpc_cleanup() SECURITY INVOKER RESET search_path;

REVOKE ALL ON FUNCTION syrpc_put_request(text, text, jsonb) FROM syrpc_caller;
REVOKE ALL ON FUNCTION syrpc_get_result(text, uuid, float8) FROM syrpc_caller;
REVOKE ALL ON PROCEDURE syrpc_wait_result(text, uuid, float8, jsonb) FROM syrpc_caller;
REVOKE ALL ON PROCEDURE syrpc_call(text, text, jsonb, float8, uuid, jsonb) FROM syrpc_caller;
REVOKE ALL ON FUNCTION syrpc_get_request(text, float8) FROM syrpc_worker;
REVOKE ALL ON FUNCTION syrpc_put_result(text, uuid, jsonb) FROM syrpc_worker;
REVOKE ALL ON FUNCTION syrpc_put_result_get_request(text, uuid, jsonb) FROM syrpc_worker;
REVOKE ALL ON FUNCTION syrpc_fail_request(text, uuid, text) FROM syrpc_worker;
REVOKE ALL ON PROCEDURE syrpc_wait_request(text, float8, text, uuid, jsonb) FROM syrpc_worker;
REVOKE ALL ON PROCEDURE syrpc_put_result_wait_request(text, uuid, jsonb, float8, text, uuid, jsonb) FROM syrpc_worker;
REVOKE ALL ON syrpc_stats, syrpc_apps FROM syrpc_caller, syrpc_worker;

GRANT EXECUTE ON FUNCTION syrpc_put_request(text, text, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_get_result(text, uuid, float8) TO PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_wait_result(text, uuid, float8, jsonb) TO PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_call(text, text, jsonb, float8, uuid, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_get_request(text, float8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_put_result(text, uuid, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_put_result_get_request(text, uuid, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_fail_request(text, uuid, text) TO PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_wait_request(text, float8, text, uuid, jsonb) TO PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_put_result_wait_request(text, uuid, jsonb, float8, text, uuid, jsonb) TO PUBLIC;

CREATE FUNCTION syrpc_grant(app text, role regrole, side text)
RETURNS void
AS 'MODULE_PATHNAME', 'syrpc_grant'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_grant(text, regrole, text) IS
    'let role and its members use app (''*'': every app without grants of its own) on side ''caller'' or ''worker''';
REVOKE ALL ON FUNCTION syrpc_grant(text, regrole, text) FROM PUBLIC;

CREATE FUNCTION syrpc_revoke(app text, role regrole, side text)
RETURNS void
AS 'MODULE_PATHNAME', 'syrpc_revoke'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_revoke(text, regrole, text) IS
    'take back a grant made by syrpc_grant';
REVOKE ALL ON FUNCTION syrpc_revoke(text, regrole, text) FROM PUBLIC;

CREATE FUNCTION syrpc_drop_app(app text, force boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'syrpc_drop_app'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_drop_app(text, boolean) IS
    'delete an app with its settings and grants; refused while it has requests unless force, which deletes them; returns the requests and results deleted';
REVOKE ALL ON FUNCTION syrpc_drop_app(text, boolean) FROM PUBLIC;

CREATE FUNCTION syrpc.may_use(app text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'syrpc_may_use'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc.may_use(text) IS
    'may the current role use app, as a caller or a worker';

CREATE VIEW syrpc_grants AS
SELECT app, role, side, granted_at FROM syrpc.app_grant;
COMMENT ON VIEW syrpc_grants IS 'who may use which app (''*'': every app without grants of its own)';
REVOKE ALL ON syrpc_grants FROM PUBLIC;

/* The views show a role the apps it may use (the owner all). */
CREATE OR REPLACE VIEW syrpc_apps AS
SELECT app, lease_time, max_attempts, result_ttl, request_ttl, created_at
  FROM syrpc.app
 WHERE syrpc.may_use(app);

CREATE OR REPLACE VIEW syrpc_stats AS
WITH req AS (
    SELECT r.app,
           pg_catalog.count(*) FILTER (WHERE r.ready_at <= pg_catalog.now()
                                       AND r.expires_at > pg_catalog.now()
                                       AND r.attempts < a.max_attempts
                                       AND r.failure IS NULL) AS queued,
           pg_catalog.count(*) FILTER (WHERE r.attempts > 0
                                       AND r.ready_at > pg_catalog.now()
                                       AND r.failure IS NULL) AS in_flight,
           pg_catalog.count(*) FILTER (WHERE (r.attempts >= a.max_attempts
                                              AND r.ready_at <= pg_catalog.now())
                                          OR r.failure IS NOT NULL) AS failed,
           pg_catalog.max(pg_catalog.now() - r.created_at)
               FILTER (WHERE r.ready_at <= pg_catalog.now()
                       AND r.expires_at > pg_catalog.now()
                       AND r.attempts < a.max_attempts
                       AND r.failure IS NULL) AS oldest_queued_age
      FROM syrpc.request r JOIN syrpc.app a ON a.app = r.app
     GROUP BY r.app
), res AS (
    SELECT s.app, pg_catalog.count(*) AS results_waiting
      FROM syrpc.result s
     WHERE s.consumed_at IS NULL AND s.expires_at > pg_catalog.now()
     GROUP BY s.app
)
SELECT a.app,
       COALESCE(req.queued, 0) AS queued,
       COALESCE(req.in_flight, 0) AS in_flight,
       COALESCE(req.failed, 0) AS failed,
       req.oldest_queued_age,
       COALESCE(res.results_waiting, 0) AS results_waiting,
       syrpc.workers_waiting(a.app)::bigint AS workers_waiting
  FROM syrpc.app a
  LEFT JOIN req ON req.app = a.app
  LEFT JOIN res ON res.app = a.app
 WHERE syrpc.may_use(a.app);

GRANT SELECT ON syrpc_stats, syrpc_apps TO PUBLIC;

ALTER TABLE syrpc.result ADD COLUMN requested_at timestamptz;
COMMENT ON COLUMN syrpc.result.requested_at IS
    'when its request was put (1.4), for the round-trip time of syrpc_stats_latency';

/* 1.4: counters and latencies per app (shared memory, when preloaded). */
CREATE FUNCTION syrpc.app_metrics(OUT app text, OUT requests_total bigint,
                                  OUT answered_total bigint, OUT failed_total bigint,
                                  OUT expired_total bigint, OUT window_seconds integer,
                                  OUT queue_wait_p50_ms float8, OUT queue_wait_p99_ms float8,
                                  OUT service_p50_ms float8, OUT service_p99_ms float8,
                                  OUT round_trip_p50_ms float8, OUT round_trip_p99_ms float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'syrpc_app_metrics'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION syrpc.app_metrics() IS
    'per app of this database: counters since server start and latency percentiles over the last window (when preloaded)';

CREATE VIEW syrpc_stats_latency AS
SELECT a.app, m.requests_total, m.answered_total, m.failed_total, m.expired_total,
       m.window_seconds,
       m.queue_wait_p50_ms, m.queue_wait_p99_ms,
       m.service_p50_ms, m.service_p99_ms,
       m.round_trip_p50_ms, m.round_trip_p99_ms
  FROM syrpc.app a
  LEFT JOIN syrpc.app_metrics() m ON m.app = a.app
 WHERE syrpc.may_use(a.app);
COMMENT ON VIEW syrpc_stats_latency IS
    'per app: requests put, answered, failed and expired since the server started, and p50/p99 of the queue wait (put to claim), the service time (claim to answer) and the round trip (put to result taken) over the last window_seconds; NULL without shared_preload_libraries';
REVOKE ALL ON syrpc_stats_latency FROM PUBLIC;
GRANT SELECT ON syrpc_stats_latency TO PUBLIC;
