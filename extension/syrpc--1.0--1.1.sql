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
