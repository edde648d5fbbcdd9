/*
 * handoff_test.c: syrpc_call's in-memory path (extension/handoff.c)
 * against a real server: requests and answers through shared memory (no
 * xid, no WAL, no row), what the stats and waiters show, timeouts that
 * write the request to the table (queued, leased, or with an answer's
 * transaction open), cancels, workers that die or roll back, leases,
 * max_attempts, racing workers, databases, failures, large payloads and
 * request_ttl.
 *
 * Needs syrpc in shared_preload_libraries (else every test is skipped)
 * and a database with CREATE EXTENSION syrpc, reached through the libpq
 * environment.  Creates and drops a database of its own for one test.
 * Prints TAP-style lines and "N passed, N failed"; run under valgrind by
 * test/run-client-tests.sh.
 *
 * A caller that must block while the test does things is a session of
 * its own with CALL syrpc_call sent asynchronously (call_start, then
 * call_end or the call_* checks); workers are plain sessions that claim
 * with syrpc_get_request and answer with syrpc_put_result.  Every app
 * name starts with "ho_", one per test, so tests do not see each other's
 * requests.
 */
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testlib.h"

#include "sessions.h"

/* The server's view of an app: its in-memory requests, its rows. */
#define MEM_COUNTS "SELECT coalesce(sum(queued), 0) || ',' || coalesce(sum(in_flight), 0) " \
                   "FROM syrpc.memory_requests() WHERE app = '%s'"
#define STATS_COUNTS "SELECT queued || ',' || in_flight FROM syrpc_stats WHERE app = '%s'"
#define REQUEST_ROWS "SELECT count(*) FROM syrpc.request WHERE app = '%s'"
#define RESULT_ROWS "SELECT count(*) FROM syrpc.result WHERE app = '%s'"

/* ---- the tests ---- */

/* The echo calls of round: answered by the server thread; the xids and WAL bytes they took. */
static int
echo_calls(syrpc_conn *c, int n, long *xids, double *wal)
{
    char lsn[64], xmax[64];

    CHECK(keep(xmax, val(side, "SELECT txid_snapshot_xmax(txid_current_snapshot())")) &&
          keep(lsn, val(side, "SELECT pg_current_wal_insert_lsn()")), "%s", last_error);
    for (int i = 0; i < n; i++) {
        json_t *data = json_pack("{s:i, s:s}", "n", i, "text", "in memory"), *result = NULL;
        syrpc_status st = syrpc_call(c, "echo", data, 10000, &result);
        int same = result != NULL && json_equal(result, data);

        json_decref(data);
        json_decref(result);
        CHECK(st == SYRPC_OK, "call %d: %s: %s", i, syrpc_status_name(st), syrpc_error_message(c));
        CHECK(same, "call %d: not its data back", i);
    }
    *xids = atol(S(val(side, "SELECT txid_snapshot_xmax(txid_current_snapshot()) - %s", xmax)));
    *wal = atof(S(val(side, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '%s')", lsn)));
    return 1;
}

TEST(t_answered_in_memory)
{
    const char *app = "ho_mem";
    enum { CALLS = 20, TRIES = 3 };
    test_server s;
    syrpc_conn *c;
    long xids = -1;
    double wal = -1;
    int ok, tries = 0;

    CHECK(run(side, "SELECT syrpc_configure('%s')", app), "%s", last_error);
    server_start(&s, "", app, 0, serve_echo);
    c = connect_app(app);
    ok = c != NULL && wait_val("1", "SELECT syrpc.workers_waiting('%s')", app) &&
        echo_calls(c, 1, &xids, &wal);         /* the first, that loads what it may */
    /*
     * A round with xids or WAL may be background work (autovacuum's
     * ANALYZE takes an xid): then again.  Calls through the table take at
     * least one xid each, every time.
     */
    for (tries = 1; ok; tries++) {
        ok = echo_calls(c, CALLS, &xids, &wal);
        if (!ok || (xids == 0 && wal < 100.0 * CALLS) || tries == TRIES)
            break;
        diag("  round %d: %ld xids, %.0f WAL bytes for %d calls: again", tries, xids, wal, CALLS);
    }
    syrpc_finish(c);
    server_stop(&s);
    CHECK(ok, "the calls failed");
    diag("  %d calls: %ld xids, %.0f WAL bytes", CALLS, xids, wal);
    CHECK(xids == 0, "%d calls took %ld xids", CALLS, xids);
    CHECK(wal < 100.0 * CALLS, "%d calls wrote %.0f WAL bytes", CALLS, wal);
    CHECK(s.handled == 1 + tries * CALLS, "the worker answered %d of %d", s.handled, 1 + tries * CALLS);
    CHECK_EQ(val(side, REQUEST_ROWS, app), "0", "rows in syrpc.request");
    CHECK_EQ(val(side, RESULT_ROWS, app), "0", "rows in syrpc.result");
    return 1;
}

TEST(t_queued_then_claimed)
{
    const char *app = "ho_queued";
    call c = { 0 };
    PGconn *w = conn();
    char id[64];

    /* made first: a call's own app row commits after its request is in memory */
    CHECK(run(side, "SELECT syrpc_configure('%s')", app), "%s", last_error);
    CHECK(w && call_start(&c, app, "{\"n\": 2}", "10"), "start");
    CHECK(wait_val("1,0", MEM_COUNTS, app), "memory_requests (queued,in_flight): %s", S(val(side, MEM_COUNTS, app)));
    CHECK_EQ(val(side, STATS_COUNTS, app), "1,0", "syrpc_stats queued,in_flight");
    CHECK_EQ(val(side, "SELECT string_agg(kind, ',') FROM syrpc.waiters() WHERE pid = %d", c.pid), "result",
             "the caller in syrpc.waiters()");
    CHECK_EQ(val(side, REQUEST_ROWS, app), "0", "rows in syrpc.request");
    CHECK(run(w, "BEGIN"), "%s", last_error);
    CHECK(keep(id, val(w, "SELECT result_id || ' ' || type || ' ' || data FROM syrpc_get_request('%s', 1)", app)),
          "no claim: %s", last_error);
    CHECK(strcmp(id + 36, " echo {\"n\": 2}") == 0, "claimed %s", id);
    id[36] = '\0';
    CHECK_EQ(val(side, MEM_COUNTS, app), "0,1", "memory_requests after the claim");
    CHECK_EQ(val(side, STATS_COUNTS, app), "0,1", "syrpc_stats after the claim");
    CHECK(answer(w, app, id, "\"two\""), "%s", last_error);
    CHECK(call_busy(&c), "the caller returned before the answer committed");
    CHECK(run(w, "COMMIT"), "%s", last_error);
    CHECK(call_answered(&c, "\"two\""), "%s", describe(&c));
    CHECK_EQ(c.result_id, id, "the call's result_id");
    CHECK_EQ(val(side, MEM_COUNTS, app), "0,0", "memory_requests at the end");
    CHECK_EQ(val(side, REQUEST_ROWS, app), "0", "rows in syrpc.request");
    return 1;
}

/*
 * A worker that waits for an app with no row yet gets the first call at
 * once: the call's own app row commits only after its request is in
 * memory, and the claim does not wait for it (it once did, until the
 * worker's own timeout).
 */
TEST(t_new_app)
{
    const char *app = "ho_new_app";
    call c = { 0 };
    PGconn *w = conn();
    char id[64];

    int ok;

    CHECK_EQ(val(side, "SELECT count(*) FROM syrpc.app WHERE app = '%s'", app), "0", "the app is new");
    /*
     * The app row's commit is held back 1 s (a deferred trigger), so that
     * the worker, woken by the put, surely looks before it: the race that
     * is otherwise a few microseconds wide.
     */
    CHECK(run(side, "CREATE FUNCTION ho_slow_commit() RETURNS trigger LANGUAGE plpgsql"
                    " AS $$BEGIN PERFORM pg_sleep(1); RETURN NULL; END$$;"
                    " CREATE CONSTRAINT TRIGGER ho_slow_commit AFTER INSERT ON syrpc.app"
                    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.app = '%s')"
                    " EXECUTE FUNCTION ho_slow_commit()", app), "%s", last_error);
    ok = w && claim_start(w, app, "10") && blocked(w, NULL) && call_start(&c, app, "{\"first\": true}", "5") &&
         ready_within(w, 3);
    (void) run(side, "DROP TRIGGER ho_slow_commit ON syrpc.app; DROP FUNCTION ho_slow_commit()");
    CHECK(ok, "the waiting worker did not get the first call of a new app in 3 s");
    CHECK(keep(id, claim_end(w)), "no claim: %s", last_error);
    CHECK(answer(w, app, id, "\"hello\""), "%s", last_error);
    CHECK(call_answered(&c, "\"hello\""), "%s", describe(&c));
    return 1;
}

TEST(t_timeout_while_queued)
{
    const char *app = "ho_tq";
    call c = { 0 };
    PGconn *w = conn();

    CHECK(w && call_start(&c, app, "{\"n\": 3}", "0.3"), "start");
    CHECK(call_timed_out(&c), "%s", describe(&c));
    CHECK_EQ(val(side, "SELECT attempts || ' ' || type || ' ' || data FROM syrpc.request WHERE result_id = '%s'",
                 c.result_id), "0 echo {\"n\": 3}", "the request's row");
    CHECK_EQ(val(side, MEM_COUNTS, app), "0,0", "memory_requests");
    CHECK_EQ(claim(w, app, "1"), c.result_id, "the claim");
    CHECK(answer(w, app, c.result_id, "\"three\""), "%s", last_error);
    CHECK_EQ(val(side, "SELECT syrpc_get_result('%s', '%s', 1)", app, c.result_id), "\"three\"", "syrpc_get_result");
    CHECK_EQ(val(side, REQUEST_ROWS, app), "0", "rows in syrpc.request");
    return 1;
}

TEST(t_timeout_while_leased)
{
    const char *app = "ho_tl";
    call c = { 0 };
    PGconn *w = conn(), *w2 = conn();
    char id[64];

    CHECK(run(side, "SELECT syrpc_configure('%s', lease_time => '30 s')", app), "%s", last_error);
    CHECK(w && w2 && call_start(&c, app, "{}", "1"), "start");
    CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
    CHECK(call_timed_out(&c), "%s", describe(&c));
    CHECK_EQ(c.result_id, id, "the call's result_id");
    /* leased to w until its lease ends, some 29 s from now */
    CHECK_EQ(val(side, "SELECT attempts || ',' || (ready_at > now() + interval '20 s') "
                 "FROM syrpc.request WHERE result_id = '%s'", id), "1,true", "the row's attempts,leased");
    CHECK(claim(w2, app, "0") == NULL && last_state[0] == '\0', "another worker claimed it: %s", last_error);
    CHECK(answer(w, app, id, "\"four\""), "the late answer: %s", last_error);
    CHECK_EQ(val(side, "SELECT syrpc_get_result('%s', '%s', 1)", app, id), "\"four\"", "syrpc_get_result");
    CHECK_EQ(val(side, REQUEST_ROWS, app), "0", "rows in syrpc.request");
    return 1;
}

/*
 * The caller's timeout is honoured even while a worker's answer waits in
 * its open transaction: the request is written ready at once (that answer
 * is dropped when its transaction commits, since a commit callback cannot
 * write it to the table), another worker runs it again, and the caller
 * takes that answer from the table.
 */
TEST(t_timeout_while_answering)
{
    const char *app = "ho_ta";
    call c = { 0 };
    PGconn *w = conn(), *w2 = conn();
    char id[64], id2[64];

    CHECK(run(side, "SELECT syrpc_configure('%s', lease_time => '30 s')", app), "%s", last_error);
    CHECK(w && w2 && call_start(&c, app, "{}", "1"), "start");
    CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
    CHECK(run(w, "BEGIN") && answer(w, app, id, "\"dropped\""), "%s", last_error);
    CHECK(call_timed_out(&c), "the caller did not time out with the answer's transaction open: %s",
          describe(&c));
    CHECK_EQ(c.result_id, id, "the call's result_id");
    CHECK_EQ(val(side, "SELECT attempts || ' ' || (ready_at <= now()) FROM syrpc.request WHERE result_id = '%s'",
                 id), "1 true", "the request's row, ready at once");
    CHECK(run(w, "COMMIT"), "%s", last_error);
    CHECK_EQ(val(side, RESULT_ROWS, app), "0", "the dropped answer in syrpc.result");
    CHECK(keep(id2, claim(w2, app, "5")), "the request was not run again: %s", last_error);
    CHECK_EQ(id2, id, "the request run again");
    CHECK(answer(w2, app, id, "\"again\""), "%s", last_error);
    CHECK_EQ(val(side, "SELECT syrpc_get_result('%s', '%s', 5)", app, id), "\"again\"", "the result taken");
    return 1;
}

TEST(t_cancel)
{
    const char *app = "ho_cancel";
    call c = { 0 };
    PGconn *w = conn();
    char id[64];

    CHECK(run(side, "SELECT syrpc_configure('%s', lease_time => '30 s')", app), "%s", last_error);
    /* while queued: withdrawn, no worker gets it */
    CHECK(w && call_start(&c, app, "{}", NULL), "start");
    CHECK(wait_val("1,0", MEM_COUNTS, app), "memory_requests: %s", S(val(side, MEM_COUNTS, app)));
    CHECK(cancel(c.pg), "cancel");
    CHECK(call_failed_with(&c, "57014"), "%s", describe(&c));
    CHECK(claim(w, app, "0.2") == NULL && last_state[0] == '\0', "a worker got a cancelled call's request %s",
          last_error);
    CHECK_EQ(val(side, MEM_COUNTS, app), "0,0", "memory_requests after the cancel");

    /* while leased: the holder's answer is accepted and dropped */
    CHECK(call_start(&c, app, "{}", NULL), "start");
    CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
    CHECK(cancel(c.pg), "cancel");
    CHECK(call_failed_with(&c, "57014"), "%s", describe(&c));
    CHECK_EQ(val(side, MEM_COUNTS, app), "0,0", "memory_requests after the cancel");
    /* the same session calls again, while the worker still holds the first */
    CHECK(call_start(&c, app, "{\"again\": true}", "0.3"), "start");
    CHECK(call_timed_out(&c), "the next call of the cancelled session: %s", describe(&c));
    CHECK(strcmp(c.result_id, id) != 0, "the same result_id");
    CHECK(answer(w, app, id, "\"dropped\""), "the holder's answer to a cancelled call: %s", last_error);
    CHECK_EQ(val(side, "SELECT count(*) FROM syrpc.result WHERE result_id = '%s'", id), "0",
             "results of the cancelled call");
    /* the next call's request waits in the table, untouched by that answer */
    CHECK_EQ(claim(w, app, "1"), c.result_id, "the next call's request");
    CHECK(answer(w, app, c.result_id, "\"next\""), "%s", last_error);
    CHECK_EQ(val(side, "SELECT syrpc_get_result('%s', '%s', 1)", app, c.result_id), "\"next\"",
             "the next call's result");
    CHECK_EQ(val(side, REQUEST_ROWS, app), "0", "rows in syrpc.request");
    return 1;
}

/*
 * A child process that claims a request of app (autocommit) in a session
 * of its own, writes its result_id to id, and waits to be killed (by
 * close_all, or by the test: child_pid).
 */
static int
fork_claimer(const char *app, char id[64])
{
    int fds[2];
    ssize_t n, got = 0;

    CHECK(pipe(fds) == 0, "pipe");
    fflush(stdout);
    child_pid = fork();
    CHECK(child_pid >= 0, "fork");
    if (child_pid == 0) {
        /* nothing of the parent's: its sessions' sockets are shared */
        PGconn *pg = PQconnectdb("");
        PGresult *res;
        char sql[256];

        snprintf(sql, sizeof(sql), "SELECT result_id FROM syrpc_get_request('%s', 5)", app);
        res = PQexec(pg, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            (void) !write(fds[1], PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)));
        close(fds[1]);
        for (;;)
            pause();
    }
    close(fds[1]);
    while (got < 63 && (n = read(fds[0], id + got, 63 - got)) > 0)
        got += n;
    close(fds[0]);
    id[got] = '\0';
    CHECK(got == 36, "the child claimed nothing");
    return 1;
}

/* A second worker, waiting, gets the request at once when the first one's session ends by end(). */
static int
passed_on(const char *app, const char *id, PGconn *w2, int (*end)(void *), void *arg)
{
    double t0;
    const char *got;

    CHECK(claim_start(w2, app, "5") && blocked(w2, NULL), "the second worker never waited");
    t0 = now_s();
    CHECK(end(arg), "ending the first worker's session");
    got = claim_end(w2);
    diag("  the second worker got it %.0f ms later", (now_s() - t0) * 1000);
    CHECK_EQ(got, id, "the second worker's claim (lease 30 s, wait 5 s)");
    return 1;
}

static int
terminate(void *pg)
{
    return run(side, "SELECT pg_terminate_backend(%d)", PQbackendPID(pg));
}

static int
kill_child(void *arg)
{
    (void) arg;
    kill(child_pid, SIGKILL);
    waitpid(child_pid, NULL, 0);
    child_pid = 0;
    return 1;
}

TEST(t_worker_gone)
{
    const char *app = "ho_gone";
    call c = { 0 }, c2 = { 0 };
    PGconn *w1 = conn(), *w2 = conn();
    char id[64];

    CHECK(run(side, "SELECT syrpc_configure('%s', lease_time => '30 s', max_attempts => 3)", app), "%s", last_error);
    /* its backend terminated */
    CHECK(w1 && w2 && call_start(&c, app, "{}", "20"), "start");
    CHECK(keep(id, claim(w1, app, "5")), "no claim: %s", last_error);
    CHECK(passed_on(app, id, w2, terminate, w1), "after pg_terminate_backend");
    CHECK(answer(w2, app, id, "\"second\""), "%s", last_error);
    CHECK(call_answered(&c, "\"second\""), "%s", describe(&c));
    /* its client killed */
    CHECK(call_start(&c2, app, "{}", "20"), "start");
    CHECK(fork_claimer(app, id), "the child's claim");
    CHECK(passed_on(app, id, w2, kill_child, NULL), "after SIGKILL of the client");
    CHECK(answer(w2, app, id, "\"third\""), "%s", last_error);
    CHECK(call_answered(&c2, "\"third\""), "%s", describe(&c2));
    CHECK_EQ(val(side, REQUEST_ROWS, app), "0", "rows in syrpc.request");
    return 1;
}

/*
 * With max_attempts 2, two claims rolled back (a transaction, a
 * subtransaction) and one whose backend ends: if a rolled-back claim
 * still counted, the last claim would be its second attempt, and the
 * call would fail (SY001) when that worker goes.
 */
TEST(t_claim_rolled_back)
{
    const char *app = "ho_rollback";
    call c = { 0 };
    PGconn *w1 = conn(), *w2 = conn(), *w3 = conn();
    char id[64];

    CHECK(run(side, "SELECT syrpc_configure('%s', lease_time => '30 s', max_attempts => 2)", app), "%s", last_error);
    CHECK(w1 && w2 && w3 && call_start(&c, app, "{}", "20"), "start");
    CHECK(run(w1, "BEGIN") && keep(id, claim(w1, app, "5")) && run(w1, "ROLLBACK"), "%s", last_error);
    CHECK(run(w1, "BEGIN") && run(w1, "SAVEPOINT s"), "%s", last_error);
    CHECK_EQ(claim(w1, app, "5"), id, "the claim after a rollback");
    CHECK(run(w1, "ROLLBACK TO SAVEPOINT s") && run(w1, "COMMIT"), "%s", last_error);
    CHECK_EQ(claim(w2, app, "5"), id, "the claim after a rollback to savepoint");
    CHECK(terminate(w2), "%s", last_error);
    CHECK_EQ(claim(w3, app, "5"), id, "the claim after the second worker's backend ended");
    CHECK(answer(w3, app, id, "\"eight\""), "%s", last_error);
    CHECK(call_answered(&c, "\"eight\""), "%s", describe(&c));
    return 1;
}

TEST(t_max_attempts)
{
    const char *app = "ho_max";
    call c = { 0 };
    PGconn *w = conn();
    char id[64];
    double t0 = now_s();

    CHECK(run(side, "SELECT syrpc_configure('%s', lease_time => '200 ms', max_attempts => 2)", app), "%s",
          last_error);
    CHECK(w && call_start(&c, app, "{}", "20"), "start");
    CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
    CHECK_EQ(claim(w, app, "5"), id, "the claim after the first lease ran out");
    CHECK(call_failed_with(&c, "SY001"), "%s", describe(&c));
    CHECK(strstr(c.message, "2 attempts") != NULL, "the message: %s", c.message);
    diag("  after %.0f ms: %.*s", (now_s() - t0) * 1000, (int) strcspn(c.message, "\n"), c.message);
    CHECK(now_s() - t0 < 10, "failed only after %.1f s", now_s() - t0);
    CHECK(claim(w, app, "0.3") == NULL && last_state[0] == '\0', "claimed after the last attempt %s", last_error);
    CHECK_EQ(val(side, MEM_COUNTS, app), "0,0", "memory_requests");

    /* the last attempt's worker backend ends: SY001 at once, not after its lease */
    app = "ho_max1";
    CHECK(run(side, "SELECT syrpc_configure('%s', lease_time => '30 s', max_attempts => 1)", app), "%s", last_error);
    CHECK(call_start(&c, app, "{}", "20"), "start");
    CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
    t0 = now_s();
    CHECK(terminate(w), "%s", last_error);
    CHECK(call_failed_with(&c, "SY001"), "%s", describe(&c));
    CHECK(strstr(c.message, "1 attempts") != NULL, "the message: %s", c.message);
    CHECK(now_s() - t0 < 5, "failed only after %.1f s", now_s() - t0);
    return 1;
}

/*
 * An answer rolled back to a savepoint is not sent; a second answer waits
 * for the first one's transaction: taken if it rolls back, SY004 if it
 * commits.
 */
TEST(t_two_answers)
{
    const char *app = "ho_answers";
    call c = { 0 };
    PGconn *w = conn(), *w2 = conn();
    char id[64];

    CHECK(run(side, "SELECT syrpc_configure('%s', lease_time => '30 s')", app), "%s", last_error);
    CHECK(w && w2 && call_start(&c, app, "{}", "20"), "start");
    CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
    CHECK(run(w, "BEGIN") && run(w, "SAVEPOINT s") && answer(w, app, id, "\"undone\"") &&
          run(w, "ROLLBACK TO SAVEPOINT s") && answer(w, app, id, "\"redone\"") && run(w, "COMMIT"),
          "%s", last_error);
    CHECK(call_answered(&c, "\"redone\""), "%s", describe(&c));
    for (int commit = 0; commit < 2; commit++) {
        const char *ending = commit ? "COMMIT" : "ROLLBACK";

        CHECK(w && w2 && call_start(&c, app, "{}", "20"), "start");
        CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
        CHECK(run(w, "BEGIN") && answer(w, app, id, "\"first\""), "%s", last_error);
        CHECK(send_sql(w2, "SELECT syrpc_put_result('%s', '%s', '\"second\"')", app, id) && blocked(w2, NULL),
              "the second answer did not wait for the first");
        CHECK(run(w, "%s", ending), "%s", last_error);
        (void) async_val(w2);
        if (commit) {
            CHECK(eq(last_state, "SY004"), "the second answer after the first committed: %s %s", last_state,
                  last_error);
            CHECK(call_answered(&c, "\"first\""), "%s", describe(&c));
        } else {
            CHECK(last_state[0] == '\0', "the second answer after the first rolled back: %s", last_error);
            CHECK(call_answered(&c, "\"second\""), "%s", describe(&c));
        }
    }
    return 1;
}

/*
 * Answers that stay through later subtransactions rolled back: the list
 * of a transaction's answers must outlive each subtransaction's abort
 * (it was once made in memory that the abort frees, and an answer was
 * lost: its caller waited on past its timeout).
 */
TEST(t_answers_through_savepoints)
{
    const char *app = "ho_savepoints";
    call a = { 0 }, b = { 0 };
    PGconn *w = conn();
    char ida[64], idb[64];

    CHECK(run(side, "SELECT syrpc_configure('%s', lease_time => '30 s')", app), "%s", last_error);
    CHECK(w && call_start(&a, app, "{\"n\": 1}", "10") && call_start(&b, app, "{\"n\": 2}", "10"), "start");
    CHECK(wait_val("2,0", MEM_COUNTS, app), "two calls queued: %s", S(val(side, MEM_COUNTS, app)));
    CHECK(keep(ida, claim(w, app, "5")) && keep(idb, claim(w, app, "5")), "no claim: %s", last_error);
    CHECK(run(w, "BEGIN") && answer(w, app, ida, "\"A\"") && answer(w, app, idb, "\"B\""), "%s", last_error);
    for (int i = 0; i < 3; i++)
        CHECK(run(w, "SAVEPOINT s%d", i) && !run(w, "SELECT 1/0") && run(w, "ROLLBACK TO SAVEPOINT s%d", i),
              "savepoint %d: %s", i, last_error);
    CHECK(run(w, "COMMIT"), "%s", last_error);
    call_end(&a);
    call_end(&b);
    CHECK(a.has_result && b.has_result, "a call got no answer: %s; %s", describe(&a), describe(&b));
    CHECK(strcmp(a.result, strcmp(a.result_id, ida) == 0 ? "\"A\"" : "\"B\"") == 0 &&
          strcmp(b.result, strcmp(b.result_id, ida) == 0 ? "\"A\"" : "\"B\"") == 0 &&
          strcmp(a.result_id, b.result_id) != 0, "answers crossed: %s; %s", describe(&a), describe(&b));
    return 1;
}

TEST(t_two_workers_race)
{
    const char *app = "ho_race";
    enum { ROUNDS = 30 };
    call c = { 0 };
    PGconn *w[2] = { conn(), conn() };
    int wins[2] = { 0, 0 };

    CHECK(run(side, "SELECT syrpc_configure('%s')", app), "%s", last_error);
    CHECK(w[0] && w[1], "connect");
    for (int r = 0; r < ROUNDS; r++) {
        char got[2][64], data[32];
        int winner;

        for (int i = 0; i < 2; i++)
            CHECK(claim_start(w[i], app, "0.3"), "send");
        CHECK(blocked(w[0], w[1]), "round %d: the workers never both waited", r);
        snprintf(data, sizeof(data), "{\"round\": %d}", r);
        CHECK(call_start(&c, app, data, "5"), "start");
        for (int i = 0; i < 2; i++) {
            keep(got[i], claim_end(w[i]));
            CHECK(last_state[0] == '\0', "round %d, worker %d: %s", r, i + 1, last_error);
        }
        CHECK(strcmp(got[0], "(none)") == 0 || strcmp(got[1], "(none)") == 0,
              "round %d: both workers got a request: %s, %s", r, got[0], got[1]);
        winner = strcmp(got[0], "(none)") != 0 ? 0 : 1;
        CHECK(strcmp(got[winner], "(none)") != 0, "round %d: no worker got the request", r);
        wins[winner]++;
        CHECK(answer(w[winner], app, got[winner], data), "round %d: %s", r, last_error);
        CHECK(call_answered(&c, data), "round %d: %s", r, describe(&c));
        CHECK_EQ(c.result_id, got[winner], "the call's result_id");
    }
    diag("  of %d rounds, worker 1 won %d, worker 2 %d", ROUNDS, wins[0], wins[1]);
    CHECK_EQ(val(side, REQUEST_ROWS, app), "0", "rows in syrpc.request");
    return 1;
}

TEST(t_other_database)
{
    const char *app = "ho_db", *db = "syrpc_handoff_test_other";
    call c = { 0 };
    PGconn *other, *other2, *w = conn();
    char conninfo[128];

    snprintf(conninfo, sizeof(conninfo), "dbname=%s", db);
    CHECK(run(side, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db) && run(side, "CREATE DATABASE %s", db),
          "%s", last_error);
    other = conn_to(conninfo);
    other2 = conn_to(conninfo);
    CHECK(w && other && other2, "connect");
    /* the app exists there too (else its workers would not even look) */
    CHECK(run(other, "SET client_min_messages = warning") && run(other, "CREATE EXTENSION IF NOT EXISTS syrpc") &&
          run(other, "SELECT syrpc_configure('%s')", app) && run(side, "SELECT syrpc_configure('%s')", app),
          "%s", last_error);
    CHECK(claim_start(other, app, "1.5") && blocked(other, NULL), "the other database's worker never waited");
    CHECK(call_start(&c, app, "{}", "0.5"), "start");
    CHECK(wait_val("1,0", MEM_COUNTS, app), "memory_requests: %s", S(val(side, MEM_COUNTS, app)));
    CHECK_EQ(val(other2, MEM_COUNTS, app), "0,0", "memory_requests of the other database");
    CHECK_EQ(val(other2, "SELECT count(*) FROM syrpc.waiters() WHERE pid = %d", c.pid), "0",
             "the caller in the other database's syrpc.waiters()");
    CHECK(call_timed_out(&c), "%s", describe(&c));
    CHECK(claim_end(other) == NULL && last_state[0] == '\0', "the other database's worker got it %s", last_error);
    CHECK_EQ(val(side, "SELECT count(*) FROM syrpc.request WHERE result_id = '%s'", c.result_id), "1",
             "the row in the caller's database");
    CHECK_EQ(val(other2, "SELECT count(*) FROM syrpc.request"), "0", "rows in the other database");
    /* a worker of its own database gets it */
    CHECK_EQ(claim(w, app, "1"), c.result_id, "the claim in the caller's database");
    CHECK(answer(w, app, c.result_id, "\"here\""), "%s", last_error);
    close_all();
    CHECK(run(side, "DROP DATABASE %s WITH (FORCE)", db), "%s", last_error);
    return 1;
}

TEST(t_failures)
{
    const char *app = "ho_fail", *other_app = "ho_fail_other";
    call c = { 0 };
    PGconn *w = conn(), *w2 = conn();
    char id[64];

    CHECK(run(side, "SELECT syrpc_configure('%s')", other_app), "%s", last_error);
    /* failed by its worker */
    CHECK(w && w2 && call_start(&c, app, "{}", "10"), "start");
    CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
    CHECK(run(w, "SELECT syrpc_fail_request('%s', '%s', 'cannot do it')", app, id), "%s", last_error);
    CHECK(call_failed_with(&c, "SY001"), "%s", describe(&c));
    CHECK(strstr(c.message, "cannot do it") != NULL, "the message: %s", c.message);
    CHECK(!answer(w, app, id, "\"after\"") && eq(last_state, "SY004"), "an answer after the failure: %s %s",
          last_state, last_error);
    /* answered for the wrong app, then right, then twice */
    CHECK(call_start(&c, app, "{}", "10"), "start");
    CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
    CHECK(!answer(w2, other_app, id, "\"wrong\"") && eq(last_state, "SY005"), "the wrong app's answer: %s %s",
          last_state, last_error);
    CHECK(answer(w, app, id, "\"right\""), "%s", last_error);
    CHECK(call_answered(&c, "\"right\""), "%s", describe(&c));
    CHECK(!answer(w, app, id, "\"again\"") && eq(last_state, "SY004"), "the second answer: %s %s",
          last_state, last_error);
    return 1;
}

/* A JSON string of n x's, in buf. */
static const char *
big_string(char *buf, int n)
{
    buf[0] = '"';
    memset(buf + 1, 'x', n);
    buf[n + 1] = '"';
    buf[n + 2] = '\0';
    return buf;
}

/* The caller's request waits in syrpc.request (the table path), is answered, and the caller gets it. */
static int
call_through_table(call *c, const char *app, const char *data, PGconn *w)
{
    char got[64];

    CHECK(call_start(c, app, data, "10"), "start");
    CHECK(wait_val("1", REQUEST_ROWS, app), "its row never came: %s", S(val(side, REQUEST_ROWS, app)));
    CHECK_EQ(val(side, MEM_COUNTS, app), "0,0", "memory_requests");
    CHECK(keep(got, val(w, "SELECT result_id || ',' || length(data::text) FROM syrpc_get_request('%s', 1)", app)),
          "no claim: %s", last_error);
    CHECK(atoi(got + 37) == (int) strlen(data), "claimed data of %d bytes, not %d", atoi(got + 37), (int) strlen(data));
    got[36] = '\0';
    CHECK(answer(w, app, got, "\"table\""), "%s", last_error);
    CHECK(call_answered(c, "\"table\""), "%s", describe(c));
    return 1;
}

TEST(t_large)
{
    const char *app = "ho_big";
    static char big[9100];
    call c = { 0 }, off = { 0 };
    PGconn *w = conn();
    char id[64];

    /* a large answer */
    CHECK(w && call_start(&c, app, "{}", "10"), "start");
    CHECK(keep(id, claim(w, app, "5")), "no claim: %s", last_error);
    CHECK(run(w, "SELECT syrpc_put_result('%s', '%s', to_jsonb(repeat('x', 9000)))", app, id), "%s", last_error);
    CHECK(call_answered(&c, big_string(big, 9000)), "%s", describe(&c));
    /* a large request, and a call with syrpc.memory_calls off: the table path */
    CHECK(call_through_table(&c, app, big_string(big, 9000), w), "the large request");
    CHECK((off.pg = conn()) && run(off.pg, "SET syrpc.memory_calls = off"), "%s", last_error);
    CHECK(call_through_table(&off, app, "{\"off\": 1}", w), "with syrpc.memory_calls off");
    return 1;
}

TEST(t_request_ttl)
{
    const char *app = "ho_ttl";
    call c = { 0 };
    double t0 = now_s();

    CHECK(run(side, "SELECT syrpc_configure('%s', request_ttl => '300 ms')", app), "%s", last_error);
    CHECK(call_start(&c, app, "{}", NULL), "start");
    CHECK(call_failed_with(&c, "SY002"), "%s", describe(&c));
    diag("  after %.0f ms: %.*s", (now_s() - t0) * 1000, (int) strcspn(c.message, "\n"), c.message);
    CHECK(now_s() - t0 < 5, "expired only after %.1f s", now_s() - t0);
    CHECK_EQ(val(side, MEM_COUNTS, app), "0,0", "memory_requests");
    CHECK_EQ(val(side, REQUEST_ROWS, app), "0", "rows in syrpc.request");
    return 1;
}

static const test_case tests[] = {
    { "20 calls answered in memory: no xid, no WAL, no row", t_answered_in_memory },
    { "a queued call: memory_requests, syrpc_stats, waiters; claimed, answered at commit", t_queued_then_claimed },
    { "the first call of a new app reaches a worker already waiting", t_new_app },
    { "timeout while queued: the row, attempts 0; answered and taken through the table", t_timeout_while_queued },
    { "timeout while leased: the row leased, attempts 1; the late answer taken", t_timeout_while_leased },
    { "timeout while the answer's transaction is open: honoured; the request run again", t_timeout_while_answering },
    { "cancel while queued: nobody gets it; while leased: the answer dropped", t_cancel },
    { "worker's backend terminated, or its client killed: the next worker gets it at once", t_worker_gone },
    { "a claim rolled back (and to a savepoint) does not count as an attempt", t_claim_rolled_back },
    { "max_attempts leases run out: SY001 after 2 attempts; the last holder's backend ends: SY001 at once", t_max_attempts },
    { "an answer rolled back to a savepoint; a second answer waits for the first's transaction", t_two_answers },
    { "answers kept through later savepoints rolled back", t_answers_through_savepoints },
    { "two workers racing for 30 calls: exactly one gets each", t_two_workers_race },
    { "a worker of another database never gets the call", t_other_database },
    { "syrpc_fail_request: SY001 with the reason; wrong app SY005; twice SY004", t_failures },
    { "a large answer comes back; a large request or memory_calls off takes the table", t_large },
    { "request_ttl passes while queued in memory: SY002", t_request_ttl },
};

#define NTESTS ((int) (sizeof(tests) / sizeof(tests[0])))

int
main(void)
{
    const char *why = NULL;
    int rc;

    tests_init();
    side = PQconnectdb("");
    PQsetNoticeProcessor(side, quiet, NULL);
    if (PQstatus(side) != CONNECTION_OK)
        diag("connect failed: %s", PQerrorMessage(side));
    else if (!eq(val(side, "SELECT current_setting('syrpc.wakeup_registry', true)"), "shared_memory"))
        why = "not preloaded";
    else if (eq(val(side, "SHOW syrpc.memory_payload_limit"), "0"))
        why = "syrpc.memory_payload_limit = 0";
    if (why) {
        printf("1..%d\n", NTESTS);
        for (int i = 0; i < NTESTS; i++)
            printf("ok %d - %s # SKIP %s\n", i + 1, tests[i].name, why);
        printf("%d passed, 0 failed\n", NTESTS);
        PQfinish(side);
        return 0;
    }
    /* what an earlier run on this database left */
    if (!run(side, "SELECT count(syrpc_drop_app(app, true)) FROM syrpc.app WHERE app LIKE 'ho\\_%%'") ||
        !run(side, "DROP TRIGGER IF EXISTS ho_slow_commit ON syrpc.app; DROP FUNCTION IF EXISTS ho_slow_commit()"))
        diag("%s", last_error);
    rc = RUN_TESTS(tests);
    PQfinish(side);
    return rc;
}
