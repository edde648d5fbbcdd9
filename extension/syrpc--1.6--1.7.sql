/* syrpc--1.6--1.7.sql: remote errors, cancellation, deadlines, lease extension and release */

\echo Use "ALTER EXTENSION syrpc UPDATE TO '1.7'" to load this file. \quit

/* Results of two new kinds: a worker's error, and a caller's cancel (no rewrite: NULL). */
ALTER TABLE syrpc.result ADD COLUMN error text, ADD COLUMN cancelled boolean;

/* ---------------------------------------------------------------------- */
/* 1.7: remote errors, cancellation, deadlines, lease extension, release  */
/* ---------------------------------------------------------------------- */

/*
 * A request may be given a deadline: it then expires at it, if
 * request_ttl does not end first (never handed to a worker after it; its
 * caller gets SY002).  A second signature, without a default, so that
 * the three-argument one stays as it was for old clients.
 */
CREATE FUNCTION syrpc_put_request(app text, type text, data jsonb, deadline timestamptz)
RETURNS uuid
AS 'MODULE_PATHNAME', 'syrpc_put_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_put_request(text, text, jsonb, timestamptz) IS
    'queue a request of the given type for app that expires at deadline (NULL: request_ttl only); returns its result_id';

/* A worker's error, and a caller's cancel, are results of their own kind. */
COMMENT ON COLUMN syrpc.result.error IS
    'a worker''s error message (1.7, syrpc_put_error): data is its detail';
COMMENT ON COLUMN syrpc.result.cancelled IS
    'its caller cancelled the request (1.7, syrpc_cancel)';

CREATE FUNCTION syrpc_put_error(app text, result_id uuid, message text, detail jsonb DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'syrpc_put_error'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_put_error(text, uuid, text, jsonb) IS
    'answer a claimed request with an error: its caller gets SY006 with the message, and the detail as DETAIL';

CREATE FUNCTION syrpc_cancel(app text, result_id uuid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'syrpc_cancel'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_cancel(text, uuid) IS
    'cancel a request (caller side): withdrawn if queued, its answer dropped if in flight; false if it had ended';

CREATE FUNCTION syrpc_is_cancelled(app text, result_id uuid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'syrpc_is_cancelled'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_is_cancelled(text, uuid) IS
    'has the caller of a claimed request cancelled it (worker side)';

CREATE FUNCTION syrpc_extend_lease(app text, result_id uuid, seconds float8,
                                   attempt integer DEFAULT NULL)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'syrpc_extend_lease'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_extend_lease(text, uuid, float8, integer) IS
    'the running lease of a claimed request (of the attempt it came with, if given) ends seconds from now; returns that time (SY004 if the lease was lost)';

CREATE FUNCTION syrpc_release(app text, result_id uuid, delay interval DEFAULT '0',
                              attempt integer DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'syrpc_release'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_release(text, uuid, interval, integer) IS
    'hand a claimed request back (the lease of the attempt it came with, if given), claimable again after delay, its attempt not counted';

CREATE FUNCTION syrpc_claim_requests(app text, max integer, timeout float8 DEFAULT 0,
                                     OUT type text, OUT result_id uuid, OUT data jsonb,
                                     OUT attempts integer, OUT deadline timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'syrpc_claim_requests'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_claim_requests(text, integer, float8) IS
    'syrpc_get_requests with each request''s attempt (1 on the first delivery) and deadline (when it expires)';

REVOKE ALL ON FUNCTION syrpc_put_request(text, text, jsonb, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_put_error(text, uuid, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_cancel(text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_is_cancelled(text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_extend_lease(text, uuid, float8, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_release(text, uuid, interval, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_claim_requests(text, integer, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_put_request(text, text, jsonb, timestamptz) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_put_error(text, uuid, text, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_cancel(text, uuid) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_is_cancelled(text, uuid) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_extend_lease(text, uuid, float8, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_release(text, uuid, interval, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_claim_requests(text, integer, float8) TO PUBLIC;
