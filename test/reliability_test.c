/*
 * reliability_test.c: cancel, timeouts and killed workers, against a
 * real server.
 *
 * Prints TAP-style lines and "N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testlib.h"

/* ---- cancel, statement_timeout, terminate against a blocked call ---- */

typedef enum { BY_CANCEL, BY_STATEMENT_TIMEOUT, BY_TERMINATE } stop_how;

/*
 * Nothing of pid left behind: no waiter registration, in whichever
 * registry is in use (shared memory when preloaded, else the lock manager).
 */
static int
no_registration(int pid)
{
    char *v = sql_value("SELECT count(*) FROM syrpc.waiters() WHERE pid = %d", pid);
    int none = v && strcmp(v, "0") == 0;

    free(v);
    return none;
}

/* The longest a blocked call may take to return once it is stopped. */
#define STOP_LIMIT_MS 2000
/* The statement_timeout of the BY_STATEMENT_TIMEOUT cases. */
#define STATEMENT_TIMEOUT_MS 300

/*
 * Block a call (sql) in a session, stop it the given way, and check how
 * it ends, the time it took to return, and that nothing is left behind.
 * A cancel is 57014 and a terminate 57P01, each within STOP_LIMIT_MS; a
 * wait that statement_timeout would cut ends just before it, as a
 * timeout: one row whose last column is on_timeout (NULL: SQL NULL).
 */
static int
stop_blocked(const char *sql, stop_how how, const char *app, const char *on_timeout)
{
    PGconn *pg = PQconnectdb("");
    PGresult *res;
    const char *state;
    double t0, ms;
    int pid = PQbackendPID(pg);
    char *left;

    CHECK(PQstatus(pg) == CONNECTION_OK, "connect");
    if (how == BY_STATEMENT_TIMEOUT) {
        char set[64];

        snprintf(set, sizeof(set), "SET statement_timeout = %d", STATEMENT_TIMEOUT_MS);
        PQclear(PQexec(pg, set));
    }
    t0 = now_s();
    CHECK(PQsendQuery(pg, sql), "send");
    CHECK(wait_blocked(pg), "never blocked");
    CHECK(!no_registration(pid), "blocked, but not registered to be woken");
    if (how == BY_CANCEL) {
        t0 = now_s();
        free(sql_value("SELECT pg_cancel_backend(%d)", pid));
    } else if (how == BY_TERMINATE) {
        t0 = now_s();
        free(sql_value("SELECT pg_terminate_backend(%d)", pid));
    } else
        t0 += STATEMENT_TIMEOUT_MS / 1000.0;    /* when the timeout was due */
    res = PQgetResult(pg);
    ms = (now_s() - t0) * 1000;
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (how == BY_STATEMENT_TIMEOUT) {
        int last = PQnfields(res) - 1;

        CHECK(PQresultStatus(res) == PGRES_TUPLES_OK, "an error instead of a timeout: %s %s",
              state ? state : "", PQresultErrorMessage(res));
        CHECK(PQntuples(res) == 1 && last >= 0, "%d rows", PQntuples(res));
        CHECK(on_timeout ? !PQgetisnull(res, 0, last) && strcmp(PQgetvalue(res, 0, last), on_timeout) == 0
              : PQgetisnull(res, 0, last), "got %s, expected %s on timeout",
              PQgetisnull(res, 0, last) ? "NULL" : PQgetvalue(res, 0, last), on_timeout ? on_timeout : "NULL");
        printf("#   returned %.1f ms after the statement_timeout was due, as a timeout\n", ms);
        /* it ends before the timeout (by a margin of a tenth), but not long before */
        CHECK(ms > -STATEMENT_TIMEOUT_MS / 2, "returned %.0f ms before the statement_timeout was due", -ms);
    } else {
        const char *expect = how == BY_TERMINATE ? "57P01" : "57014";

        CHECK(state && strcmp(state, expect) == 0, "SQLSTATE %s, expected %s: %s",
              state ? state : "(none)", expect, PQresultErrorMessage(res));
        printf("#   returned %.1f ms after the %s, with %s\n", ms, how == BY_CANCEL ? "cancel" : "terminate", state);
    }
    CHECK(ms < STOP_LIMIT_MS, "returned %.0f ms after the %s (limit %d ms)", ms,
          how == BY_CANCEL ? "cancel" : how == BY_TERMINATE ? "terminate" : "statement_timeout was due",
          STOP_LIMIT_MS);
    PQclear(res);
    while ((res = PQgetResult(pg)) != NULL)
        PQclear(res);
    if (how == BY_TERMINATE)
        CHECK(PQstatus(pg) == CONNECTION_BAD || PQexec(pg, "SELECT 1") == NULL || PQstatus(pg) == CONNECTION_BAD,
              "connection should be gone");
    else {
        /* the session goes on working */
        res = PQexec(pg, "SELECT 1");
        CHECK(PQresultStatus(res) == PGRES_TUPLES_OK, "session unusable: %s", PQerrorMessage(pg));
        PQclear(res);
    }
    if (how == BY_TERMINATE) {
        /* the backend goes away on its own time: wait for its registration to go */
        char sql[128];

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM syrpc.waiters() WHERE pid = %d", pid);
        CHECK(wait_for(10, "0", sql), "waiter registration left behind by a terminated backend");
    } else
        CHECK(no_registration(pid), "waiter registration left behind");
    left = sql_value("SELECT count(*) FROM syrpc.request WHERE app = '%s' AND attempts > 0", app);
    CHECK(left && strcmp(left, "0") == 0, "%s half-claimed requests left", left ? left : "?");
    free(left);
    PQfinish(pg);
    return 1;
}

#define GET_REQUEST "SELECT count(*) FROM syrpc_get_request('r_cancel', 30)"
#define CALL "CALL syrpc_call('r_call', 'job', '{}', 30)"

static int t_cancel_get_request(void) { return stop_blocked(GET_REQUEST, BY_CANCEL, "r_cancel", NULL); }
static int t_timeout_get_request(void) { return stop_blocked(GET_REQUEST, BY_STATEMENT_TIMEOUT, "r_cancel", "0"); }
static int t_terminate_get_request(void) { return stop_blocked(GET_REQUEST, BY_TERMINATE, "r_cancel", NULL); }
static int t_cancel_call(void) { return stop_blocked(CALL, BY_CANCEL, "r_call", NULL); }
static int t_timeout_call(void) { return stop_blocked(CALL, BY_STATEMENT_TIMEOUT, "r_call", NULL); }
static int t_terminate_call(void) { return stop_blocked(CALL, BY_TERMINATE, "r_call", NULL); }

/*
 * A blocked get_result waits on the result of a real request that nobody
 * answers (an unknown result_id is an error at once, SY008).
 */
static int
stop_blocked_get_result(stop_how how)
{
    char *id = sql_value("SELECT syrpc_put_request('r_cancel_res', 'job', '{}')"), sql[128];

    CHECK(id, "put");
    snprintf(sql, sizeof(sql), "SELECT syrpc_get_result('r_cancel_res', '%s', 30)", id);
    free(id);
    return stop_blocked(sql, how, "r_cancel_res", NULL);
}

static int t_cancel_get_result(void) { return stop_blocked_get_result(BY_CANCEL); }
static int t_timeout_get_result(void) { return stop_blocked_get_result(BY_STATEMENT_TIMEOUT); }
static int t_terminate_get_result(void) { return stop_blocked_get_result(BY_TERMINATE); }

/* A worker that was woken for a request and then cancelled passes the wake-up on. */
static int
t_cancelled_worker_passes_on(void)
{
    PGconn *a = PQconnectdb(""), *b = PQconnectdb("");
    PGresult *res;
    char *id;

    CHECK(PQstatus(a) == CONNECTION_OK && PQstatus(b) == CONNECTION_OK, "connect");
    /* a waits, then b waits: a is first in line for the next request */
    CHECK(PQsendQuery(a, "SELECT * FROM syrpc_get_request('r_pass', 30)"), "send a");
    CHECK(wait_blocked(a), "a never blocked");
    CHECK(PQsendQuery(b, "SELECT result_id FROM syrpc_get_request('r_pass', 30)"), "send b");
    CHECK(wait_blocked(b), "b never blocked");
    /* cancel a in the same transaction as the put, so that a is chosen and then dies */
    id = sql_value("SELECT syrpc_put_request('r_pass', 'job', '{}') FROM pg_cancel_backend(%d)", PQbackendPID(a));
    CHECK(id != NULL, "put");
    res = PQgetResult(b);
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), id) == 0,
          "b did not get the request: %s", PQresultErrorMessage(res));
    PQclear(res);
    free(id);
    finish_session(a);
    finish_session(b);
    return 1;
}

/* A waiting CALL holds no snapshot (it does not hold back the xmin horizon); a waiting SELECT does. */
static int
t_procedure_holds_no_snapshot(void)
{
    PGconn *a = PQconnectdb(""), *b = PQconnectdb("");
    char *xa, *xb, *id, sql[128];

    CHECK(PQstatus(a) == CONNECTION_OK && PQstatus(b) == CONNECTION_OK, "connect");
    /* both wait on the result of a request nobody answers */
    id = sql_value("SELECT syrpc_put_request('r_xmin', 'job', '{}')");
    CHECK(id, "put");
    snprintf(sql, sizeof(sql), "CALL syrpc_wait_result('r_xmin', '%s', 30)", id);
    CHECK(PQsendQuery(a, sql), "send a");
    snprintf(sql, sizeof(sql), "SELECT syrpc_get_result('r_xmin', '%s', 30)", id);
    CHECK(PQsendQuery(b, sql), "send b");
    free(id);
    CHECK(wait_blocked(a) && wait_blocked(b), "never blocked");
    xa = sql_value("SELECT coalesce(backend_xmin::text, 'none') FROM pg_stat_activity WHERE pid = %d", PQbackendPID(a));
    xb = sql_value("SELECT coalesce(backend_xmin::text, 'none') FROM pg_stat_activity WHERE pid = %d", PQbackendPID(b));
    printf("#   backend_xmin while waiting: CALL %s, SELECT %s\n", xa, xb);
    CHECK(xa && strcmp(xa, "none") == 0, "the waiting CALL holds xmin %s", xa);
    CHECK(xb && strcmp(xb, "none") != 0, "the waiting SELECT holds no xmin (the test's premise)");
    free(xa);
    free(xb);
    free(sql_value("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid IN (%d, %d)", PQbackendPID(a), PQbackendPID(b)));
    finish_session(a);
    finish_session(b);
    return 1;
}

/* ---- killed workers, attempts, the failure after max_attempts ---- */

/* A worker whose backend is terminated while it holds a request. */
static int
t_worker_backend_terminated(void)
{
    syrpc_conn *caller, *w1, *w2;
    syrpc_request *req;
    json_t *data = json_string("again"), *result;
    char id[SYRPC_ID_SIZE], *attempts;
    int ok;

    free(sql_value("SELECT syrpc_configure('r_term', lease_time => '300 ms', max_attempts => 3)"));
    caller = connect_app("r_term");
    w1 = connect_app("r_term");
    w2 = connect_app("r_term");
    CHECK(caller && w1 && w2, "connect");
    CHECK(syrpc_put_request(caller, "echo", data, id) == SYRPC_OK, "put");
    CHECK(syrpc_get_request(w1, 1000, &req) == SYRPC_OK, "w1 claim");
    syrpc_request_free(req);
    free(sql_value("SELECT pg_terminate_backend(%d)", PQbackendPID(syrpc_pgconn(w1))));
    CHECK(syrpc_put_result(w1, id, data) == SYRPC_CONNECTION, "w1 should have lost its connection");
    /* w2 gets it again once the lease runs out */
    CHECK(syrpc_get_request(w2, 5000, &req) == SYRPC_OK, "%s", syrpc_error_message(w2));
    CHECK(strcmp(syrpc_request_result_id(req), id) == 0, "another request");
    attempts = sql_value("SELECT attempts FROM syrpc.request WHERE result_id = '%s'", id);
    CHECK(attempts && strcmp(attempts, "2") == 0, "attempts %s", attempts ? attempts : "?");
    free(attempts);
    CHECK(syrpc_put_result(w2, id, syrpc_request_data(req)) == SYRPC_OK, "%s", syrpc_error_message(w2));
    syrpc_request_free(req);
    CHECK(syrpc_get_result(caller, id, 1000, &result) == SYRPC_OK, "%s", syrpc_error_message(caller));
    ok = json_equal(result, data);
    json_decref(result);
    CHECK(ok, "wrong result");
    /* answered exactly once: no copy left, none handed out */
    CHECK(syrpc_get_request(w2, 0, &req) == SYRPC_TIMEOUT && req == NULL, "handed out again");
    json_decref(data);
    syrpc_finish(caller);
    syrpc_finish(w1);
    syrpc_finish(w2);
    return 1;
}

/* After max_attempts leases ran out, the caller gets an explicit failure. */
static int
t_max_attempts(void)
{
    syrpc_conn *caller, *w;
    syrpc_request *req;
    json_t *data = json_integer(3), *result = NULL;
    char id[SYRPC_ID_SIZE];
    double t0;

    free(sql_value("SELECT syrpc_configure('r_max', lease_time => '200 ms', max_attempts => 2)"));
    caller = connect_app("r_max");
    w = connect_app("r_max");
    CHECK(caller && w, "connect");
    CHECK(syrpc_put_request(caller, "echo", data, id) == SYRPC_OK, "put");
    for (int i = 0; i < 2; i++) {
        CHECK(syrpc_get_request(w, 5000, &req) == SYRPC_OK, "claim %d: %s", i + 1, syrpc_error_message(w));
        syrpc_request_free(req);
    }
    t0 = now_s();
    CHECK(syrpc_get_result(caller, id, 10000, &result) == SYRPC_REQUEST_FAILED,
          "%s: %s", syrpc_status_name(syrpc_status_of(caller)), syrpc_error_message(caller));
    CHECK(result == NULL, "result on failure");
    CHECK(strcmp(syrpc_error_sqlstate(caller), "SY001") == 0, "%s", syrpc_error_sqlstate(caller));
    CHECK(now_s() - t0 < 10, "waited for the whole timeout instead of the lease");
    diag("  %s", syrpc_error_message(caller));
    CHECK(syrpc_get_request(w, 300, &req) == SYRPC_TIMEOUT, "handed out after the last attempt");
    json_decref(data);
    syrpc_finish(caller);
    syrpc_finish(w);
    return 1;
}

static const test_case tests[] = {
    { "pg_cancel_backend on a blocked get_request", t_cancel_get_request },
    { "statement_timeout on a blocked get_request: no row, just before it", t_timeout_get_request },
    { "pg_terminate_backend on a blocked get_request", t_terminate_get_request },
    { "pg_cancel_backend on a blocked get_result", t_cancel_get_result },
    { "statement_timeout on a blocked get_result: NULL, just before it", t_timeout_get_result },
    { "pg_terminate_backend on a blocked get_result", t_terminate_get_result },
    { "pg_cancel_backend on a blocked syrpc_call", t_cancel_call },
    { "statement_timeout on a blocked syrpc_call: result NULL, just before it", t_timeout_call },
    { "pg_terminate_backend on a blocked syrpc_call", t_terminate_call },
    { "a worker cancelled after being woken passes the request on", t_cancelled_worker_passes_on },
    { "a waiting CALL holds no snapshot, a waiting SELECT does", t_procedure_holds_no_snapshot },
    { "worker's backend terminated holding a request: redelivered, attempts 2, answered once", t_worker_backend_terminated },
    { "after max_attempts the caller gets SYRPC_REQUEST_FAILED", t_max_attempts },
};

int
main(void)
{
    tests_init();
    return RUN_TESTS(tests);
}
