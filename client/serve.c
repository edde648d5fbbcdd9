/*
 * serve.c: the worker's serve loop: get a request, dispatch on its type to
 * a registered handler, put the result; reconnect with backoff when the
 * connection is lost.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "syrpc_int.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 5000

syrpc_status
syrpc_register(syrpc_conn *c, const char *type, syrpc_handler handler, void *arg)
{
    syrpc_route *r;

    if (handler == NULL)
        return syrpc__fail(c, SYRPC_BAD_INPUT, "handler must not be NULL");
    if (type == NULL) {
        c->fallback.handler = handler;
        c->fallback.arg = arg;
        return syrpc__ok(c);
    }
    if (type[0] == '\0' || strlen(type) > SYRPC_NAME_MAX)
        return syrpc__fail(c, SYRPC_BAD_INPUT, "type must be 1 to %d bytes", SYRPC_NAME_MAX);
    for (int i = 0; i < c->nroutes; i++) {
        if (strcmp(c->routes[i].type, type) == 0) {
            c->routes[i].handler = handler;
            c->routes[i].arg = arg;
            return syrpc__ok(c);
        }
    }
    r = realloc(c->routes, (c->nroutes + 1) * sizeof(*r));
    if (r == NULL)
        return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    c->routes = r;
    r = &c->routes[c->nroutes++];
    strcpy(r->type, type);
    r->handler = handler;
    r->arg = arg;
    return syrpc__ok(c);
}

static const syrpc_route *
route_of(const syrpc_conn *c, const char *type)
{
    for (int i = 0; i < c->nroutes; i++)
        if (strcmp(c->routes[i].type, type) == 0)
            return &c->routes[i];
    return c->fallback.handler ? &c->fallback : NULL;
}

/* The result of req: the handler's, or an error object. New reference. */
static json_t *
dispatch(const syrpc_conn *c, const syrpc_request *req)
{
    const syrpc_route *r = route_of(c, req->type);
    json_t *result;

    if (r == NULL)
        return json_pack("{s:s, s:s}", "error", "unknown type", "type", req->type);
    result = r->handler(req->type, req->data, r->arg);
    if (result == NULL)
        result = json_pack("{s:s, s:s}", "error", "handler failed", "type", req->type);
    return result;
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
        json_t *result;
        syrpc_status st;

        if (syrpc__interrupted(c)) {
            if (have)           /* it comes back by its lease */
                syrpc_request_clear(&req);
            return syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
        }
        if (!have) {
            st = syrpc_get_request(c, SYRPC_WAIT_SLICE_MS, &req);
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
        result = dispatch(c, &req);
        if (result == NULL) {
            syrpc_request_clear(&req);
            return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
        }
        /* answer, and take the next request, waiting a slice for one */
        st = (max_requests > 0 && served + 1 >= max_requests)
            ? syrpc_put_result(c, req.result_id, result)
            : syrpc__put_result_wait_request(c, req.result_id, result, &next);
        json_decref(result);
        syrpc_request_clear(&req);
        have = 0;
        if (st == SYRPC_OK || st == SYRPC_TIMEOUT) {
            served++;
            if (st == SYRPC_OK && next.data != NULL) {
                req = next;
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
