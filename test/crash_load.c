/*
 * crash_load.c: the server-crash test.
 *
 *   crash_load APP CALLERS WORKERS SECONDS     (SYRPC_CRASH_CMD in the environment)
 *
 * Callers put echo requests and wait for their results; workers answer
 * (syrpc_serve).
 * Halfway through, SYRPC_CRASH_CMD stops the server the hard way
 * (pg_ctl stop -m immediate) and starts it again; everybody reconnects.
 * Then every request whose syrpc_put_request returned must be answered
 * (with its own data) or explicitly failed: none lost.
 *
 * Every other caller uses syrpc_call instead, whose request commits
 * without the WAL flush: it must get its own answer, or an error when the
 * crash cuts its session, never a timeout nor a wrong answer.  Every other
 * worker runs with syrpc.async_results = on: a result the crash loses
 * must come back by its request's redelivery.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

static const char *app;
static volatile sig_atomic_t stop_putting;
static long n_put, n_answered, n_failed, n_lost, n_wrong, n_unconfirmed;
static long n_calls, n_calls_cut;

static void
add(long *counter)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_SEQ_CST);
}

/* Reconnect until it works, for up to 60 s. */
static int
reconnect(syrpc_conn *c)
{
    for (int i = 0; i < 600; i++) {
        if (syrpc_reconnect(c) == SYRPC_OK)
            return 1;
        usleep(100000);
    }
    return 0;
}

/* syrpc_call's loop: answered, or cut by the crash; nothing else. */
static void
call_loop(syrpc_conn *c)
{
    long n = 0;

    while (c && !stop_putting) {
        json_t *data = json_pack("{s:s, s:i}", "call", "yes", "n", (int) n++);
        json_t *result = NULL;
        syrpc_status st = syrpc_call(c, "echo", data, 30000, &result);

        if (st == SYRPC_OK) {
            add(&n_calls);
            add(json_equal(result, data) ? &n_answered : &n_wrong);
        } else if (st == SYRPC_CONNECTION) {
            add(&n_calls_cut);
            if (!reconnect(c))
                break;
        } else {
            diag("syrpc_call: %s: %s", syrpc_status_name(st), syrpc_error_message(c));
            add(&n_lost);
        }
        json_decref(result);
        json_decref(data);
    }
}

static void *
caller(void *arg)
{
    syrpc_conn *c = connect_app(app);
    long n = 0;

    if ((long) arg % 2 == 1) {
        call_loop(c);
        syrpc_finish(c);
        return NULL;
    }
    while (c && !stop_putting) {
        json_t *data = json_pack("{s:i, s:i}", "caller", (int) (long) pthread_self() % 100000, "n", (int) n++);
        json_t *result = NULL;
        char id[SYRPC_ID_SIZE];
        syrpc_status st = syrpc_put_request(c, "echo", data, id);

        if (st != SYRPC_OK) {
            /* did it commit?  We cannot know: not counted as put */
            add(&n_unconfirmed);
            json_decref(data);
            if (st == SYRPC_CONNECTION && !reconnect(c))
                break;
            continue;
        }
        add(&n_put);
        for (;;) {
            st = syrpc_get_result(c, id, 30000, &result);
            if (st == SYRPC_CONNECTION) {
                if (!reconnect(c)) {
                    add(&n_lost);
                    break;
                }
                continue;
            }
            if (st == SYRPC_OK)
                add(json_equal(result, data) ? &n_answered : &n_wrong);
            else if (st == SYRPC_REQUEST_FAILED)
                add(&n_failed);
            else {
                char *row = sql_value("SELECT coalesce((SELECT to_jsonb(r)::text FROM syrpc.request r WHERE result_id = '%s'), 'no request')"
                                      " || ' / ' || coalesce((SELECT to_jsonb(s)::text FROM syrpc.result s WHERE result_id = '%s'), 'no result')", id, id);

                diag("lost %s: %s: %s; %s", id, syrpc_status_name(st), syrpc_error_message(c), row ? row : "?");
                free(row);
                add(&n_lost);
            }
            break;
        }
        json_decref(result);
        json_decref(data);
    }
    syrpc_finish(c);
    return NULL;
}

int
main(int argc, char **argv)
{
    int ncallers, nworkers;
    double seconds;
    const char *crash = getenv("SYRPC_CRASH_CMD");
    pthread_t *ct;
    test_server *wt;
    char *v;
    int ok, restarted;
    long answered_before, handled = 0;

    if (argc != 5 || crash == NULL) {
        fprintf(stderr, "usage: SYRPC_CRASH_CMD=... crash_load APP CALLERS WORKERS SECONDS\n");
        return 2;
    }
    tests_init();
    printf("1..2\n");         /* the TAP plan: a run that stops early prints fewer */
    app = argv[1];
    ncallers = atoi(argv[2]);
    nworkers = atoi(argv[3]);
    seconds = atof(argv[4]);
    v = sql_value("SELECT syrpc_configure('%s', lease_time => '1 s', max_attempts => 5)", app);
    free(v);
    ct = calloc(ncallers, sizeof(pthread_t));
    wt = calloc(nworkers, sizeof(test_server));
    /* every other one with the setting in its conninfo, so that it is set again after each reconnect */
    for (int i = 0; i < nworkers; i++)
        server_start(&wt[i], i % 2 == 1 ? ASYNC_RESULTS_CONNINFO : "", app, 0, serve_echo);
    for (int i = 0; i < ncallers; i++)
        pthread_create(&ct[i], NULL, caller, (void *) (long) i);
    usleep((useconds_t) (seconds / 2 * 1e6));
    printf("# crash after %ld requests put and %ld answered: %s\n", n_put, n_answered, crash);
    if (system(crash) != 0)
        printf("# the crash command failed\n");
    answered_before = __atomic_load_n(&n_answered, __ATOMIC_SEQ_CST);
    usleep((useconds_t) (seconds / 2 * 1e6));
    stop_putting = 1;
    for (int i = 0; i < ncallers; i++)
        pthread_join(ct[i], NULL);
    for (int i = 0; i < nworkers; i++)
        if (server_stop(&wt[i]) != SYRPC_INTERRUPTED)
            diag("worker %d: syrpc_serve ended with %s: %s", i, syrpc_status_name(wt[i].status), wt[i].message);
    for (int i = 0; i < nworkers; i++)
        handled += wt[i].handled;
    printf("# requests put %ld, answered %ld (%ld of them by syrpc_call), failed %ld, lost %ld,"
           " wrong answer %ld; puts unconfirmed by the crash %ld, syrpc_calls cut by it %ld;"
           " handler calls %ld\n",
           n_put + n_calls, n_answered, n_calls, n_failed, n_lost, n_wrong, n_unconfirmed,
           n_calls_cut, handled);
    ok = n_put > 0 && n_calls > 0 && n_lost == 0 && n_wrong == 0 &&
        n_answered + n_failed == n_put + n_calls;
    printf("%s 1 - server crash under load: every request put is answered or failed, none lost\n",
           ok ? "ok" : "not ok");
    restarted = n_answered > answered_before;     /* answered once the server was back */
    printf("%s 2 - requests were answered after the restart too\n", restarted ? "ok" : "not ok");
    printf("%d passed, %d failed\n", ok + restarted, !ok + !restarted);
    free(ct);
    free(wt);
    return ok && restarted ? 0 : 1;
}
