/*
 * batch_test.c: syrpc_serve in batches (extension 1.6, syrpc_set_batch)
 * against a real server: every request answered with its own answer, in
 * few commits; a failing handler, a refused answer or one answered
 * elsewhere in a batch leaves the others answered; data reaches text
 * handlers byte for byte; max_requests is exact; batch 1 and extension 1.5
 * serve one at a time; a lost connection mid-batch.
 *
 * Requests are queued before the worker starts, so that its first claim
 * takes them together.  Run under valgrind by test/run-client-tests.sh.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testlib.h"

/* ---- the worker's handlers ---- */

/* The batch the next worker serves in (server_start's setup reads it). */
static int batch_size = 8;

/* What the text handlers were given: the data text of each request, by result_id. */
typedef struct seen {
    char id[SYRPC_ID_SIZE];
    char *text;
} seen;

#define SEEN_MAX 64
static seen seen_texts[SEEN_MAX];
static int nseen;

static void
forget_seen(void)
{
    for (int i = 0; i < nseen; i++)
        free(seen_texts[i].text);
    nseen = 0;
}

static const char *
seen_text(const char *id)
{
    for (int i = 0; i < nseen; i++)
        if (strcmp(seen_texts[i].id, id) == 0)
            return seen_texts[i].text;
    return NULL;
}

/* Answers with the request's text, as the server sent it; notes it. */
static char *
echo_text(const syrpc_request *req, void *arg)
{
    test_server *s = arg;

    if (nseen < SEEN_MAX) {
        snprintf(seen_texts[nseen].id, SYRPC_ID_SIZE, "%s", syrpc_request_result_id(req));
        seen_texts[nseen++].text = strdup(syrpc_request_data_text(req));
    }
    __atomic_add_fetch(&s->handled, 1, __ATOMIC_SEQ_CST);
    return strdup(syrpc_request_data_text(req));
}

static json_t *
fail_json(const syrpc_request *req, void *arg)
{
    (void) req;
    (void) arg;
    return NULL;
}

static char *
fail_text(const syrpc_request *req, void *arg)
{
    (void) req;
    (void) arg;
    return NULL;
}

/* 2 kB of JSON: over a syrpc.max_payload_size of 1 kB. */
static char *
big_text(const syrpc_request *req, void *arg)
{
    char *s = malloc(2050);

    (void) req;
    (void) arg;
    memset(s, 'x', 2049);
    s[0] = s[2048] = '"';
    s[2049] = '\0';
    return s;
}

static char *
not_json(const syrpc_request *req, void *arg)
{
    (void) req;
    (void) arg;
    return strdup("{not json");
}

/* A handle of another worker, that answers a request before the batch's answer goes (elsewhere). */
static syrpc_conn *other_worker;

static char *
elsewhere(const syrpc_request *req, void *arg)
{
    (void) arg;
    if (syrpc_put_result_text(other_worker, syrpc_request_result_id(req), "\"from elsewhere\"") != SYRPC_OK)
        diag("elsewhere: %s", syrpc_error_message(other_worker));
    return strdup("\"from the batch\"");
}

/* The worker's own handle (for kill_once), and whether kill_once has struck. */
static syrpc_conn *the_worker;
static int killed;

/* The first time: terminate the worker's backend (it holds the batch), wait until it is gone; then echo. */
static char *
kill_once(const syrpc_request *req, void *arg)
{
    if (!killed) {
        int pid = PQbackendPID(syrpc_pgconn(the_worker));
        char sql[128];

        killed = 1;
        free(sql_value("SELECT pg_terminate_backend(%d)", pid));
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
        if (!wait_for(10, "0", sql))
            diag("the worker's backend %d did not end", pid);
    }
    return echo_text(req, arg);
}

static void
handlers(syrpc_conn *c, test_server *s)
{
    the_worker = c;
    if (syrpc_set_batch(c, batch_size) != SYRPC_OK)
        diag("syrpc_set_batch(%d): %s", batch_size, syrpc_error_message(c));
    serve_echo(c, s);
    syrpc_register(c, "fail", fail_json, NULL);
    syrpc_register_text(c, "echo_text", echo_text, s);
    syrpc_register_text(c, "fail_text", fail_text, NULL);
    syrpc_register_text(c, "big", big_text, NULL);
    syrpc_register_text(c, "not_json", not_json, NULL);
    syrpc_register_text(c, "elsewhere", elsewhere, NULL);
    syrpc_register_text(c, "kill_once", kill_once, s);
}

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

/* A stats column of app is expected. */
static int
stat_is(const char *app, const char *column, const char *expected)
{
    char *v = sql_value("SELECT %s FROM syrpc_stats WHERE app = '%s'", column, app);
    int ok = v && strcmp(v, expected) == 0;

    if (!ok)
        diag("  syrpc_stats.%s of %s is %s, expected %s", column, app, v ? v : "(none)", expected);
    free(v);
    return ok;
}

/* The same JSON as jsonb ('t'), as the server compares them. */
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

/* ---- tests ---- */

static int
test_set_batch(void)
{
    syrpc_conn *c = connect_app("b_set");
    const int bad[] = { 0, -1, 1001, 1 << 30 };

    CHECK(c, "connect");
    CHECK(syrpc_version() == SYRPC_VERSION_NUM && syrpc_version() >= 20100, "version %d (%s)", syrpc_version(),
          SYRPC_VERSION);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(syrpc_set_batch(c, bad[i]) == SYRPC_BAD_INPUT, "batch %d: %s", bad[i], syrpc_status_name(syrpc_status_of(c)));
        CHECK(strstr(syrpc_error_message(c), "1 to 1000") != NULL, "message: %s", syrpc_error_message(c));
    }
    CHECK(syrpc_set_batch(c, 1) == SYRPC_OK && syrpc_set_batch(c, 1000) == SYRPC_OK, "%s", syrpc_error_message(c));
    CHECK(syrpc_error_message(c)[0] == '\0', "message after success: %s", syrpc_error_message(c));
    syrpc_finish(c);
    return 1;
}

/*
 * (a, b, g) N requests queued by a caller, served by one worker with
 * syrpc_serve(w, N) in batches of `batch`; every caller gets its own
 * answer.  The worker's commits are those of its database's, in a
 * database of the test's own where nothing else runs meanwhile: read
 * before it connects and after its backend has gone (a backend flushes
 * its counts when it exits, before it leaves pg_stat_activity), from the
 * test database.  Autovacuum is the one other committer there: its first
 * visit to a new database analyzes the catalogs that CREATE EXTENSION
 * filled (~18 commits, which failed this test once in CI), so the test
 * analyzes them itself first and keeps autovacuum off the queue table;
 * what is left is ~2 commits per visit (autovacuum_naptime), in SLACK.
 */
#define COMMITS_DB "syrpc_batch_commits"
#define COMMITS_CONNINFO "dbname=" COMMITS_DB
#define NO_BACKENDS "SELECT count(*) FROM pg_stat_activity WHERE datname = '" COMMITS_DB "'"

static long
commits_of_db(void)
{
    char *v = sql_value("SELECT pg_stat_clear_snapshot(); SELECT xact_commit FROM pg_stat_database"
                        " WHERE datname = '" COMMITS_DB "'");
    long n = v ? atol(v) : -1;

    free(v);
    return n;
}

static int
serve_counting_commits(int batch, int n, long *commits)
{
    syrpc_conn *c = connect_app_with(COMMITS_CONNINFO, "b_commits");
    char (*ids)[SYRPC_ID_SIZE] = calloc(n, SYRPC_ID_SIZE);
    test_server s;
    long before, after;

    CHECK(c && ids, "connect");
    for (int i = 0; i < n; i++) {
        json_t *data = json_pack("{s:i, s:i}", "batch", batch, "i", i);

        CHECK(syrpc_put_request(c, "echo", data, ids[i]) == SYRPC_OK, "put: %s", syrpc_error_message(c));
        json_decref(data);
    }
    syrpc_finish(c);
    CHECK(wait_for(10, "0", NO_BACKENDS), "the caller's backend did not end");
    before = commits_of_db();
    batch_size = batch;
    server_start(&s, COMMITS_CONNINFO, "b_commits", n, handlers);
    CHECK(ended_within(&s, 60), "the worker did not serve %d requests: %d handled", n, s.handled);
    CHECK(s.status == SYRPC_OK, "serve: %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(wait_for(10, "0", NO_BACKENDS), "the worker's backend did not end");
    after = commits_of_db();
    CHECK(before >= 0 && after >= 0, "xact_commit");
    *commits = after - before;
    CHECK(s.handled == n, "handled %d of %d", s.handled, n);
    /* every caller its own answer */
    c = connect_app_with(COMMITS_CONNINFO, "b_commits");
    CHECK(c, "connect");
    for (int i = 0; i < n; i++) {
        json_t *result = NULL;
        int ok;

        CHECK(syrpc_get_result(c, ids[i], 5000, &result) == SYRPC_OK, "result %d: %s", i, syrpc_error_message(c));
        ok = json_integer_value(json_object_get(result, "i")) == i &&
            json_integer_value(json_object_get(result, "batch")) == batch;
        json_decref(result);
        CHECK(ok, "request %d got another's answer", i);
    }
    syrpc_finish(c);
    free(ids);
    return 1;
}

static int
test_few_commits(void)
{
    enum { N = 40, B = 8, SLACK = 8 };
    long batched, single;

    CHECK(make_db(COMMITS_DB, "CREATE EXTENSION syrpc;"
                  " ALTER TABLE syrpc.request SET (autovacuum_enabled = off)"), "create " COMMITS_DB);
    CHECK(run_in(COMMITS_DB, "VACUUM ANALYZE"), "analyze " COMMITS_DB);
    CHECK(serve_counting_commits(B, N, &batched), "batch %d", B);
    CHECK(serve_counting_commits(1, N, &single), "batch 1");
    diag("%d requests served: %ld commits in batches of %d, %ld one at a time (batch 1)", N, batched, B, single);
    CHECK(batched <= N / B + SLACK, "%ld commits in batches of %d, expected at most %d", batched, B, N / B + SLACK);
    CHECK(single >= N, "%ld commits one at a time: the count does not see the worker's commits", single);
    CHECK(drop_db(COMMITS_DB), "drop");
    return 1;
}

/*
 * (c) In one batch: handlers that fail (a json_t and a text handler
 * returning NULL), a request its json_t handler cannot get exactly (given
 * up at once), an unknown type; the others are answered all the same.
 */
static int
test_failing_handlers(void)
{
    const char *app = "b_fail";
    struct { const char *type, *data; } reqs[] = {
        { "echo", "{\"n\": 1}" }, { "fail", "{}" }, { "echo_text", "[1, 2]" }, { "echo", "1e400" },
        { "fail_text", "{}" }, { "no_such_type", "{}" }, { "echo", "{\"n\": 2}" },
    };
    enum { N = sizeof(reqs) / sizeof(reqs[0]) };
    char ids[N][SYRPC_ID_SIZE], *text;
    syrpc_conn *c = connect_app(app);
    test_server s;

    CHECK(c, "connect");
    for (int i = 0; i < N; i++)
        CHECK(syrpc_put_request_text(c, reqs[i].type, reqs[i].data, ids[i]) == SYRPC_OK, "put: %s",
              syrpc_error_message(c));
    batch_size = 8;
    server_start(&s, "", app, N, handlers);
    CHECK(ended_within(&s, 30), "the worker did not serve %d requests", N);
    CHECK(s.status == SYRPC_OK, "serve: %s: %s", syrpc_status_name(s.status), s.message);
    for (int i = 0; i < N; i++) {
        syrpc_status st = syrpc_get_result_text(c, ids[i], 5000, &text);

        if (strcmp(reqs[i].data, "1e400") == 0) {
            CHECK(st == SYRPC_REQUEST_FAILED, "%s %s: %s", reqs[i].type, reqs[i].data, syrpc_status_name(st));
            CHECK(strstr(syrpc_error_message(c), "request data cannot be represented by the C library") != NULL,
                  "message: %s", syrpc_error_message(c));
            continue;
        }
        CHECK(st == SYRPC_OK, "%s %s: %s: %s", reqs[i].type, reqs[i].data, syrpc_status_name(st), syrpc_error_message(c));
        if (strncmp(reqs[i].type, "fail", 4) == 0) {
            char want[128];

            snprintf(want, sizeof(want), "{\"error\": \"handler failed\", \"type\": \"%s\"}", reqs[i].type);
            CHECK(jsonb_equal(text, want), "%s: got %s", reqs[i].type, text);
        } else if (strcmp(reqs[i].type, "no_such_type") == 0)
            CHECK(jsonb_equal(text, "{\"error\": \"unknown type\", \"type\": \"no_such_type\"}"), "got %s", text);
        else
            CHECK(jsonb_equal(text, reqs[i].data), "%s: sent %s, got %s", reqs[i].type, reqs[i].data, text);
        syrpc_free(text);
    }
    CHECK(stat_is(app, "queued", "0") && stat_is(app, "in_flight", "0"), "left in the queue");
    forget_seen();
    syrpc_finish(c);
    return 1;
}

/*
 * (d) Answers the server refuses in a batch, each alone in a batch of
 * three or four: one too large (the worker's syrpc.max_payload_size is
 * 1 kB: "data[2] is too large"), one not JSON (the jsonb[] parameter's
 * 22P02), one that another worker answered first (SY004).  The batch's
 * answers are refused as a whole; the loop answers them one by one: the
 * refused one given up with the server's reason, the one answered
 * elsewhere left as it is, the others answered; and it serves on.
 */
static int
serve_refused(const char *app, const char *const *types, int n)
{
    char ids[8][SYRPC_ID_SIZE], data[8][32], *text;
    syrpc_conn *c = connect_app(app);
    test_server s;

    CHECK(c, "connect");
    for (int i = 0; i < n; i++) {
        snprintf(data[i], sizeof(data[i]), "{\"i\": %d}", i);
        CHECK(syrpc_put_request_text(c, types[i], data[i], ids[i]) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    }
    batch_size = 8;
    server_start(&s, "options='-c syrpc.max_payload_size=1'", app, 0, handlers);
    for (int i = 0; i < n; i++) {
        syrpc_status st = syrpc_get_result_text(c, ids[i], 10000, &text);

        if (strcmp(types[i], "big") == 0 || strcmp(types[i], "not_json") == 0) {
            CHECK(st == SYRPC_REQUEST_FAILED, "%s: %s", types[i], syrpc_status_name(st));
            CHECK(strstr(syrpc_error_message(c), "the server refused the handler's result: ") != NULL &&
                  strstr(syrpc_error_message(c), types[i][0] == 'b' ? "too large" : "invalid input syntax") != NULL,
                  "%s: message: %s", types[i], syrpc_error_message(c));
            diag("  %s: %s", types[i], syrpc_error_message(c));
            continue;
        }
        CHECK(st == SYRPC_OK, "%s: %s: %s", types[i], syrpc_status_name(st), syrpc_error_message(c));
        if (strcmp(types[i], "elsewhere") == 0)
            CHECK(strcmp(text, "\"from elsewhere\"") == 0, "elsewhere: got %s", text);
        else
            CHECK(strcmp(text, data[i]) == 0, "%s: sent %s, got %s", types[i], data[i], text);
        syrpc_free(text);
    }
    /* and it serves on */
    CHECK(syrpc_call_text(c, "echo_text", "\"after\"", 10000, &text) == SYRPC_OK, "%s", syrpc_error_message(c));
    CHECK(strcmp(text, "\"after\"") == 0, "got %s", text);
    syrpc_free(text);
    CHECK(!s.done, "syrpc_serve stopped: %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(stat_is(app, "queued", "0") && stat_is(app, "in_flight", "0"), "left in the queue");
    syrpc_finish(c);
    return 1;
}

static int
test_refused_answers(void)
{
    const char *too_large[] = { "echo_text", "big", "echo" };
    const char *not_json_text[] = { "echo", "echo_text", "not_json", "echo_text" };
    const char *answered_elsewhere[] = { "echo_text", "elsewhere", "echo" };
    int ok;

    other_worker = connect_app("b_refused3");
    CHECK(other_worker, "connect");
    ok = serve_refused("b_refused1", too_large, 3) && serve_refused("b_refused2", not_json_text, 4) &&
        serve_refused("b_refused3", answered_elsewhere, 3);
    forget_seen();
    syrpc_finish(other_worker);
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

/*
 * (e) Data reaches a text handler in a batch byte for byte as the server
 * prints it (every digit of a number, strings with escapes and brackets,
 * deep nesting, a long string), and a json_t handler exactly.
 */
static int
test_exact_data(void)
{
    const char *app = "b_exact";
    char *deep = nested(3000), *long_string = malloc(200 * 1024 + 3);
    const char *data[] = {
        "12345678901234567890.123456789",
        "{\"b\": [1, 2.50, {\"x\": \"a\\\"]}\\u00e9\"}], \"a\": 12345678901234567890.123456789}",
        "\"quotes \\\" backslashes \\\\ brackets ] } [ { , : \\u2603 \\ud83d\\ude00 \\n\\t\"",
        "[[[[]]], {}, [], null, true, false, -0.0, 1e-5, 0.00000000000000000000000000000001, \"\"]",
        "{\"\": {\"\\\"key\\\"\": [\"}\", \"]\", \"\\\\\"]}, \"data\": \"not this one\", \"type\": 1}",
        deep,
        long_string,
    };
    enum { N = sizeof(data) / sizeof(data[0]) };
    char ids[N][SYRPC_ID_SIZE], json_id[SYRPC_ID_SIZE], *stored[N], *text;
    json_t *j = json_pack("{s:f, s:s, s:[i,i]}", "n", 1.5, "s", "\xc3\xa9\"\\", "a", 1, 2), *result = NULL;
    syrpc_conn *c = connect_app(app);
    test_server s;
    int ok;

    memset(long_string, 'y', 200 * 1024 + 2);
    long_string[0] = long_string[200 * 1024 + 1] = '"';
    long_string[200 * 1024 + 2] = '\0';
    CHECK(c, "connect");
    for (int i = 0; i < N; i++) {
        CHECK(syrpc_put_request_text(c, "echo_text", data[i], ids[i]) == SYRPC_OK, "put %d: %s", i,
              syrpc_error_message(c));
        stored[i] = sql_value("SELECT data::text FROM syrpc.request WHERE result_id = '%s'", ids[i]);
        CHECK(stored[i], "request %d not stored", i);
    }
    CHECK(syrpc_put_request(c, "echo", j, json_id) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    batch_size = 16;
    server_start(&s, "", app, 0, handlers);
    for (int i = 0; i < N; i++) {
        CHECK(syrpc_get_result_text(c, ids[i], 10000, &text) == SYRPC_OK, "%d: %s", i, syrpc_error_message(c));
        ok = strcmp(text, stored[i]) == 0;
        syrpc_free(text);
        CHECK(ok, "request %d: the answer differs from the request as stored", i);
    }
    CHECK(syrpc_get_result(c, json_id, 10000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
    ok = json_equal(result, j);
    json_decref(result);
    CHECK(ok, "the json_t handler's answer differs");
    CHECK(server_stop(&s) == SYRPC_INTERRUPTED, "serve ended with %s: %s", syrpc_status_name(s.status), s.message);
    for (int i = 0; i < N; i++) {
        const char *got = seen_text(ids[i]);

        CHECK(got && strcmp(got, stored[i]) == 0, "request %d: the handler got %.60s, the server has %.60s", i,
              got ? got : "(nothing)", stored[i]);
        free(stored[i]);
    }
    CHECK(strstr(seen_text(ids[0]), "12345678901234567890.123456789") != NULL, "digits lost");
    forget_seen();
    json_decref(j);
    free(deep);
    free(long_string);
    syrpc_finish(c);
    return 1;
}

/*
 * (f) max_requests is exact: with 12 queued, syrpc_serve(w, 5) answers 5
 * (the oldest) and leaves 7 queued, none claimed: in batches of 2 (2 + 2 +
 * 1), then of 8 (5 at once), then one at a time (the last 2).
 */
static int
serve_exactly(const char *app, int batch, int count, int *handled)
{
    test_server s;

    batch_size = batch;
    server_start(&s, "", app, count, handlers);
    CHECK(ended_within(&s, 30), "the worker did not serve %d requests: %d handled", count, s.handled);
    CHECK(s.status == SYRPC_OK, "serve: %s: %s", syrpc_status_name(s.status), s.message);
    *handled = s.handled;
    return 1;
}

static int
test_max_requests_exact(void)
{
    const char *app = "b_max";
    enum { N = 12 };
    const struct { int batch, count; const char *left; } runs[] = { { 2, 5, "7" }, { 8, 5, "2" }, { 1, 2, "0" } };
    char ids[N][SYRPC_ID_SIZE];
    syrpc_conn *c = connect_app(app);
    json_t *data = json_object(), *result;
    int answered = 0, handled;

    CHECK(c, "connect");
    for (int i = 0; i < N; i++)
        CHECK(syrpc_put_request(c, "echo", data, ids[i]) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        CHECK(serve_exactly(app, runs[r].batch, runs[r].count, &handled), "batch %d", runs[r].batch);
        CHECK(handled == runs[r].count, "batch %d: %d handled, expected %d", runs[r].batch, handled, runs[r].count);
        CHECK(stat_is(app, "queued", runs[r].left) && stat_is(app, "in_flight", "0"),
              "batch %d: serve %d did not leave %s queued and none claimed", runs[r].batch, runs[r].count,
              runs[r].left);
        /* the oldest were answered, and only they */
        for (int i = 0; i < N; i++) {
            syrpc_status st = syrpc_get_result(c, ids[i], 0, &result);

            json_decref(result);
            if (i < answered)
                continue;       /* taken already */
            if (i < answered + runs[r].count)
                CHECK(st == SYRPC_OK, "batch %d: request %d: %s", runs[r].batch, i, syrpc_error_message(c));
            else
                CHECK(st == SYRPC_TIMEOUT, "batch %d: request %d answered: %s", runs[r].batch, i,
                      syrpc_status_name(st));
        }
        answered += runs[r].count;
    }
    json_decref(data);
    syrpc_finish(c);
    return 1;
}

/*
 * (g) Extension 1.5 has no batch calls: the loop serves one at a time
 * whatever the batch says.
 */
static int
test_extension_1_5(void)
{
    const char *db = "syrpc_batch_15";
    syrpc_conn *c;
    char ids[3][SYRPC_ID_SIZE];
    json_t *result;
    int ok = 1;
    test_server s;

    CHECK(make_db(db, "CREATE EXTENSION syrpc VERSION '1.5'"), "create %s", db);
    c = connect_app_with("dbname=syrpc_batch_15", "b_old");
    CHECK(c, "connect");
    for (int i = 0; i < 3; i++) {
        json_t *data = json_integer(i);

        CHECK(syrpc_put_request(c, "echo", data, ids[i]) == SYRPC_OK, "put: %s", syrpc_error_message(c));
        json_decref(data);
    }
    batch_size = 8;
    server_start(&s, "dbname=syrpc_batch_15", "b_old", 3, handlers);
    CHECK(ended_within(&s, 30), "the worker did not serve 3 requests: %d handled", s.handled);
    CHECK(s.status == SYRPC_OK, "serve on 1.5: %s: %s", syrpc_status_name(s.status), s.message);
    for (int i = 0; i < 3 && ok; i++) {
        CHECK(syrpc_get_result(c, ids[i], 5000, &result) == SYRPC_OK, "%s", syrpc_error_message(c));
        ok = json_integer_value(result) == i;
        json_decref(result);
    }
    syrpc_finish(c);
    CHECK(ok, "wrong answer");
    CHECK(drop_db(db), "drop");
    return 1;
}

/*
 * A lost connection while a batch is handled: the worker's backend is
 * terminated before the batch's answer goes.  The worker reconnects, the
 * batch comes back by its leases (300 ms), and every request is answered.
 */
static int
test_connection_lost_mid_batch(void)
{
    const char *app = "b_term";
    enum { N = 4 };
    char ids[N][SYRPC_ID_SIZE], data[N][16], *text;
    syrpc_conn *c = connect_app(app);
    test_server s;

    CHECK(c, "connect");
    free(sql_value("SELECT syrpc_configure('%s', lease_time => '300 ms')", app));
    for (int i = 0; i < N; i++) {
        snprintf(data[i], sizeof(data[i]), "[%d]", i);
        CHECK(syrpc_put_request_text(c, "kill_once", data[i], ids[i]) == SYRPC_OK, "put: %s", syrpc_error_message(c));
    }
    batch_size = N;
    killed = 0;
    server_start(&s, "", app, N, handlers);
    CHECK(ended_within(&s, 30), "the worker did not serve %d requests: %d handled", N, s.handled);
    CHECK(s.status == SYRPC_OK, "serve: %s: %s", syrpc_status_name(s.status), s.message);
    CHECK(killed, "the handler never ran");
    CHECK(s.handled == 2 * N, "handled %d times: expected the batch twice, %d", s.handled, 2 * N);
    for (int i = 0; i < N; i++) {
        CHECK(syrpc_get_result_text(c, ids[i], 5000, &text) == SYRPC_OK, "%d: %s", i, syrpc_error_message(c));
        CHECK(strcmp(text, data[i]) == 0, "sent %s, got %s", data[i], text);
        syrpc_free(text);
    }
    forget_seen();
    syrpc_finish(c);
    return 1;
}

static const test_case tests[] = {
    { "syrpc_set_batch: 1 to 1000, else bad input; library 2.1.0 or later", test_set_batch },
    { "N requests in batches: each its own answer, about N/batch commits (batch 1: N or more)", test_few_commits },
    { "failing handlers and undecodable data in a batch: the others are answered", test_failing_handlers },
    { "answers refused (too large, not JSON, answered elsewhere): one by one, the others answered", test_refused_answers },
    { "data reaches a text handler in a batch byte for byte, a json_t handler exactly", test_exact_data },
    { "max_requests exact in batches of 2 and 8 and one at a time: nothing more claimed", test_max_requests_exact },
    { "extension 1.5: no batch calls, served one at a time", test_extension_1_5 },
    { "connection lost mid-batch: reconnect, the batch comes back by its leases", test_connection_lost_mid_batch },
};

int
main(void)
{
    tests_init();
    printf("# libsyrpc %s (runtime %d)\n", SYRPC_VERSION, syrpc_version());
    return RUN_TESTS(tests);
}
