/*
 * sessions.h: libpq sessions for the C tests that drive the server from
 * several sessions at once (sessions.c).
 */
#ifndef SYRPC_SESSIONS_H
#define SYRPC_SESSIONS_H

#include <sys/types.h>

#include <libpq-fe.h>

#include "testlib.h"

#define S(v) ((v) ? (v) : "(none)")

/* Both set and equal. */
int eq(const char *a, const char *b);

/* The side connection: looks at the server's state; open throughout. */
extern PGconn *side;
/* A child the test forked: killed by close_all. */
extern pid_t child_pid;

/* A notice processor that drops notices (CREATE EXTENSION's, say): not the test's output. */
void quiet(void *arg, const char *message);

/* A session of the test's own (closed by close_all); NULL if it cannot connect. */
PGconn *conn_to(const char *conninfo);
PGconn *conn(void);
void close_all(void);

/* Each test's sessions are closed after it, whether it passed or not. */
#define TEST(fn) \
    static int fn##_body(void); \
    static int fn(void) { int ok = fn##_body(); close_all(); return ok; } \
    static int fn##_body(void)

/* How the last statement (val, run, async_val) ended: SQLSTATE and message, "" if it succeeded. */
extern char last_state[8];
extern char last_error[1024];

/* Run SQL in pg; its first value (valid for the next few calls), or NULL. */
const char *val(PGconn *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run SQL in pg; 1 if it succeeded (else last_state and last_error say why). */
int run(PGconn *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fail the test unless got (a value or NULL) is expected; what says what it is. */
#define CHECK_EQ(got, expected, what) do { \
        const char *got_ = (got), *expected_ = (expected); \
        CHECK(eq(got_, expected_), "%s: got %s, expected %s%s%s", (what), S(got_), expected_, \
              last_error[0] ? "; " : "", last_error); \
    } while (0)

/* Copy v (a result_id, say) into dst[64]; 1 unless v is NULL. */
int keep(char *dst, const char *v);
/* Wait up to secs until what pg sent has come back; 1 if it did. */
int ready_within(PGconn *pg, double secs);
/* Send SQL in pg without waiting for it. */
int send_sql(PGconn *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first value of what send_sql sent, once it comes (up to 30 s). */
const char *async_val(PGconn *pg);
/* Wait (up to 10 s) until SQL on the side connection returns expected. */
int wait_val(const char *expected, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Wait until sessions a and b (NULL: only a) sleep in a syrpc wait. */
int blocked(PGconn *a, PGconn *b);
/* Cancel what pg runs (PQcancel). */
int cancel(PGconn *pg);

/* ---- syrpc_call and the workers' calls, in sessions (sessions.c) ---- */

/* A caller's session and how its last syrpc_call ended. */
typedef struct call {
    PGconn *pg;                 /* opened by call_start if NULL */
    int pid;
    char result_id[64];         /* "" if it ended with an error */
    int has_result;             /* result is not NULL */
    char result[16384];
    char state[8];              /* SQLSTATE of its error, "" if none */
    char message[1024];
} call;

/* Send CALL syrpc_call(app, 'echo', data, timeout) in c's session (timeout NULL: none). */
int call_start(call *c, const char *app, const char *data, const char *timeout);
/* Still running? */
int call_busy(call *c);
/* Wait (up to 30 s) for it to end, and note how. */
void call_end(call *c);
/* How it ended, for a failed check. */
const char *describe(const call *c);
/* It ends with the answer expected / with result_id and a NULL result / with SQLSTATE state. */
int call_answered(call *c, const char *expected);
int call_timed_out(call *c);
int call_failed_with(call *c, const char *state);
/* A worker's claim (syrpc_get_request, waiting up to secs): the result_id, or NULL. */
const char *claim(PGconn *w, const char *app, const char *secs);
/* The same, sent without waiting; claim_end takes its result_id. */
int claim_start(PGconn *w, const char *app, const char *secs);
#define claim_end(w) async_val(w)
/* syrpc_put_result(app, id, json); 1 if it succeeded. */
int answer(PGconn *w, const char *app, const char *id, const char *json);

#endif
