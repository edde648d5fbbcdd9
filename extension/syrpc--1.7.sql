/* syrpc--1.7.sql: the install script of syrpc 1.7, in full */

\echo Use "CREATE EXTENSION syrpc" to load this file. \quit

/*
 * CREATE EXTENSION runs this one script; an existing installation gets
 * here through the upgrade scripts (1.0 -> 1.1 -> ... -> 1.6 -> 1.7).
 * Both must give the same objects: test/install_test.sh compares
 * their catalogs.
 */

/*
 * Internal objects live in schema syrpc, which PUBLIC cannot use: every
 * access goes through the functions below, which check who calls them
 * (syrpc.app_grant), then run as their owner with search_path pinned.  The API (syrpc_* functions, syrpc_stats) lives in the
 * extension's schema so that plain SQL can call it unqualified.
 */
CREATE SCHEMA syrpc;
COMMENT ON SCHEMA syrpc IS 'syrpc internals: use the syrpc_* functions, not these tables';

/* Per-app settings; a row appears on the first syrpc_put_request. */
CREATE TABLE syrpc.app (
    app          text        PRIMARY KEY,
    lease_time   interval    NOT NULL DEFAULT '30 seconds'
                             CHECK (lease_time >= '1 millisecond'),
    max_attempts integer     NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    result_ttl   interval    NOT NULL DEFAULT '10 seconds'
                             CHECK (result_ttl >= '1 millisecond'),
    request_ttl  interval    NOT NULL DEFAULT '3 hours'
                             CHECK (request_ttl >= '1 millisecond'),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE syrpc.app IS 'syrpc per-app settings (change them with syrpc_configure)';

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

/*
 * Requests of all apps.  One table rather than one per app: apps appear on
 * first use, and creating tables inside syrpc_put_request would need DDL
 * rights and locks on the hot path.
 *
 * A request is claimable when ready_at <= now.  A claim is a lease: it
 * moves ready_at to the end of the lease and counts the attempt, so a
 * request whose worker died becomes claimable again by itself.  The row is
 * deleted when its result is put.  The claim index is on created_at, which
 * never changes, so that claims are HOT updates.
 */
CREATE TABLE syrpc.request (
    result_id  uuid        PRIMARY KEY,
    app        text        NOT NULL,
    type       text        NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    ready_at   timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts   integer     NOT NULL DEFAULT 0,
    failure    text        -- a worker's reason for giving it up (1.3)
) WITH (fillfactor = 70,
        autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_threshold = 2000,
        autovacuum_vacuum_cost_delay = 0);
CREATE INDEX request_claim_idx ON syrpc.request (app, created_at);
COMMENT ON TABLE syrpc.request IS 'syrpc requests, queued or leased to a worker';

/*
 * Results: 64 hash partitions on result_id, the "hash table of 64 result
 * queues" of the original SyRPC.  The C code computes the partition the
 * same way PostgreSQL does (see syrpc_bucket) and addresses it directly.
 * A consumed result stays as a tombstone (consumed_at set) until it
 * expires, so that a second syrpc_get_result gets a clear error.
 */
CREATE TABLE syrpc.result (
    result_id   uuid        NOT NULL PRIMARY KEY,
    app         text        NOT NULL,
    data        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz,
    requested_at timestamptz,
    error       text,       -- 1.7
    cancelled   boolean     -- 1.7
) PARTITION BY HASH (result_id);
COMMENT ON TABLE syrpc.result IS 'syrpc results, in 64 hash partitions by result_id';
COMMENT ON COLUMN syrpc.result.requested_at IS
    'when its request was put (1.4), for the round-trip time of syrpc_stats_latency';

DO $$
BEGIN
    FOR i IN 0..63 LOOP
        EXECUTE pg_catalog.format(
            'CREATE TABLE syrpc.result_%s PARTITION OF syrpc.result
                 FOR VALUES WITH (MODULUS 64, REMAINDER %s)
                 WITH (fillfactor = 70,
                       autovacuum_vacuum_scale_factor = 0,
                       autovacuum_vacuum_threshold = 500,
                       autovacuum_vacuum_cost_delay = 0)',
            pg_catalog.lpad(i::text, 2, '0'), i);
    END LOOP;
END
$$;

/* ---------------------------------------------------------------------- */
/* The RPC calls                                                           */
/* ---------------------------------------------------------------------- */

CREATE FUNCTION syrpc_put_request(app text, type text, data jsonb)
RETURNS uuid
AS 'MODULE_PATHNAME', 'syrpc_put_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_put_request(text, text, jsonb) IS
    'queue a request of the given type for app; returns its result_id';

CREATE FUNCTION syrpc_get_request(app text, timeout float8,
                                  OUT type text, OUT result_id uuid, OUT data jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'syrpc_get_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;
COMMENT ON FUNCTION syrpc_get_request(text, float8) IS
    'claim the oldest request of app, waiting up to timeout seconds (NULL: until cancelled); no row on timeout';

CREATE FUNCTION syrpc_put_result(app text, result_id uuid, data jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'syrpc_put_result'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_put_result(text, uuid, jsonb) IS
    'answer a claimed request: store its result and wake the caller at commit';

CREATE FUNCTION syrpc_get_result(app text, result_id uuid, timeout float8)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'syrpc_get_result'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_get_result(text, uuid, float8) IS
    'wait up to timeout seconds (NULL: until cancelled) for a result and consume it; NULL on timeout';

/* ---------------------------------------------------------------------- */
/* Administration                                                          */
/* ---------------------------------------------------------------------- */

CREATE FUNCTION syrpc_configure(app text,
                                lease_time interval DEFAULT NULL,
                                max_attempts integer DEFAULT NULL,
                                result_ttl interval DEFAULT NULL,
                                request_ttl interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'syrpc_configure'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_configure(text, interval, integer, interval, interval) IS
    'create app or change its settings; a NULL argument keeps that setting';

CREATE FUNCTION syrpc.may_use(app text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'syrpc_may_use'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc.may_use(text) IS
    'may the current role use app, as a caller or a worker';

CREATE VIEW syrpc_apps AS
SELECT app, lease_time, max_attempts, result_ttl, request_ttl, created_at
  FROM syrpc.app
 WHERE syrpc.may_use(app);
COMMENT ON VIEW syrpc_apps IS 'the apps and their settings';

CREATE FUNCTION syrpc_cleanup()
RETURNS bigint
AS 'MODULE_PATHNAME', 'syrpc_cleanup'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_cleanup() IS
    'delete expired requests and results now (this also runs by itself); returns the number of rows deleted';

CREATE FUNCTION syrpc_bucket(result_id uuid)
RETURNS integer
AS 'MODULE_PATHNAME', 'syrpc_bucket'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION syrpc_bucket(uuid) IS
    'the result partition (0..63) that holds result_id';

/* 1.2: from whichever waiter registry is in use (volatile since 1.3). */
CREATE FUNCTION syrpc.workers_waiting(app text)
RETURNS integer
AS 'MODULE_PATHNAME', 'syrpc_workers_waiting'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION syrpc.workers_waiting(text) IS
    'how many backends of this database wait for app''s requests';

/* 1.5: syrpc_call's requests in shared memory (handoff.c), for syrpc_stats. */
CREATE FUNCTION syrpc.memory_requests(OUT app text, OUT queued bigint,
                                      OUT in_flight bigint, OUT oldest_queued timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'syrpc_memory_requests'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION syrpc.memory_requests() IS
    'per app of this database: syrpc_call requests waiting in shared memory (when preloaded), queued and in flight';

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

CREATE VIEW syrpc_stats AS
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

/* ---------------------------------------------------------------------- */
/* Privileges: per app and per database, in syrpc.app_grant (access.c)     */
/* ---------------------------------------------------------------------- */

/*
 * The group roles syrpc_caller and syrpc_worker, granted every app of this
 * database, if this CREATE EXTENSION makes them.  Roles are per cluster:
 * if syrpc made them before (in another database, or before a DROP
 * EXTENSION), they are granted nothing here, so that a member of theirs
 * in one database is not let into another; if something else made them,
 * CREATE EXTENSION stops, unless syrpc.adopt_roles is on.
 */
DO $$
DECLARE
    r text;
    marker constant text := 'syrpc group role (made by CREATE EXTENSION syrpc)';
    made_by text;
BEGIN
    FOREACH r IN ARRAY ARRAY['syrpc_caller', 'syrpc_worker'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
            EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r, marker);
        ELSE
            made_by := pg_catalog.shobj_description(
                (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r), 'pg_authid');
            IF made_by IS NOT DISTINCT FROM marker THEN
                /* a WARNING: CREATE EXTENSION does not show NOTICEs */
                RAISE WARNING 'role "%" exists already, and is granted no app of this database', r
                    USING HINT = pg_catalog.format(
                        'To let its members use every app here: SELECT syrpc_grant(''*'', %L, %L);',
                        r, pg_catalog.substr(r, 7));
                CONTINUE;
            ELSIF pg_catalog.current_setting('syrpc.adopt_roles', true) IS DISTINCT FROM 'on' THEN
                RAISE EXCEPTION 'role "%" exists, and was not made by syrpc', r
                    USING ERRCODE = 'duplicate_object',
                          DETAIL = 'CREATE EXTENSION would give its members every app of this database.',
                          HINT = pg_catalog.format('Drop the role, or if it is meant for syrpc: SET syrpc.adopt_roles = on; and run CREATE EXTENSION again.');
            END IF;
        END IF;
        INSERT INTO syrpc.app_grant (app, role, side) VALUES ('*', r, pg_catalog.substr(r, 7));
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION syrpc_put_request(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_get_request(text, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_put_result(text, uuid, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_get_result(text, uuid, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_configure(text, interval, integer, interval, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION syrpc_cleanup() FROM PUBLIC;
REVOKE ALL ON syrpc_stats FROM PUBLIC;
REVOKE ALL ON syrpc_apps FROM PUBLIC;

/*
 * EXECUTE and SELECT are for PUBLIC: the functions check who may use which
 * app themselves, and the views show a role only those apps.
 */
GRANT EXECUTE ON FUNCTION syrpc_put_request(text, text, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_get_result(text, uuid, float8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_get_request(text, float8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_put_result(text, uuid, jsonb) TO PUBLIC;
GRANT SELECT ON syrpc_stats, syrpc_apps TO PUBLIC;

/*
 * 1.1: a worker call that answers a request and claims the next one in
 * one transaction, so that a busy worker needs one statement and one
 * durable commit per request.
 */
CREATE FUNCTION syrpc_put_result_get_request(app text, result_id uuid, data jsonb,
                                             OUT type text, OUT result_id uuid, OUT data jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'syrpc_put_result_get_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;
COMMENT ON FUNCTION syrpc_put_result_get_request(text, uuid, jsonb) IS
    'answer a claimed request and claim the next request of app without waiting; no row if there is none';

REVOKE ALL ON FUNCTION syrpc_put_result_get_request(text, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_put_result_get_request(text, uuid, jsonb) TO PUBLIC;

/*
 * 1.1: waiting procedures.  Called with CALL outside a transaction block,
 * a procedure can drop the statement snapshot that a SELECT keeps for its
 * whole run, so a long wait no longer holds back the xmin horizon (and with
 * it the removal of the queues' dead rows).  The C library uses them.
 * They cannot be SECURITY DEFINER (that would forbid the commit that drops
 * the snapshot); the C code switches to the procedure's owner and pins
 * search_path itself, after that commit, as every entry point does.
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
GRANT EXECUTE ON PROCEDURE syrpc_wait_request(text, float8, text, uuid, jsonb) TO PUBLIC;
GRANT EXECUTE ON PROCEDURE syrpc_wait_result(text, uuid, float8, jsonb) TO PUBLIC;

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
GRANT EXECUTE ON PROCEDURE syrpc_call(text, text, jsonb, float8, uuid, jsonb) TO PUBLIC;

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
GRANT EXECUTE ON PROCEDURE syrpc_put_result_wait_request(text, uuid, jsonb, float8, text, uuid, jsonb) TO PUBLIC;

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

/*
 * 1.3: a worker gives up a request it cannot handle (the reason is kept in
 * syrpc.request.failure): its caller gets SY001 with the reason at once.
 */
CREATE FUNCTION syrpc_fail_request(app text, result_id uuid, reason text)
RETURNS void
AS 'MODULE_PATHNAME', 'syrpc_fail_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION syrpc_fail_request(text, uuid, text) IS
    'give up a claimed request: its caller gets SY001 with the reason, and no worker gets it again';
REVOKE ALL ON FUNCTION syrpc_fail_request(text, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION syrpc_fail_request(text, uuid, text) TO PUBLIC;

/*
 * 1.3: pg_dump keeps the app settings.  Requests and results are not
 * dumped: a dump is a moment of a queue whose callers wait in sessions
 * that a restore does not bring back, and a restored request that was
 * answered after the dump would run twice.
 */
SELECT pg_catalog.pg_extension_config_dump('syrpc.app', '');
SELECT pg_catalog.pg_extension_config_dump('syrpc.app_grant', '');

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

/* 1.4: grants per app, and apps dropped on purpose. */
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

CREATE VIEW syrpc_grants AS
SELECT app, role, side, granted_at FROM syrpc.app_grant;
COMMENT ON VIEW syrpc_grants IS 'who may use which app (''*'': every app without grants of its own)';
REVOKE ALL ON syrpc_grants FROM PUBLIC;

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
