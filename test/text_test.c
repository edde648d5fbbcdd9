/*
 * text_test.c: tests of libsyrpc's exact data (the _text functions, and
 * json_t conversion that refuses rather than alters), of the serve loop
 * failing requests it cannot represent, of waits under a statement_timeout
 * shorter than a slice, and of the extension's schema, version and
 * absence, against a real server.
 *
 * Needs a database with CREATE EXTENSION syrpc, reached through the libpq
 * environment; creates (and drops) a few databases of its own.  An
 * argument runs only the tests whose names contain it.  Prints
 * TAP-style "ok N - name" lines and a closing "N passed, N failed".  Run
 * under valgrind by test/run-client-tests.sh.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testlib.h"

/* ---- handlers ---- */

static char *
echo_text(const syrpc_request *req, void *arg)
{
    (void) arg;
    return strdup(syrpc_request_data_text(req));
}

static char *
not_json(const syrpc_request *req, void *arg)
{
    (void) req;
    (void) arg;
    return strdup("this is not JSON");
}

static char *
null_text(const syrpc_request *req, void *arg)
{
    (void) req;
    (void) arg;
    return NULL;
}

static void
handlers(syrpc_conn *c, test_server *s)
{
    serve_echo(c, s);
    syrpc_register_text(c, "echo_text", echo_text, NULL);
    syrpc_register_text(c, "not_json", not_json, NULL);
    syrpc_register_text(c, "null_text", null_text, NULL);
}

/* ---- SQL with parameters on a connection of its own ---- */

/*
 * Run sql with text parameters on pg (NULL: a new connection); the first
 * value malloc'd (NULL if none), and the SQLSTATE and message of an error
 * into state and msg when given.
 */
static char *
sqlp(PGconn *pg, const char *sql, int n, const char *const *params, char state[6], char *msg, size_t msgsize)
{
    PGconn *own = pg ? NULL : PQconnectdb("");
    PGresult *res = PQexecParams(pg ? pg : own, sql, n, NULL, params, NULL, NULL, 0);
    const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    char *value = NULL;

    if (state)
        snprintf(state, 6, "%s", s ? s : "");
    if (msg)
        snprintf(msg, msgsize, "%s", PQresultErrorMessage(res));
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        value = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (own)
        PQfinish(own);
    return value;
}

/* Whether a and b are equal as jsonb ('t'), as the server compares them. */
static int
jsonb_equal(const char *a, const char *b)
{
    const char *params[2] = { a, b };
    char *v = sqlp(NULL, "SELECT $1::jsonb = $2::jsonb", 2, params, NULL, NULL, 0);
    int eq = v && strcmp(v, "t") == 0;

    free(v);
    return eq;
}

/* Put a request with data as JSON text through SQL; its result_id into id. */
static int
sql_put(const char *app, const char *type, const char *json, char id[SYRPC_ID_SIZE])
{
    const char *params[3] = { app, type, json };
    char *v = sqlp(NULL, "SELECT syrpc_put_request($1, $2, $3::jsonb)", 3, params, NULL, NULL, 0);

    snprintf(id, SYRPC_ID_SIZE, "%s", v ? v : "");
    free(v);
    return v != NULL;
}

/* A stats column of app, malloc'd. */
static char *
stat_of(const char *app, const char *column)
{
    return sql_value("SELECT %s FROM syrpc_stats WHERE app = '%s'", column, app);
}

static int
stat_is(const char *app, const char *column, const char *expected)
{
    char *v = stat_of(app, column);
    int ok = v && strcmp(v, expected) == 0;

    if (!ok)
        printf("#   syrpc_stats.%s of %s is %s, expected %s\n", column, app, v ? v : "(none)", expected);
    free(v);
    return ok;
}

/* '[[[...1...]]]', depth levels deep; malloc'd. */
static char *
nested(int depth)
{
    char *s = malloc(2 * depth + 2);

    memset(s, '[', depth);
    s[depth] = '1';
    memset(s + depth + 1, ']', depth);
    s[2 * depth + 1] = '\0';
    return s;
}

/* ---- tests ---- */

/* The numbers that a json_t cannot hold exactly, and some it can. */
static const char *const exact_cases[] = {
    "0.12345678901234567890123", "12345678901234567.5", "1.10", "9007199254740993.0",
    "123456789012345678901234567890", "1e400", "-1e-400", "9223372036854775808",
    "[1.10, {\"a\": 0.12345678901234567890123}, \"12345678901234567.5\"]",
};

/*
 * (Issue #10, item 1) A request whose data jansson cannot take (an integer
 * beyond 64 bits, 1e400, nesting deeper than jansson's limit) does not stop
 * syrpc_serve: it is failed with a reason, its caller gets SY001 at once,
 * syrpc_stats counts it, nothing stays leased, the next is served.
 */
static int
test_serve_fails_unrepresentable(void)
{
    const char *app = "t_unrep";
    char *deep = nested(3000);
    const char *bad[] = { "123456789012345678901234567890", "1e400", deep, "{\"x\": 0.12345678901234567890123}" };
    const char *why[] = { "does not fit in a json_int_t", "beyond the range of a double",
                          "maximum parsing depth", "more precision than a double" };
    char ids[4][SYRPC_ID_SIZE], good[SYRPC_ID_SIZE];
    syrpc_conn *c = connect_app(app);
    json_t *result = NULL;
    test_server s;
    double t0;
    int ok;

    CHECK(c, "connect");
    server_start(&s, "", app, 0, handlers);
    for (int i = 0; i < 4; i++)
        CHECK(sql_put(app, "echo", bad[i], ids[i]), "put %d", i);
    CHECK(sql_put(app, "echo", "{\"after\": \"the bad ones\"}", good), "put");
    free(deep);
    for (int i = 0; i < 4; i++) {
        t0 = now_s();
        CHECK(syrpc_get_result(c, ids[i], 10000, &result) == SYRPC_REQUEST_FAILED, "request %d: %s: %s", i,
              syrpc_status_name(syrpc_status_of(c)), syrpc_error_message(c));
        CHECK(now_s() - t0 < 9, "waited for the lease rather than a failure");
        CHECK(strcmp(syrpc_error_sqlstate(c), "SY001") == 0, "sqlstate %s", syrpc_error_sqlstate(c));
        CHECK(strstr(syrpc_error_message(c), "request data cannot be represented by the C library") != NULL &&
              strstr(syrpc_error_message(c), why[i]) != NULL, "message: %s", syrpc_error_message(c));
        printf("#   %s\n", syrpc_error_message(c));
    }
    CHECK(syrpc_get_result(c, good, 10000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    ok = strcmp(json_string_value(json_object_get(result, "after")), "the bad ones") == 0;
    json_decref(result);
    CHECK(ok, "wrong answer after the bad requests");
    CHECK(!s.done, "syrpc_serve stopped: %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(stat_is(app, "failed", "4"), "failed");
    CHECK(stat_is(app, "in_flight", "0") && stat_is(app, "queued", "0"), "left in the queue");
    syrpc_finish(c);
    return 1;
}

/*
 * (Item 2a) The text API passes numbers as they are: through syrpc_call_text
 * and a text handler, and through put_request_text / put_result_text /
 * get_result_text, every value comes back equal as jsonb.
 */
static int
test_text_api_exact(void)
{
    const char *app = "t_text";
    syrpc_conn *c = connect_app(app), *w = connect_app(app);
    char id[SYRPC_ID_SIZE], *result = NULL;
    syrpc_request *req;
    test_server s;

    CHECK(c && w, "connect");
    server_start(&s, "", app, 0, handlers);
    for (size_t i = 0; i < sizeof(exact_cases) / sizeof(exact_cases[0]); i++) {
        CHECK(syrpc_call_text(c, "echo_text", exact_cases[i], 10000, &result) == SYRPC_OK, "%s: %s",
              exact_cases[i], syrpc_error_message(c));
        CHECK(jsonb_equal(exact_cases[i], result), "sent %s, got %s", exact_cases[i], result);
        syrpc_free(result);
    }
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    /* a worker of its own: put_request_text, claim (no data needed), put_result_text, get_result_text */
    CHECK(syrpc_put_request_text(c, "job", "[1.10, 9007199254740993.0]", id) == SYRPC_OK, "%s",
          syrpc_error_message(c));
    {
        char *stored = sql_value("SELECT data::text FROM syrpc.request WHERE result_id = '%s'", id);
        int same = stored && jsonb_equal(stored, "[1.10, 9007199254740993.0]") && strstr(stored, "9007199254740993.0");

        free(stored);
        CHECK(same, "request stored altered");
    }
    /* a json_t worker cannot hold 9007199254740993.0, but gets the request to answer or fail */
    CHECK(syrpc_get_request(w, 5000, &req) == SYRPC_BAD_INPUT, "%s", syrpc_error_message(w));
    CHECK(strcmp(syrpc_request_result_id(req), id) == 0 && syrpc_request_data(req) == NULL, "claimed another request");
    /* its text is there as stored, for a worker that can use it */
    CHECK(strstr(syrpc_request_data_text(req), "9007199254740993.0") != NULL, "text %s", syrpc_request_data_text(req));
    syrpc_request_free(req);
    CHECK(syrpc_put_result_text(w, id, "{\"n\": 12345678901234567.5}") == SYRPC_OK, "%s", syrpc_error_message(w));
    CHECK(syrpc_get_result_text(c, id, 5000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    CHECK(jsonb_equal(result, "{\"n\": 12345678901234567.5}") && strstr(result, "12345678901234567.5"), "got %s", result);
    syrpc_free(result);
    /* the server refuses text that is not JSON: 22P02, bad input, nothing queued */
    CHECK(syrpc_put_request_text(c, "job", "{not json", id) == SYRPC_BAD_INPUT, "%s", syrpc_status_name(syrpc_status_of(c)));
    CHECK(strcmp(syrpc_error_sqlstate(c), "22P02") == 0, "sqlstate %s", syrpc_error_sqlstate(c));
    CHECK(syrpc_call_text(c, "job", NULL, 100, &result) == SYRPC_BAD_INPUT && result == NULL, "NULL text");
    CHECK(stat_is(app, "queued", "0"), "queued");
    syrpc_finish(c);
    syrpc_finish(w);
    return 1;
}

/*
 * (Item 2a) A text handler's result that the server refuses (not JSON) fails
 * the request with the server's reason, and the loop goes on; NULL is
 * "handler failed".
 */
static int
test_text_handler_refused(void)
{
    const char *app = "t_text_bad";
    syrpc_conn *c = connect_app(app);
    char *result = NULL;
    test_server s;
    char *v;
    int ok;

    CHECK(c, "connect");
    server_start(&s, "", app, 0, handlers);
    CHECK(syrpc_call_text(c, "not_json", "{}", 10000, &result) == SYRPC_REQUEST_FAILED, "%s: %s",
          syrpc_status_name(syrpc_status_of(c)), syrpc_error_message(c));
    CHECK(strstr(syrpc_error_message(c), "invalid input syntax for type json") != NULL, "%s", syrpc_error_message(c));
    printf("#   %s\n", syrpc_error_message(c));
    CHECK(syrpc_call_text(c, "null_text", "{}", 10000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    CHECK(jsonb_equal(result, "{\"error\": \"handler failed\", \"type\": \"null_text\"}"), "got %s", result);
    syrpc_free(result);
    CHECK(syrpc_call_text(c, "echo_text", "[\"still serving\"]", 10000, &result) == SYRPC_OK, "%s",
          syrpc_error_message(c));
    syrpc_free(result);
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    /*
     * Counted once: a failed row waits for cleanup on the table path
     * (failed); a failed in-memory call leaves nothing behind, but the
     * counter since start (failed_total, when preloaded) has it.
     */
    v = sql_value("SELECT greatest(s.failed, coalesce(l.failed_total, 0)) FROM syrpc_stats s"
                  " LEFT JOIN syrpc_stats_latency l USING (app) WHERE app = '%s'", app);
    ok = v && strcmp(v, "1") == 0;
    free(v);
    CHECK(ok, "the failure is not counted once");
    CHECK(stat_is(app, "in_flight", "0"), "stats");
    syrpc_finish(c);
    return 1;
}

/*
 * (Item 2b) json_t out: reals go with the fewest digits that read back as
 * the same double (1.1, not 1.1000000000000001), so the server stores what
 * the json_t holds.
 */
static int
test_json_encode_shortest(void)
{
    static const struct { double d; const char *as; } reals[] = {
        { 1.1, "1.1" }, { 0.1 + 0.2, "0.30000000000000004" }, { 1e20, "1e20" }, { 5.0, "5" },
        { -0.0, "0" }, { 1.5e300, "1.5e300" }, { 123456.789, "123456.789" }, { 1e-7, "0.0000001" },
    };
    syrpc_conn *c = connect_app("t_encode");
    char id[SYRPC_ID_SIZE];

    CHECK(c, "connect");
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        json_t *data = json_pack("[f, I]", reals[i].d, (json_int_t) INT64_MAX);
        char expected[128], *stored;
        int same;

        CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "%s", syrpc_error_message(c));
        json_decref(data);
        stored = sql_value("SELECT data::text FROM syrpc.request WHERE result_id = '%s'", id);
        snprintf(expected, sizeof(expected), "[%s, 9223372036854775807]", reals[i].as);
        same = stored && jsonb_equal(stored, expected);
        printf("#   %.17g stored as %s\n", reals[i].d, stored ? stored : "(nothing)");
        free(stored);
        CHECK(same, "%.17g not stored as %s", reals[i].d, reals[i].as);
    }
    syrpc_finish(c);
    return 1;
}

/*
 * (Item 2b) json_t in: a number a json_t cannot hold exactly is refused
 * with SYRPC_BAD_INPUT naming it and pointing to the _text functions,
 * never altered; what it can hold (1.10) is taken.
 */
static int
test_json_decode_refuses(void)
{
    const char *app = "t_decode";
    syrpc_conn *c = connect_app(app), *w = connect_app(app);
    char id[SYRPC_ID_SIZE];
    syrpc_request *req;
    json_t *result = NULL;
    const char *params[2];
    int ok;

    CHECK(c && w, "connect");
    free(sql_value("DELETE FROM syrpc.request WHERE app = '%s'", app));
    /* requests: the worker gets the exact ones, is refused the others (type and result_id set) */
    for (size_t i = 0; i < sizeof(exact_cases) / sizeof(exact_cases[0]); i++) {
        if (strcmp(exact_cases[i], "1.10") == 0)
            continue;           /* that one a json_t holds: below */
        CHECK(sql_put(app, "job", exact_cases[i], id), "put");
        CHECK(syrpc_get_request(w, 5000, &req) == SYRPC_BAD_INPUT, "%s: got %s", exact_cases[i],
              syrpc_status_name(syrpc_status_of(w)));
        CHECK(req != NULL && syrpc_request_data(req) == NULL && strcmp(syrpc_request_result_id(req), id) == 0 &&
              strcmp(syrpc_request_type(req), "job") == 0 && jsonb_equal(syrpc_request_data_text(req), exact_cases[i]),
              "request not described");
        syrpc_request_free(req);
        CHECK(strstr(syrpc_error_message(w), "_text functions") != NULL && strstr(syrpc_error_hint(w), "_text"),
              "no pointer to the _text functions: %s", syrpc_error_message(w));
        printf("#   %s\n", syrpc_error_message(w));
        params[0] = app;
        params[1] = id;
        free(sqlp(NULL, "SELECT syrpc_fail_request($1, $2::uuid, 'test')", 2, params, NULL, NULL, 0));
    }
    CHECK(strstr(syrpc_error_message(w), "0.12345678901234567890123") != NULL, "which number: %s",
          syrpc_error_message(w));
    CHECK(sql_put(app, "job", "[1.10, 100000000000000000000, -0.0]", id), "put");
    CHECK(syrpc_get_request(w, 5000, &req) == SYRPC_OK, "%s", syrpc_error_message(w));
    ok = json_real_value(json_array_get(syrpc_request_data(req), 0)) == 1.1 &&
        json_real_value(json_array_get(syrpc_request_data(req), 1)) == 1e20;
    /* answered with what it got: the stored result equals the request as jsonb */
    CHECK(syrpc_put_result(w, syrpc_request_result_id(req), syrpc_request_data(req)) == SYRPC_OK, "%s",
          syrpc_error_message(w));
    syrpc_request_free(req);
    CHECK(ok, "1.10 or 1e20 not read as reals");
    CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    json_decref(result);
    /* a result with a number a json_t cannot hold */
    CHECK(sql_put(app, "job", "{}", id), "put");
    CHECK(syrpc_get_request(w, 5000, &req) == SYRPC_OK, "%s", syrpc_error_message(w));
    syrpc_request_free(req);
    params[0] = app;
    params[1] = id;
    free(sqlp(NULL, "SELECT syrpc_put_result($1, $2::uuid, '[12345678901234567.5]')", 2, params, NULL, NULL, 0));
    CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_BAD_INPUT && result == NULL, "%s",
          syrpc_status_name(syrpc_status_of(c)));
    CHECK(strstr(syrpc_error_message(c), "12345678901234567.5") != NULL, "%s", syrpc_error_message(c));
    printf("#   %s\n", syrpc_error_message(c));
    syrpc_finish(c);
    syrpc_finish(w);
    return 1;
}

/*
 * (Item 2b) Through a json_t handler in syrpc_serve, data it can hold comes
 * back equal as jsonb; a request it cannot hold exactly is failed (see
 * test_serve_fails_unrepresentable), never answered altered.
 */
static int
test_json_serve_exact(void)
{
    static const char *const cases[] = {
        "[1.1, 0.30000000000000004, 1e20, 1.5e300, 9223372036854775807, -9223372036854775808, 1.10]",
        "{\"a\": \"1.1000000000000001\", \"b\": [0.5, -0.0, 1e-7]}",
    };
    const char *app = "t_json_serve";
    syrpc_conn *c = connect_app(app);
    char *result = NULL;
    test_server s;

    CHECK(c, "connect");
    server_start(&s, "", app, 0, handlers);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(syrpc_call_text(c, "echo", cases[i], 10000, &result) == SYRPC_OK, "%s: %s", cases[i],
              syrpc_error_message(c));
        printf("#   %s -> %s\n", cases[i], result);
        CHECK(jsonb_equal(cases[i], result), "sent %s, got %s", cases[i], result);
        syrpc_free(result);
    }
    CHECK(syrpc_call_text(c, "echo", "[9007199254740993.0]", 10000, &result) == SYRPC_REQUEST_FAILED,
          "9007199254740993.0: %s", syrpc_status_name(syrpc_status_of(c)));
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    syrpc_finish(c);
    return 1;
}

/*
 * (Item 3) statement_timeout (here from the conninfo) shorter than a
 * slice: a worker serves requests put 1 s apart, and a caller with the
 * same setting and a 3 s timeout gets each result; a blocking call on a
 * request nobody answers times out after its own timeout, not sooner.
 */
static int
test_short_statement_timeout(void)
{
    const char *app = "t_stmt_to", *conninfo = "options='-c statement_timeout=300'";
    syrpc_conn *c = connect_app_with(conninfo, app);
    char id[SYRPC_ID_SIZE];
    json_t *data = json_integer(0), *result = NULL;
    test_server s;
    double t0;

    CHECK(c, "connect");
    server_start(&s, conninfo, app, 0, handlers);
    for (int i = 0; i < 3; i++) {
        double gap = now_s() + 1;
        int ok;

        while (now_s() < gap)   /* the worker waits through >3 statement timeouts */
            CHECK(!s.done, "syrpc_serve stopped: %s: %s", syrpc_status_name(s.status), s.message);
        json_integer_set(data, i);
        t0 = now_s();
        CHECK(syrpc_call(c, "echo", data, 3000, &result) == SYRPC_OK, "call %d: %s: %s", i,
              syrpc_status_name(syrpc_status_of(c)), syrpc_error_message(c));
        ok = json_integer_value(result) == i;
        json_decref(result);
        CHECK(ok, "wrong answer");
        printf("#   call %d answered in %.0f ms\n", i, (now_s() - t0) * 1000);
    }
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    /* a real queued request that nobody answers: the wait lasts its timeout */
    CHECK(syrpc_put_request(c, "nobody", data, id) == SYRPC_OK, "%s", syrpc_error_message(c));
    t0 = now_s();
    CHECK(syrpc_get_result(c, id, 1000, &result) == SYRPC_TIMEOUT, "%s: %s",
          syrpc_status_name(syrpc_status_of(c)), syrpc_error_message(c));
    CHECK(now_s() - t0 >= 1.0, "returned after %.3f s", now_s() - t0);
    json_decref(data);
    syrpc_finish(c);
    return 1;
}

/* query_start of the backend with application_name name waiting on a lock, or NULL. */
static char *
lock_wait_start(const char *name)
{
    return sql_value("SELECT query_start FROM pg_stat_activity WHERE application_name = '%s'"
                     " AND wait_event_type = 'Lock'", name);
}

/*
 * Wait (up to 10 s) until the backend named name has waited on a lock in
 * two statements: the first was cancelled by statement_timeout (57014)
 * and its client went on waiting with another.
 */
static int
retried_after_statement_timeout(const char *name)
{
    double deadline = now_s() + 10;
    char *first = NULL;

    while (now_s() < deadline) {
        char *now = lock_wait_start(name);

        if (first == NULL)
            first = now;
        else if (now != NULL && strcmp(now, first) != 0) {
            free(now);
            free(first);
            return 1;
        } else
            free(now);
        usleep(10000);
    }
    free(first);
    return 0;
}

typedef struct get_arg { syrpc_conn *c; const char *id; syrpc_status st; json_t *result; } get_arg;

static void *
get_main(void *arg)
{
    get_arg *g = arg;

    g->st = syrpc_get_result(g->c, g->id, 20000, &g->result);
    return NULL;
}

/*
 * (Item 3) A wait that statement_timeout cancels anyway (57014: here
 * while it waits for a lock on the queue) is a slice that ended: the
 * serve loop and a blocking get_result go on waiting, not stop with a
 * server error.  (A wait reads the app's settings, and a caller's the
 * request's state, first.)
 */
static int
test_statement_timeout_cancel(void)
{
    const char *app = "t_stmt_lock";
    PGconn *locker = PQconnectdb("");
    PGresult *res;
    test_server s;
    get_arg g;
    pthread_t t;
    char id[SYRPC_ID_SIZE];
    json_t *data = json_string("after the lock"), *result = NULL;
    syrpc_conn *c = connect_app(app);
    int ok;

    CHECK(c && PQstatus(locker) == CONNECTION_OK, "connect");
    /* the serve loop */
    server_start(&s, "application_name=t_stmt_worker options='-c statement_timeout=300'", app, 0, handlers);
    CHECK(wait_for(10, "1", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 't_stmt_worker'"
                   " AND wait_event = 'Extension'"), "worker never waited");
    res = PQexec(locker, "BEGIN; LOCK TABLE syrpc.app, syrpc.request IN ACCESS EXCLUSIVE MODE");
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "lock: %s", PQerrorMessage(locker));
    PQclear(res);
    ok = retried_after_statement_timeout("t_stmt_worker");
    PQclear(PQexec(locker, "COMMIT"));
    CHECK(ok, "the worker did not go on after statement_timeout: %s: %s", s.done ? syrpc_status_name(s.status) : "running",
          s.message);
    CHECK(syrpc_call(c, "echo", data, 10000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    ok = json_equal(data, result);
    json_decref(result);
    CHECK(ok, "wrong answer");
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    /* a blocking get_result on a real request */
    CHECK(syrpc_put_request(c, "echo", data, id) == SYRPC_OK, "%s", syrpc_error_message(c));
    g.c = connect_app_with("application_name=t_stmt_caller options='-c statement_timeout=300'", app);
    g.id = id;
    g.result = NULL;
    CHECK(g.c, "connect");
    res = PQexec(locker, "BEGIN; LOCK TABLE syrpc.app, syrpc.request IN ACCESS EXCLUSIVE MODE");
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK, "lock: %s", PQerrorMessage(locker));
    PQclear(res);
    pthread_create(&t, NULL, get_main, &g);
    ok = retried_after_statement_timeout("t_stmt_caller");
    PQclear(PQexec(locker, "COMMIT"));
    server_start(&s, "", app, 1, handlers);
    pthread_join(t, NULL);
    pthread_join(s.tid, NULL);
    CHECK(ok, "the caller did not go on after statement_timeout");
    CHECK(g.st == SYRPC_OK, "get_result: %s: %s", syrpc_status_name(g.st), syrpc_error_message(g.c));
    ok = json_equal(data, g.result);
    json_decref(g.result);
    CHECK(ok, "wrong result");
    syrpc_finish(g.c);
    json_decref(data);
    syrpc_finish(c);
    PQfinish(locker);
    return 1;
}

/* (Item 4) A negative timeout other than SYRPC_FOREVER is bad input in every blocking call. */
static int
test_negative_timeouts(void)
{
    const char *app = "t_negative";
    syrpc_conn *c = connect_app(app);
    json_t *data = json_object(), *result = NULL;
    char id[SYRPC_ID_SIZE], *text = NULL;
    syrpc_request *req;
    test_server s;

    CHECK(c, "connect");
    /* with these there, a call that took the timeout as "forever" would return at once with SYRPC_OK */
    CHECK(syrpc_put_request(c, "echo", data, id) == SYRPC_OK, "%s", syrpc_error_message(c));
    CHECK(syrpc_get_request(c, -2, &req) == SYRPC_BAD_INPUT, "get_request: %s", syrpc_status_name(syrpc_status_of(c)));
    CHECK(strstr(syrpc_error_message(c), "timeout_ms") != NULL, "%s", syrpc_error_message(c));
    syrpc_request_free(req);
    CHECK(syrpc_get_request(c, 5000, &req) == SYRPC_OK &&
          syrpc_put_result(c, syrpc_request_result_id(req), data) == SYRPC_OK, "%s", syrpc_error_message(c));
    syrpc_request_free(req);
    CHECK(syrpc_get_result(c, id, -1000, &result) == SYRPC_BAD_INPUT, "get_result: %s",
          syrpc_status_name(syrpc_status_of(c)));
    json_decref(result);
    CHECK(syrpc_get_result_text(c, id, -5, &text) == SYRPC_BAD_INPUT && text == NULL, "get_result_text");
    CHECK(syrpc_get_result(c, id, 0, &result) == SYRPC_OK, "the result was taken: %s", syrpc_error_message(c));
    json_decref(result);
    server_start(&s, "", app, 0, handlers);
    CHECK(syrpc_call(c, "echo", data, -3, &result) == SYRPC_BAD_INPUT, "call: %s", syrpc_status_name(syrpc_status_of(c)));
    json_decref(result);
    CHECK(syrpc_call_text(c, "echo", "{}", -30000, &text) == SYRPC_BAD_INPUT, "call_text");
    CHECK(syrpc_call(c, "echo", data, SYRPC_FOREVER, &result) == SYRPC_OK, "forever: %s", syrpc_error_message(c));
    json_decref(result);
    server_stop(&s);
    CHECK(stat_is(app, "queued", "0") && stat_is(app, "results_waiting", "0"), "something was queued");
    json_decref(data);
    syrpc_finish(c);
    return 1;
}

/* (Item 4) syrpc_connect checks the app name as the server does, before connecting. */
static int
test_app_name_checked(void)
{
    static const char *const bad[] = { "bad app", "a;b", "r\xc3\xa4pp", "a'b", "" };
    char long_name[SYRPC_NAME_MAX + 2];
    syrpc_conn *c;
    int ok;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = syrpc_connect("", bad[i]);
        CHECK(c != NULL, "out of memory");
        ok = syrpc_status_of(c) == SYRPC_BAD_INPUT && syrpc_pgconn(c) == NULL;
        printf("#   \"%s\": %s %s\n", bad[i], syrpc_error_sqlstate(c), syrpc_error_message(c));
        syrpc_finish(c);
        CHECK(ok, "app \"%s\" accepted at connect", bad[i]);
    }
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    c = syrpc_connect("", long_name);
    ok = syrpc_status_of(c) == SYRPC_BAD_INPUT;
    syrpc_finish(c);
    CHECK(ok, "64-byte app accepted");
    long_name[SYRPC_NAME_MAX] = '\0';
    c = syrpc_connect("", long_name);
    ok = syrpc_status_of(c) == SYRPC_OK;
    syrpc_finish(c);
    CHECK(ok, "63-byte app refused");
    c = syrpc_connect("", "Ok.name-1_x");
    ok = syrpc_status_of(c) == SYRPC_OK;
    syrpc_finish(c);
    CHECK(ok, "valid app refused");
    return 1;
}

/*
 * (Item 4) In a database without the extension, the first call says so,
 * with a hint; once it is created, calls work (no reconnect needed).
 */
static int
test_extension_missing(void)
{
    const char *db = "syrpc_text_noext";
    syrpc_conn *c;
    json_t *data = json_object(), *result = NULL;
    char id[SYRPC_ID_SIZE];
    int ok;

    CHECK(make_db(db, NULL), "create database");
    c = syrpc_connect("dbname=syrpc_text_noext", "t_noext");
    CHECK(syrpc_status_of(c) == SYRPC_OK, "connect: %s", syrpc_error_message(c));
    CHECK(syrpc_call(c, "echo", data, 1000, &result) == SYRPC_SERVER_ERROR, "%s", syrpc_status_name(syrpc_status_of(c)));
    printf("#   %s (HINT: %s)\n", syrpc_error_message(c), syrpc_error_hint(c));
    CHECK(strstr(syrpc_error_message(c), "the syrpc extension is not installed in database \"syrpc_text_noext\"") != NULL,
          "message: %s", syrpc_error_message(c));
    CHECK(strstr(syrpc_error_hint(c), "CREATE EXTENSION syrpc") != NULL, "hint: %s", syrpc_error_hint(c));
    CHECK(syrpc_put_request(c, "echo", data, id) == SYRPC_SERVER_ERROR &&
          strstr(syrpc_error_message(c), "not installed") != NULL, "put_request: %s", syrpc_error_message(c));
    PQclear(PQexec(syrpc_pgconn(c), "CREATE EXTENSION syrpc"));
    ok = syrpc_put_request(c, "echo", data, id) == SYRPC_OK;
    printf("#   after CREATE EXTENSION: %s\n", syrpc_status_name(syrpc_status_of(c)));
    syrpc_finish(c);
    drop_db(db);
    json_decref(data);
    CHECK(ok, "put_request after CREATE EXTENSION");
    return 1;
}

/*
 * (Item 4) The extension in a schema that is not on search_path: every
 * call finds it, serve loop included.
 */
static int
test_other_schema(void)
{
    const char *db = "syrpc_text_schema", *conninfo = "dbname=syrpc_text_schema";
    syrpc_conn *c, *w;
    json_t *data = json_pack("{s:s}", "schema", "rpc"), *result = NULL;
    char id[SYRPC_ID_SIZE], id2[SYRPC_ID_SIZE], *text = NULL;
    syrpc_request *req, *next;
    test_server s;
    int ok;

    CHECK(make_db(db, "CREATE SCHEMA \"my rpc\"; CREATE EXTENSION syrpc SCHEMA \"my rpc\""), "create");
    c = connect_app_with(conninfo, "t_schema");
    w = connect_app_with(conninfo, "t_schema");
    CHECK(c && w, "connect");
    server_start(&s, conninfo, "t_schema", 0, handlers);
    CHECK(syrpc_call(c, "echo", data, 10000, &result) == SYRPC_OK, "call: %s", syrpc_error_message(c));
    ok = json_equal(data, result);
    json_decref(result);
    CHECK(ok, "wrong answer");
    CHECK(syrpc_call_text(c, "echo_text", "[1.10]", 10000, &text) == SYRPC_OK, "call_text: %s", syrpc_error_message(c));
    syrpc_free(text);
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    /* a worker's own calls: get_request, put_result_get_request, fail_request, put_result */
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(syrpc_put_request(c, "job", data, id2) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(syrpc_get_request(w, 5000, &req) == SYRPC_OK && strcmp(syrpc_request_result_id(req), id) == 0,
          "get_request: %s", syrpc_error_message(w));
    CHECK(syrpc_put_result_get_request(w, id, syrpc_request_data(req), &next) == SYRPC_OK &&
          strcmp(syrpc_request_result_id(next), id2) == 0, "put_result_get_request: %s", syrpc_error_message(w));
    syrpc_request_free(req);
    syrpc_request_free(next);
    CHECK(syrpc_fail_request(w, id2, "given up in \"my rpc\"") == SYRPC_OK, "fail_request: %s",
          syrpc_error_message(w));
    CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_OK, "get_result: %s", syrpc_error_message(c));
    json_decref(result);
    CHECK(syrpc_get_result(c, id2, 5000, &result) == SYRPC_REQUEST_FAILED &&
          strstr(syrpc_error_message(c), "given up in \"my rpc\"") != NULL, "get_result: %s", syrpc_error_message(c));
    /* and after a reconnect (a probe of its own) */
    CHECK(syrpc_reconnect(w) == SYRPC_OK, "reconnect: %s", syrpc_error_message(w));
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(syrpc_get_request(w, 5000, &req) == SYRPC_OK, "get_request after reconnect: %s", syrpc_error_message(w));
    CHECK(syrpc_put_result(w, id, syrpc_request_data(req)) == SYRPC_OK, "put_result: %s", syrpc_error_message(w));
    CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_OK, "get_result: %s", syrpc_error_message(c));
    json_decref(result);
    syrpc_request_free(req);
    syrpc_finish(c);
    syrpc_finish(w);
    json_decref(data);
    drop_db(db);
    return 1;
}

/*
 * (Item 4) The calls an old extension lacks are known from its version,
 * not found by failing: on 1.0 a worker's calls work inside a transaction
 * block of its own, which a failed statement (42883) would abort.
 */
static int
test_version_flags(void)
{
    const char *db = "syrpc_text_v10", *conninfo = "dbname=syrpc_text_v10";
    syrpc_conn *c, *w;
    json_t *data = json_integer(10);
    char id[SYRPC_ID_SIZE];
    syrpc_request *req, *next;
    PGresult *res;
    syrpc_status st;

    CHECK(make_db(db, "CREATE EXTENSION syrpc VERSION '1.0'"), "create");
    c = connect_app_with(conninfo, "t_v10");
    w = connect_app_with(conninfo, "t_v10");
    CHECK(c && w, "connect");
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    res = PQexec(syrpc_pgconn(w), "BEGIN");
    PQclear(res);
    CHECK(syrpc_get_request(w, 0, &req) == SYRPC_OK, "get_request in a transaction: %s", syrpc_error_message(w));
    st = syrpc_put_result_get_request(w, syrpc_request_result_id(req), data, &next);
    syrpc_request_free(req);
    syrpc_request_free(next);
    CHECK(st == SYRPC_OK, "put_result_get_request in a transaction: %s", syrpc_error_message(w));
    res = PQexec(syrpc_pgconn(w), "ROLLBACK");
    PQclear(res);
    /* extension 1.0 has no syrpc_fail_request: said so without asking the server */
    CHECK(syrpc_fail_request(w, id, "why") == SYRPC_SERVER_ERROR && strstr(syrpc_error_message(w), "1.3"),
          "fail_request on 1.0: %s", syrpc_error_message(w));
    syrpc_finish(c);
    syrpc_finish(w);
    json_decref(data);
    drop_db(db);
    return 1;
}

/*
 * (Item 1) With extension 1.2 (no syrpc_fail_request) an unrepresentable
 * request is answered with an error object that says why, and the serve
 * loop goes on.
 */
static int
test_unrepresentable_on_1_2(void)
{
    const char *db = "syrpc_text_v12", *conninfo = "dbname=syrpc_text_v12";
    syrpc_conn *c;
    char *result = NULL;
    test_server s;

    CHECK(make_db(db, "CREATE EXTENSION syrpc VERSION '1.2'"), "create");
    c = connect_app_with(conninfo, "t_v12");
    CHECK(c, "connect");
    server_start(&s, conninfo, "t_v12", 0, handlers);
    CHECK(syrpc_call_text(c, "echo", "[1e400]", 10000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    printf("#   %s\n", result);
    CHECK(strstr(result, "\"error\": \"request failed\"") && strstr(result, "cannot be represented by the C library"),
          "answer %s", result);
    syrpc_free(result);
    CHECK(syrpc_call_text(c, "echo", "[1.5]", 10000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    CHECK(jsonb_equal(result, "[1.5]"), "answer %s", result);
    syrpc_free(result);
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    syrpc_finish(c);
    drop_db(db);
    return 1;
}

/* syrpc_fail_request: the caller gets SY001 with the reason; the reason's length is checked. */
static int
test_fail_request(void)
{
    const char *app = "t_fail";
    syrpc_conn *c = connect_app(app), *w = connect_app(app);
    json_t *data = json_object(), *result = NULL;
    char id[SYRPC_ID_SIZE], expected[128], reason[SYRPC_ID_SIZE + 1100];
    syrpc_request *req;

    CHECK(c && w, "connect");
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put");
    CHECK(syrpc_get_request(w, 5000, &req) == SYRPC_OK, "%s", syrpc_error_message(w));
    CHECK(syrpc_fail_request(w, syrpc_request_result_id(req), "") == SYRPC_BAD_INPUT, "empty reason");
    memset(reason, 'r', 1025);
    reason[1025] = '\0';
    CHECK(syrpc_fail_request(w, syrpc_request_result_id(req), reason) == SYRPC_BAD_INPUT, "1025-byte reason");
    CHECK(syrpc_fail_request(w, syrpc_request_result_id(req), NULL) == SYRPC_BAD_INPUT, "NULL reason");
    CHECK(syrpc_fail_request(w, syrpc_request_result_id(req), "disk on fire") == SYRPC_OK, "%s",
          syrpc_error_message(w));
    syrpc_request_free(req);
    CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_REQUEST_FAILED, "%s", syrpc_status_name(syrpc_status_of(c)));
    snprintf(expected, sizeof(expected), "request %s failed: disk on fire", id);
    CHECK(strcmp(syrpc_error_message(c), expected) == 0, "message %s", syrpc_error_message(c));
    CHECK(syrpc_get_request(w, 0, &req) == SYRPC_TIMEOUT, "a failed request came back");
    CHECK(stat_is(app, "failed", "1"), "stats");
    json_decref(data);
    syrpc_finish(c);
    syrpc_finish(w);
    return 1;
}

/* Run the test if its name has the filter (argv[1]) in it, or there is none. */
static const char *only;

static void
test(const char *name, int (*fn)(void))
{
    if (only == NULL || strstr(name, only) != NULL)
        run_test(name, fn);
}

int
main(int argc, char **argv)
{
    tests_init();
    only = argc > 1 ? argv[1] : NULL;
    printf("# libsyrpc %s (runtime %d)\n", SYRPC_VERSION, syrpc_version());
    test("serve fails requests a json_t cannot hold, with a reason, and goes on", test_serve_fails_unrepresentable);
    test("text API: numbers come back equal as jsonb", test_text_api_exact);
    test("text handler: a result the server refuses fails the request", test_text_handler_refused);
    test("json_t out: reals with the shortest round-trip digits", test_json_encode_shortest);
    test("json_t in: numbers a json_t cannot hold are refused, naming them", test_json_decode_refuses);
    test("json_t handler: what it holds comes back equal as jsonb", test_json_serve_exact);
    test("statement_timeout shorter than a slice: serve and calls go on", test_short_statement_timeout);
    test("a wait cancelled by statement_timeout (57014) is a slice that ended", test_statement_timeout_cancel);
    test("negative timeouts other than SYRPC_FOREVER are bad input", test_negative_timeouts);
    test("syrpc_connect checks the app name", test_app_name_checked);
    test("extension missing: the first call says so, with a hint", test_extension_missing);
    test("extension in a schema not on search_path", test_other_schema);
    test("extension 1.0: calls known from the version, not from failures", test_version_flags);
    test("extension 1.2: unrepresentable request answered with an error object", test_unrepresentable_on_1_2);
    test("syrpc_fail_request", test_fail_request);
    return test_summary();
}
