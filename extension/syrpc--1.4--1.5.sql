/* syrpc--1.4--1.5.sql: syrpc_call's in-memory requests in syrpc_stats */

\echo Use "ALTER EXTENSION syrpc UPDATE TO '1.5'" to load this file. \quit

/* 1.5: syrpc_call's requests in shared memory (handoff.c), for syrpc_stats. */
CREATE FUNCTION syrpc.memory_requests(OUT app text, OUT queued bigint,
                                      OUT in_flight bigint, OUT oldest_queued timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'syrpc_memory_requests'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION syrpc.memory_requests() IS
    'per app of this database: syrpc_call requests waiting in shared memory (when preloaded), queued and in flight';

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
), mem AS (
    SELECT m.app, m.queued, m.in_flight, m.oldest_queued
      FROM syrpc.memory_requests() m
), res AS (
    SELECT s.app, pg_catalog.count(*) AS results_waiting
      FROM syrpc.result s
     WHERE s.consumed_at IS NULL AND s.expires_at > pg_catalog.now()
     GROUP BY s.app
)
SELECT a.app,
       COALESCE(req.queued, 0) + COALESCE(mem.queued, 0) AS queued,
       COALESCE(req.in_flight, 0) + COALESCE(mem.in_flight, 0) AS in_flight,
       COALESCE(req.failed, 0) AS failed,
       GREATEST(req.oldest_queued_age, pg_catalog.now() - mem.oldest_queued) AS oldest_queued_age,
       COALESCE(res.results_waiting, 0) AS results_waiting,
       syrpc.workers_waiting(a.app)::bigint AS workers_waiting
  FROM syrpc.app a
  LEFT JOIN req ON req.app = a.app
  LEFT JOIN mem ON mem.app = a.app
  LEFT JOIN res ON res.app = a.app
 WHERE syrpc.may_use(a.app);
COMMENT ON VIEW syrpc_stats IS
    'per app: requests queued, in flight (in the table and, for syrpc_call, in memory) and failed, oldest queued age, results waiting, workers waiting';
