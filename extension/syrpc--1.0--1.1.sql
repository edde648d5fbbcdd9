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
