/*
 * sessions.c: libpq sessions for the C tests that drive the server from
 * several sessions at once (handoff_test.c): sessions closed when the
 * test ends (TEST), statements and how they ended, statements sent
 * without waiting, and waiting on a value of the side connection with a
 * deadline; a caller's CALL syrpc_call sent without waiting and how it
 * ended, and a worker's claim and answer.  Declared in sessions.h.
 */
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sessions.h"

int
eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* ---- sessions: the side connection, and the tests' own ---- */

PGconn     *side;            /* looks at the server's state; open throughout */

/* A test's sessions and the child it forked, closed and killed when it ends (close_all). */
static PGconn *opened[32];
static int nopened;
pid_t       child_pid;

/* Notices and warnings (of CREATE EXTENSION, say) are not the test's output. */
void
quiet(void *arg, const char *message)
{
    (void) arg;
    (void) message;
}

PGconn *
conn_to(const char *conninfo)
{
    PGconn *pg = PQconnectdb(conninfo);

    PQsetNoticeProcessor(pg, quiet, NULL);
    if (PQstatus(pg) != CONNECTION_OK || nopened == (int) (sizeof(opened) / sizeof(opened[0]))) {
        diag("connect failed: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    opened[nopened++] = pg;
    return pg;
}

PGconn *
conn(void)
{
    return conn_to("");
}

void
close_all(void)
{
    if (child_pid > 0) {
        kill(child_pid, SIGKILL);
        waitpid(child_pid, NULL, 0);
        child_pid = 0;
    }
    while (nopened > 0)
        PQfinish(opened[--nopened]);
}


/* ---- statements ---- */

/* How the last statement (val, run, async_val) ended: SQLSTATE and message, "" if it succeeded. */
char        last_state[8];
char        last_error[1024];

/* Values handed out by val, in a ring: each stays valid for the next few calls. */
static char ring[8][16384];
static int ring_next;

/*
 * Take res (and clear it): note how it ended, and return its first value
 * (in the ring), or NULL if it has none, it is NULL, or res is an error.
 */
static const char *
outcome(PGconn *pg, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    const char *v = NULL;

    last_state[0] = last_error[0] = '\0';
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0)) {
            char *buf = ring[ring_next++ % 8];

            snprintf(buf, sizeof(ring[0]), "%s", PQgetvalue(res, 0, 0));
            v = buf;
        }
    } else {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

        snprintf(last_state, sizeof(last_state), "%s", state ? state : "?????");
        snprintf(last_error, sizeof(last_error), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
    }
    PQclear(res);
    return v;
}

static const char *
vval(PGconn *pg, const char *fmt, va_list ap)
{
    char sql[4096];

    vsnprintf(sql, sizeof(sql), fmt, ap);
    return outcome(pg, PQexec(pg, sql));
}

/* Run SQL in pg; its first value, as outcome says. */
const char *
val(PGconn *pg, const char *fmt, ...)
{
    va_list ap;
    const char *v;

    va_start(ap, fmt);
    v = vval(pg, fmt, ap);
    va_end(ap);
    return v;
}

/* Run SQL in pg; 1 if it succeeded (else last_state and last_error say why). */
int
run(PGconn *pg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void) vval(pg, fmt, ap);
    va_end(ap);
    return last_state[0] == '\0';
}


/* Copy v (a result_id, say) into dst[64]; 1 unless v is NULL. */
int
keep(char *dst, const char *v)
{
    snprintf(dst, 64, "%s", S(v));
    return v != NULL;
}

/*
 * Wait, up to secs, until what pg sent has come back (or its connection
 * broke); 1 if it did.  Consumes input, so PQgetResult will not block.
 */
int
ready_within(PGconn *pg, double secs)
{
    double deadline = now_s() + secs;

    for (;;) {
        struct pollfd p = { .fd = PQsocket(pg), .events = POLLIN };
        double left;

        if (!PQconsumeInput(pg) || !PQisBusy(pg))
            return 1;
        if ((left = deadline - now_s()) <= 0)
            return 0;
        (void) poll(&p, 1, (int) (left * 1000) + 1);
    }
}

/* Send SQL in pg without waiting for it. */
int
send_sql(PGconn *pg, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (!PQsendQuery(pg, sql)) {
        diag("send failed: %s", PQerrorMessage(pg));
        return 0;
    }
    return 1;
}

/* The first value of what send_sql sent, as outcome says, once it comes (up to 30 s). */
const char *
async_val(PGconn *pg)
{
    const char *v;
    PGresult *res;

    if (!ready_within(pg, 30)) {
        snprintf(last_state, sizeof(last_state), "HUNG");
        snprintf(last_error, sizeof(last_error), "no answer within 30 s");
        return NULL;
    }
    v = outcome(pg, PQgetResult(pg));
    while ((res = PQgetResult(pg)) != NULL)
        PQclear(res);
    return v;
}

/*
 * Wait (up to 10 s) until SQL on the side connection returns expected:
 * polling the server, with a deadline, is how these tests wait for
 * something to happen.
 */
int
wait_val(const char *expected, const char *fmt, ...)
{
    double deadline = now_s() + 10;
    char sql[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    for (;;) {
        if (eq(val(side, "%s", sql), expected))
            return 1;
        if (now_s() > deadline)
            return 0;
        usleep(2000);
    }
}

/* Wait until the sessions a and b (NULL: only a) sleep in a syrpc wait; 1 if they do. */
int
blocked(PGconn *a, PGconn *b)
{
    return wait_val(b ? "2" : "1",
                    "SELECT count(*) FROM pg_stat_activity WHERE pid IN (%d, %d) AND wait_event = 'Extension'",
                    PQbackendPID(a), b ? PQbackendPID(b) : PQbackendPID(a));
}

int
cancel(PGconn *pg)
{
    char err[256] = "";
    PGcancel *c = PQgetCancel(pg);
    int ok = c != NULL && PQcancel(c, err, sizeof(err));

    if (!ok)
        diag("cancel failed: %s", err);
    PQfreeCancel(c);
    return ok;
}

/* ---- syrpc_call and the workers' calls, in sessions ---- */


/*
 * Send CALL syrpc_call(app, 'echo', data, timeout) in c's session
 * (timeout NULL: none), and return without waiting.
 */
int
call_start(call *c, const char *app, const char *data, const char *timeout)
{
    const char *params[3] = { app, data, timeout };

    if (c->pg == NULL && (c->pg = conn()) == NULL)
        return 0;
    c->pid = PQbackendPID(c->pg);
    if (!PQsendQueryParams(c->pg, "CALL syrpc_call($1, 'echo', $2::jsonb, $3::float8)",
                           3, NULL, params, NULL, NULL, 0)) {
        diag("send failed: %s", PQerrorMessage(c->pg));
        return 0;
    }
    return 1;
}

/* Has the call not returned yet? */
int
call_busy(call *c)
{
    return PQconsumeInput(c->pg) && PQisBusy(c->pg);
}

/* Wait (up to 30 s) for the call to return, and note how it ended. */
void
call_end(call *c)
{
    PGresult *res;

    c->result_id[0] = c->result[0] = c->state[0] = c->message[0] = '\0';
    c->has_result = 0;
    if (!ready_within(c->pg, 30)) {
        snprintf(c->state, sizeof(c->state), "HUNG");
        snprintf(c->message, sizeof(c->message), "did not return within 30 s");
        return;
    }
    res = PQgetResult(c->pg);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 2) {
        snprintf(c->result_id, sizeof(c->result_id), "%s", PQgetvalue(res, 0, 0));
        c->has_result = !PQgetisnull(res, 0, 1);
        snprintf(c->result, sizeof(c->result), "%s", PQgetvalue(res, 0, 1));
    } else {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

        snprintf(c->state, sizeof(c->state), "%s", state ? state : "?????");
        snprintf(c->message, sizeof(c->message), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
    }
    PQclear(res);
    while ((res = PQgetResult(c->pg)) != NULL)
        PQclear(res);
}

/* How the call ended, for a failed check. */
const char *
describe(const call *c)
{
    static char buf[1400];

    if (c->state[0])
        snprintf(buf, sizeof(buf), "the call ended with %s: %s", c->state, c->message);
    else
        snprintf(buf, sizeof(buf), "the call returned result_id %s and %.300s", c->result_id,
                 c->has_result ? c->result : "NULL");
    return buf;
}

/* The call returns the answer expected. */
int
call_answered(call *c, const char *expected)
{
    call_end(c);
    return c->state[0] == '\0' && c->has_result && strcmp(c->result, expected) == 0;
}

/* The call returns a result_id and a NULL result: its timeout passed. */
int
call_timed_out(call *c)
{
    call_end(c);
    return c->state[0] == '\0' && !c->has_result && strlen(c->result_id) == 36;
}

/* The call ends with an error of SQLSTATE state. */
int
call_failed_with(call *c, const char *state)
{
    call_end(c);
    return strcmp(c->state, state) == 0;
}

/* A worker claims a request of app, waiting up to secs: its result_id, or NULL (none, or an error). */
const char *
claim(PGconn *w, const char *app, const char *secs)
{
    return val(w, "SELECT result_id FROM syrpc_get_request('%s', %s)", app, secs);
}

/* The same, sent without waiting; claim_end takes its result_id. */
int
claim_start(PGconn *w, const char *app, const char *secs)
{
    return send_sql(w, "SELECT result_id FROM syrpc_get_request('%s', %s)", app, secs);
}


/* A worker answers request id of app with json: 1 if syrpc_put_result succeeded. */
int
answer(PGconn *w, const char *app, const char *id, const char *json)
{
    return run(w, "SELECT syrpc_put_result('%s', '%s', '%s')", app, id, json);
}

