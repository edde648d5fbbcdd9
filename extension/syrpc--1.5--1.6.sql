/* syrpc--1.5--1.6.sql: leases and taken results in shared memory in syrpc_stats; batches */

\echo Use "ALTER EXTENSION syrpc UPDATE TO '1.6'" to load this file. \quit

/*
 * 1.6: leases and taken results kept in shared memory when preloaded
 * (marks.c): the rows do not show them, so syrpc_stats asks.
 */
CREATE FUNCTION syrpc.memory_lease(result_id uuid, attempts integer)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'syrpc_memory_lease'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION syrpc.memory_lease(uuid, integer) IS
    'end of the lease in shared memory of a request whose row says attempts, or NULL';
CREATE FUNCTION syrpc.memory_taken(result_id uuid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'syrpc_memory_taken'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION syrpc.memory_taken(uuid) IS
    'has the result been taken, as kept in shared memory';

CREATE OR REPLACE VIEW syrpc_stats AS
WITH lease AS (
    SELECT r.*,
           GREATEST(r.ready_at, m.lease_end) AS ready,
           r.attempts + CASE WHEN m.lease_end IS NULL THEN 0 ELSE 1 END AS tries
      FROM syrpc.request r,
           LATERAL (SELECT syrpc.memory_lease(r.result_id, r.attempts) AS lease_end) m
), req AS (
    SELECT r.app,
           pg_catalog.count(*) FILTER (WHERE r.ready <= pg_catalog.now()
                                       AND r.expires_at > pg_catalog.now()
                                       AND r.tries < a.max_attempts
                                       AND r.failure IS NULL) AS queued,
           pg_catalog.count(*) FILTER (WHERE r.tries > 0
                                       AND r.ready > pg_catalog.now()
                                       AND r.failure IS NULL) AS in_flight,
           pg_catalog.count(*) FILTER (WHERE (r.tries >= a.max_attempts
                                              AND r.ready <= pg_catalog.now())
                                          OR r.failure IS NOT NULL) AS failed,
           pg_catalog.max(pg_catalog.now() - r.created_at)
               FILTER (WHERE r.ready <= pg_catalog.now()
                       AND r.expires_at > pg_catalog.now()
                       AND r.tries < a.max_attempts
                       AND r.failure IS NULL) AS oldest_queued_age
      FROM lease r JOIN syrpc.app a ON a.app = r.app
     GROUP BY r.app
), mem AS (
    SELECT m.app, m.queued, m.in_flight, m.oldest_queued
      FROM syrpc.memory_requests() m
), res AS (
    SELECT s.app, pg_catalog.count(*) AS results_waiting
      FROM syrpc.result s
     WHERE s.consumed_at IS NULL AND s.expires_at > pg_catalog.now()
       AND NOT syrpc.memory_taken(s.result_id)
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
    'per app: requests queued, in flight (in the table, in shared memory, and for syrpc_call in memory) and failed, oldest queued age, results waiting, workers waiting';

/* 1.6: batches, for busy workers: claim several requests, answer several in one commit. */
CREATE FUNCTION syrpc_get_requests(app text, max integer, timeout float8 DEFAULT 0,
                                   OUT type text, OUT result_id uuid, OUT data jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'syrpc_get_requests'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_get_requests(text, integer, float8) IS
    'claim up to max requests of app under leases, waiting up to timeout seconds for the first; no row on timeout';
CREATE FUNCTION syrpc_put_results(app text, result_ids uuid[], data jsonb[])
RETURNS integer
AS 'MODULE_PATHNAME', 'syrpc_put_results'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_put_results(text, uuid[], jsonb[]) IS
    'answer several claimed requests in one transaction, all or none; returns how many';
CREATE PROCEDURE syrpc_wait_requests(app text, max integer, timeout float8,
                                     INOUT requests jsonb DEFAULT NULL)
AS 'MODULE_PATHNAME', 'syrpc_wait_requests'
LANGUAGE C;
COMMENT ON PROCEDURE syrpc_wait_requests(text, integer, float8, jsonb) IS
    'claim up to max requests of app, waiting up to timeout without a snapshot; requests: [{type, result_id, data}, ...], [] on timeout';
CREATE PROCEDURE syrpc_put_results_wait_requests(app text, result_ids uuid[], data jsonb[],
                                                 max integer, timeout float8,
                                                 INOUT requests jsonb DEFAULT NULL)
AS 'MODULE_PATHNAME', 'syrpc_put_results_wait_requests'
LANGUAGE C;
COMMENT ON PROCEDURE syrpc_put_results_wait_requests(text, uuid[], jsonb[], integer, float8, jsonb) IS
    'answer a batch (all or none), then claim up to max requests of app, waiting up to timeout; [] on timeout (the answers are stored either way)';
REVOKE ALL ON FUNCTION syrpc_get_requests(text, integer, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_put_results(text, uuid[], jsonb[]) FROM PUBLIC;
REVOKE ALL ON PROCEDURE syrpc_wait_requests(text, integer, float8, jsonb) FROM PUBLIC;
REVOKE ALL ON PROCEDURE syrpc_put_results_wait_requests(text, uuid[], jsonb[], integer, float8, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_get_requests(text, integer, float8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_put_results(text, uuid[], jsonb[]) TO PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_wait_requests(text, integer, float8, jsonb) TO PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_put_results_wait_requests(text, uuid[], jsonb[], integer, float8, jsonb) TO PUBLIC;
