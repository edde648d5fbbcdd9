/*
 * semantics_test.c: libsyrpc 2.2.0 on extension 1.7's RPC semantics,
 * against a real server: remote errors (syrpc_put_error, a handler's
 * syrpc_reply_error through syrpc_serve one at a time and in batches),
 * cancel (queued, in flight, a caller already waiting), deadlines (past,
 * passing while queued, what a worker sees of them, in any time zone),
 * extending a lease from inside a handler, releasing a request without
 * counting its attempt, and what the new calls say against extension 1.6.
 *
 * Waits are on conditions with deadlines (a claim that must time out, a
 * flag a handler sets), never sleeps.  Run under valgrind by
 * test/run-client-tests.sh.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testlib.h"

/* ---- helpers ---- */

/* Wait up to secs for the worker to end by itself (its max_requests); then join it.  1 if it did. */
static int
ended_within(test_server *s, double secs)
{
    double deadline = now_s() + secs;

    while (!__atomic_load_n(&s->done, __ATOMIC_SEQ_CST)) {
        if (now_s() > deadline) {
            server_stop(s);
            return 0;
        }
        usleep(5000);
    }
    pthread_join(s->tid, NULL);
    return 1;
}

/* Wait up to secs until *flag is set; 1 if it was. */
static int
flag_within(int *flag, double secs)
{
    double deadline = now_s() + secs;

    while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST)) {
        if (now_s() > deadline)
            return 0;
        usleep(2000);
    }
    return 1;
}

/* The same JSON as jsonb, as the server compares them. */
static int
jsonb_equal(const char *a, const char *b)
{
    PGconn *pg = PQconnectdb("");
    const char *params[2] = { a, b };
    PGresult *res = PQexecParams(pg, "SELECT $1::jsonb = $2::jsonb", 2, NULL, params, NULL, NULL, 0);
    int eq = PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

    PQclear(res);
    PQfinish(pg);
    return eq;
}

/* A number the server computes (SQL), or NAN. */
static double
sql_number(const char *sql)
{
    char *v = sql_value("%s", sql);
    double d = v ? strtod(v, NULL) : NAN;

    free(v);
    return d;
}

/* The server's clock, in seconds since the epoch. */
static double
server_now(void)
{
    return sql_number("SELECT extract(epoch FROM clock_timestamp())");
}

/* The status is st, and the server's SQLSTATE state ("" for a refusal of the library's own). */
static int
is_status(syrpc_conn *c, syrpc_status got, syrpc_status want, const char *state)
{
    if (got == want && strcmp(syrpc_error_sqlstate(c), state) == 0)
        return 1;
    diag("  got %s (%s: %s), expected %s (%s)", syrpc_status_name(got), syrpc_error_sqlstate(c),
         syrpc_error_message(c), syrpc_status_name(want), state);
    return 0;
}

/* ---- the worker's handlers ---- */

/* The handle of the worker that syrpc_serve runs on (the setup sets it): the handlers' calls go on it. */
static syrpc_conn *serving;
/* The batch the next worker serves in. */
static int batch_size = 8;

/* Flags between a handler and the test (__atomic). */
static int extended, started, go;
static syrpc_status extend_status;
static int seen_attempts[4], nseen_attempts;

/* The last deadline and attempts a handler saw, by type "note". */
typedef struct noted { char id[SYRPC_ID_SIZE]; double deadline; int attempts; } noted;
#define NOTED_MAX 16
static noted notes[NOTED_MAX];
static int nnotes;

static const noted *
note_of(const char *id)
{
    for (int i = 0; i < nnotes; i++)
        if (strcmp(notes[i].id, id) == 0)
            return &notes[i];
    return NULL;
}

/* Notes the request's deadline and attempts, answers with its data. */
static json_t *
note(const syrpc_request *req, void *arg)
{
    (void) arg;
    if (nnotes < NOTED_MAX) {
        snprintf(notes[nnotes].id, SYRPC_ID_SIZE, "%s", syrpc_request_result_id(req));
        notes[nnotes].deadline = syrpc_request_deadline(req);
        notes[nnotes++].attempts = syrpc_request_attempts(req);
    }
    return json_deep_copy(syrpc_request_data(req));
}

/* An error with a detail of the request's own: {"type": TYPE, "data": DATA}. */
static json_t *
err_json(const syrpc_request *req, void *arg)
{
    json_t *detail = json_pack("{s:s, s:O}", "type", syrpc_request_type(req), "data", syrpc_request_data(req));

    (void) arg;
    if (syrpc_reply_error(req, "bad thing", detail) != SYRPC_OK)
        diag("syrpc_reply_error failed");
    json_decref(detail);
    return NULL;
}

/* An error with a detail as text, and a result too: the error wins (1.7); before, the result answers. */
static char *
err_text(const syrpc_request *req, void *arg)
{
    (void) arg;
    if (syrpc_reply_error_text(req, "bad text thing", "[1, 2.50, 12345678901234567890.5]") != SYRPC_OK)
        diag("syrpc_reply_error_text failed");
    return strdup("\"the result of err_text\"");
}

/* syrpc_reply_error refused (an empty message, one too long): nothing set, the failing handler's object answers. */
static syrpc_status err_bad_status[2];

static json_t *
err_bad(const syrpc_request *req, void *arg)
{
    char long_message[1026];

    (void) arg;
    memset(long_message, 'm', 1025);
    long_message[1025] = '\0';
    err_bad_status[0] = syrpc_reply_error(req, "", NULL);
    err_bad_status[1] = syrpc_reply_error_text(req, long_message, NULL);
    return NULL;
}

/* A detail of 2 kB: over the worker's syrpc.max_payload_size of 1 kB. */
static char *
err_big(const syrpc_request *req, void *arg)
{
    char *detail = malloc(2050);

    (void) arg;
    memset(detail, 'x', 2049);
    detail[0] = detail[2048] = '"';
    detail[2049] = '\0';
    syrpc_reply_error_text(req, "big detail", detail);
    free(detail);
    return NULL;
}

/* Answers its own request with an error on the loop's handle, and returns a result all the same. */
static json_t *
err_settled(const syrpc_request *req, void *arg)
{
    (void) arg;
    if (syrpc_put_error(serving, syrpc_request_result_id(req), "put by the handler", NULL) != SYRPC_OK)
        diag("err_settled: %s", syrpc_error_message(serving));
    return json_string("not this");
}

/* Waits (up to 20 s) until its request is cancelled, then answers: the answer is dropped. */
static json_t *
wait_cancel(const syrpc_request *req, void *arg)
{
    double deadline = now_s() + 20;
    int cancelled = 0;

    (void) arg;
    __atomic_store_n(&started, 1, __ATOMIC_SEQ_CST);
    while (!cancelled && now_s() < deadline) {
        if (syrpc_is_cancelled(serving, syrpc_request_result_id(req), &cancelled) != SYRPC_OK) {
            diag("syrpc_is_cancelled: %s", syrpc_error_message(serving));
            break;
        }
        if (!cancelled)
            usleep(5000);
    }
    extend_status = syrpc_extend_lease(serving, syrpc_request_result_id(req), 10);
    __atomic_store_n(&extended, cancelled, __ATOMIC_SEQ_CST);
    return json_string("after the cancel");
}

/* Extends its lease to 30 s, then waits (up to 30 s) for go. */
static json_t *
slow(const syrpc_request *req, void *arg)
{
    (void) arg;
    if (nseen_attempts < 4)
        seen_attempts[nseen_attempts++] = syrpc_request_attempts(req);
    extend_status = syrpc_extend_lease(serving, syrpc_request_result_id(req), 30);
    __atomic_store_n(&extended, 1, __ATOMIC_SEQ_CST);
    flag_within(&go, 30);
    return json_string("slow, extended");
}

/* The same without extending its lease. */
static json_t *
slow_noextend(const syrpc_request *req, void *arg)
{
    (void) req;
    (void) arg;
    __atomic_store_n(&started, 1, __ATOMIC_SEQ_CST);
    flag_within(&go, 30);
    return json_string("slow, not extended");
}

/* Releases its request the first time it gets it, then echoes it. */
static json_t *
release_once(const syrpc_request *req, void *arg)
{
    test_server *s = arg;

    if (nseen_attempts < 4)
        seen_attempts[nseen_attempts++] = syrpc_request_attempts(req);
    if (__atomic_add_fetch(&s->handled, 1, __ATOMIC_SEQ_CST) == 1) {
        if (syrpc_release(serving, syrpc_request_result_id(req), 0) != SYRPC_OK)
            diag("release_once: %s", syrpc_error_message(serving));
        return NULL;
    }
    return json_deep_copy(syrpc_request_data(req));
}

static void
handlers(syrpc_conn *c, test_server *s)
{
    serving = c;
    if (syrpc_set_batch(c, batch_size) != SYRPC_OK)
        diag("syrpc_set_batch(%d): %s", batch_size, syrpc_error_message(c));
    serve_echo(c, s);
    syrpc_register(c, "note", note, NULL);
    syrpc_register(c, "err", err_json, NULL);
    syrpc_register_text(c, "err_text", err_text, NULL);
    syrpc_register(c, "err_bad", err_bad, NULL);
    syrpc_register_text(c, "err_big", err_big, NULL);
    syrpc_register(c, "err_settled", err_settled, NULL);
    syrpc_register(c, "wait_cancel", wait_cancel, NULL);
    syrpc_register(c, "slow", slow, NULL);
    syrpc_register(c, "slow_noextend", slow_noextend, NULL);
    syrpc_register(c, "release_once", release_once, s);
}

/* ---- tests ---- */

static int
test_version_and_names(void)
{
    CHECK(syrpc_version() >= 20200 && syrpc_version() < 30000 && syrpc_version() == SYRPC_VERSION_NUM,
          "version %d (%s)", syrpc_version(), SYRPC_VERSION);
    CHECK(SYRPC_NO_MEMORY == 7 && SYRPC_REMOTE_ERROR == 8 && SYRPC_CANCELLED == 9, "the enum renumbered");
    CHECK(strcmp(syrpc_status_name(SYRPC_REMOTE_ERROR), "remote error") == 0, "%s",
          syrpc_status_name(SYRPC_REMOTE_ERROR));
    CHECK(strcmp(syrpc_status_name(SYRPC_CANCELLED), "cancelled") == 0, "%s", syrpc_status_name(SYRPC_CANCELLED));
    CHECK(strcmp(syrpc_status_name((syrpc_status) 10), "unknown status") == 0, "status 10");
    return 1;
}

/* Claim the request id on w (it must be the next one); 1 if it was. */
static int
claim_it(syrpc_conn *w, const char *id, syrpc_request **req)
{
    CHECK(syrpc_get_request(w, 5000, req) == SYRPC_OK, "claim: %s", syrpc_error_message(w));
    CHECK(strcmp(syrpc_request_result_id(*req), id) == 0, "claimed %s, not %s", syrpc_request_result_id(*req), id);
    return 1;
}

/*
 * syrpc_put_error's message and detail reach the caller as
 * SYRPC_REMOTE_ERROR (SY006), verbatim: a message of 1024 bytes with
 * multibyte characters, a detail with every digit of its numbers, a
 * detail of 100 kB, none; and again on every get.  What the library and
 * the server refuse.
 */
static int
test_remote_error_round_trip(void)
{
    syrpc_conn *c = connect_app("s_err"), *w = connect_app("s_err");
    char id[SYRPC_ID_SIZE], message[1025], *text = NULL, *bigdetail = malloc(100 * 1024 + 3);
    const char *detail = "{\"user\": 42, \"n\": 12345678901234567890.5, \"why\": \"\\u00e9 \\\"quoted\\\"\"}";
    json_t *data = json_object(), *result = NULL;
    syrpc_request *req;

    CHECK(c && w && bigdetail, "connect");
    /* 1024 bytes: 'é' (2 bytes) and ASCII */
    for (int i = 0; i < 1024; i += 2)
        memcpy(message + i, i % 4 == 0 ? "\xc3\xa9" : "ab", 2);
    message[1024] = '\0';
    memset(bigdetail, 'y', 100 * 1024 + 2);
    bigdetail[0] = bigdetail[100 * 1024 + 1] = '"';
    bigdetail[100 * 1024 + 2] = '\0';

    /* message and detail (text), and every get again */
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(claim_it(w, id, &req), "claim");
    CHECK(syrpc_put_error_text(w, id, "no such user: 42", detail) == SYRPC_OK, "put_error: %s",
          syrpc_error_message(w));
    syrpc_request_free(req);
    for (int i = 0; i < 3; i++) {
        syrpc_status st = i == 1 ? syrpc_get_result_text(c, id, 0, &text) : syrpc_get_result(c, id, 5000, &result);

        CHECK(is_status(c, st, SYRPC_REMOTE_ERROR, "SY006"), "get %d", i);
        CHECK(result == NULL && text == NULL, "a result with the error");
        CHECK(strcmp(syrpc_error_message(c), "no such user: 42") == 0, "message: %s", syrpc_error_message(c));
        CHECK(jsonb_equal(syrpc_error_detail(c), detail), "detail: %s", syrpc_error_detail(c));
        CHECK(strstr(syrpc_error_detail(c), "12345678901234567890.5") != NULL, "digits lost: %s",
              syrpc_error_detail(c));
    }

    /* a message of 1024 bytes, no detail (json_t NULL) */
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(claim_it(w, id, &req), "claim");
    CHECK(syrpc_put_error(w, id, message, NULL) == SYRPC_OK, "put_error: %s", syrpc_error_message(w));
    syrpc_request_free(req);
    CHECK(is_status(c, syrpc_get_result(c, id, 5000, &result), SYRPC_REMOTE_ERROR, "SY006"), "get");
    CHECK(strcmp(syrpc_error_message(c), message) == 0, "the message of 1024 bytes differs (%zu bytes back)",
          strlen(syrpc_error_message(c)));
    CHECK(syrpc_error_detail(c)[0] == '\0', "a detail: %s", syrpc_error_detail(c));

    /* a detail of 100 kB, as a json_t */
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(claim_it(w, id, &req), "claim");
    {
        json_t *big = json_loads(bigdetail, JSON_DECODE_ANY, NULL);
        syrpc_status st = syrpc_put_error(w, id, "big", big);

        json_decref(big);
        CHECK(st == SYRPC_OK, "put_error: %s", syrpc_error_message(w));
    }
    syrpc_request_free(req);
    CHECK(is_status(c, syrpc_get_result(c, id, 5000, &result), SYRPC_REMOTE_ERROR, "SY006"), "get");
    CHECK(strcmp(syrpc_error_detail(c), bigdetail) == 0, "the detail of 100 kB differs (%zu bytes back)",
          strlen(syrpc_error_detail(c)));
    /* and a later call clears it */
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK && syrpc_error_detail(c)[0] == '\0',
          "detail after success: %.40s", syrpc_error_detail(c));

    /* refused: by the library (no SQLSTATE), and by the server */
    CHECK(claim_it(w, id, &req), "claim");
    CHECK(is_status(w, syrpc_put_error(w, id, "", NULL), SYRPC_BAD_INPUT, ""), "empty message");
    CHECK(is_status(w, syrpc_put_error(w, id, NULL, NULL), SYRPC_BAD_INPUT, ""), "NULL message");
    message[1023] = 'x';
    strcat(message, "y");       /* 1025 bytes */
    CHECK(is_status(w, syrpc_put_error(w, id, message, NULL), SYRPC_BAD_INPUT, ""), "1025 bytes");
    CHECK(is_status(w, syrpc_put_error(w, "", "m", NULL), SYRPC_BAD_INPUT, ""), "empty result_id");
    CHECK(is_status(w, syrpc_put_error_text(w, id, "m", "{not json"), SYRPC_BAD_INPUT, "22P02"), "not JSON");
    CHECK(is_status(w, syrpc_put_error(w, "00000000-0000-0000-0000-000000000001", "m", NULL), SYRPC_BAD_INPUT,
                    "SY004"), "unknown result_id");
    CHECK(syrpc_put_error(w, id, "at last", NULL) == SYRPC_OK, "%s", syrpc_error_message(w));
    CHECK(is_status(w, syrpc_put_error(w, id, "again", NULL), SYRPC_BAD_INPUT, "SY004"), "answered twice");
    syrpc_request_free(req);
    CHECK(is_status(c, syrpc_get_result(c, id, 5000, &result), SYRPC_REMOTE_ERROR, "SY006"), "get");
    CHECK(strcmp(syrpc_error_message(c), "at last") == 0, "message: %s", syrpc_error_message(c));
    /* syrpc_reply_error outside a handler's request */
    CHECK(syrpc_reply_error(NULL, "m", NULL) == SYRPC_BAD_INPUT, "reply_error(NULL)");
    json_decref(data);
    free(bigdetail);
    syrpc_finish(c);
    syrpc_finish(w);
    return 1;
}

/* The types served in test_handler_errors, in order, and what their callers get. */
static const char *const error_types[] = {
    "echo", "err", "echo", "err_text", "err_bad", "err_big", "err_settled", "echo",
};
#define NERRORS ((int) (sizeof(error_types) / sizeof(error_types[0])))

static int
check_handler_answers(syrpc_conn *c, char ids[][SYRPC_ID_SIZE], int batch)
{
    char *text;

    for (int i = 0; i < NERRORS; i++) {
        const char *type = error_types[i];
        syrpc_status st = syrpc_get_result_text(c, ids[i], 5000, &text);
        char data[32];

        snprintf(data, sizeof(data), "{\"i\": %d}", i);
        if (strcmp(type, "echo") == 0) {
            CHECK(st == SYRPC_OK && strcmp(text, data) == 0, "batch %d, %s: %s %s", batch, type,
                  syrpc_status_name(st), text ? text : syrpc_error_message(c));
        } else if (strcmp(type, "err") == 0) {
            char want[128];

            snprintf(want, sizeof(want), "{\"type\": \"err\", \"data\": %s}", data);
            CHECK(is_status(c, st, SYRPC_REMOTE_ERROR, "SY006"), "batch %d, %s", batch, type);
            CHECK(strcmp(syrpc_error_message(c), "bad thing") == 0 && jsonb_equal(syrpc_error_detail(c), want),
                  "batch %d, %s: %s, detail %s", batch, type, syrpc_error_message(c), syrpc_error_detail(c));
        } else if (strcmp(type, "err_text") == 0) {
            CHECK(is_status(c, st, SYRPC_REMOTE_ERROR, "SY006"), "batch %d, %s", batch, type);
            CHECK(strcmp(syrpc_error_message(c), "bad text thing") == 0 &&
                  strcmp(syrpc_error_detail(c), "[1, 2.50, 12345678901234567890.5]") == 0,
                  "batch %d, %s: %s, detail %s", batch, type, syrpc_error_message(c), syrpc_error_detail(c));
        } else if (strcmp(type, "err_bad") == 0) {
            CHECK(st == SYRPC_OK && jsonb_equal(text, "{\"error\": \"handler failed\", \"type\": \"err_bad\"}"),
                  "batch %d, %s: %s %s", batch, type, syrpc_status_name(st), text ? text : syrpc_error_message(c));
            CHECK(err_bad_status[0] == SYRPC_BAD_INPUT && err_bad_status[1] == SYRPC_BAD_INPUT,
                  "reply_error with a bad message: %s, %s", syrpc_status_name(err_bad_status[0]),
                  syrpc_status_name(err_bad_status[1]));
        } else if (strcmp(type, "err_big") == 0) {
            CHECK(is_status(c, st, SYRPC_REQUEST_FAILED, "SY001"), "batch %d, %s", batch, type);
            CHECK(strstr(syrpc_error_message(c), "the server refused the handler's error: ") != NULL,
                  "batch %d, %s: %s", batch, type, syrpc_error_message(c));
            diag("  %s: %s", type, syrpc_error_message(c));
        } else {
            CHECK(is_status(c, st, SYRPC_REMOTE_ERROR, "SY006"), "batch %d, %s", batch, type);
            CHECK(strcmp(syrpc_error_message(c), "put by the handler") == 0, "batch %d, %s: %s", batch, type,
                  syrpc_error_message(c));
        }
        syrpc_free(text);
    }
    return 1;
}

/*
 * A handler's error through syrpc_serve (syrpc_reply_error, _text), one at
 * a time and in a batch of 8: each error caller gets SYRPC_REMOTE_ERROR
 * with its message and detail, the echoes their data; an error wins over
 * a result the handler returned; a refused reply_error leaves the failing
 * handler's object; a detail the server refuses gives the request up; a
 * request the handler answered itself is left alone.  The loop counts
 * them all as served (max_requests ends it).
 */
static int
test_handler_errors(void)
{
    const int batches[] = { 1, 8 };
    syrpc_conn *c = connect_app("s_handler");

    CHECK(c, "connect");
    for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        char ids[NERRORS][SYRPC_ID_SIZE], data[32];
        test_server s;

        for (int i = 0; i < NERRORS; i++) {
            snprintf(data, sizeof(data), "{\"i\": %d}", i);
            CHECK(syrpc_put_request_text(c, error_types[i], data, ids[i]) == SYRPC_OK, "put: %s",
                  syrpc_error_message(c));
        }
        batch_size = batches[b];
        server_start(&s, "options='-c syrpc.max_payload_size=1'", "s_handler", NERRORS, handlers);
        CHECK(ended_within(&s, 30), "batch %d: the worker did not serve %d requests", batches[b], NERRORS);
        CHECK(s.status == SYRPC_OK, "serve: %s: %s", syrpc_status_name(s.status), s.message);
        CHECK(check_handler_answers(c, ids, batches[b]), "batch %d", batches[b]);
    }

    /* syrpc_call (CALL syrpc_call; in memory when the library is preloaded) */
    {
        test_server s;
        json_t *data = json_pack("{s:i}", "i", 7), *result = NULL;
        char *text = NULL;

        batch_size = 1;
        server_start(&s, "", "s_handler", 0, handlers);
        CHECK(is_status(c, syrpc_call(c, "err", data, 10000, &result), SYRPC_REMOTE_ERROR, "SY006"), "call err");
        CHECK(result == NULL && strcmp(syrpc_error_message(c), "bad thing") == 0 &&
              jsonb_equal(syrpc_error_detail(c), "{\"type\": \"err\", \"data\": {\"i\": 7}}"), "call err: %s, %s",
              syrpc_error_message(c), syrpc_error_detail(c));
        CHECK(is_status(c, syrpc_call_text(c, "err_text", "[]", 10000, &text), SYRPC_REMOTE_ERROR, "SY006"),
              "call err_text");
        CHECK(text == NULL && strcmp(syrpc_error_detail(c), "[1, 2.50, 12345678901234567890.5]") == 0,
              "call err_text: %s", syrpc_error_detail(c));
        CHECK(syrpc_call(c, "echo", data, 10000, &result) == SYRPC_OK && json_equal(result, data), "call echo: %s",
              syrpc_error_message(c));
        json_decref(result);
        json_decref(data);
        CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve: %s: %s", syrpc_status_name(s.status), s.message);
    }
    syrpc_finish(c);
    return 1;
}

/* A caller waiting for a result in a thread of its own. */
typedef struct waiter { syrpc_conn *c; char id[SYRPC_ID_SIZE]; syrpc_status st; char message[256]; } waiter;

static void *
waiter_main(void *arg)
{
    waiter *wt = arg;
    json_t *result = NULL;

    wt->st = syrpc_get_result(wt->c, wt->id, 20000, &result);
    snprintf(wt->message, sizeof(wt->message), "%s", syrpc_error_message(wt->c));
    json_decref(result);
    return NULL;
}

/*
 * Cancel a queued request: withdrawn, no worker gets it; its caller gets
 * SYRPC_CANCELLED at once and every time; a second cancel says it had
 * ended; a caller already waiting is told at once.  Unknown and other
 * apps' result_ids.
 */
static int
test_cancel_queued(void)
{
    syrpc_conn *c = connect_app("s_cancel"), *w = connect_app("s_cancel"), *other = connect_app("s_other");
    json_t *data = json_object(), *result = NULL;
    char id[SYRPC_ID_SIZE];
    syrpc_request *req = NULL;
    int cancelled = -1;
    double t0;
    waiter wt;
    pthread_t tid;

    CHECK(c && w && other, "connect");
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(syrpc_is_cancelled(w, id, &cancelled) == SYRPC_OK && cancelled == 0, "is_cancelled %d: %s", cancelled,
          syrpc_error_message(w));
    CHECK(syrpc_cancel(c, id, &cancelled) == SYRPC_OK && cancelled == 1, "cancel %d: %s", cancelled,
          syrpc_error_message(c));
    CHECK(syrpc_is_cancelled(w, id, &cancelled) == SYRPC_OK && cancelled == 1, "is_cancelled %d", cancelled);
    CHECK(syrpc_get_request(w, 300, &req) == SYRPC_TIMEOUT, "a worker got it: %s",
          req ? syrpc_request_result_id(req) : syrpc_error_message(w));
    for (int i = 0; i < 2; i++) {
        t0 = now_s();
        CHECK(is_status(c, syrpc_get_result(c, id, 5000, &result), SYRPC_CANCELLED, "SY007"), "get %d", i);
        CHECK(now_s() - t0 < 2, "get_result waited %.3f s", now_s() - t0);
        CHECK(strstr(syrpc_error_message(c), "was cancelled") != NULL, "message: %s", syrpc_error_message(c));
    }
    CHECK(syrpc_cancel(c, id, &cancelled) == SYRPC_OK && cancelled == 0, "second cancel: %d", cancelled);
    CHECK(is_status(c, syrpc_cancel(c, "00000000-0000-0000-0000-000000000001", &cancelled), SYRPC_BAD_INPUT,
                    "SY008"), "unknown");
    CHECK(is_status(other, syrpc_cancel(other, id, &cancelled), SYRPC_BAD_INPUT, "SY005"), "another app's");
    CHECK(is_status(other, syrpc_is_cancelled(other, id, &cancelled), SYRPC_BAD_INPUT, "SY005"), "another app's");
    CHECK(is_status(c, syrpc_cancel(c, "", &cancelled), SYRPC_BAD_INPUT, ""), "empty result_id");

    /* a caller already waiting */
    memset(&wt, 0, sizeof(wt));
    wt.c = c;
    CHECK(syrpc_put_request(c, "job", data, wt.id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    pthread_create(&tid, NULL, waiter_main, &wt);
    if (!wait_blocked(syrpc_pgconn(c)))
        diag("  the waiter did not block (it may not have started yet)");
    t0 = now_s();
    CHECK(syrpc_cancel(w, wt.id, &cancelled) == SYRPC_OK && cancelled == 1, "cancel: %s", syrpc_error_message(w));
    pthread_join(tid, NULL);
    CHECK(wt.st == SYRPC_CANCELLED, "the waiting caller got %s: %s", syrpc_status_name(wt.st), wt.message);
    CHECK(now_s() - t0 < 5, "the waiting caller was told after %.3f s", now_s() - t0);
    json_decref(data);
    syrpc_finish(c);
    syrpc_finish(w);
    syrpc_finish(other);
    return 1;
}

/*
 * Cancel in flight: the worker sees syrpc_is_cancelled, its
 * syrpc_extend_lease is SYRPC_CANCELLED (SY007), its release, answer,
 * error and give-up are accepted and dropped; the caller gets
 * SYRPC_CANCELLED.  The same through syrpc_serve: a handler that waits
 * for the cancel, whose answer is dropped and counted.
 */
static int
test_cancel_in_flight(void)
{
    syrpc_conn *c = connect_app("s_cancel2"), *w = connect_app("s_cancel2");
    json_t *data = json_object(), *result = NULL;
    char id[SYRPC_ID_SIZE];
    syrpc_request *req;
    int cancelled = -1;
    test_server s;

    CHECK(c && w, "connect");
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(claim_it(w, id, &req), "claim");
    CHECK(syrpc_is_cancelled(w, id, &cancelled) == SYRPC_OK && cancelled == 0, "is_cancelled in flight: %d",
          cancelled);
    CHECK(syrpc_cancel(c, id, &cancelled) == SYRPC_OK && cancelled == 1, "cancel: %d %s", cancelled,
          syrpc_error_message(c));
    CHECK(syrpc_is_cancelled(w, id, &cancelled) == SYRPC_OK && cancelled == 1, "is_cancelled: %d", cancelled);
    CHECK(is_status(w, syrpc_extend_lease(w, id, 10), SYRPC_CANCELLED, "SY007"), "extend_lease");
    CHECK(syrpc_release(w, id, 0) == SYRPC_OK, "release: %s", syrpc_error_message(w));
    CHECK(syrpc_put_error(w, id, "too late", NULL) == SYRPC_OK, "put_error: %s", syrpc_error_message(w));
    CHECK(syrpc_fail_request(w, id, "too late") == SYRPC_OK, "fail_request: %s", syrpc_error_message(w));
    CHECK(syrpc_put_result(w, id, data) == SYRPC_OK, "put_result: %s", syrpc_error_message(w));
    syrpc_request_free(req);
    CHECK(is_status(c, syrpc_get_result(c, id, 5000, &result), SYRPC_CANCELLED, "SY007"), "get");
    CHECK(syrpc_cancel(c, id, &cancelled) == SYRPC_OK && cancelled == 0, "second cancel: %d", cancelled);

    /* through syrpc_serve */
    __atomic_store_n(&started, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&extended, 0, __ATOMIC_SEQ_CST);
    CHECK(syrpc_put_request(c, "wait_cancel", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    batch_size = 8;
    server_start(&s, "", "s_cancel2", 1, handlers);
    CHECK(flag_within(&started, 10), "the handler did not start");
    CHECK(syrpc_cancel(c, id, &cancelled) == SYRPC_OK && cancelled == 1, "cancel: %d %s", cancelled,
          syrpc_error_message(c));
    CHECK(is_status(c, syrpc_get_result(c, id, 5000, &result), SYRPC_CANCELLED, "SY007"), "get");
    CHECK(ended_within(&s, 30), "the worker did not end after its one request");
    CHECK(s.status == SYRPC_OK, "serve: %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(__atomic_load_n(&extended, __ATOMIC_SEQ_CST), "the handler did not see the cancel");
    CHECK(extend_status == SYRPC_CANCELLED, "the handler's extend_lease: %s", syrpc_status_name(extend_status));
    CHECK(is_status(c, syrpc_get_result(c, id, 0, &result), SYRPC_CANCELLED, "SY007"), "get after the answer");
    json_decref(data);
    syrpc_finish(c);
    syrpc_finish(w);
    return 1;
}

/*
 * Deadlines: one already past is accepted, no worker gets the request,
 * and its caller gets SYRPC_REQUEST_FAILED (SY002) at once; one that
 * passes while the request is queued ends a caller's wait then; 0 and
 * INFINITY are none; what the library refuses.
 */
static int
test_deadline_expiry(void)
{
    syrpc_conn *c = connect_app("s_deadline"), *w = connect_app("s_deadline");
    json_t *data = json_object(), *result = NULL;
    char id[SYRPC_ID_SIZE];
    syrpc_request *req = NULL;
    syrpc_status st;
    double t0, took;

    CHECK(c && w, "connect");
    CHECK(syrpc_put_request_deadline(c, "job", data, server_now() - 1, id) == SYRPC_OK, "put: %s",
          syrpc_error_message(c));
    CHECK(syrpc_get_request(w, 300, &req) == SYRPC_TIMEOUT, "a worker got it: %s",
          req ? syrpc_request_result_id(req) : syrpc_error_message(w));
    t0 = now_s();
    st = syrpc_get_result(c, id, 5000, &result);
    CHECK(now_s() - t0 < 2, "get_result waited %.3f s", now_s() - t0);
    CHECK(is_status(c, st, SYRPC_REQUEST_FAILED, "SY002"), "get");
    CHECK(strstr(syrpc_error_message(c), "expired") != NULL, "message: %s", syrpc_error_message(c));

    /* a deadline 0.5 s ahead passes while the caller waits */
    CHECK(syrpc_put_request_deadline_text(c, "job", "[1]", server_now() + 0.5, id) == SYRPC_OK, "put: %s",
          syrpc_error_message(c));
    t0 = now_s();
    CHECK(is_status(c, syrpc_get_result(c, id, 10000, &result), SYRPC_REQUEST_FAILED, "SY002"), "get");
    took = now_s() - t0;
    diag("  a deadline 0.5 s ahead ended the caller's wait after %.3f s", took);
    CHECK(took >= 0.3 && took < 3, "the wait ended after %.3f s", took);
    CHECK(syrpc_get_request(w, 0, &req) == SYRPC_TIMEOUT, "a worker got it after its deadline");

    /* 0 and INFINITY: no deadline */
    for (int i = 0; i < 2; i++) {
        CHECK(syrpc_put_request_deadline(c, "job", data, i ? INFINITY : 0, id) == SYRPC_OK, "put: %s",
              syrpc_error_message(c));
        CHECK(claim_it(w, id, &req), "claim");
        syrpc_request_free(req);
        CHECK(syrpc_put_result(w, id, data) == SYRPC_OK, "%s", syrpc_error_message(w));
        CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
        json_decref(result);
        result = NULL;
    }
    /* refused */
    CHECK(is_status(c, syrpc_put_request_deadline(c, "job", data, -1, id), SYRPC_BAD_INPUT, ""), "-1");
    CHECK(is_status(c, syrpc_put_request_deadline(c, "job", data, NAN, id), SYRPC_BAD_INPUT, ""), "NaN");
    CHECK(is_status(c, syrpc_put_request_deadline(c, "job", data, -INFINITY, id), SYRPC_BAD_INPUT, ""), "-inf");
    CHECK(is_status(c, syrpc_put_request_deadline_text(c, "job", NULL, 5, id), SYRPC_BAD_INPUT, ""), "NULL data");
    CHECK(is_status(c, syrpc_put_request_deadline(c, "job", data, 1e300, id), SYRPC_BAD_INPUT, "22008"),
          "out of range");
    json_decref(data);
    syrpc_finish(c);
    syrpc_finish(w);
    return 1;
}

/* d is within 1 ms of want. */
#define NEAR(d, want) (fabs((d) - (want)) < 0.001)

/*
 * What a worker sees: its request's attempts and deadline, from
 * syrpc_get_request (on a session in a time zone with a UTC offset in
 * minutes, both ways) and in syrpc_serve's handlers (one at a time and in
 * a batch): the deadline given, or the request_ttl after the put if that
 * is earlier.
 */
static int
test_worker_sees_deadline(void)
{
    const char *zones[] = { "UTC", "Asia/Kathmandu", "America/St_Johns" };
    const int batches[] = { 1, 8 };
    syrpc_conn *c = connect_app("s_sees");
    json_t *data = json_object();
    char id[SYRPC_ID_SIZE], ids[3][SYRPC_ID_SIZE];
    syrpc_request *req;
    double d, put_at;

    CHECK(c, "connect");
    free(sql_value("SELECT syrpc_configure('s_sees', request_ttl => '1 hour')"));
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        char conninfo[128];
        syrpc_conn *w;

        snprintf(conninfo, sizeof(conninfo), "options='-c TimeZone=%s'", zones[z]);
        w = connect_app_with(conninfo, "s_sees");
        CHECK(w, "connect");
        d = server_now() + 60.123456;
        CHECK(syrpc_put_request_deadline(c, "job", data, d, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
        CHECK(claim_it(w, id, &req), "claim");
        CHECK(NEAR(syrpc_request_deadline(req), d) && syrpc_request_attempts(req) == 1,
              "%s: deadline %.6f, put with %.6f; attempts %d", zones[z], syrpc_request_deadline(req), d,
              syrpc_request_attempts(req));
        CHECK(syrpc_put_result(w, id, data) == SYRPC_OK, "%s", syrpc_error_message(w));
        syrpc_request_free(req);
        /* none given, or a later one: the request_ttl after the put */
        for (int later = 0; later < 2; later++) {
            put_at = server_now();
            CHECK(syrpc_put_request_deadline(c, "job", data, later ? put_at + 7200 : 0, id) == SYRPC_OK, "put: %s",
                  syrpc_error_message(c));
            CHECK(claim_it(w, id, &req), "claim");
            d = syrpc_request_deadline(req);
            CHECK(d >= put_at + 3600 - 0.001 && d < put_at + 3600 + 5, "%s: deadline %.6f, put at %.6f (%s)",
                  zones[z], d, put_at, later ? "a later deadline" : "no deadline");
            CHECK(syrpc_put_result(w, id, data) == SYRPC_OK, "%s", syrpc_error_message(w));
            syrpc_request_free(req);
        }
        syrpc_finish(w);
    }

    /* in syrpc_serve's handlers */
    for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        double given[3];
        test_server s;

        nnotes = 0;
        for (int i = 0; i < 3; i++) {
            given[i] = i == 2 ? 0 : server_now() + 100 + i;
            CHECK(syrpc_put_request_deadline(c, "note", data, given[i], ids[i]) == SYRPC_OK, "put: %s",
                  syrpc_error_message(c));
        }
        put_at = server_now();
        batch_size = batches[b];
        server_start(&s, "options='-c TimeZone=Asia/Kathmandu'", "s_sees", 3, handlers);
        CHECK(ended_within(&s, 30), "the worker did not serve 3 requests");
        CHECK(s.status == SYRPC_OK, "serve: %s: %s", syrpc_status_name(s.status), s.message);
        for (int i = 0; i < 3; i++) {
            const noted *n = note_of(ids[i]);

            CHECK(n != NULL, "batch %d: request %d not handled", batches[b], i);
            CHECK(n->attempts == 1, "batch %d: attempts %d", batches[b], n->attempts);
            if (i < 2)
                CHECK(NEAR(n->deadline, given[i]), "batch %d: deadline %.6f, put with %.6f", batches[b],
                      n->deadline, given[i]);
            else
                CHECK(n->deadline > put_at + 3590 && n->deadline < put_at + 3600, "batch %d: deadline %.6f, put at %.6f",
                      batches[b], n->deadline, put_at);
        }
    }
    json_decref(data);
    syrpc_finish(c);
    return 1;
}

/*
 * syrpc_extend_lease from inside a handler, on the serve loop's handle:
 * with a lease_time of 2 s, a second worker that waits 3.5 s from the
 * extension on gets nothing; without the extension it gets the request
 * (attempt 2) once the lease runs out.  What the library and the server
 * refuse.
 */
static int
test_extend_lease_in_handler(void)
{
    const char *app = "s_extend";
    syrpc_conn *c = connect_app(app), *b = connect_app(app);
    json_t *data = json_object(), *result = NULL;
    char id[SYRPC_ID_SIZE], *text;
    syrpc_request *req = NULL;
    test_server s;
    int ok;

    CHECK(c && b, "connect");
    free(sql_value("SELECT syrpc_configure('%s', lease_time => '2 s', max_attempts => 5)", app));
    __atomic_store_n(&extended, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&go, 0, __ATOMIC_SEQ_CST);
    nseen_attempts = 0;
    CHECK(syrpc_put_request(c, "slow", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    batch_size = 8;
    server_start(&s, "", app, 1, handlers);
    CHECK(flag_within(&extended, 10), "the handler did not extend its lease");
    CHECK(extend_status == SYRPC_OK, "extend_lease: %s", syrpc_status_name(extend_status));
    CHECK(syrpc_get_request(b, 3500, &req) == SYRPC_TIMEOUT, "the second worker got it: %s",
          req ? syrpc_request_result_id(req) : syrpc_error_message(b));
    __atomic_store_n(&go, 1, __ATOMIC_SEQ_CST);
    CHECK(syrpc_get_result_text(c, id, 10000, &text) == SYRPC_OK, "get: %s", syrpc_error_message(c));
    ok = strcmp(text, "\"slow, extended\"") == 0;
    syrpc_free(text);
    CHECK(ok, "the answer");
    CHECK(ended_within(&s, 10), "the worker did not end");
    CHECK(s.status == SYRPC_OK, "serve: %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(nseen_attempts == 1 && seen_attempts[0] == 1, "handled %d times, attempts %d", nseen_attempts,
          seen_attempts[0]);

    /* the control: without the extension the second worker takes it, attempt 2 */
    __atomic_store_n(&started, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&go, 0, __ATOMIC_SEQ_CST);
    CHECK(syrpc_put_request(c, "slow_noextend", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    server_start(&s, "", app, 0, handlers);
    CHECK(flag_within(&started, 10), "the handler did not start");
    CHECK(claim_it(b, id, &req), "the second worker");
    CHECK(syrpc_request_attempts(req) == 2, "attempts %d", syrpc_request_attempts(req));
    CHECK(syrpc_put_result_text(b, id, "\"from the second worker\"") == SYRPC_OK, "%s", syrpc_error_message(b));
    syrpc_request_free(req);
    __atomic_store_n(&go, 1, __ATOMIC_SEQ_CST);
    CHECK(syrpc_get_result_text(c, id, 10000, &text) == SYRPC_OK, "get: %s", syrpc_error_message(c));
    ok = strcmp(text, "\"from the second worker\"") == 0;
    syrpc_free(text);
    CHECK(ok, "the answer");
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve: %s: %s", syrpc_status_name(s.status), s.message);

    /* refused */
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(is_status(b, syrpc_extend_lease(b, id, 10), SYRPC_BAD_INPUT, "SY004"), "not claimed");
    CHECK(claim_it(b, id, &req), "claim");
    CHECK(is_status(b, syrpc_extend_lease(b, id, 0), SYRPC_BAD_INPUT, ""), "0 s");
    CHECK(is_status(b, syrpc_extend_lease(b, id, -1), SYRPC_BAD_INPUT, ""), "-1 s");
    CHECK(is_status(b, syrpc_extend_lease(b, id, NAN), SYRPC_BAD_INPUT, ""), "NaN");
    CHECK(is_status(b, syrpc_extend_lease(b, id, 1e10), SYRPC_BAD_INPUT, "22023"), "317 years");
    CHECK(syrpc_extend_lease(b, id, 0.5) == SYRPC_OK, "%s", syrpc_error_message(b));
    CHECK(syrpc_put_result(b, id, data) == SYRPC_OK, "%s", syrpc_error_message(b));
    CHECK(is_status(b, syrpc_extend_lease(b, id, 10), SYRPC_BAD_INPUT, "SY004"), "answered");
    CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    json_decref(result);
    syrpc_request_free(req);
    json_decref(data);
    syrpc_finish(c);
    syrpc_finish(b);
    return 1;
}

/*
 * syrpc_release: the next claim gets the request at once, attempt 1
 * again (with max_attempts 1, over and over); after a delay, only then;
 * from inside a handler, the loop leaves the request to the next claim
 * and does not count it.  What is refused.
 */
static int
test_release(void)
{
    const char *app = "s_release";
    syrpc_conn *c = connect_app(app), *w = connect_app(app), *w2 = connect_app(app);
    json_t *data = json_pack("{s:s}", "x", "y"), *result = NULL;
    char id[SYRPC_ID_SIZE];
    syrpc_request *req = NULL;
    test_server s;
    double t0, took;
    int ok;

    CHECK(c && w && w2, "connect");
    free(sql_value("SELECT syrpc_configure('%s', max_attempts => 1)", app));
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    for (int i = 0; i < 3; i++) {
        syrpc_conn *x = i % 2 ? w2 : w;

        CHECK(claim_it(x, id, &req), "claim %d", i);
        CHECK(syrpc_request_attempts(req) == 1, "claim %d: attempts %d", i, syrpc_request_attempts(req));
        CHECK(syrpc_release(x, id, 0) == SYRPC_OK, "release: %s", syrpc_error_message(x));
        syrpc_request_free(req);
    }
    CHECK(is_status(w, syrpc_release(w, id, 0), SYRPC_BAD_INPUT, "SY004"), "released twice");

    /* with a delay: not at once, then */
    CHECK(claim_it(w, id, &req), "claim");
    syrpc_request_free(req);
    CHECK(syrpc_release(w, id, 1.0) == SYRPC_OK, "release: %s", syrpc_error_message(w));
    t0 = now_s();
    CHECK(syrpc_get_request(w2, 300, &req) == SYRPC_TIMEOUT, "claimed within the delay");
    CHECK(claim_it(w2, id, &req), "claim after the delay");
    took = now_s() - t0;
    CHECK(took >= 0.6, "claimed again after %.3f s of a delay of 1 s", took);
    CHECK(syrpc_request_attempts(req) == 1, "attempts %d", syrpc_request_attempts(req));
    CHECK(syrpc_put_result(w2, id, data) == SYRPC_OK, "%s", syrpc_error_message(w2));
    syrpc_request_free(req);
    CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_OK, "get: %s", syrpc_error_message(c));
    ok = json_equal(result, data);
    json_decref(result);
    CHECK(ok, "the answer");

    /* inside a handler: released the first time, echoed the second; one served */
    nseen_attempts = 0;
    CHECK(syrpc_put_request(c, "release_once", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    batch_size = 8;
    server_start(&s, "", app, 1, handlers);
    CHECK(ended_within(&s, 30), "the worker did not serve the request");
    CHECK(s.status == SYRPC_OK, "serve: %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(s.handled == 2, "handled %d times", s.handled);
    CHECK(nseen_attempts == 2 && seen_attempts[0] == 1 && seen_attempts[1] == 1, "attempts %d, %d",
          seen_attempts[0], seen_attempts[1]);
    CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_OK, "get: %s", syrpc_error_message(c));
    ok = json_equal(result, data);
    json_decref(result);
    CHECK(ok, "the answer");

    /* refused */
    CHECK(syrpc_put_request(c, "job", data, id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    CHECK(is_status(w, syrpc_release(w, id, 0), SYRPC_BAD_INPUT, "SY004"), "not claimed");
    CHECK(is_status(w, syrpc_release(w, id, -1), SYRPC_BAD_INPUT, ""), "-1 s");
    CHECK(is_status(w, syrpc_release(w, id, NAN), SYRPC_BAD_INPUT, ""), "NaN");
    CHECK(claim_it(w, id, &req), "claim");
    CHECK(is_status(w, syrpc_release(w, id, 1e10), SYRPC_BAD_INPUT, "22023"), "317 years");
    CHECK(syrpc_put_result(w, id, data) == SYRPC_OK, "%s", syrpc_error_message(w));
    syrpc_request_free(req);
    CHECK(syrpc_get_result(c, id, 5000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    json_decref(result);
    json_decref(data);
    syrpc_finish(c);
    syrpc_finish(w);
    syrpc_finish(w2);
    return 1;
}

/* A caller in a thread of its own: syrpc_call, up to 20 s. */
typedef struct caller { syrpc_conn *c; syrpc_status st; char message[256]; } caller;

static void *
caller_main(void *arg)
{
    caller *k = arg;
    char *text = NULL;

    k->st = syrpc_call_text(k->c, "job", "{\"in\": \"memory\"}", 20000, &text);
    snprintf(k->message, sizeof(k->message), "%s", syrpc_error_message(k->c));
    syrpc_free(text);
    return NULL;
}

/*
 * A request of a syrpc_call that went through shared memory (the library
 * preloaded, syrpc.memory_calls on) is claimed like any other: its
 * worker may extend its lease and release it on the handle that claimed
 * it.  Cancelling it by its result_id while the call waits is refused
 * by the server with 0A000 ("an in-memory syrpc_call still waiting":
 * cancel the call in its session), which the spec does not say: taken
 * as the server's choice, and said.  Elsewhere: passes, saying why.
 */
static int
test_in_memory_call(void)
{
    const char *app = "s_memory";
    char *preloaded = sql_value("SELECT current_setting('shared_preload_libraries') ~ 'syrpc'"
                                " AND current_setting('syrpc.memory_calls', true) = 'on'");
    syrpc_conn *w = NULL, *other = NULL;
    syrpc_request *req = NULL, *again = NULL;
    syrpc_status extend, release, cancel;
    char id[SYRPC_ID_SIZE], why[3][300];
    int cancelled = 0, ok = preloaded && strcmp(preloaded, "t") == 0;
    caller k = { 0 };
    pthread_t tid;

    free(preloaded);
    if (!ok) {
        diag("  not preloaded, or syrpc.memory_calls off: no in-memory calls to test");
        return 1;
    }
    w = connect_app(app);
    other = connect_app(app);
    k.c = connect_app(app);
    CHECK(w && other && k.c, "connect");
    pthread_create(&tid, NULL, caller_main, &k);
    CHECK(syrpc_get_request(w, 10000, &req) == SYRPC_OK, "claim: %s", syrpc_error_message(w));
    snprintf(id, sizeof(id), "%s", syrpc_request_result_id(req));
    extend = syrpc_extend_lease(w, id, 10);
    snprintf(why[0], sizeof(why[0]), "%s %s", syrpc_error_sqlstate(w), syrpc_error_message(w));
    release = syrpc_release(w, id, 0);
    snprintf(why[1], sizeof(why[1]), "%s %s", syrpc_error_sqlstate(w), syrpc_error_message(w));
    if (release == SYRPC_OK && syrpc_get_request(w, 5000, &again) == SYRPC_OK &&
        strcmp(syrpc_request_result_id(again), id) != 0)
        diag("  after the release another request came: %s", syrpc_request_result_id(again));
    cancel = syrpc_cancel(other, id, &cancelled);
    snprintf(why[2], sizeof(why[2]), "%s %s", syrpc_error_sqlstate(other), syrpc_error_message(other));
    if (cancel != SYRPC_OK || !cancelled)
        syrpc_put_result_text(w, id, "\"answered\"");       /* so that the call returns */
    pthread_join(tid, NULL);
    syrpc_request_free(req);
    syrpc_request_free(again);
    syrpc_finish(w);
    syrpc_finish(other);
    syrpc_finish(k.c);
    diag("  in memory: extend_lease %s (%s), release %s (%s), cancel %s %d (%s), the call %s",
         syrpc_status_name(extend), why[0], syrpc_status_name(release), why[1], syrpc_status_name(cancel), cancelled,
         why[2], syrpc_status_name(k.st));
    CHECK(extend == SYRPC_OK, "extend_lease of a request claimed from an in-memory call: %s", why[0]);
    CHECK(release == SYRPC_OK, "release of a request claimed from an in-memory call: %s", why[1]);
    if (cancel == SYRPC_SERVER_ERROR && strncmp(why[2], "0A000 ", 6) == 0) {
        diag("  the server refuses to cancel an in-memory call's request by its result_id (0A000)");
        CHECK(k.st == SYRPC_OK, "the call: %s: %s", syrpc_status_name(k.st), k.message);
    } else {
        CHECK(cancel == SYRPC_OK && cancelled, "cancel of an in-memory call's request: %s", why[2]);
        CHECK(k.st == SYRPC_CANCELLED, "the call: %s: %s", syrpc_status_name(k.st), k.message);
    }
    return 1;
}

/* The call needs 1.7: SYRPC_SERVER_ERROR, saying so, with the hint to update. */
static int
needs_17(syrpc_conn *c, syrpc_status st, const char *what)
{
    CHECK(st == SYRPC_SERVER_ERROR, "%s: %s: %s", what, syrpc_status_name(st), syrpc_error_message(c));
    CHECK(strstr(syrpc_error_message(c), "needs extension 1.7 or later (the database has 1.6)") != NULL,
          "%s: %s", what, syrpc_error_message(c));
    CHECK(strstr(syrpc_error_hint(c), "ALTER EXTENSION syrpc UPDATE") != NULL, "%s: hint %s", what,
          syrpc_error_hint(c));
    return 1;
}

/*
 * Against extension 1.6: each new call says it needs 1.7, before it
 * sends anything; a put without a deadline works; a claim says no
 * attempts or deadline; a handler's error answers as a failing handler
 * did (or with the handler's own result).
 */
static int
test_extension_1_6(void)
{
    const char *db = "syrpc_semantics_16", *conninfo = "dbname=syrpc_semantics_16";
    syrpc_conn *c, *w;
    json_t *data = json_object();
    char id[SYRPC_ID_SIZE], ids[3][SYRPC_ID_SIZE], *text;
    const char *types[3] = { "err", "err_text", "echo" };
    syrpc_request *req;
    int cancelled;
    test_server s;

    CHECK(drop_db(db) && run_in(NULL, "CREATE DATABASE syrpc_semantics_16") &&
          run_in(db, "CREATE EXTENSION syrpc VERSION '1.6'"), "create %s with extension 1.6", db);
    c = connect_app_with(conninfo, "s_old");
    w = connect_app_with(conninfo, "s_old");
    CHECK(c && w, "connect");
    CHECK(syrpc_put_request_deadline(c, "job", data, 0, id) == SYRPC_OK, "put without a deadline: %s",
          syrpc_error_message(c));
    CHECK(needs_17(c, syrpc_put_request_deadline(c, "job", data, server_now() + 10, ids[0]), "a request's deadline"),
          "deadline");
    CHECK(needs_17(c, syrpc_cancel(c, id, &cancelled), "syrpc_cancel"), "cancel");
    CHECK(needs_17(w, syrpc_is_cancelled(w, id, &cancelled), "syrpc_is_cancelled"), "is_cancelled");
    CHECK(claim_it(w, id, &req), "claim");
    CHECK(syrpc_request_attempts(req) == 0 && syrpc_request_deadline(req) == 0, "attempts %d, deadline %f",
          syrpc_request_attempts(req), syrpc_request_deadline(req));
    CHECK(needs_17(w, syrpc_put_error(w, id, "m", NULL), "syrpc_put_error"), "put_error");
    CHECK(needs_17(w, syrpc_extend_lease(w, id, 10), "syrpc_extend_lease"), "extend_lease");
    CHECK(needs_17(w, syrpc_release(w, id, 0), "syrpc_release"), "release");
    CHECK(syrpc_put_result(w, id, data) == SYRPC_OK, "%s", syrpc_error_message(w));
    syrpc_request_free(req);

    for (int i = 0; i < 3; i++)
        CHECK(syrpc_put_request_text(c, types[i], "{\"i\": 1}", ids[i]) == SYRPC_OK, "put: %s",
              syrpc_error_message(c));
    batch_size = 8;
    server_start(&s, conninfo, "s_old", 3, handlers);
    CHECK(ended_within(&s, 30), "the worker did not serve 3 requests");
    CHECK(s.status == SYRPC_OK, "serve on 1.6: %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(syrpc_get_result_text(c, ids[0], 5000, &text) == SYRPC_OK, "err: %s", syrpc_error_message(c));
    CHECK(jsonb_equal(text, "{\"error\": \"handler failed\", \"type\": \"err\"}"), "err: %s", text);
    syrpc_free(text);
    CHECK(syrpc_get_result_text(c, ids[1], 5000, &text) == SYRPC_OK, "err_text: %s", syrpc_error_message(c));
    CHECK(strcmp(text, "\"the result of err_text\"") == 0, "err_text: %s", text);
    syrpc_free(text);
    CHECK(syrpc_get_result_text(c, ids[2], 5000, &text) == SYRPC_OK, "echo: %s", syrpc_error_message(c));
    CHECK(strcmp(text, "{\"i\": 1}") == 0, "echo: %s", text);
    syrpc_free(text);
    json_decref(data);
    syrpc_finish(c);
    syrpc_finish(w);
    CHECK(drop_db(db), "drop");
    return 1;
}

static const test_case tests[] = {
    { "library 2.2.0 or a later 2.x; SYRPC_REMOTE_ERROR and SYRPC_CANCELLED appended, with their names", test_version_and_names },
    { "remote error round trip: message and detail verbatim (1024 bytes, 100 kB), every get; refusals",
      test_remote_error_round_trip },
    { "a handler's error through syrpc_serve, one at a time and in a batch of 8; syrpc_call", test_handler_errors },
    { "cancel a queued request: never served, SYRPC_CANCELLED every time, a waiting caller told", test_cancel_queued },
    { "cancel in flight: is_cancelled, extend_lease SYRPC_CANCELLED, answers dropped; and through syrpc_serve",
      test_cancel_in_flight },
    { "deadlines: past (never served, SY002 at once), passing while queued, none; refusals", test_deadline_expiry },
    { "a worker sees attempts and the deadline (any time zone), in syrpc_serve too (batch 1 and 8)",
      test_worker_sees_deadline },
    { "extend_lease inside a handler keeps a second worker off past the lease; without, attempt 2",
      test_extend_lease_in_handler },
    { "release: claimed again at once with attempts 1, after a delay, inside a handler; refusals", test_release },
    { "extension 1.6: the new calls need 1.7; a handler's error answers as before", test_extension_1_6 },
    { "an in-memory syrpc_call's request: extend_lease and release as for any other; cancel", test_in_memory_call },
};

int
main(void)
{
    tests_init();
    printf("# libsyrpc %s (runtime %d)\n", SYRPC_VERSION, syrpc_version());
    return RUN_TESTS(tests);
}
