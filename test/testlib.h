/*
 * testlib.h: helpers shared by the C test programs in test/: checks, a
 * TAP-style runner, SQL on a side connection, waiting on a condition
 * with a deadline.
 */
#ifndef SYRPC_TESTLIB_H
#define SYRPC_TESTLIB_H

#include "syrpc.h"

/* Fail the current test (return 0) with a message unless cond holds. */
#define CHECK(cond, ...) do { \
        if (!(cond)) { \
            fprintf(stdout, "#   check failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stdout, __VA_ARGS__); \
            fputc('\n', stdout); \
            return 0; \
        } \
    } while (0)

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

/* A worker's conninfo for syrpc.async_results = on. */
#define ASYNC_RESULTS_CONNINFO "options='-c syrpc.async_results=on'"

/* Run one test and print "ok N - name" or "not ok N - name". */
void run_test(const char *name, int (*fn)(void));

/* Print "N passed, N failed"; the exit code for main. */
int test_summary(void);

#endif
