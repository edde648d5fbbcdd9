/*
 * worker.c: libsyrpc's worker side: claimed requests (opaque, with their
 * accessors), taking them, answering them (with data or, from extension
 * 1.7, an error), failing them, extending and releasing their leases (the
 * serve loop is serve.c; the connection and the statements' plumbing,
 * syrpc.c).
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

/* ---- worker side ---- */

void
syrpc__request_clear(syrpc_request *req)
{
    free(req->text);
    json_decref(req->data);
    free(req->error_message);
    free(req->error_detail);
    memset(req, 0, sizeof(*req));
}

void
syrpc_request_free(syrpc_request *req)
{
    if (req == NULL)
        return;
    syrpc__request_clear(req);
    free(req);
}

const char *syrpc_request_type(const syrpc_request *req) { return req->type; }
const char *syrpc_request_result_id(const syrpc_request *req) { return req->result_id; }
json_t *syrpc_request_data(const syrpc_request *req) { return req->data; }
const char *syrpc_request_data_text(const syrpc_request *req) { return req->text; }
int syrpc_request_attempts(const syrpc_request *req) { return req->attempts; }
double syrpc_request_deadline(const syrpc_request *req) { return req->deadline; }

/*
 * Fill req from the one row of res, read by column name, and clear res.
 * attempts is read whenever the statement returns such a column: the
 * single-row claim calls do not (1.7's claims that report it are the
 * batch calls, batch.c), so it stays 0 there.
 */
static syrpc_status
take_request(syrpc_conn *c, PGresult *res, syrpc_request *req)
{
    int attempts = PQfnumber(res, "attempts");

    syrpc__copy_str(req->type, sizeof(req->type), PQgetvalue(res, 0, PQfnumber(res, "type")));
    syrpc__copy_str(req->result_id, sizeof(req->result_id), PQgetvalue(res, 0, PQfnumber(res, "result_id")));
    req->text = syrpc__copy_text(c, PQgetvalue(res, 0, PQfnumber(res, "data")));
    if (attempts >= 0 && !PQgetisnull(res, 0, attempts))
        req->attempts = atoi(PQgetvalue(res, 0, attempts));
    PQclear(res);
    return c->status;
}

/*
 * The request for the caller: raw, converted to a json_t, in memory of
 * its own, in *out whenever raw holds a claimed request (see
 * syrpc_get_request).  Empties raw.
 */
static syrpc_status
hand_out(syrpc_conn *c, syrpc_request *raw, syrpc_request **out)
{
    syrpc_request *req;

    *out = NULL;
    if (raw->result_id[0] == '\0') {
        syrpc__request_clear(raw);
        return c->status;
    }
    if ((req = malloc(sizeof(*req))) == NULL) {
        syrpc__request_clear(raw);      /* claimed: it comes back by its lease */
        return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    }
    *req = *raw;
    memset(raw, 0, sizeof(*raw));
    if (c->status == SYRPC_OK && req->text != NULL)
        req->data = syrpc__decode(c, req->text, "request data");
    *out = req;
    return c->status;
}

/*
 * Claim one request with the batch procedure (extension 1.7), which says
 * its attempts and deadline, in slices of up to timeout_ms, as
 * syrpc__wait_sliced waits.
 */
static syrpc_status
claim_one_reporting(syrpc_conn *c, int timeout_ms, syrpc_request *req)
{
    long long deadline = timeout_ms < 0 ? -1 : syrpc__now_ms() + timeout_ms;
    int remaining = timeout_ms, n;

    for (;;) {
        int slice = (remaining < 0 || remaining > SYRPC_WAIT_SLICE_MS) ? SYRPC_WAIT_SLICE_MS : remaining;
        syrpc_status st = syrpc__wait_requests(c, 1, slice, req, &n);

        if (st != SYRPC_TIMEOUT)
            return st;
        if (syrpc__interrupted(c))
            return syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
        if (deadline >= 0 && (remaining = (int) (deadline - syrpc__now_ms())) <= 0)
            return syrpc__fail(c, SYRPC_TIMEOUT, "no request within %d ms", timeout_ms);
    }
}

syrpc_status
syrpc__get_request_raw(syrpc_conn *c, int timeout_ms, syrpc_request *req)
{
    const char *values[2] = { c->app, NULL };
    char proc[256], func[256];
    PGresult *res;

    memset(req, 0, sizeof(*req));
    if (!syrpc__check_timeout(c, timeout_ms) || !syrpc__ready(c))
        return c->status;
    if (!c->no_semantics)
        return claim_one_reporting(c, timeout_ms, req);
    snprintf(proc, sizeof(proc), "CALL %s.syrpc_wait_request($1, $2::pg_catalog.float8)", c->schema);
    snprintf(func, sizeof(func), "SELECT type, result_id, data FROM %s.syrpc_get_request($1, $2::pg_catalog.float8)",
             c->schema);
    res = syrpc__wait_sliced(c, proc, func, 2, values, 1, timeout_ms, "request");
    if (res == NULL)
        return c->status;
    return take_request(c, res, req);
}

syrpc_status
syrpc_get_request(syrpc_conn *c, int timeout_ms, syrpc_request **req)
{
    syrpc_request raw;

    syrpc__get_request_raw(c, timeout_ms, &raw);
    return hand_out(c, &raw, req);
}

syrpc_status
syrpc_put_result_text(syrpc_conn *c, const char *result_id, const char *json)
{
    char sql[256];
    PGresult *res;

    if (!syrpc__check_id(c, result_id) || !syrpc__check_text(c, json) || !syrpc__ready(c))
        return c->status;
    snprintf(sql, sizeof(sql), "SELECT %s.syrpc_put_result($1, $2::pg_catalog.uuid, $3::pg_catalog.jsonb)",
             c->schema);
    res = syrpc__run_with_text(c, sql, result_id, json, 0, 0);
    if (res == NULL)
        return c->status;
    PQclear(res);
    syrpc__settle(c, result_id, SYRPC__ANSWERED);
    return SYRPC_OK;
}

syrpc_status
syrpc_put_result(syrpc_conn *c, const char *result_id, const json_t *data)
{
    char *text;
    syrpc_status st;

    if (!syrpc__check_id(c, result_id) || (text = syrpc__encode(c, data)) == NULL)
        return c->status;
    st = syrpc_put_result_text(c, result_id, text);
    free(text);
    return st;
}

syrpc_status
syrpc_fail_request(syrpc_conn *c, const char *result_id, const char *reason)
{
    const char *values[3] = { c->app, result_id, reason };
    char sql[256];
    PGresult *res;

    if (!syrpc__check_id(c, result_id))
        return c->status;
    if (reason == NULL || reason[0] == '\0' || strlen(reason) > SYRPC_REASON_MAX)
        return syrpc__fail(c, SYRPC_BAD_INPUT, "reason must be 1 to %d bytes", SYRPC_REASON_MAX);
    if (!syrpc__ready(c) || !syrpc__server_has(c, c->no_fail_request, "syrpc_fail_request", "1.3"))
        return c->status;
    snprintf(sql, sizeof(sql), "SELECT %s.syrpc_fail_request($1, $2::pg_catalog.uuid, $3)", c->schema);
    res = syrpc__run(c, sql, 3, values, -1);
    if (res == NULL)
        return c->status;
    PQclear(res);
    syrpc__settle(c, result_id, SYRPC__ANSWERED);
    return SYRPC_OK;
}

/* message is 1 to SYRPC_ERROR_MESSAGE_MAX bytes. */
static int
error_message_ok(const char *message)
{
    return message != NULL && message[0] != '\0' && strlen(message) <= SYRPC_ERROR_MESSAGE_MAX;
}

syrpc_status
syrpc_put_error_text(syrpc_conn *c, const char *result_id, const char *message, const char *detail_json)
{
    const char *values[4] = { c->app, result_id, message, detail_json };
    char sql[256];
    PGresult *res;

    if (!syrpc__check_id(c, result_id))
        return c->status;
    if (!error_message_ok(message))
        return syrpc__fail(c, SYRPC_BAD_INPUT, "the error's message must be 1 to %d bytes", SYRPC_ERROR_MESSAGE_MAX);
    if (!syrpc__ready(c) || !syrpc__server_has(c, c->no_semantics, "syrpc_put_error", "1.7"))
        return c->status;
    snprintf(sql, sizeof(sql), "SELECT %s.syrpc_put_error($1, $2::pg_catalog.uuid, $3, $4::pg_catalog.jsonb)",
             c->schema);
    if ((res = syrpc__run(c, sql, 4, values, -1)) == NULL)
        return c->status;
    PQclear(res);
    syrpc__settle(c, result_id, SYRPC__ANSWERED);
    return SYRPC_OK;
}

syrpc_status
syrpc_put_error(syrpc_conn *c, const char *result_id, const char *message, const json_t *detail)
{
    char *text = NULL;
    syrpc_status st;

    if (!syrpc__check_id(c, result_id))
        return c->status;
    if (detail != NULL && (text = syrpc__encode(c, detail)) == NULL)
        return c->status;
    st = syrpc_put_error_text(c, result_id, message, text);
    free(text);
    return st;
}

/* seconds as text for a float8 parameter into buf, if finite and more than 0 (zero_ok: 0 or more); else 0, status set. */
static int
seconds_arg(syrpc_conn *c, const char *what, double seconds, int zero_ok, char *buf, size_t size)
{
    if (!isfinite(seconds) || seconds < 0 || (seconds == 0 && !zero_ok)) {
        syrpc__fail(c, SYRPC_BAD_INPUT, "%s must be a number of seconds %s (got %g)", what,
                    zero_ok ? "from 0" : "more than 0", seconds);
        return 0;
    }
    snprintf(buf, size, "%.17g", seconds);
    return 1;
}

/*
 * The attempt of request result_id as text into buf, if it is the one a
 * handler of syrpc_serve handles and the server said it: the lease to
 * extend or release is then that attempt's, not a later claim's after it
 * ran out.  NULL otherwise (any lease of the request).
 */
static const char *
attempt_arg(const syrpc_conn *c, const char *result_id, char *buf, size_t size)
{
    if (c->handling == NULL || c->handling_attempts <= 0 || strcmp(c->handling, result_id) != 0)
        return NULL;
    snprintf(buf, size, "%d", c->handling_attempts);
    return buf;
}

syrpc_status
syrpc_extend_lease(syrpc_conn *c, const char *result_id, double seconds)
{
    char sql[256], secs[64], attempt[16];
    const char *values[4] = { c->app, result_id, secs, NULL };
    PGresult *res;

    if (!syrpc__check_id(c, result_id) || !seconds_arg(c, "the lease", seconds, 0, secs, sizeof(secs)) ||
        !syrpc__ready(c) || !syrpc__server_has(c, c->no_semantics, "syrpc_extend_lease", "1.7"))
        return c->status;
    values[3] = attempt_arg(c, result_id, attempt, sizeof(attempt));
    snprintf(sql, sizeof(sql), "SELECT %s.syrpc_extend_lease($1, $2::pg_catalog.uuid, $3::pg_catalog.float8,"
             " $4::pg_catalog.int4)", c->schema);
    if ((res = syrpc__run(c, sql, 4, values, -1)) == NULL)
        return c->status;
    PQclear(res);
    return SYRPC_OK;
}

syrpc_status
syrpc_release(syrpc_conn *c, const char *result_id, double delay_seconds)
{
    char sql[256], secs[64], attempt[16];
    const char *values[4] = { c->app, result_id, secs, NULL };
    PGresult *res;

    if (!syrpc__check_id(c, result_id) || !seconds_arg(c, "the delay", delay_seconds, 1, secs, sizeof(secs)) ||
        !syrpc__ready(c) || !syrpc__server_has(c, c->no_semantics, "syrpc_release", "1.7"))
        return c->status;
    values[3] = attempt_arg(c, result_id, attempt, sizeof(attempt));
    snprintf(sql, sizeof(sql), "SELECT %s.syrpc_release($1, $2::pg_catalog.uuid,"
             " pg_catalog.make_interval(secs => $3::pg_catalog.float8), $4::pg_catalog.int4)", c->schema);
    if ((res = syrpc__run(c, sql, 4, values, -1)) == NULL)
        return c->status;
    PQclear(res);
    syrpc__settle(c, result_id, SYRPC__RELEASED);
    return SYRPC_OK;
}

/*
 * The error a handler answers with (serve.c reads it): kept in the
 * request the serve loop lent it.  That request is the library's own,
 * never a const object, so writing to it through the handler's const
 * pointer is sound; the const says that the handler cannot change what
 * the request carries.
 */
syrpc_status
syrpc_reply_error_text(const syrpc_request *req, const char *message, const char *detail_json)
{
    syrpc_request *r = (syrpc_request *) req;
    char *m, *d = NULL;

    if (req == NULL || !error_message_ok(message))
        return SYRPC_BAD_INPUT;
    if ((m = strdup(message)) == NULL || (detail_json != NULL && (d = strdup(detail_json)) == NULL)) {
        free(m);
        return SYRPC_NO_MEMORY;
    }
    free(r->error_message);
    free(r->error_detail);
    r->error_message = m;
    r->error_detail = d;
    return SYRPC_OK;
}

syrpc_status
syrpc_reply_error(const syrpc_request *req, const char *message, const json_t *detail)
{
    char err[SYRPC_MSG_MAX / 2], *text = NULL;
    syrpc_status st;
    int rc;

    if (req == NULL || !error_message_ok(message))
        return SYRPC_BAD_INPUT;
    if (detail != NULL && (rc = syrpc__encode_exact(detail, &text, err, sizeof(err))) != SYRPC__EXACT)
        return rc == SYRPC__NO_MEMORY ? SYRPC_NO_MEMORY : SYRPC_BAD_INPUT;
    st = syrpc_reply_error_text(req, message, text);
    free(text);
    return st;
}

/* Answer and claim the next request without waiting; statuses as for syrpc_put_result_get_request. */
static syrpc_status
put_result_get_request_raw(syrpc_conn *c, const char *result_id, const char *json, syrpc_request *next)
{
    char sql[256];
    PGresult *res;

    memset(next, 0, sizeof(*next));
    if (!syrpc__check_id(c, result_id) || !syrpc__check_text(c, json) || !syrpc__ready(c))
        return c->status;
    if (c->no_combined_call) {
        if (syrpc_put_result_text(c, result_id, json) != SYRPC_OK)
            return c->status;
        return syrpc__get_request_raw(c, 0, next);
    }
    snprintf(sql, sizeof(sql), "SELECT type, result_id, data FROM %s.syrpc_put_result_get_request"
             "($1, $2::pg_catalog.uuid, $3::pg_catalog.jsonb)", c->schema);
    res = syrpc__run_with_text(c, sql, result_id, json, 0, 0);
    if (res == NULL)
        return c->status;
    if (PQntuples(res) == 1)
        return take_request(c, res, next);
    PQclear(res);
    return syrpc__fail(c, SYRPC_TIMEOUT, "no request waiting");
}

syrpc_status
syrpc_put_result_get_request(syrpc_conn *c, const char *result_id, const json_t *data,
                             syrpc_request **next)
{
    syrpc_request raw;
    char *text;

    *next = NULL;
    if (!syrpc__check_id(c, result_id) || (text = syrpc__encode(c, data)) == NULL)
        return c->status;
    put_result_get_request_raw(c, result_id, text, &raw);
    free(text);
    return hand_out(c, &raw, next);
}

/*
 * The serve loop's answer: answer and wait up to one slice for the next
 * request in one statement (CALL syrpc_put_result_wait_request, extension
 * 1.2), else put_result_get_request_raw.  Statuses as for that one:
 * SYRPC_OK with *next filled, SYRPC_TIMEOUT when answered and nothing came
 * (also when statement_timeout cancelled the wait: if that came before the
 * answer's commit, the request comes back by its lease).
 */
syrpc_status
syrpc__put_result_wait_request(syrpc_conn *c, const char *result_id, const char *json,
                               syrpc_request *next)
{
    char sql[256];
    PGresult *res;

    memset(next, 0, sizeof(*next));
    if (!syrpc__check_id(c, result_id) || !syrpc__check_text(c, json) || !syrpc__ready(c))
        return c->status;
    if (c->no_answer_wait)
        return put_result_get_request_raw(c, result_id, json, next);
    snprintf(sql, sizeof(sql), "CALL %s.syrpc_put_result_wait_request"
             "($1, $2::pg_catalog.uuid, $3::pg_catalog.jsonb, $4::pg_catalog.float8)", c->schema);
    if ((res = syrpc__run_waiting(c, sql, result_id, json, SYRPC_WAIT_SLICE_MS)) == NULL)
        return c->status;
    if (!PQgetisnull(res, 0, 1))
        return take_request(c, res, next);
    PQclear(res);
    return syrpc__fail(c, SYRPC_TIMEOUT, "no request within %d ms", SYRPC_WAIT_SLICE_MS);
}
