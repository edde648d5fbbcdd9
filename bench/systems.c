/*
 * systems.c: the loops of the systems the benchmark compares.
 * Each thread has its own connection and runs until its stop flag is set;
 * callers record the latency of each round trip (or INSERT, for the floor).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "bench.h"
#include "syrpc.h"

static PGconn *
connect_or_die(const char *conninfo)
{
    PGconn *pg = PQconnectdb(conninfo);

    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "bench: connect: %s", PQerrorMessage(pg));
        exit(1);
    }
    return pg;
}

/* Run sql; count an error and return NULL unless it succeeds. */
static PGresult *
exec_ok(thread_arg *a, PGconn *pg, const char *sql, int n, const char *const *values)
{
    PGresult *res = PQexecParams(pg, sql, n, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        if (__atomic_add_fetch(&a->ctx->errors, 1, __ATOMIC_SEQ_CST) < 5)
            fprintf(stderr, "\nbench: %s", PQerrorMessage(pg));
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Wait for a notification on pg, up to ms. */
static void
wait_notify(PGconn *pg, int ms)
{
    PGnotify *n;
    struct pollfd p = { PQsocket(pg), POLLIN, 0 };

    PQconsumeInput(pg);
    if ((n = PQnotifies(pg)) != NULL) {
        PQfreemem(n);
        return;
    }
    if (poll(&p, 1, ms) > 0)
        PQconsumeInput(pg);
    while ((n = PQnotifies(pg)) != NULL)
        PQfreemem(n);
}

static const char *payload = "{\"value\": \"hello\", \"n\": 42}";

/* ---- the floor: single-row INSERT of a small jsonb ---- */

void *
floor_thread(void *arg)
{
    thread_arg *a = arg;
    PGconn *pg = connect_or_die(a->ctx->conninfo);
    const char *values[1] = { payload };

    while (!a->ctx->stop_callers) {
        double t0 = now_s();
        PGresult *res = exec_ok(a, pg, "INSERT INTO floor_insert (data) VALUES ($1::jsonb)", 1, values);

        if (res) {
            lat_add(&a->lat, (now_s() - t0) * 1000);
            __atomic_add_fetch(&a->ctx->done, 1, __ATOMIC_RELAXED);
            PQclear(res);
        }
    }
    PQfinish(pg);
    return NULL;
}

/*
 * ---- the naive baseline, and notify ----
 * notify is naive with each NOTIFY sent in a transaction of its own after
 * the put commits: a transaction that notifies holds a cluster-wide lock
 * from its NOTIFY to the end of its commit, fsync included, so that naive
 * commits its puts one at a time; notify's second transaction pays a round
 * trip (and an xid) instead.
 */

static void
notify_apart(thread_arg *a, PGconn *pg, const char *channel)
{
    const char *values[1] = { channel };

    PQclear(exec_ok(a, pg, "SELECT pg_notify($1, '')", 1, values));
}

static void
naive_caller_loop(thread_arg *a, int apart)
{
    PGconn *pg = connect_or_die(a->ctx->conninfo);
    char listen[64];
    int bucket = a->id % 64;

    snprintf(listen, sizeof(listen), "LISTEN naive_res_%d", bucket);
    PQclear(PQexec(pg, listen));
    while (!a->ctx->stop_callers) {
        double t0 = now_s();
        char bucket_s[8];
        const char *put[2] = { payload, bucket_s };
        PGresult *res;
        char id[40];
        const char *get[1] = { id };
        int got = 0;

        snprintf(bucket_s, sizeof(bucket_s), "%d", bucket);
        res = exec_ok(a, pg, apart
                      ? "INSERT INTO naive_request (result_id, reply_to, data)"
                        " VALUES (gen_random_uuid(), $2::int, $1::jsonb) RETURNING result_id"
                      : "WITH r AS (INSERT INTO naive_request (result_id, reply_to, data)"
                        "           VALUES (gen_random_uuid(), $2::int, $1::jsonb) RETURNING result_id)"
                        " SELECT result_id, pg_notify('naive_req', '') FROM r", 2, put);
        if (res == NULL)
            continue;
        snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (apart)
            notify_apart(a, pg, "naive_req");
        while (!got && !a->ctx->stop_workers) {
            res = exec_ok(a, pg, "DELETE FROM naive_result WHERE result_id = $1 RETURNING data", 1, get);
            got = res && PQntuples(res) == 1;
            PQclear(res);
            if (!got)
                wait_notify(pg, 1000);
        }
        if (got) {
            lat_add(&a->lat, (now_s() - t0) * 1000);
            __atomic_add_fetch(&a->ctx->done, 1, __ATOMIC_RELAXED);
        }
    }
    PQfinish(pg);
}

static void
naive_worker_loop(thread_arg *a, int apart)
{
    PGconn *pg = connect_or_die(a->ctx->conninfo);

    PQclear(PQexec(pg, "LISTEN naive_req"));
    while (!a->ctx->stop_workers) {
        PGresult *res = exec_ok(a, pg,
                                "DELETE FROM naive_request WHERE id = ("
                                "  SELECT id FROM naive_request ORDER BY id"
                                "  LIMIT 1 FOR UPDATE SKIP LOCKED)"
                                " RETURNING result_id, data, reply_to", 0, NULL);
        char id[40], reply_to[16], *data;
        const char *put[3];

        if (res == NULL || PQntuples(res) == 0) {
            PQclear(res);
            wait_notify(pg, 1000);
            continue;
        }
        snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
        data = strdup(PQgetvalue(res, 0, 1));
        snprintf(reply_to, sizeof(reply_to), "%s", PQgetvalue(res, 0, 2));
        PQclear(res);
        put[0] = id;
        put[1] = data;
        put[2] = reply_to;
        if (apart) {
            char channel[32];

            snprintf(channel, sizeof(channel), "naive_res_%s", reply_to);
            PQclear(exec_ok(a, pg, "INSERT INTO naive_result VALUES ($1::uuid, $2::jsonb)", 2, put));
            notify_apart(a, pg, channel);
        } else
            PQclear(exec_ok(a, pg,
                            "WITH r AS (INSERT INTO naive_result VALUES ($1::uuid, $2::jsonb) RETURNING result_id)"
                            " SELECT pg_notify('naive_res_' || $3, '') FROM r",
                            3, put));
        free(data);
    }
    PQfinish(pg);
}

void *naive_caller(void *arg) { naive_caller_loop(arg, 0); return NULL; }
void *naive_worker(void *arg) { naive_worker_loop(arg, 0); return NULL; }
void *notify_caller(void *arg) { naive_caller_loop(arg, 1); return NULL; }
void *notify_worker(void *arg) { naive_worker_loop(arg, 1); return NULL; }

/*
 * ---- syrpc through its plain SQL API ----
 * What any language without libsyrpc does: one statement per call, each
 * its own transaction.  The caller puts, then blocks in syrpc_get_result;
 * the worker blocks in syrpc_get_request, then answers.
 */

void *
sql_caller(void *arg)
{
    thread_arg *a = arg;
    PGconn *pg = connect_or_die(a->ctx->conninfo);

    while (!a->ctx->stop_callers) {
        double t0 = now_s();
        const char *put[2] = { a->ctx->app, payload };
        char id[40];
        const char *get[2] = { a->ctx->app, id };
        PGresult *res = exec_ok(a, pg, "SELECT syrpc_put_request($1, 'echo', $2::jsonb)", 2, put);

        if (res == NULL)
            continue;
        snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        res = exec_ok(a, pg, "SELECT syrpc_get_result($1, $2::uuid, 10)", 2, get);
        if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
            lat_add(&a->lat, (now_s() - t0) * 1000);
            __atomic_add_fetch(&a->ctx->done, 1, __ATOMIC_RELAXED);
        }
        PQclear(res);
    }
    PQfinish(pg);
    return NULL;
}

void *
sql_worker(void *arg)
{
    thread_arg *a = arg;
    PGconn *pg = connect_or_die(a->ctx->conninfo);
    const char *claim[1] = { a->ctx->app };

    while (!a->ctx->stop_workers) {
        PGresult *res = exec_ok(a, pg, "SELECT result_id, data FROM syrpc_get_request($1, 0.2)", 1, claim);
        const char *answer[3] = { a->ctx->app, NULL, NULL };

        if (res && PQntuples(res) == 1) {
            answer[1] = PQgetvalue(res, 0, 0);
            answer[2] = PQgetvalue(res, 0, 1);
            PQclear(exec_ok(a, pg, "SELECT syrpc_put_result($1, $2::uuid, $3::jsonb)", 3, answer));
        }
        PQclear(res);
    }
    PQfinish(pg);
    return NULL;
}

/* ---- syrpc, through libsyrpc ---- */

/* Count a failed call; print the first few. */
static void
syrpc_error(thread_arg *a, syrpc_conn *c, const char *what)
{
    if (__atomic_add_fetch(&a->ctx->errors, 1, __ATOMIC_SEQ_CST) < 5)
        fprintf(stderr, "\nbench: %s: %s\n", what, syrpc_error_message(c));
}

/*
 * Callers: syrpc_call (one round trip: CALL syrpc_call), or, with put_get,
 * syrpc_put_request and then syrpc_get_result, as a caller does that hands
 * the result_id on.
 */
static void
caller_loop(thread_arg *a, int put_get, const char *set, int prepared)
{
    syrpc_conn *c = syrpc_connect(a->ctx->conninfo, a->ctx->app);
    json_t *data = json_loads(payload, 0, NULL);

    if (set && c && syrpc_status_of(c) == SYRPC_OK)
        PQclear(PQexec(syrpc_pgconn(c), set));
    if (c)
        syrpc_set_prepared(c, prepared);

    while (c && syrpc_status_of(c) == SYRPC_OK && !a->ctx->stop_callers) {
        double t0 = now_s();
        json_t *result;
        char id[SYRPC_ID_SIZE];

        if (put_get) {
            if (syrpc_put_request(c, "echo", data, id) != SYRPC_OK) {
                syrpc_error(a, c, "syrpc_put_request");
                continue;
            }
            if (syrpc_get_result(c, id, 10000, &result) != SYRPC_OK) {
                syrpc_error(a, c, "syrpc_get_result");
                continue;
            }
        } else if (syrpc_call(c, "echo", data, 10000, &result) != SYRPC_OK) {
            syrpc_error(a, c, "syrpc_call");
            continue;
        }
        json_decref(result);
        lat_add(&a->lat, (now_s() - t0) * 1000);
        __atomic_add_fetch(&a->ctx->done, 1, __ATOMIC_RELAXED);
    }
    json_decref(data);
    syrpc_finish(c);
}

void *
syrpc_caller(void *arg)
{
    caller_loop(arg, 0, NULL, 0);
    return NULL;
}

void *
syrpc_caller_put_get(void *arg)
{
    caller_loop(arg, 1, NULL, 0);
    return NULL;
}

/* put + get with statements prepared (syrpc_set_prepared): what parsing costs. */
void *
syrpc_caller_prepared(void *arg)
{
    caller_loop(arg, 1, NULL, 1);
    return NULL;
}

/* syrpc_call on the table path: what the in-memory hand-off saves. */
void *
syrpc_caller_table(void *arg)
{
    caller_loop(arg, 0, "SET syrpc.memory_calls = off", 0);
    return NULL;
}

/* put + get with every claim and take written to its row: what marks save. */
void *
syrpc_caller_rows(void *arg)
{
    caller_loop(arg, 1, "SET syrpc.memory_leases = off", 0);
    return NULL;
}

/* syrpc_call with syrpc.track_stats off: what the per-app statistics cost. */
void *
syrpc_caller_no_stats(void *arg)
{
    caller_loop(arg, 0, "SET syrpc.track_stats = off", 0);
    return NULL;
}

static json_t *
echo(const syrpc_request *req, void *arg)
{
    (void) arg;
    return json_deep_copy(syrpc_request_data(req));
}

/* Workers: syrpc_serve, after set (a SET, or NULL). */
static void
worker_loop(thread_arg *a, const char *set, int prepared)
{
    syrpc_conn *c = syrpc_connect(a->ctx->conninfo, a->ctx->app);

    if (c && syrpc_status_of(c) == SYRPC_OK) {
        if (set)
            PQclear(PQexec(syrpc_pgconn(c), set));
        syrpc_set_prepared(c, prepared);
        syrpc_set_interrupt_flag(c, &a->ctx->stop_workers);
        syrpc_register(c, "echo", echo, NULL);
        syrpc_serve(c, 0);
    }
    syrpc_finish(c);
}

void *
syrpc_worker(void *arg)
{
    worker_loop(arg, NULL, 0);
    return NULL;
}

void *
syrpc_worker_async_results(void *arg)
{
    worker_loop(arg, "SET syrpc.async_results = on", 0);
    return NULL;
}

void *
syrpc_worker_no_stats(void *arg)
{
    worker_loop(arg, "SET syrpc.track_stats = off", 0);
    return NULL;
}

void *
syrpc_worker_prepared(void *arg)
{
    worker_loop(arg, NULL, 1);
    return NULL;
}

void *
syrpc_worker_rows(void *arg)
{
    worker_loop(arg, "SET syrpc.memory_leases = off", 0);
    return NULL;
}
