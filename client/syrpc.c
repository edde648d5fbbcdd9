/*
 * syrpc.c: libsyrpc's connection handling, error reporting, and the four
 * RPC calls, each one SQL statement on the syrpc extension's functions.
 *
 * Statements go through the extended protocol with unnamed statements
 * (PQsendQueryParams), so that the library works through pgbouncer in
 * transaction pooling mode, where named prepared statements do not.
 *
 * Waits use the procedures syrpc_wait_request and syrpc_wait_result (CALL),
 * which hold no snapshot while they sleep, and fall back to the functions
 * syrpc_get_request and syrpc_get_result on a server with extension 1.0.
 * Every statement is sent asynchronously and waited for with poll(), so a
 * wait can be bounded on the client side too and interrupted by a signal.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "syrpc_int.h"

/* How much longer than its own timeout a server-side wait may take. */
#define SYRPC_GRACE_MS 5000

int syrpc_version(void) { return SYRPC_VERSION_NUM; }

const char *
syrpc_status_name(syrpc_status status)
{
    switch (status) {
    case SYRPC_OK: return "ok";
    case SYRPC_TIMEOUT: return "timeout";
    case SYRPC_BAD_INPUT: return "bad input";
    case SYRPC_CONNECTION: return "connection error";
    case SYRPC_SERVER_ERROR: return "server error";
    case SYRPC_REQUEST_FAILED: return "request failed";
    case SYRPC_INTERRUPTED: return "interrupted";
    case SYRPC_NO_MEMORY: return "out of memory";
    }
    return "unknown status";
}

static void
copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

syrpc_status
syrpc__ok(syrpc_conn *c)
{
    c->status = SYRPC_OK;
    c->message[0] = c->sqlstate[0] = c->detail[0] = c->hint[0] = '\0';
    return SYRPC_OK;
}

syrpc_status
syrpc__fail(syrpc_conn *c, syrpc_status status, const char *fmt, ...)
{
    va_list ap;

    syrpc__ok(c);
    c->status = status;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
    return status;
}

int
syrpc__interrupted(const syrpc_conn *c)
{
    return c->interrupt != NULL && *c->interrupt;
}

/* Map a server error to a status: see the SQLSTATE table in the README. */
static syrpc_status
status_of_sqlstate(const char *s)
{
    if (strcmp(s, "SY001") == 0 || strcmp(s, "SY002") == 0)
        return SYRPC_REQUEST_FAILED;
    if (strncmp(s, "SY", 2) == 0 || strncmp(s, "22", 2) == 0 ||
        strcmp(s, "42622") == 0 || strcmp(s, "54000") == 0)
        return SYRPC_BAD_INPUT;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "57P", 3) == 0)
        return SYRPC_CONNECTION;
    return SYRPC_SERVER_ERROR;
}

static syrpc_status
fail_from_result(syrpc_conn *c, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    syrpc_status status;

    if (PQstatus(c->pg) != CONNECTION_OK)
        status = SYRPC_CONNECTION;
    else
        status = state ? status_of_sqlstate(state) : SYRPC_SERVER_ERROR;
    if (msg == NULL) {
        /* libpq's own message: trim its trailing newline */
        char buf[SYRPC_MSG_MAX];
        size_t n;

        copy_str(buf, sizeof(buf), PQerrorMessage(c->pg));
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        syrpc__fail(c, status, "%s", buf[0] ? buf : "unknown error");
    } else
        syrpc__fail(c, status, "%s", msg);
    if (res) {
        copy_str(c->sqlstate, sizeof(c->sqlstate), state);
        copy_str(c->detail, sizeof(c->detail), PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
        copy_str(c->hint, sizeof(c->hint), PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
    }
    return status;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read and drop whatever results are left of the current query. */
static void
drain(PGconn *pg)
{
    PGresult *r;

    while ((r = PQgetResult(pg)) != NULL)
        PQclear(r);
}

static void
cancel_query(syrpc_conn *c)
{
    PGcancel *cancel = PQgetCancel(c->pg);
    char err[256];

    if (cancel) {
        PQcancel(cancel, err, sizeof(err));
        PQfreeCancel(cancel);
    }
    drain(c->pg);
}

/*
 * Run sql with text parameters and wait up to wait_ms (-1: no limit) for
 * its result.  Returns the result (caller PQclears it) on success; NULL
 * with the handle's status set otherwise.
 */
static PGresult *
run(syrpc_conn *c, const char *sql, int nparams, const char *const *values, int wait_ms)
{
    long long deadline = wait_ms < 0 ? -1 : now_ms() + wait_ms;
    PGresult *res, *extra;

    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        fail_from_result(c, NULL);
        if (c->status != SYRPC_CONNECTION)
            syrpc__fail(c, SYRPC_CONNECTION, "not connected");
        return NULL;
    }
    if (!PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0)) {
        fail_from_result(c, NULL);
        return NULL;
    }
    while (PQisBusy(c->pg)) {
        struct pollfd p = { PQsocket(c->pg), POLLIN, 0 };
        int ms = deadline < 0 ? -1 : (int) (deadline - now_ms());
        int rc;

        if (deadline >= 0 && ms <= 0) {
            cancel_query(c);
            syrpc__fail(c, SYRPC_CONNECTION, "the server did not answer within %d ms", wait_ms);
            return NULL;
        }
        rc = poll(&p, 1, ms);
        if (rc < 0 && errno == EINTR) {
            if (syrpc__interrupted(c)) {
                cancel_query(c);
                syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
                return NULL;
            }
            continue;
        }
        if (rc < 0) {
            syrpc__fail(c, SYRPC_CONNECTION, "poll failed: %s", strerror(errno));
            return NULL;
        }
        if (rc > 0 && !PQconsumeInput(c->pg)) {
            fail_from_result(c, NULL);
            return NULL;
        }
    }
    res = PQgetResult(c->pg);
    /*
     * The rows come before the commit: only when the server says it is
     * ready for the next query has the statement committed.  An error
     * after the rows (the connection lost before the commit, a failed
     * commit) fails the call, rows and all.
     */
    while ((extra = PQgetResult(c->pg)) != NULL) {
        if (PQresultStatus(extra) != PGRES_TUPLES_OK && PQresultStatus(extra) != PGRES_COMMAND_OK) {
            PQclear(res);
            res = extra;
        } else
            PQclear(extra);
    }
    if (res != NULL && PQstatus(c->pg) == CONNECTION_OK &&
        (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK)) {
        syrpc__ok(c);
        return res;
    }
    fail_from_result(c, res);
    PQclear(res);
    return NULL;
}

static int
check_name(syrpc_conn *c, const char *what, const char *name)
{
    if (name == NULL || name[0] == '\0') {
        syrpc__fail(c, SYRPC_BAD_INPUT, "%s must not be empty", what);
        return 0;
    }
    if (strlen(name) > SYRPC_NAME_MAX) {
        syrpc__fail(c, SYRPC_BAD_INPUT, "%s is too long (the limit is %d bytes)", what, SYRPC_NAME_MAX);
        return 0;
    }
    return 1;
}

/* JSON text of data, malloc'd; NULL (status set) if it cannot be encoded. */
static char *
encode(syrpc_conn *c, const json_t *data)
{
    char *text;

    if (data == NULL) {
        syrpc__fail(c, SYRPC_BAD_INPUT, "data must not be NULL");
        return NULL;
    }
    text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        syrpc__fail(c, SYRPC_BAD_INPUT, "data cannot be encoded as JSON");
    return text;
}

/* Parse a jsonb column; NULL (status set) if it does not parse. */
static json_t *
decode(syrpc_conn *c, const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);

    if (j == NULL)
        syrpc__fail(c, SYRPC_SERVER_ERROR, "server sent invalid JSON: %s", err.text);
    return j;
}

/* The timeout of one server-side wait, as text seconds. */
static int
slice_of(int remaining_ms, char *buf, size_t size)
{
    int slice = (remaining_ms < 0 || remaining_ms > SYRPC_WAIT_SLICE_MS)
        ? SYRPC_WAIT_SLICE_MS : remaining_ms;

    snprintf(buf, size, "%d.%03d", slice / 1000, slice % 1000);
    return slice;
}

syrpc_conn *
syrpc_connect(const char *conninfo, const char *app)
{
    syrpc_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->conninfo = strdup(conninfo ? conninfo : "");
    if (c->conninfo == NULL) {
        free(c);
        return NULL;
    }
    if (!check_name(c, "app", app))
        return c;
    copy_str(c->app, sizeof(c->app), app);
    syrpc_reconnect(c);
    return c;
}

syrpc_status
syrpc_reconnect(syrpc_conn *c)
{
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = PQconnectdb(c->conninfo);
    if (c->pg == NULL)
        return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    if (PQstatus(c->pg) != CONNECTION_OK)
        return fail_from_result(c, NULL);
    return syrpc__ok(c);
}

void
syrpc_finish(syrpc_conn *c)
{
    if (c == NULL)
        return;
    if (c->pg != NULL)
        PQfinish(c->pg);
    free(c->routes);
    free(c->conninfo);
    free(c);
}

syrpc_status syrpc_status_of(const syrpc_conn *c) { return c->status; }
const char *syrpc_error_message(const syrpc_conn *c) { return c->message; }
const char *syrpc_error_sqlstate(const syrpc_conn *c) { return c->sqlstate; }
const char *syrpc_error_detail(const syrpc_conn *c) { return c->detail; }
const char *syrpc_error_hint(const syrpc_conn *c) { return c->hint; }
void *syrpc_pgconn(syrpc_conn *c) { return c->pg; }

void
syrpc_set_interrupt_flag(syrpc_conn *c, volatile sig_atomic_t *flag)
{
    c->interrupt = flag;
}

/*
 * Run a statement whose parameters are the app, one text argument, and
 * data as JSON text; for a statement that waits (waits != 0), a fourth:
 * the seconds of its first slice of timeout_ms, which the server gets
 * (with a grace) to answer.  Returns the result, or NULL with the status
 * set.
 */
static PGresult *
run_with_data(syrpc_conn *c, const char *sql, const char *arg, const json_t *data,
              int waits, int timeout_ms)
{
    const char *values[4];
    char secs[32];
    int wait_ms = -1;
    PGresult *res;
    char *text = encode(c, data);

    if (text == NULL)
        return NULL;
    values[0] = c->app;
    values[1] = arg;
    values[2] = text;
    if (waits) {
        values[3] = secs;
        wait_ms = slice_of(timeout_ms, secs, sizeof(secs)) + SYRPC_GRACE_MS;
    }
    res = run(c, sql, waits ? 4 : 3, values, wait_ms);
    free(text);
    return res;
}

syrpc_status
syrpc_put_request(syrpc_conn *c, const char *type, const json_t *data,
                  char result_id[SYRPC_ID_SIZE])
{
    PGresult *res;

    result_id[0] = '\0';
    if (!check_name(c, "type", type))
        return c->status;
    res = run_with_data(c, "SELECT syrpc_put_request($1, $2, $3::jsonb)", type, data, 0, 0);
    if (res == NULL)
        return c->status;
    copy_str(result_id, SYRPC_ID_SIZE, PQgetvalue(res, 0, 0));
    PQclear(res);
    return SYRPC_OK;
}

/*
 * Run a waiting call in slices until its row has a value in column col, or
 * timeout_ms passes.  The last of the nparams values is each slice's
 * timeout in seconds, filled in here.  Returns the result (the caller
 * clears it), or NULL with the handle's status set.  Uses the waiting
 * procedure, or the function (func_sql) on a server with extension 1.0.
 */
static PGresult *
wait_sliced(syrpc_conn *c, const char *proc_sql, const char *func_sql, int nparams,
            const char **values, int col, int timeout_ms, const char *what)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int remaining = timeout_ms;
    char secs[32];

    values[nparams - 1] = secs;
    for (;;) {
        int slice = slice_of(remaining, secs, sizeof(secs));
        PGresult *res = run(c, c->no_procedures ? func_sql : proc_sql, nparams, values,
                            slice + SYRPC_GRACE_MS);

        if (res == NULL && !c->no_procedures && strcmp(c->sqlstate, "42883") == 0) {
            c->no_procedures = 1;       /* extension 1.0 */
            continue;
        }
        if (res == NULL)
            return NULL;
        if (PQntuples(res) == 1 && !PQgetisnull(res, 0, col))
            return res;
        PQclear(res);
        if (syrpc__interrupted(c)) {
            syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
            return NULL;
        }
        if (deadline >= 0 && (remaining = (int) (deadline - now_ms())) <= 0) {
            syrpc__fail(c, SYRPC_TIMEOUT, "no %s within %d ms", what, timeout_ms);
            return NULL;
        }
    }
}

syrpc_status
syrpc_get_result(syrpc_conn *c, const char *result_id, int timeout_ms, json_t **result)
{
    const char *values[3] = { c->app, result_id, NULL };
    PGresult *res;

    *result = NULL;
    if (result_id == NULL || result_id[0] == '\0')
        return syrpc__fail(c, SYRPC_BAD_INPUT, "result_id must not be empty");
    res = wait_sliced(c, "CALL syrpc_wait_result($1, $2::uuid, $3::float8)",
                      "SELECT syrpc_get_result($1, $2::uuid, $3::float8)",
                      3, values, 0, timeout_ms, "result");
    if (res == NULL)
        return c->status;
    *result = decode(c, PQgetvalue(res, 0, 0));
    PQclear(res);
    return c->status;
}

/*
 * One round trip: CALL syrpc_call puts the request and waits (its first
 * slice) for the result.  If the slice ends first, wait on for the rest
 * of the timeout with syrpc_get_result.  Extension 1.0 and 1.1 have no
 * syrpc_call: put and get then.
 */
syrpc_status
syrpc_call(syrpc_conn *c, const char *type, const json_t *data, int timeout_ms, json_t **result)
{
    char id[SYRPC_ID_SIZE];
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    PGresult *res;

    *result = NULL;
    if (!check_name(c, "type", type))
        return c->status;
    if (!c->no_call_procedure) {
        res = run_with_data(c, "CALL syrpc_call($1, $2, $3::jsonb, $4::float8)", type, data,
                            1, timeout_ms);
        if (res != NULL) {
            int answered = !PQgetisnull(res, 0, 1);

            copy_str(id, sizeof(id), PQgetvalue(res, 0, 0));
            if (answered)
                *result = decode(c, PQgetvalue(res, 0, 1));
            PQclear(res);
            if (answered)
                return c->status;
            if (deadline >= 0 && deadline - now_ms() <= 0)
                return syrpc__fail(c, SYRPC_TIMEOUT, "no result within %d ms", timeout_ms);
            return syrpc_get_result(c, id, deadline < 0 ? SYRPC_FOREVER : (int) (deadline - now_ms()),
                                    result);
        }
        if (strcmp(c->sqlstate, "42883") != 0)
            return c->status;
        c->no_call_procedure = 1;       /* undefined: extension 1.0 or 1.1 */
    }
    if (syrpc_put_request(c, type, data, id) != SYRPC_OK)
        return c->status;
    return syrpc_get_result(c, id, timeout_ms, result);
}

void
syrpc_request_clear(syrpc_request *req)
{
    json_decref(req->data);
    memset(req, 0, sizeof(*req));
}

/* Fill req from the one row of res (type, result_id, data); clears res. */
static syrpc_status
take_request(syrpc_conn *c, PGresult *res, syrpc_request *req)
{
    copy_str(req->type, sizeof(req->type), PQgetvalue(res, 0, 0));
    copy_str(req->result_id, sizeof(req->result_id), PQgetvalue(res, 0, 1));
    req->data = decode(c, PQgetvalue(res, 0, 2));
    PQclear(res);
    return c->status;
}

syrpc_status
syrpc_get_request(syrpc_conn *c, int timeout_ms, syrpc_request *req)
{
    const char *values[2] = { c->app, NULL };
    PGresult *res;

    memset(req, 0, sizeof(*req));
    res = wait_sliced(c, "CALL syrpc_wait_request($1, $2::float8)",
                      "SELECT type, result_id, data FROM syrpc_get_request($1, $2::float8)",
                      2, values, 1, timeout_ms, "request");
    if (res == NULL)
        return c->status;
    return take_request(c, res, req);
}

syrpc_status
syrpc_put_result(syrpc_conn *c, const char *result_id, const json_t *data)
{
    PGresult *res;

    if (result_id == NULL || result_id[0] == '\0')
        return syrpc__fail(c, SYRPC_BAD_INPUT, "result_id must not be empty");
    res = run_with_data(c, "SELECT syrpc_put_result($1, $2::uuid, $3::jsonb)", result_id, data, 0, 0);
    if (res == NULL)
        return c->status;
    PQclear(res);
    return SYRPC_OK;
}

syrpc_status
syrpc_put_result_get_request(syrpc_conn *c, const char *result_id, const json_t *data,
                             syrpc_request *next)
{
    PGresult *res;

    memset(next, 0, sizeof(*next));
    if (c->no_combined_call) {
        if (syrpc_put_result(c, result_id, data) != SYRPC_OK)
            return c->status;
        return syrpc_get_request(c, 0, next);
    }
    if (result_id == NULL || result_id[0] == '\0')
        return syrpc__fail(c, SYRPC_BAD_INPUT, "result_id must not be empty");
    res = run_with_data(c, "SELECT type, result_id, data FROM syrpc_put_result_get_request($1, $2::uuid, $3::jsonb)",
                        result_id, data, 0, 0);
    if (res == NULL) {
        if (strcmp(c->sqlstate, "42883") == 0) {
            /* undefined_function: extension 1.0 */
            c->no_combined_call = 1;
            return syrpc_put_result_get_request(c, result_id, data, next);
        }
        return c->status;
    }
    if (PQntuples(res) == 1)
        return take_request(c, res, next);
    PQclear(res);
    return syrpc__fail(c, SYRPC_TIMEOUT, "no request waiting");
}

/*
 * The serve loop's answer: answer and wait up to one slice for the next
 * request in one statement (CALL syrpc_put_result_wait_request, extension
 * 1.2), else syrpc_put_result_get_request.  Statuses as for that one:
 * SYRPC_OK with *next filled, SYRPC_TIMEOUT when answered and nothing came.
 */
syrpc_status
syrpc__put_result_wait_request(syrpc_conn *c, const char *result_id, const json_t *data,
                               syrpc_request *next)
{
    PGresult *res;

    memset(next, 0, sizeof(*next));
    if (c->no_answer_wait)
        return syrpc_put_result_get_request(c, result_id, data, next);
    if (result_id == NULL || result_id[0] == '\0')
        return syrpc__fail(c, SYRPC_BAD_INPUT, "result_id must not be empty");
    res = run_with_data(c, "CALL syrpc_put_result_wait_request($1, $2::uuid, $3::jsonb, $4::float8)",
                        result_id, data, 1, SYRPC_WAIT_SLICE_MS);
    if (res == NULL) {
        if (strcmp(c->sqlstate, "42883") != 0)
            return c->status;
        c->no_answer_wait = 1;          /* undefined: extension 1.0 or 1.1 */
        return syrpc_put_result_get_request(c, result_id, data, next);
    }
    if (!PQgetisnull(res, 0, 1))
        return take_request(c, res, next);
    PQclear(res);
    return syrpc__fail(c, SYRPC_TIMEOUT, "no request within %d ms", SYRPC_WAIT_SLICE_MS);
}
