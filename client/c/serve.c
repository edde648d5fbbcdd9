/*
 * serve.c: the worker's serve loop: get a request, dispatch on its type to
 * a registered handler, put the result; reconnect with backoff when the
 * connection is lost.  Requests travel as the server's JSON text: a text
 * handler gets it as is; a json_t handler gets it converted exactly, and a
 * request it cannot get exactly is given up (syrpc_fail_request) with the
 * reason, so that its caller learns why at once and the loop goes on.
 *
 * With extension 1.6 and a batch of more than one (syrpc_set_batch), the
 * loop claims several requests at once and answers them together, with
 * the claim of the next batch, in one statement and one commit
 * (serve_batches, on batch.c's calls); else one at a time
 * (serve_one_by_one, as before 1.6).  From 1.7 it always takes the batch
 * calls, a batch of 1 included, since they tell a request's attempts and
 * deadline.
 *
 * A handler may answer with an error (syrpc_reply_error): from 1.7 the
 * loop puts it with syrpc_put_error, on its own (in a batch: before the
 * batch's answers go); before 1.7 the handler's result, or the error
 * object of a failing handler, answers instead.  A handler that settles
 * its own request on the loop's handle (answers it, fails it, releases
 * it) is left alone.
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

/* What the loop does with a request once its handler has run (dispatch). */
typedef enum outcome {
    ANSWER,             /* put *answer: the result, or an error object */
    ERROR_ANSWER,       /* put the error the handler set in the request (syrpc_put_error, 1.7) */
    GIVE_UP,            /* give it up with reason (syrpc_fail_request) */
    SETTLED,            /* the handler answered or failed it itself, on the loop's handle: served */
    RELEASED            /* the handler released it (syrpc_release): not served, nothing to do */
} outcome;

/*
 * Run the handler of req, noting on the handle which request it handles,
 * so that the calls that settle that request say so (syrpc__settle).
 * Returns the handler's result: a json_t (json) or malloc'd text.
 */
static void *
run_handler(syrpc_conn *c, const syrpc_route *r, syrpc_request *req, int json)
{
    void *result;

    c->handling = req->result_id;
    c->handling_attempts = req->attempts;
    c->settled = SYRPC__UNSETTLED;
    result = json ? (void *) r->handler(req, r->arg) : (void *) r->text_handler(req, r->arg);
    c->handling = NULL;
    return result;
}

/*
 * Run req's handler and say what to do (*what): with ANSWER, *answer is
 * the handler's result as JSON text (malloc'd), or an error object; with
 * GIVE_UP, reason says why.  A json_t handler gets req with its data
 * converted.  An error the handler set wins over its result from 1.7;
 * before, its result (or the error object of a failing handler) answers.
 * SYRPC_NO_MEMORY (status set) if out of memory.
 */
static syrpc_status
dispatch(syrpc_conn *c, syrpc_request *req, outcome *what, char **answer, char *reason)
{
    const syrpc_route *r = route_of(c, req->type);
    char err[SYRPC_MSG_MAX / 2];
    json_t *result = NULL;
    char *text = NULL;
    int rc;

    *what = ANSWER;
    *answer = NULL;
    reason[0] = '\0';
    if (r != NULL && r->text_handler == NULL) {
        rc = syrpc__decode_exact(req->text, &req->data, err, sizeof(err));
        if (rc == SYRPC__REFUSED) {
            *what = GIVE_UP;
            set_reason(reason, "request data cannot be represented by the C library: ", err);
            return SYRPC_OK;
        }
        if (rc == SYRPC__NO_MEMORY)
            return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    }
    if (r == NULL) {
        if ((*answer = error_object("unknown type", req->type, NULL)) == NULL)
            return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
        return SYRPC_OK;
    }
    if (r->text_handler != NULL)
        text = run_handler(c, r, req, 0);
    else
        result = run_handler(c, r, req, 1);
    if (c->settled != SYRPC__UNSETTLED || (req->error_message != NULL && !c->no_semantics)) {
        *what = c->settled == SYRPC__RELEASED ? RELEASED : c->settled == SYRPC__ANSWERED ? SETTLED : ERROR_ANSWER;
        free(text);
        json_decref(result);
        return SYRPC_OK;
    }
    if (r->text_handler != NULL)
        *answer = text;
    else if (result != NULL) {
        rc = syrpc__encode_exact(result, answer, err, sizeof(err));
        json_decref(result);
        if (rc == SYRPC__REFUSED) {
            *what = GIVE_UP;
            set_reason(reason, "the handler's result cannot be sent as JSON: ", err);
            return SYRPC_OK;
        }
    }
    if (*answer == NULL && (text != NULL || result != NULL))
        return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    if (*answer == NULL && (*answer = error_object("handler failed", req->type, NULL)) == NULL)
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

/*
 * Answer req with the error its handler set (syrpc_put_error, 1.7); if
 * the server refuses its detail (too large, not JSON), give req up with
 * the server's reason, as a refused result.
 */
static syrpc_status
answer_error(syrpc_conn *c, const syrpc_request *req)
{
    syrpc_status st = syrpc_put_error_text(c, req->result_id, req->error_message, req->error_detail);

    if (answer_refused(c)) {
        char reason[SYRPC_REASON_MAX + 1];

        set_reason(reason, "the server refused the handler's error: ", syrpc_error_message(c));
        st = give_up(c, req, reason);
    }
    return st;
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

/* What a serve loop returns after a reconnect: the server may be another, with other calls. */
#define SERVE_AGAIN (-1)

/* After a lost connection: reconnect, and serve on (SERVE_AGAIN), or the status (interrupted). */
static int
serve_again(syrpc_conn *c)
{
    return reconnect_with_backoff(c) == SYRPC_OK ? SERVE_AGAIN : (int) c->status;
}

/*
 * One request at a time: answer it and claim the next in one statement
 * (syrpc__put_result_wait_request), the last of max_requests without a
 * claim.  The loop of batch 1 and of extensions before 1.6.
 */
static int
serve_one_by_one(syrpc_conn *c, long max_requests, long *served)
{
    int have = 0;               /* req holds a claimed request */
    syrpc_request req, next;

    memset(&req, 0, sizeof(req));
    memset(&next, 0, sizeof(next));     /* the last answer (max_requests) fills no next */
    while (max_requests <= 0 || *served < max_requests) {
        char *answer, reason[SYRPC_REASON_MAX + 1];
        syrpc_status st;
        outcome what;

        if (syrpc__interrupted(c)) {
            syrpc__request_clear(&req);     /* if held, it comes back by its lease */
            return syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
        }
        if (!have) {
            st = syrpc__get_request_raw(c, SYRPC_WAIT_SLICE_MS, &req);
            if (st == SYRPC_TIMEOUT)
                continue;
            if (st == SYRPC_CONNECTION)
                return serve_again(c);
            if (st != SYRPC_OK)
                return st;
        }
        have = 0;
        if (dispatch(c, &req, &what, &answer, reason) != SYRPC_OK) {
            syrpc__request_clear(&req);
            return c->status;
        }
        if (what == RELEASED) {
            syrpc__request_clear(&req);
            continue;
        }
        st = SYRPC_OK;          /* SETTLED: answered by the handler */
        if (what == ERROR_ANSWER)
            st = answer_error(c, &req);
        if (answer != NULL) {
            /* answer, and take the next request, waiting a slice for one */
            st = (max_requests > 0 && *served + 1 >= max_requests)
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
            (*served)++;
            if (st == SYRPC_OK && next.result_id[0] != '\0') {
                req = next;
                memset(&next, 0, sizeof(next));
                have = 1;
            }
        } else if (st == SYRPC_CONNECTION) {
            /* the request comes back by its lease, to us or another worker */
            return serve_again(c);
        } else if (st == SYRPC_BAD_INPUT && strcmp(c->sqlstate, "SY004") == 0) {
            /* our lease ran out and another worker answered, or it expired */
            continue;
        } else
            return st;
    }
    return syrpc__ok(c);
}

/* The request is no longer in flight (SY004): our lease ran out and another worker answered, or it expired. */
static int
not_in_flight(const syrpc_conn *c)
{
    return c->status == SYRPC_BAD_INPUT && strcmp(c->sqlstate, "SY004") == 0;
}

/* What serve_batches' steps return to go on. */
#define SERVE_ON (-2)

/*
 * How a request's give-up or one-by-one answer ended: 1 counted (served),
 * 0 skipped (SY004), -1 else, with *rc the loop's return (SERVE_AGAIN
 * after a lost connection, or the status).
 */
static int
settled(syrpc_conn *c, syrpc_status st, int *rc)
{
    if (st == SYRPC_OK)
        return 1;
    if (not_in_flight(c))
        return 0;
    *rc = st == SYRPC_CONNECTION ? serve_again(c) : (int) st;
    return -1;
}

/*
 * A batch while it is handled: its claimed requests reqs[0..n), and the
 * answers (malloc'd JSON text) of those that have one, answers[i] to
 * request which[i] (ids[i] its result_id); next: room for the next batch.
 */
typedef struct batch {
    syrpc_request *reqs, *next;
    int n;
    char **answers, **ids;
    int *which;
    int nanswers;
} batch;

static void
batch_clear(batch *b)
{
    for (int i = 0; i < b->n; i++)
        syrpc__request_clear(&b->reqs[i]);
    for (int i = 0; i < b->nanswers; i++)
        free(b->answers[i]);
    b->n = b->nanswers = 0;
}

/*
 * Answer b's requests one at a time, after the server refused the batch's
 * answers (one of them not in flight, or data it refuses): each as
 * serve_one_by_one does, a refused answer given up with the server's
 * reason, one not in flight skipped.  Empties b; SERVE_ON, or the loop's
 * return.
 */
static int
answer_one_by_one(syrpc_conn *c, batch *b, long *served)
{
    int rc = SERVE_ON;

    for (int i = 0; i < b->nanswers && rc == SERVE_ON; i++) {
        syrpc_status st = syrpc_put_result_text(c, b->ids[i], b->answers[i]);

        if (answer_refused(c)) {
            char reason[SYRPC_REASON_MAX + 1];

            set_reason(reason, "the server refused the handler's result: ", syrpc_error_message(c));
            st = give_up(c, &b->reqs[b->which[i]], reason);
        }
        if (settled(c, st, &rc) > 0)
            (*served)++;
    }
    batch_clear(b);
    return rc;
}

/*
 * Handle b's requests: their answers into b; those to give up given up,
 * and those answered with an error answered so, at once (syrpc_put_error
 * has no batch form; they go before the batch's answers).  SERVE_ON, or
 * the loop's return.
 */
static int
handle_batch(syrpc_conn *c, batch *b, long *served)
{
    int rc = SERVE_ON;

    for (int i = 0; i < b->n && rc == SERVE_ON; i++) {
        char *answer, reason[SYRPC_REASON_MAX + 1];
        outcome what;

        if (dispatch(c, &b->reqs[i], &what, &answer, reason) != SYRPC_OK)
            return c->status;
        switch (what) {
        case ANSWER:
            b->answers[b->nanswers] = answer;
            b->ids[b->nanswers] = b->reqs[i].result_id;
            b->which[b->nanswers++] = i;
            break;
        case ERROR_ANSWER:
            if (settled(c, answer_error(c, &b->reqs[i]), &rc) > 0)
                (*served)++;
            break;
        case GIVE_UP:
            if (settled(c, give_up(c, &b->reqs[i], reason), &rc) > 0)
                (*served)++;
            break;
        case SETTLED:
            (*served)++;
            break;
        case RELEASED:
            break;
        }
    }
    return rc;
}

/*
 * In batches of up to c->batch, never more than max_requests leaves to
 * serve: claim a batch, run each request's handler, give up at once those
 * that must be, then answer the rest and claim the next batch in one
 * statement and one commit (syrpc__put_results_wait_requests); the last
 * answers of max_requests, and those of a batch handled while the
 * interrupt flag was set, without a claim.  If the server refuses the
 * answers (all or none: SY004 for one, or data it refuses), answer them
 * one by one, then claim anew.  A lost connection drops the batch: its
 * requests come back by their leases.
 */
static int
serve_batches(syrpc_conn *c, long max_requests, long *served)
{
    int size = c->batch, rc = SERVE_ON;
    batch b = { 0 };

    b.reqs = calloc(size, sizeof(*b.reqs));
    b.next = calloc(size, sizeof(*b.next));
    b.answers = calloc(size, sizeof(*b.answers));
    b.ids = calloc(size, sizeof(*b.ids));
    b.which = calloc(size, sizeof(*b.which));
    if (!b.reqs || !b.next || !b.answers || !b.ids || !b.which)
        rc = syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    while (rc == SERVE_ON) {
        long left = max_requests > 0 ? max_requests - *served : size;
        syrpc_status st;
        int nnext;

        if (left <= 0) {
            rc = syrpc__ok(c);
            break;
        }
        if (syrpc__interrupted(c)) {
            rc = syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
            break;
        }
        if (b.n == 0) {
            st = syrpc__wait_requests(c, left < size ? (int) left : size, SYRPC_WAIT_SLICE_MS, b.reqs, &b.n);
            if (st == SYRPC_TIMEOUT)
                continue;
            if (st != SYRPC_OK) {
                rc = st == SYRPC_CONNECTION ? serve_again(c) : (int) st;
                break;
            }
        }
        if ((rc = handle_batch(c, &b, served)) != SERVE_ON)
            break;
        if (b.nanswers == 0) {
            batch_clear(&b);
            continue;
        }
        /* what is left to serve once these are answered; nothing more after an interrupt */
        left = max_requests > 0 ? max_requests - *served - b.nanswers : size;
        if (syrpc__interrupted(c))
            left = 0;
        st = syrpc__put_results_wait_requests(c, b.nanswers, b.ids, b.answers,
                                              left <= 0 ? 0 : left < size ? (int) left : size, b.next, &nnext);
        if (st == SYRPC_OK || st == SYRPC_TIMEOUT) {
            syrpc_request *done = b.reqs;

            *served += b.nanswers;
            batch_clear(&b);
            b.reqs = b.next;
            b.next = done;
            b.n = nnext;
        } else if (st == SYRPC_CONNECTION)
            rc = serve_again(c);
        else if (not_in_flight(c) || answer_refused(c))
            rc = answer_one_by_one(c, &b, served);
        else
            rc = st;
    }
    batch_clear(&b);
    free(b.reqs);
    free(b.next);
    free(b.answers);
    free(b.ids);
    free(b.which);
    return rc;
}

syrpc_status
syrpc_set_batch(syrpc_conn *c, int max)
{
    if (max < 1 || max > SYRPC__BATCH_MAX)
        return syrpc__fail(c, SYRPC_BAD_INPUT, "the batch must be 1 to %d requests (got %d)", SYRPC__BATCH_MAX, max);
    c->batch = max;
    return syrpc__ok(c);
}

/*
 * Serve in batches where the server has the batch calls and the batch is
 * more than one request, or the server is 1.7 or later (whose batch calls
 * tell attempts and deadlines, which handlers then always see), else one
 * at a time.  Each loop returns after a reconnect (holding no request),
 * to choose again: the server may be another.
 */
syrpc_status
syrpc_serve(syrpc_conn *c, long max_requests)
{
    long served = 0;
    int rc;

    for (;;) {
        if (syrpc__interrupted(c))
            return syrpc__fail(c, SYRPC_INTERRUPTED, "interrupted");
        if (max_requests > 0 && served >= max_requests)
            return syrpc__ok(c);
        if (!syrpc__ready(c)) {
            if (c->status != SYRPC_CONNECTION)
                return c->status;
            rc = serve_again(c);
        } else if (!c->no_batch && (c->batch > 1 || !c->no_semantics))
            rc = serve_batches(c, max_requests, &served);
        else
            rc = serve_one_by_one(c, max_requests, &served);
        if (rc != SERVE_AGAIN)
            return (syrpc_status) rc;
    }
}
