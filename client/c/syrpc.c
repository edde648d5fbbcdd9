/*
 * syrpc.c: libsyrpc's connection handling, error reporting, and the
 * caller's RPC calls, each one SQL statement on the syrpc extension's
 * functions (the worker's: worker.c).
 *
 * Statements go through the extended protocol with unnamed statements
 * (PQsendQueryParams), so that the library works through pgbouncer in
 * transaction pooling mode, where named prepared statements do not (before
 * pgbouncer 1.21's max_prepared_statements).  With syrpc_set_prepared each
 * is prepared once per connection and then run by name: the server parses
 * and analyses a statement once instead of at every call, about a tenth of
 * its CPU per RPC.
 *
 * At each (re)connect one plain query reads the extension's schema and
 * version from pg_extension: every statement names its function with that
 * schema (the extension need not be on search_path), and the version says
 * which calls the server has (1.0: none of the newer ones; 1.1: the
 * waiting procedures and syrpc_put_result_get_request; 1.2: syrpc_call and
 * syrpc_put_result_wait_request; 1.3: syrpc_fail_request; 1.6: the batch
 * calls; 1.7: remote errors, cancel, deadlines, extending and releasing
 * leases).
 *
 * Waits use the procedures syrpc_wait_request and syrpc_wait_result (CALL),
 * which hold no snapshot while they sleep, and the functions
 * syrpc_get_request and syrpc_get_result on a server with extension 1.0.
 * Every statement is sent asynchronously and waited for with poll(), so a
 * wait can be bounded on the client side too and interrupted by a signal.
 *
 * Data goes to and from the server as JSON text; the json_t calls convert
 * it exactly or refuse (json.c).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "syrpc_int.h"

int syrpc_version(void) { return SYRPC_VERSION_NUM; }

void syrpc_free(void *ptr) { free(ptr); }

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
    case SYRPC_REMOTE_ERROR: return "remote error";
    case SYRPC_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

void
syrpc__copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

syrpc_status
syrpc__ok(syrpc_conn *c)
{
    c->status = SYRPC_OK;
    c->message[0] = c->sqlstate[0] = c->detail[0] = c->hint[0] = '\0';
    free(c->long_detail);
    c->long_detail = NULL;
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

int
syrpc__server_has(syrpc_conn *c, int lacks, const char *what, const char *version)
{
    if (!lacks)
        return 1;
    syrpc__fail(c, SYRPC_SERVER_ERROR, "%s needs extension %s or later (the database has %s)", what, version,
                c->extversion);
    syrpc__copy_str(c->hint, sizeof(c->hint), "Run ALTER EXTENSION syrpc UPDATE.");
    return 0;
}

void
syrpc__settle(syrpc_conn *c, const char *result_id, int how)
{
    if (c->handling != NULL && strcmp(c->handling, result_id) == 0)
        c->settled = how;
}

/*
 * Map a server error to a status: see the SQLSTATE table in the README.
 * SY001 (failed, also by syrpc_fail_request), SY002 (expired), SY006 (a
 * worker's error, syrpc_put_error) and SY007 (cancelled) are the
 * request's fate; the other SY codes (SY008: unknown or expired result_id)
 * are bad input.
 */
static syrpc_status
status_of_sqlstate(const char *s)
{
    if (strcmp(s, "SY001") == 0 || strcmp(s, "SY002") == 0)
        return SYRPC_REQUEST_FAILED;
    if (strcmp(s, "SY006") == 0)
        return SYRPC_REMOTE_ERROR;
    if (strcmp(s, "SY007") == 0)
        return SYRPC_CANCELLED;
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

        syrpc__copy_str(buf, sizeof(buf), PQerrorMessage(c->pg));
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        syrpc__fail(c, status, "%s", buf[0] ? buf : "unknown error");
    } else
        syrpc__fail(c, status, "%s", msg);
    if (res) {
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);

        syrpc__copy_str(c->sqlstate, sizeof(c->sqlstate), state);
        syrpc__copy_str(c->detail, sizeof(c->detail), detail);
        /* a remote error's detail is JSON of any size: kept whole (cut short only when out of memory) */
        if (detail != NULL && strlen(detail) >= sizeof(c->detail))
            c->long_detail = strdup(detail);
        syrpc__copy_str(c->hint, sizeof(c->hint), PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
    }
    return status;
}

long long
syrpc__now_ms(void)
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
 * Wait until the statement sent has its results, up to deadline (-1: no
 * limit; wait_ms is what it was, for the message).  Returns 1 when they are
 * there; 0 with the handle's status set otherwise (the statement cancelled
 * on a timeout or an interrupt).
 */
static int
await_results(syrpc_conn *c, long long deadline, int wait_ms)
{
    while (PQisBusy(c->pg)) {
        struct pollfd p = { PQsocket(c->pg), POLLIN, 0 };
        int ms = deadline < 0 ? -1 : (int) (deadline - syrpc__now_ms());
        int rc;

        if (deadline >= 0 && ms <= 0) {
            cancel_query(c);
            syrpc__fail(c, SYRPC_CONNECTION, "the server did not answer within %d ms", wait_ms);
            return 0;
        }
        rc = poll(&p, 1, ms);
        if (rc < 0 && errno == EINTR) {
            if (syrpc__interrupted(c)) {
                cancel_query(c);
                syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
                return 0;
            }
            continue;
        }
        if (rc < 0) {
            syrpc__fail(c, SYRPC_CONNECTION, "poll failed: %s", strerror(errno));
            return 0;
        }
        if (rc > 0 && !PQconsumeInput(c->pg)) {
            fail_from_result(c, NULL);
            return 0;
        }
    }
    return 1;
}

/* Forget the statements prepared on this handle's connection. */
static void
forget_statements(syrpc_conn *c)
{
    for (int i = 0; i < c->nstmts; i++)
        free(c->stmts[i]);
    c->nstmts = 0;
}

/*
 * The name of sql prepared on the connection (syrpc_set_prepared), into
 * name; preparing it first if it is new.  Returns 1 with the name, 1 with
 * name empty when it runs unnamed (not asked for, or the handle has
 * prepared as many as it keeps), 0 with the status set when the prepare
 * failed.
 */
static int
statement_name(syrpc_conn *c, const char *sql, int nparams, long long deadline, int wait_ms,
               char *name, size_t size)
{
    PGresult *res;
    char *copy;
    int i, num;

    name[0] = '\0';
    if (!c->prepared)
        return 1;
    for (i = 0; i < c->nstmts; i++)
        if (strcmp(c->stmts[i], sql) == 0) {
            snprintf(name, size, "syrpc_%d", c->stmt_nums[i]);
            return 1;
        }
    if (c->nstmts == SYRPC__STMTS_MAX || (copy = strdup(sql)) == NULL)
        return 1;
    num = c->next_stmt_num++;
    snprintf(name, size, "syrpc_%d", num);
    if (!PQsendPrepare(c->pg, name, sql, nparams, NULL)) {
        free(copy);
        fail_from_result(c, NULL);
        return 0;
    }
    if (!await_results(c, deadline, wait_ms)) {
        free(copy);
        return 0;
    }
    res = PQgetResult(c->pg);
    drain(c->pg);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        free(copy);
        fail_from_result(c, res);
        PQclear(res);
        return 0;
    }
    PQclear(res);
    c->stmt_nums[c->nstmts] = num;
    c->stmts[c->nstmts++] = copy;
    return 1;
}

/* Did the statement fail because the server no longer has it prepared? */
static int
statement_gone(syrpc_conn *c, const char *name)
{
    return name[0] != '\0' && strcmp(c->sqlstate, "26000") == 0;
}

/*
 * Run sql with text parameters and wait up to wait_ms (-1: no limit) for
 * its result.  Returns the result (caller PQclears it) on success; NULL
 * with the handle's status set otherwise.
 */
PGresult *
syrpc__run(syrpc_conn *c, const char *sql, int nparams, const char *const *values, int wait_ms)
{
    long long deadline = wait_ms < 0 ? -1 : syrpc__now_ms() + wait_ms;
    PGresult *res, *extra;
    char name[32];
    int sent;

    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        fail_from_result(c, NULL);
        if (c->status != SYRPC_CONNECTION)
            syrpc__fail(c, SYRPC_CONNECTION, "not connected");
        return NULL;
    }
    for (int tries = 0;; tries++) {
        if (!statement_name(c, sql, nparams, deadline, wait_ms, name, sizeof(name)))
            return NULL;
        sent = name[0] ? PQsendQueryPrepared(c->pg, name, nparams, values, NULL, NULL, 0)
                       : PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0);
        if (!sent) {
            fail_from_result(c, NULL);
            return NULL;
        }
        if (!await_results(c, deadline, wait_ms))
            return NULL;
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
        /*
         * DISCARD ALL or DEALLOCATE ALL dropped the statements: it never
         * ran, so prepare them again, once.
         */
        if (!statement_gone(c, name) || tries > 0)
            return NULL;
        forget_statements(c);
    }
}

syrpc_status
syrpc_set_prepared(syrpc_conn *c, int on)
{
    c->prepared = on != 0;
    return syrpc__ok(c);
}

/* ---- checks ---- */

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

/* The app name, checked as the server does (1..63 bytes of letters, digits, "_.-"). */
static int
check_app(syrpc_conn *c, const char *app)
{
    if (!check_name(c, "app", app))
        return 0;
    for (int i = 0; app[i]; i++) {
        char ch = app[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-')) {
            syrpc__fail(c, SYRPC_BAD_INPUT, "app contains an invalid character at byte %d", i + 1);
            syrpc__copy_str(c->sqlstate, sizeof(c->sqlstate), "22023");   /* as the server says it */
            syrpc__copy_str(c->hint, sizeof(c->hint), "Use only letters, digits, \"_\", \".\" and \"-\".");
            return 0;
        }
    }
    return 1;
}

int
syrpc__check_timeout(syrpc_conn *c, int timeout_ms)
{
    if (timeout_ms < 0 && timeout_ms != SYRPC_FOREVER) {
        syrpc__fail(c, SYRPC_BAD_INPUT, "timeout_ms must be 0 or more, or SYRPC_FOREVER (got %d)", timeout_ms);
        return 0;
    }
    return 1;
}

int
syrpc__check_id(syrpc_conn *c, const char *result_id)
{
    if (result_id == NULL || result_id[0] == '\0') {
        syrpc__fail(c, SYRPC_BAD_INPUT, "result_id must not be empty");
        return 0;
    }
    return 1;
}

int
syrpc__check_text(syrpc_conn *c, const char *json)
{
    if (json == NULL) {
        syrpc__fail(c, SYRPC_BAD_INPUT, "data must not be NULL");
        return 0;
    }
    return 1;
}

int
syrpc__statement_timed_out(const syrpc_conn *c)
{
    return strcmp(c->sqlstate, "57014") == 0 && strstr(c->message, "statement timeout") != NULL;
}

/* ---- the extension's schema and version ---- */

/* name as an SQL identifier, always in double quotes, into dst. */
static void
quote_ident(char *dst, size_t size, const char *name)
{
    size_t n = 0;

    if (size < 3)
        return;
    dst[n++] = '"';
    for (; *name && n + 3 < size; name++) {
        if (*name == '"')
            dst[n++] = '"';
        dst[n++] = *name;
    }
    dst[n++] = '"';
    dst[n] = '\0';
}

/*
 * Look up the extension's schema and version, and set the flags of the
 * calls it lacks.  SYRPC_SERVER_ERROR with a hint if it is not installed.
 */
static syrpc_status
probe(syrpc_conn *c)
{
    PGresult *res;
    int major = 0, minor = 0, v, prepared = c->prepared;

    c->probed = 0;
    c->prepared = 0;            /* once per connection: not worth a name */
    res = syrpc__run(c, "SELECT n.nspname, e.extversion FROM pg_catalog.pg_extension e"
              " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
              " WHERE e.extname = 'syrpc'", 0, NULL, -1);
    c->prepared = prepared;
    if (res == NULL)
        return c->status;
    if (PQntuples(res) != 1) {
        PQclear(res);
        syrpc__fail(c, SYRPC_SERVER_ERROR, "the syrpc extension is not installed in database \"%s\"",
                    PQdb(c->pg));
        syrpc__copy_str(c->hint, sizeof(c->hint), "Run CREATE EXTENSION syrpc in that database.");
        return c->status;
    }
    quote_ident(c->schema, sizeof(c->schema), PQgetvalue(res, 0, 0));
    syrpc__copy_str(c->extversion, sizeof(c->extversion), PQgetvalue(res, 0, 1));
    PQclear(res);
    if (sscanf(c->extversion, "%d.%d", &major, &minor) < 1)
        major = 99;             /* not a version we know: assume a newer one */
    v = major * 100 + minor;
    c->no_combined_call = v < 101;
    c->no_procedures = v < 101;
    c->no_call_procedure = v < 102;
    c->no_answer_wait = v < 102;
    c->no_fail_request = v < 103;
    c->no_batch = v < 106;
    c->no_semantics = v < 107;
    c->probed = 1;
    return syrpc__ok(c);
}

/*
 * Whether the handle can run a call: its app is valid, it is connected,
 * and the extension is there (looked up again until it is).  Status set
 * if not.
 */
int
syrpc__ready(syrpc_conn *c)
{
    if (!c->app_ok) {
        check_app(c, c->app_given);
        return 0;
    }
    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        fail_from_result(c, NULL);
        if (c->status != SYRPC_CONNECTION)
            syrpc__fail(c, SYRPC_CONNECTION, "not connected");
        return 0;
    }
    return c->probed || probe(c) == SYRPC_OK;
}

/* ---- conversion ---- */

/* JSON text of data, malloc'd; NULL (status set) if it cannot be sent exactly. */
char *
syrpc__encode(syrpc_conn *c, const json_t *data)
{
    char err[SYRPC_MSG_MAX / 2], *text;
    int rc;

    if (data == NULL) {
        syrpc__fail(c, SYRPC_BAD_INPUT, "data must not be NULL");
        return NULL;
    }
    rc = syrpc__encode_exact(data, &text, err, sizeof(err));
    if (rc == SYRPC__NO_MEMORY)
        syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    else if (rc != SYRPC__EXACT)
        syrpc__fail(c, SYRPC_BAD_INPUT, "data cannot be sent as JSON: %s", err);
    return text;
}

/*
 * The json_t of JSON text from the server (what: "result", "request data"),
 * or NULL (status set) if a json_t cannot hold it exactly.
 */
json_t *
syrpc__decode(syrpc_conn *c, const char *text, const char *what)
{
    char err[SYRPC_MSG_MAX / 2];
    json_t *j;
    int rc = syrpc__decode_exact(text, &j, err, sizeof(err));

    if (rc == SYRPC__NO_MEMORY)
        syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    else if (rc != SYRPC__EXACT) {
        syrpc__fail(c, SYRPC_BAD_INPUT, "%s cannot be represented exactly by a json_t: %s"
                    " (the _text functions pass JSON text unchanged)", what, err);
        syrpc__copy_str(c->hint, sizeof(c->hint),
                 "Use syrpc_call_text, syrpc_get_result_text or syrpc_register_text for such data.");
    }
    return j;
}

/* A copy of the server's text, or NULL (status set). */
char *
syrpc__copy_text(syrpc_conn *c, const char *text)
{
    char *copy = strdup(text);

    if (copy == NULL)
        syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    return copy;
}

int
syrpc__slice_of(int remaining_ms, char *buf, size_t size)
{
    int slice = (remaining_ms < 0 || remaining_ms > SYRPC_WAIT_SLICE_MS)
        ? SYRPC_WAIT_SLICE_MS : remaining_ms;

    snprintf(buf, size, "%d.%03d", slice / 1000, slice % 1000);
    return slice;
}

/* ---- connection ---- */

syrpc_conn *
syrpc_connect(const char *conninfo, const char *app)
{
    syrpc_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->conninfo = strdup(conninfo ? conninfo : "");
    c->app_given = app ? strdup(app) : NULL;
    if (c->conninfo == NULL || (app != NULL && c->app_given == NULL)) {
        free(c->conninfo);
        free(c->app_given);
        free(c);
        return NULL;
    }
    if (!check_app(c, app))
        return c;
    c->app_ok = 1;
    c->batch = SYRPC__BATCH_DEFAULT;
    syrpc__copy_str(c->app, sizeof(c->app), app);
    syrpc_reconnect(c);
    return c;
}

syrpc_status
syrpc_reconnect(syrpc_conn *c)
{
    if (!c->app_ok) {
        check_app(c, c->app_given);
        return c->status;
    }
    if (c->pg != NULL)
        PQfinish(c->pg);
    forget_statements(c);
    c->next_stmt_num = 0;       /* a new connection has none */
    c->probed = 0;
    c->pg = PQconnectdb(c->conninfo);
    if (c->pg == NULL)
        return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    if (PQstatus(c->pg) != CONNECTION_OK)
        return fail_from_result(c, NULL);
    /* a missing extension is not a connection failure: the first call says so */
    if (probe(c) == SYRPC_CONNECTION || c->status == SYRPC_NO_MEMORY)
        return c->status;
    return syrpc__ok(c);
}

void
syrpc_finish(syrpc_conn *c)
{
    if (c == NULL)
        return;
    if (c->pg != NULL)
        PQfinish(c->pg);
    forget_statements(c);
    free(c->routes);
    free(c->long_detail);
    free(c->conninfo);
    free(c->app_given);
    free(c);
}

syrpc_status syrpc_status_of(const syrpc_conn *c) { return c->status; }
const char *syrpc_error_message(const syrpc_conn *c) { return c->message; }
const char *syrpc_error_sqlstate(const syrpc_conn *c) { return c->sqlstate; }
const char *syrpc_error_detail(const syrpc_conn *c) { return c->long_detail ? c->long_detail : c->detail; }
const char *syrpc_error_hint(const syrpc_conn *c) { return c->hint; }
void *syrpc_pgconn(syrpc_conn *c) { return c->pg; }

void
syrpc_set_interrupt_flag(syrpc_conn *c, volatile sig_atomic_t *flag)
{
    c->interrupt = flag;
}

/* ---- statements ---- */

/*
 * Run a statement whose parameters are the app, one text argument, and
 * JSON text; for a statement that waits (waits != 0), a fourth: the
 * seconds of its first slice of timeout_ms, which the server gets (with a
 * grace) to answer.  Returns the result, or NULL with the status set.
 */
PGresult *
syrpc__run_with_text(syrpc_conn *c, const char *sql, const char *arg, const char *json,
              int waits, int timeout_ms)
{
    const char *values[4];
    char secs[32];
    int wait_ms = -1;

    values[0] = c->app;
    values[1] = arg;
    values[2] = json;
    if (waits) {
        values[3] = secs;
        wait_ms = syrpc__slice_of(timeout_ms, secs, sizeof(secs)) + SYRPC_GRACE_MS;
    }
    return syrpc__run(c, sql, waits ? 4 : 3, values, wait_ms);
}

/*
 * run_with_text for a CALL that waits for up to timeout_ms's first slice.
 * A statement_timeout that cancelled the wait is SYRPC_TIMEOUT: the wait
 * ended, which the caller may retry like any other.
 */
PGresult *
syrpc__run_waiting(syrpc_conn *c, const char *sql, const char *arg, const char *json, int timeout_ms)
{
    PGresult *res = syrpc__run_with_text(c, sql, arg, json, 1, timeout_ms);

    if (res == NULL && syrpc__statement_timed_out(c))
        c->status = SYRPC_TIMEOUT;
    return res;
}

syrpc_status
syrpc_put_request_text(syrpc_conn *c, const char *type, const char *json,
                       char result_id[SYRPC_ID_SIZE])
{
    char sql[256];
    PGresult *res;

    result_id[0] = '\0';
    if (!check_name(c, "type", type) || !syrpc__check_text(c, json) || !syrpc__ready(c))
        return c->status;
    snprintf(sql, sizeof(sql), "SELECT %s.syrpc_put_request($1, $2, $3::pg_catalog.jsonb)", c->schema);
    res = syrpc__run_with_text(c, sql, type, json, 0, 0);
    if (res == NULL)
        return c->status;
    syrpc__copy_str(result_id, SYRPC_ID_SIZE, PQgetvalue(res, 0, 0));
    PQclear(res);
    return SYRPC_OK;
}

syrpc_status
syrpc_put_request(syrpc_conn *c, const char *type, const json_t *data,
                  char result_id[SYRPC_ID_SIZE])
{
    return syrpc_put_request_deadline(c, type, data, 0, result_id);
}

/*
 * With a deadline (extension 1.7): the server's to_timestamp of the
 * seconds, sent as text with every microsecond it can keep.  0 and
 * infinity are no deadline: the plain put, which every version has.
 */
syrpc_status
syrpc_put_request_deadline_text(syrpc_conn *c, const char *type, const char *json, double deadline,
                                char result_id[SYRPC_ID_SIZE])
{
    char sql[256], secs[64];
    const char *values[4] = { c->app, type, json, secs };
    PGresult *res;

    result_id[0] = '\0';
    if (deadline == 0 || deadline == INFINITY)
        return syrpc_put_request_text(c, type, json, result_id);
    if (!check_name(c, "type", type) || !syrpc__check_text(c, json))
        return c->status;
    if (!isfinite(deadline) || deadline < 0)
        return syrpc__fail(c, SYRPC_BAD_INPUT, "the deadline must be seconds since the epoch, or 0 for none (got %g)",
                           deadline);
    if (!syrpc__ready(c) || !syrpc__server_has(c, c->no_semantics, "a request's deadline", "1.7"))
        return c->status;
    snprintf(secs, sizeof(secs), "%.6f", deadline);
    snprintf(sql, sizeof(sql), "SELECT %s.syrpc_put_request($1, $2, $3::pg_catalog.jsonb,"
             " pg_catalog.to_timestamp($4::pg_catalog.float8))", c->schema);
    if ((res = syrpc__run(c, sql, 4, values, -1)) == NULL)
        return c->status;
    syrpc__copy_str(result_id, SYRPC_ID_SIZE, PQgetvalue(res, 0, 0));
    PQclear(res);
    return SYRPC_OK;
}

syrpc_status
syrpc_put_request_deadline(syrpc_conn *c, const char *type, const json_t *data, double deadline,
                           char result_id[SYRPC_ID_SIZE])
{
    char *text;
    syrpc_status st;

    result_id[0] = '\0';
    if (!check_name(c, "type", type) || (text = syrpc__encode(c, data)) == NULL)
        return c->status;
    st = syrpc_put_request_deadline_text(c, type, text, deadline, result_id);
    free(text);
    return st;
}

/*
 * A boolean of the server's, 't' or 'f', from the one row of func(app,
 * result_id) (extension 1.7): syrpc_cancel, and the worker's
 * syrpc_is_cancelled.
 */
static syrpc_status
boolean_of(syrpc_conn *c, const char *func, const char *result_id, int *value)
{
    const char *values[2] = { c->app, result_id };
    char sql[256];
    PGresult *res;

    *value = 0;
    if (!syrpc__check_id(c, result_id) || !syrpc__ready(c) || !syrpc__server_has(c, c->no_semantics, func, "1.7"))
        return c->status;
    snprintf(sql, sizeof(sql), "SELECT %s.%s($1, $2::pg_catalog.uuid)", c->schema, func);
    if ((res = syrpc__run(c, sql, 2, values, -1)) == NULL)
        return c->status;
    *value = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return SYRPC_OK;
}

syrpc_status
syrpc_cancel(syrpc_conn *c, const char *result_id, int *cancelled)
{
    return boolean_of(c, "syrpc_cancel", result_id, cancelled);
}

syrpc_status
syrpc_is_cancelled(syrpc_conn *c, const char *result_id, int *cancelled)
{
    return boolean_of(c, "syrpc_is_cancelled", result_id, cancelled);
}

/*
 * Run a waiting call in slices until its row has a value in column col, or
 * timeout_ms passes.  The last of the nparams values is each slice's
 * timeout in seconds, filled in here.  Returns the result (the caller
 * clears it), or NULL with the handle's status set.  Uses the waiting
 * procedure, or the function (func_sql) on a server with extension 1.0.
 * A slice may end early (the server ends a wait before statement_timeout;
 * a statement cancelled by statement_timeout all the same counts as such
 * a slice): the call waits on until its own deadline.
 */
PGresult *
syrpc__wait_sliced(syrpc_conn *c, const char *proc_sql, const char *func_sql, int nparams,
            const char **values, int col, int timeout_ms, const char *what)
{
    long long deadline = timeout_ms < 0 ? -1 : syrpc__now_ms() + timeout_ms;
    int remaining = timeout_ms;
    char secs[32];

    values[nparams - 1] = secs;
    for (;;) {
        int slice = syrpc__slice_of(remaining, secs, sizeof(secs));
        PGresult *res = syrpc__run(c, c->no_procedures ? func_sql : proc_sql, nparams, values,
                            slice + SYRPC_GRACE_MS);

        if (res == NULL && !syrpc__statement_timed_out(c))
            return NULL;
        if (res != NULL && PQntuples(res) == 1 && !PQgetisnull(res, 0, col))
            return res;
        PQclear(res);
        if (syrpc__interrupted(c)) {
            syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
            return NULL;
        }
        if (deadline >= 0 && (remaining = (int) (deadline - syrpc__now_ms())) <= 0) {
            syrpc__fail(c, SYRPC_TIMEOUT, "no %s within %d ms", what, timeout_ms);
            return NULL;
        }
    }
}

syrpc_status
syrpc_get_result_text(syrpc_conn *c, const char *result_id, int timeout_ms, char **result)
{
    const char *values[3] = { c->app, result_id, NULL };
    char proc[256], func[256];
    PGresult *res;

    *result = NULL;
    if (!syrpc__check_id(c, result_id) || !syrpc__check_timeout(c, timeout_ms) || !syrpc__ready(c))
        return c->status;
    snprintf(proc, sizeof(proc), "CALL %s.syrpc_wait_result($1, $2::pg_catalog.uuid, $3::pg_catalog.float8)",
             c->schema);
    snprintf(func, sizeof(func), "SELECT %s.syrpc_get_result($1, $2::pg_catalog.uuid, $3::pg_catalog.float8)",
             c->schema);
    res = syrpc__wait_sliced(c, proc, func, 3, values, 0, timeout_ms, "result");
    if (res == NULL)
        return c->status;
    *result = syrpc__copy_text(c, PQgetvalue(res, 0, 0));
    PQclear(res);
    return c->status;
}

syrpc_status
syrpc_get_result(syrpc_conn *c, const char *result_id, int timeout_ms, json_t **result)
{
    char *text;

    *result = NULL;
    if (syrpc_get_result_text(c, result_id, timeout_ms, &text) != SYRPC_OK)
        return c->status;
    *result = syrpc__decode(c, text, "result");
    free(text);
    return c->status;
}

/*
 * One round trip: CALL syrpc_call puts the request and waits (its first
 * slice) for the result.  If the slice ends first, wait on for the rest
 * of the timeout with syrpc_get_result.  Extension 1.0 and 1.1 have no
 * syrpc_call: put and get then.
 */
syrpc_status
syrpc_call_text(syrpc_conn *c, const char *type, const char *json, int timeout_ms, char **result)
{
    char id[SYRPC_ID_SIZE], sql[256];
    long long deadline = timeout_ms < 0 ? -1 : syrpc__now_ms() + timeout_ms;
    PGresult *res;

    *result = NULL;
    if (!check_name(c, "type", type) || !syrpc__check_text(c, json) || !syrpc__check_timeout(c, timeout_ms) ||
        !syrpc__ready(c))
        return c->status;
    if (c->no_call_procedure) {
        if (syrpc_put_request_text(c, type, json, id) != SYRPC_OK)
            return c->status;
        return syrpc_get_result_text(c, id, timeout_ms, result);
    }
    snprintf(sql, sizeof(sql),
             "CALL %s.syrpc_call($1, $2, $3::pg_catalog.jsonb, $4::pg_catalog.float8)", c->schema);
    /* on SYRPC_TIMEOUT (statement_timeout cancelled the wait) the request may be queued */
    if ((res = syrpc__run_waiting(c, sql, type, json, timeout_ms)) == NULL)
        return c->status;
    syrpc__copy_str(id, sizeof(id), PQgetvalue(res, 0, 0));
    if (!PQgetisnull(res, 0, 1)) {
        *result = syrpc__copy_text(c, PQgetvalue(res, 0, 1));
        PQclear(res);
        return c->status;
    }
    PQclear(res);
    if (deadline >= 0 && deadline - syrpc__now_ms() <= 0)
        return syrpc__fail(c, SYRPC_TIMEOUT, "no result within %d ms", timeout_ms);
    return syrpc_get_result_text(c, id, deadline < 0 ? SYRPC_FOREVER : (int) (deadline - syrpc__now_ms()),
                                 result);
}

syrpc_status
syrpc_call(syrpc_conn *c, const char *type, const json_t *data, int timeout_ms, json_t **result)
{
    char *text, *answer;

    *result = NULL;
    if (!check_name(c, "type", type) || (text = syrpc__encode(c, data)) == NULL)
        return c->status;
    syrpc_call_text(c, type, text, timeout_ms, &answer);
    free(text);
    if (c->status != SYRPC_OK)
        return c->status;
    *result = syrpc__decode(c, answer, "result");
    free(answer);
    return c->status;
}
