/*
 * worker.c: libsyrpc's worker side: claimed requests (opaque, with their
 * accessors), taking them, answering and failing them (the serve loop is
 * serve.c; the connection and the statements' plumbing, syrpc.c).
 */
#include <errno.h>
#include <limits.h>
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

/*
 * Fill req from the one row of res, read by column name, and clear res.
 * attempts is read whenever the statement returns such a column: the
 * claim calls of released extensions do not, so it stays 0 until one
 * does, with no change here.
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

syrpc_status
syrpc__get_request_raw(syrpc_conn *c, int timeout_ms, syrpc_request *req)
{
    const char *values[2] = { c->app, NULL };
    char proc[256], func[256];
    PGresult *res;

    memset(req, 0, sizeof(*req));
    if (!syrpc__check_timeout(c, timeout_ms) || !syrpc__ready(c))
        return c->status;
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
    if (!syrpc__ready(c))
        return c->status;
    if (c->no_fail_request) {
        syrpc__fail(c, SYRPC_SERVER_ERROR, "syrpc_fail_request needs extension 1.3 or later (the database has %s)",
                    c->extversion);
        syrpc__copy_str(c->hint, sizeof(c->hint), "Run ALTER EXTENSION syrpc UPDATE.");
        return c->status;
    }
    snprintf(sql, sizeof(sql), "SELECT %s.syrpc_fail_request($1, $2::pg_catalog.uuid, $3)", c->schema);
    res = syrpc__run(c, sql, 3, values, -1);
    if (res == NULL)
        return c->status;
    PQclear(res);
    return SYRPC_OK;
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
