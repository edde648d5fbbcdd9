/* syrpc--1.0--1.1.sql: upgrade from 1.0 to 1.1 */

\echo Use "ALTER EXTENSION syrpc UPDATE TO '1.1'" to load this file. \quit

/*
 * 1.1: a worker call that answers a request and claims the next one in
 * one transaction, so that a busy worker needs one statement and one
 * durable commit per request.
 */
CREATE FUNCTION syrpc_put_result_get_request(app text, result_id uuid, data jsonb,
                                             OUT type text, OUT result_id uuid, OUT data jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'syrpc_put_result_get_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER ROWS 1
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION syrpc_put_result_get_request(text, uuid, jsonb) IS
    'answer a claimed request and claim the next request of app without waiting; no row if there is none';

REVOKE ALL ON FUNCTION syrpc_put_result_get_request(text, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_put_result_get_request(text, uuid, jsonb) TO syrpc_worker;

/*
 * 1.1: waiting procedures.  Called with CALL outside a transaction block,
 * a procedure can drop the statement snapshot that a SELECT keeps for its
 * whole run, so a long wait no longer holds back the xmin horizon (and with
 * it the removal of the queues' dead rows).  The C library uses them.
 * They cannot be SECURITY DEFINER (that would forbid the commit that drops
 * the snapshot); instead the C code switches to the procedure's owner and
 * pins search_path itself, after that commit.
 */
CREATE PROCEDURE syrpc_wait_request(app text, timeout float8,
                                    INOUT type text DEFAULT NULL,
                                    INOUT result_id uuid DEFAULT NULL,
                                    INOUT data jsonb DEFAULT NULL)
AS 'MODULE_PATHNAME', 'syrpc_wait_request'
LANGUAGE C;
COMMENT ON PROCEDURE syrpc_wait_request(text, float8, text, uuid, jsonb) IS
    'like syrpc_get_request, but holds no snapshot while it waits when called by CALL outside a transaction block; NULLs on timeout';

CREATE PROCEDURE syrpc_wait_result(app text, result_id uuid, timeout float8,
                                   INOUT result jsonb DEFAULT NULL)
AS 'MODULE_PATHNAME', 'syrpc_wait_result'
LANGUAGE C;
COMMENT ON PROCEDURE syrpc_wait_result(text, uuid, float8, jsonb) IS
    'like syrpc_get_result, but holds no snapshot while it waits when called by CALL outside a transaction block; NULL on timeout';

REVOKE ALL ON PROCEDURE syrpc_wait_request(text, float8, text, uuid, jsonb) FROM PUBLIC;
REVOKE ALL ON PROCEDURE syrpc_wait_result(text, uuid, float8, jsonb) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_wait_request(text, float8, text, uuid, jsonb) TO syrpc_worker;
GRANT EXECUTE ON PROCEDURE syrpc_wait_result(text, uuid, float8, jsonb) TO syrpc_caller;

/*
 * 1.1: syrpc_stats counts the workers waiting for each app's requests,
 * from their registrations in the lock manager.
 */
CREATE FUNCTION syrpc.wait_key(app text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'syrpc_wait_key'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION syrpc.wait_key(text) IS
    'the lock-manager key of the workers waiting for app''s requests';

DROP VIEW syrpc_stats;
CREATE VIEW syrpc_stats AS
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
), waiting AS (
    SELECT (l.classid::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32)
               OPERATOR(pg_catalog.|) l.objid::pg_catalog.int8 AS key,
           pg_catalog.count(*) AS workers_waiting
      FROM pg_catalog.pg_locks l
     WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
       AND l.objsubid OPERATOR(pg_catalog.=) 21330
       AND l.database OPERATOR(pg_catalog.=)
           (SELECT d.oid FROM pg_catalog.pg_database d
             WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
     GROUP BY 1
)
SELECT a.app,
       COALESCE(req.queued, 0) AS queued,
       COALESCE(req.in_flight, 0) AS in_flight,
       COALESCE(req.failed, 0) AS failed,
       req.oldest_queued_age,
       COALESCE(res.results_waiting, 0) AS results_waiting,
       COALESCE(waiting.workers_waiting, 0) AS workers_waiting
  FROM syrpc.app a
  LEFT JOIN req ON req.app = a.app
  LEFT JOIN res ON res.app = a.app
  LEFT JOIN waiting ON waiting.key = syrpc.wait_key(a.app);
COMMENT ON VIEW syrpc_stats IS
    'per app: requests queued, in flight and failed, oldest queued age, results waiting, workers waiting';
REVOKE ALL ON syrpc_stats FROM PUBLIC;
GRANT SELECT ON syrpc_stats TO syrpc_caller, syrpc_worker;
