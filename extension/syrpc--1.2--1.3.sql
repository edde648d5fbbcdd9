/* syrpc--1.2--1.3.sql: upgrade from 1.2 to 1.3 */

\echo Use "ALTER EXTENSION syrpc UPDATE TO '1.3'" to load this file. \quit

/*
 * 1.3: a worker can fail a request it cannot handle (a request its client
 * library cannot represent, say) instead of letting its lease run out
 * max_attempts times.  The reason is kept with the request, which is then
 * failed at once: its caller gets SY001 with the reason, syrpc_stats counts
 * it as failed, and cleanup deletes it when a result would have expired.
 */
ALTER TABLE syrpc.request ADD COLUMN failure text;

CREATE FUNCTION syrpc_fail_request(app text, result_id uuid, reason text)
RETURNS void
AS 'MODULE_PATHNAME', 'syrpc_fail_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION syrpc_fail_request(text, uuid, text) IS
    'give up a claimed request: its caller gets SY001 with the reason, and no worker gets it again';
REVOKE ALL ON FUNCTION syrpc_fail_request(text, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_fail_request(text, uuid, text) TO syrpc_worker;

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
  LEFT JOIN res ON res.app = a.app;

/* 1.3: it reads the registry, which changes all the time. */
ALTER FUNCTION syrpc.workers_waiting(text) VOLATILE;

/*
 * 1.3: pg_dump keeps the app settings.  Requests and results are not
 * dumped: a dump is a moment of a queue whose callers wait in sessions
 * that a restore does not bring back, and a restored request that was
 * answered after the dump would run twice.
 */
SELECT pg_catalog.pg_extension_config_dump('syrpc.app', '');

/*
 * 1.3: DROP EXTENSION and ALTER EXTENSION ... UPDATE need the locks that
 * blocked calls hold while they wait (and every new call would queue
 * behind them).  At the start of either command, blocked calls end their
 * waits as timeouts; their clients' next calls wait for the command.  It
 * fires for those commands on any extension: a spurious early timeout at
 * worst.
 */
CREATE FUNCTION syrpc.give_way()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'syrpc_give_way_trigger'
LANGUAGE C;
COMMENT ON FUNCTION syrpc.give_way() IS
    'event trigger: blocked syrpc calls end their waits so that DROP or ALTER EXTENSION can go on';
REVOKE ALL ON FUNCTION syrpc.give_way() FROM PUBLIC;
CREATE EVENT TRIGGER syrpc_give_way ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'ALTER EXTENSION')
    EXECUTE FUNCTION syrpc.give_way();
