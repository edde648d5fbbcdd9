/*
 * testlib.h: helpers shared by the C test programs in test/: checks, a
 * TAP-style runner, SQL on a side connection, waiting on a condition
 * with a deadline, a worker thread running syrpc_serve.
 */
#ifndef SYRPC_TESTLIB_H
#define SYRPC_TESTLIB_H

#include <pthread.h>
#include <signal.h>

#include "syrpc.h"

/* Fail the current test (return 0) with a message unless cond holds. */
#define CHECK(cond, ...) do { \
        if (!(cond)) { \
            check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__); \
            return 0; \
        } \
    } while (0)

/* Print why a check failed as TAP comments ("#   ..."), one per line. */
void check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Print a message as TAP comments, one "# " line per line of it. */
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

double now_s(void);

/* Run SQL on a connection of its own; the first value, malloc'd, or NULL. */
char *sql_value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wait until the query returns expected, up to timeout_s; 1 if it did. */
int wait_for(double timeout_s, const char *expected, const char *sql);

/* Wait (up to 10 s) until the session's backend sleeps in a syrpc wait. */
int wait_blocked(void *pgconn);

/* Read and drop what an async query still sends, and close the session. */
void finish_session(void *pgconn);

/* Connect for app; NULL (after printing why) if that fails. */
syrpc_conn *connect_app(const char *app);
/* The same with a conninfo of its own (kept by syrpc_reconnect). */
syrpc_conn *connect_app_with(const char *conninfo, const char *app);

/*
 * A worker thread: syrpc_serve on a handle of its own, until server_stop
 * or until it has served max_requests (0: no limit).  setup registers the
 * handlers; it gets the server too, so that a handler may count in
 * handled (with __atomic builtins: the thread is not the test's).
 */
typedef struct test_server test_server;
typedef void (*server_setup)(syrpc_conn *conn, test_server *s);

struct test_server {
    const char *conninfo;
    const char *app;
    long max_requests;
    server_setup setup;
    pthread_t tid;
    volatile sig_atomic_t stop;
    volatile int done;          /* syrpc_serve returned */
    syrpc_status status;        /* what it returned */
    char message[256];          /* and the handle's message then */
    int handled;
};

void server_start(test_server *s, const char *conninfo, const char *app, long max_requests,
                  server_setup setup);

/* A handler that answers with the request's data; counts in *(int *) arg unless arg is NULL. */
json_t *echo_handler(const syrpc_request *req, void *arg);
/* A setup: echo_handler for "echo", counting in the server's handled. */
void serve_echo(syrpc_conn *conn, test_server *s);
/* Set its interrupt flag, wake it (SIGUSR1), wait for it; syrpc_serve's status. */
syrpc_status server_stop(test_server *s);

/*
 * For main, first: stdout line-buffered (the TAP lines interleave with the
 * threads'), and a SIGUSR1 handler without SA_RESTART, so that
 * server_stop's signal ends a serve loop's wait.
 */
void tests_init(void);

/* A worker's conninfo for syrpc.async_results = on. */
#define ASYNC_RESULTS_CONNINFO "options='-c syrpc.async_results=on'"

/*
 * The runner prints TAP: a plan "1..N" (first when the tests are run with
 * run_tests, else last, from test_summary), one "ok N - name" or
 * "not ok N - name" per test, and "N passed, N failed" last.  A program
 * that stops early prints fewer test lines than its plan, or no plan: the
 * suite (tools/tap.sh) counts that as a failure.
 */
/* Run sql in database db (NULL: the default), quietly; 1 if it worked (else a diag line). */
int run_in(const char *db, const char *sql);
/* Drop database db if it is there. */
int drop_db(const char *db);
/* A fresh database db (dropped first if there); create_sql run in it unless NULL. */
int make_db(const char *db, const char *create_sql);

typedef struct test_case {
    const char *name;
    int (*fn)(void);
} test_case;

/* Print the plan, run the n tests in order; test_summary()'s exit code. */
int run_tests(const test_case *tests, int n);
#define RUN_TESTS(tests) run_tests((tests), (int) (sizeof(tests) / sizeof((tests)[0])))

/* Run one test and print "ok N - name" or "not ok N - name". */
void run_test(const char *name, int (*fn)(void));

/*
 * Print the plan (unless run_tests printed it) and "N passed, N failed";
 * the exit code for main: 1 if a test failed or the number run differs
 * from the plan.
 */
int test_summary(void);

#endif
