/*
 * testlib.c: helpers shared by the C test programs (see testlib.h).
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testlib.h"

static int passed, failed, numbered;
static int planned = -1;      /* the plan run_tests printed, or -1 */

/* Print text as comments: each of its lines after prefix. */
static void
print_commented(const char *prefix, const char *text)
{
    const char *p = text;

    do {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int) (nl - p) : (int) strlen(p);

        if (nl == NULL && len == 0 && p != text)
            break;              /* the text ended with a newline */
        printf("%s%.*s\n", prefix, len, p);
        p = nl ? nl + 1 : p + len;
    } while (*p != '\0');
    fflush(stdout);
}

void
check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
{
    char msg[4096], all[4400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(all, sizeof(all), "check failed at %s:%d: %s: %s", file, line, cond, msg);
    print_commented("#   ", all);
}

void
diag(const char *fmt, ...)
{
    char msg[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    print_commented("# ", msg);
}

double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

char *
sql_value(const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    PGconn *pg = PQconnectdb("");
    PGresult *res;
    char *value = NULL;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    res = PQexec(pg, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
        value = strdup(PQgetvalue(res, 0, 0));
    else if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
        diag("sql failed: %s: %s", sql, PQerrorMessage(pg));
    PQclear(res);
    PQfinish(pg);
    return value;
}

int
wait_for(double timeout_s, const char *expected, const char *sql)
{
    double deadline = now_s() + timeout_s;

    for (;;) {
        char *v = sql_value("%s", sql);
        int ok = v != NULL && strcmp(v, expected) == 0;

        free(v);
        if (ok)
            return 1;
        if (now_s() > deadline)
            return 0;
        usleep(5000);
    }
}

int
wait_blocked(void *pgconn)
{
    char sql[160];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event = 'Extension'",
             PQbackendPID(pgconn));
    return wait_for(10, "1", sql);
}

void
finish_session(void *pgconn)
{
    PGresult *res;

    while ((res = PQgetResult(pgconn)) != NULL)
        PQclear(res);
    PQfinish(pgconn);
}

syrpc_conn *
connect_app(const char *app)
{
    return connect_app_with("", app);
}

syrpc_conn *
connect_app_with(const char *conninfo, const char *app)
{
    syrpc_conn *c = syrpc_connect(conninfo, app);

    if (c == NULL || syrpc_status_of(c) != SYRPC_OK) {
        diag("connect failed: %s", c ? syrpc_error_message(c) : "out of memory");
        syrpc_finish(c);
        return NULL;
    }
    return c;
}

json_t *
echo_handler(const syrpc_request *req, void *arg)
{
    if (arg)
        __atomic_add_fetch((int *) arg, 1, __ATOMIC_SEQ_CST);
    return json_deep_copy(syrpc_request_data(req));
}

void
serve_echo(syrpc_conn *conn, test_server *s)
{
    syrpc_register(conn, "echo", echo_handler, &s->handled);
}

static void *
server_main(void *arg)
{
    test_server *s = arg;
    syrpc_conn *c = connect_app_with(s->conninfo, s->app);

    if (c == NULL) {
        s->status = SYRPC_CONNECTION;
        __atomic_store_n(&s->done, 1, __ATOMIC_SEQ_CST);
        return NULL;
    }
    syrpc_set_interrupt_flag(c, &s->stop);
    s->setup(c, s);
    s->status = syrpc_serve(c, s->max_requests);
    snprintf(s->message, sizeof(s->message), "%s", syrpc_error_message(c));
    syrpc_finish(c);
    __atomic_store_n(&s->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

void
server_start(test_server *s, const char *conninfo, const char *app, long max_requests, server_setup setup)
{
    memset(s, 0, sizeof(*s));
    s->conninfo = conninfo;
    s->app = app;
    s->max_requests = max_requests;
    s->setup = setup;
    pthread_create(&s->tid, NULL, server_main, s);
}

syrpc_status
server_stop(test_server *s)
{
    s->stop = 1;
    pthread_kill(s->tid, SIGUSR1);
    pthread_join(s->tid, NULL);
    return s->status;
}

static void on_usr1(int sig) { (void) sig; }

void
tests_init(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
}

void
run_test(const char *name, int (*fn)(void))
{
    int ok = fn();

    printf("%s %d - %s\n", ok ? "ok" : "not ok", ++numbered, name);
    fflush(stdout);
    if (ok)
        passed++;
    else
        failed++;
}

int
run_tests(const test_case *tests, int n)
{
    planned = n;
    printf("1..%d\n", n);
    fflush(stdout);
    for (int i = 0; i < n; i++)
        run_test(tests[i].name, tests[i].fn);
    return test_summary();
}

int
test_summary(void)
{
    int wrong_count = planned >= 0 && planned != numbered;

    if (planned < 0)
        printf("1..%d\n", numbered);
    else if (wrong_count)
        printf("# planned %d tests, ran %d\n", planned, numbered);
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed || wrong_count ? 1 : 0;
}

/* Run sql in database db (NULL: the default), quietly; 1 if it worked. */
int
run_in(const char *db, const char *sql)
{
    char conninfo[128];
    PGconn *pg;
    PGresult *res;
    int ok = 1;

    snprintf(conninfo, sizeof(conninfo), "%s%s options='-c client_min_messages=warning'",
             db ? "dbname=" : "", db ? db : "");
    pg = PQconnectdb(conninfo);
    res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        diag("%s: %s", sql, PQerrorMessage(pg));
        ok = 0;
    }
    PQclear(res);
    PQfinish(pg);
    return ok;
}

int
drop_db(const char *db)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    return run_in(NULL, sql);
}

int
make_db(const char *db, const char *create_sql)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    if (!drop_db(db) || !run_in(NULL, sql))
        return 0;
    return create_sql == NULL || run_in(db, create_sql);
}
