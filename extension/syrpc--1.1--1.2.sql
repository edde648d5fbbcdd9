/* syrpc--1.1--1.2.sql: upgrade from 1.1 to 1.2 */

\echo Use "ALTER EXTENSION syrpc UPDATE TO '1.2'" to load this file. \quit

/*
 * 1.2: put a request and wait for its result in one statement.  Its
 * request commits without waiting for the WAL flush (see syrpc_call in
 * syrpc.c for why nothing can be lost by that).  A procedure, so that it
 * can commit the request before it waits; like the waiting procedures of
 * 1.1 it runs as its owner with search_path pinned by its C code.
 */
CREATE PROCEDURE syrpc_call(app text, type text, data jsonb, timeout float8,
                            INOUT result_id uuid DEFAULT NULL,
                            INOUT result jsonb DEFAULT NULL)
AS 'MODULE_PATHNAME', 'syrpc_call'
LANGUAGE C;
COMMENT ON PROCEDURE syrpc_call(text, text, jsonb, float8, uuid, jsonb) IS
    'put a request and wait for its result; result NULL on timeout (then wait on with syrpc_get_result(app, result_id, timeout))';
REVOKE ALL ON PROCEDURE syrpc_call(text, text, jsonb, float8, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_call(text, text, jsonb, float8, uuid, jsonb) TO syrpc_caller;

/*
 * 1.2: with shared_preload_libraries = 'syrpc', waiters register in
 * syrpc's shared memory, not in the lock manager: count them in C, from
 * whichever registry is in use, instead of from pg_locks.
 */
CREATE FUNCTION syrpc.workers_waiting(app text)
RETURNS integer
AS 'MODULE_PATHNAME', 'syrpc_workers_waiting'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION syrpc.workers_waiting(text) IS
    'how many backends of this database wait for app''s requests';

CREATE OR REPLACE VIEW syrpc_stats AS
WITH req AS (
    SELECT r.app,
           pg_catalog.count(*) FILTER (WHERE r.ready_at <= pg_catalog.now()
                                       AND r.expires_at > pg_catalog.now()
                                       AND r.attempts < a.max_attempts) AS queued,
           pg_catalog.count(*) FILTER (WHERE r.attempts > 0
                                       AND r.ready_at > pg_catalog.now()) AS in_flight,
           pg_catalog.count(*) FILTER (WHERE r.attempts >= a.max_attempts
                                       AND r.ready_at <= pg_catalog.now()) AS failed,
           pg_catalog.max(pg_catalog.now() - r.created_at)
               FILTER (WHERE r.ready_at <= pg_catalog.now()
                       AND r.expires_at > pg_catalog.now()
                       AND r.attempts < a.max_attempts) AS oldest_queued_age
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

DROP FUNCTION syrpc.wait_key(text);

/* 1.2: who is registered to be woken, for monitoring and tests. */
CREATE FUNCTION syrpc.waiters(OUT pid integer, OUT kind text, OUT key bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'syrpc_waiters'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION syrpc.waiters() IS
    'backends of this database blocked in a syrpc call: kind request (a worker) or result (a caller), and their wait key';
REVOKE ALL ON FUNCTION syrpc.waiters() FROM PUBLIC;

/*
 * 1.2: a worker's answer and its wait for the next request in one
 * statement: an idle worker's loop is one round trip per request.  A
 * request already queued is claimed in the answer's transaction; otherwise
 * the answer commits and the wait follows (holding no snapshot).
 */
CREATE PROCEDURE syrpc_put_result_wait_request(app text, answered uuid, result jsonb, timeout float8,
                                               INOUT type text DEFAULT NULL,
                                               INOUT result_id uuid DEFAULT NULL,
                                               INOUT data jsonb DEFAULT NULL)
AS 'MODULE_PATHNAME', 'syrpc_put_result_wait_request'
LANGUAGE C;
COMMENT ON PROCEDURE syrpc_put_result_wait_request(text, uuid, jsonb, float8, text, uuid, jsonb) IS
    'answer a claimed request, then claim the next request of app, waiting up to timeout; NULLs on timeout (the answer is stored either way)';
REVOKE ALL ON PROCEDURE syrpc_put_result_wait_request(text, uuid, jsonb, float8, text, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_put_result_wait_request(text, uuid, jsonb, float8, text, uuid, jsonb) TO syrpc_worker;
