/*
 * serve.c: the worker's serve loop: get a request, dispatch on its type to
 * a registered handler, put the result; reconnect with backoff when the
 * connection is lost.  Requests travel as the server's JSON text: a text
 * handler gets it as is; a json_t handler gets it converted exactly, and a
 * request it cannot get exactly is given up (syrpc_fail_request) with the
 * reason, so that its caller learns why at once and the loop goes on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "syrpc_int.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 5000

/* Set the handler of type (NULL: the fallback); one of handler and text_handler. */
static syrpc_status
add_route(syrpc_conn *c, const char *type, syrpc_handler handler,
          syrpc_text_handler text_handler, void *arg)
{
    syrpc_route *r;

    if (handler == NULL && text_handler == NULL)
        return syrpc__fail(c, SYRPC_BAD_INPUT, "handler must not be NULL");
    if (type == NULL)
        r = &c->fallback;
    else {
        if (type[0] == '\0' || strlen(type) > SYRPC_NAME_MAX)
            return syrpc__fail(c, SYRPC_BAD_INPUT, "type must be 1 to %d bytes", SYRPC_NAME_MAX);
        r = NULL;
        for (int i = 0; i < c->nroutes && r == NULL; i++)
            if (strcmp(c->routes[i].type, type) == 0)
                r = &c->routes[i];
        if (r == NULL) {
            r = realloc(c->routes, (c->nroutes + 1) * sizeof(*r));
            if (r == NULL)
                return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
            c->routes = r;
            r = &c->routes[c->nroutes++];
            strcpy(r->type, type);
        }
    }
    r->handler = handler;
    r->text_handler = text_handler;
    r->arg = arg;
    return syrpc__ok(c);
}

syrpc_status
syrpc_register(syrpc_conn *c, const char *type, syrpc_handler handler, void *arg)
{
    return add_route(c, type, handler, NULL, arg);
}

syrpc_status
syrpc_register_text(syrpc_conn *c, const char *type, syrpc_text_handler handler, void *arg)
{
    return add_route(c, type, NULL, handler, arg);
}

static const syrpc_route *
route_of(const syrpc_conn *c, const char *type)
{
    for (int i = 0; i < c->nroutes; i++)
        if (strcmp(c->routes[i].type, type) == 0)
            return &c->routes[i];
    return (c->fallback.handler || c->fallback.text_handler) ? &c->fallback : NULL;
}

/* {"error": error, "type": type[, "reason": reason]} as JSON text, malloc'd; NULL if out of memory. */
static char *
error_object(const char *error, const char *type, const char *reason)
{
    json_t *obj = json_pack("{s:s, s:s}", "error", error, "type", type);
    char err[128], *text = NULL;

    if (obj != NULL && reason != NULL && json_object_set_new(obj, "reason", json_string(reason)) != 0) {
        json_decref(obj);
        return NULL;
    }
    if (obj != NULL)
        syrpc__encode_exact(obj, &text, err, sizeof(err));
    json_decref(obj);
    return text;
}

/* prefix and src into reason (SYRPC_REASON_MAX + 1 bytes), cut at a UTF-8 character boundary. */
static void
set_reason(char *reason, const char *prefix, const char *src)
{
    int full = snprintf(reason, SYRPC_REASON_MAX + 1, "%s%s", prefix, src);
    size_t n = strlen(reason), lead = n;

    if (full <= SYRPC_REASON_MAX || n == 0)
        return;
    /* cut: drop the last character if only part of it is left */
    while (lead > 0 && ((unsigned char) reason[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead > 0 && ((unsigned char) reason[lead - 1] & 0x80)) {
        unsigned char b = (unsigned char) reason[lead - 1];
        size_t want = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;

        if (n - (lead - 1) < want)
            reason[lead - 1] = '\0';
    }
}

/*
 * The answer to req: the handler's result as JSON text (malloc'd), or an
 * error object; or, with *answer NULL and reason set, why the request
 * must be given up.  A json_t handler gets req with its data converted.
 * SYRPC_NO_MEMORY (status set) if out of memory.
 */
static syrpc_status
dispatch(syrpc_conn *c, syrpc_request *req, char **answer, char *reason)
{
    const syrpc_route *r = route_of(c, req->type);
    char err[SYRPC_MSG_MAX / 2];
    json_t *result;
    int rc;

    *answer = NULL;
    reason[0] = '\0';
    if (r == NULL)
        *answer = error_object("unknown type", req->type, NULL);
    else if (r->text_handler != NULL) {
        *answer = r->text_handler(req, r->arg);
        if (*answer == NULL)
            *answer = error_object("handler failed", req->type, NULL);
    } else {
        rc = syrpc__decode_exact(req->text, &req->data, err, sizeof(err));
        if (rc == SYRPC__REFUSED) {
            set_reason(reason, "request data cannot be represented by the C library: ", err);
            return SYRPC_OK;
        }
        if (rc == SYRPC__NO_MEMORY)
            return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
        result = r->handler(req, r->arg);
        if (result == NULL)
            *answer = error_object("handler failed", req->type, NULL);
        else {
            rc = syrpc__encode_exact(result, answer, err, sizeof(err));
            json_decref(result);
            if (rc == SYRPC__REFUSED) {
                set_reason(reason, "the handler's result cannot be sent as JSON: ", err);
                return SYRPC_OK;
            }
        }
    }
    if (*answer == NULL)
        return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    return SYRPC_OK;
}

/*
 * Give up req with reason (syrpc_fail_request); on extension < 1.3, which
 * cannot, answer it with an error object that has the reason.
 */
static syrpc_status
give_up(syrpc_conn *c, const syrpc_request *req, const char *reason)
{
    char *answer;
    syrpc_status st;

    if (!c->no_fail_request)
        return syrpc_fail_request(c, req->result_id, reason);
    if ((answer = error_object("request failed", req->type, reason)) == NULL)
        return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    st = syrpc_put_result_text(c, req->result_id, answer);
    free(answer);
    return st;
}

/* The server refused an answer's data (not JSON, too large, ...). */
static int
answer_refused(const syrpc_conn *c)
{
    return c->status == SYRPC_BAD_INPUT &&
        (strncmp(c->sqlstate, "22", 2) == 0 || strcmp(c->sqlstate, "54000") == 0);
}

/* Sleep ms unless interrupted by a signal. */
static void
nap(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* Reconnect until it works or the interrupt flag is set. */
static syrpc_status
reconnect_with_backoff(syrpc_conn *c)
{
    int backoff = BACKOFF_MIN_MS;

    for (;;) {
        if (syrpc__interrupted(c))
            return syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
        nap(backoff);
        if (syrpc_reconnect(c) == SYRPC_OK)
            return SYRPC_OK;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
}

syrpc_status
syrpc_serve(syrpc_conn *c, long max_requests)
{
    long served = 0;
    int have = 0;               /* req holds a claimed request */
    syrpc_request req, next;

    memset(&req, 0, sizeof(req));
    memset(&next, 0, sizeof(next));     /* the last answer (max_requests) fills no next */
    while (max_requests <= 0 || served < max_requests) {
        char *answer, reason[SYRPC_REASON_MAX + 1];
        syrpc_status st;

        if (syrpc__interrupted(c)) {
            syrpc__request_clear(&req);     /* if held, it comes back by its lease */
            return syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
        }
        if (!have) {
            st = syrpc__get_request_raw(c, SYRPC_WAIT_SLICE_MS, &req);
            if (st == SYRPC_TIMEOUT)
                continue;
            if (st == SYRPC_CONNECTION) {
                if (reconnect_with_backoff(c) != SYRPC_OK)
                    return c->status;
                continue;
            }
            if (st != SYRPC_OK)
                return st;
        }
        have = 0;
        if (dispatch(c, &req, &answer, reason) != SYRPC_OK) {
            syrpc__request_clear(&req);
            return c->status;
        }
        if (answer != NULL) {
            /* answer, and take the next request, waiting a slice for one */
            st = (max_requests > 0 && served + 1 >= max_requests)
                ? syrpc_put_result_text(c, req.result_id, answer)
                : syrpc__put_result_wait_request(c, req.result_id, answer, &next);
            free(answer);
            if (answer_refused(c))
                set_reason(reason, "the server refused the handler's result: ", syrpc_error_message(c));
        }
        if (reason[0] != '\0')
            st = give_up(c, &req, reason);
        syrpc__request_clear(&req);
        if (st == SYRPC_OK || st == SYRPC_TIMEOUT) {
            served++;
            if (st == SYRPC_OK && next.result_id[0] != '\0') {
                req = next;
                memset(&next, 0, sizeof(next));
                have = 1;
            }
        } else if (st == SYRPC_CONNECTION) {
            /* the request comes back by its lease, to us or another worker */
            if (reconnect_with_backoff(c) != SYRPC_OK)
                return c->status;
        } else if (st == SYRPC_BAD_INPUT && strcmp(c->sqlstate, "SY004") == 0) {
            /* our lease ran out and another worker answered, or it expired */
            continue;
        } else
            return st;
    }
    return syrpc__ok(c);
}
