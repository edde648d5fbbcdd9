/*
 * peers.c: what users would pick instead of syrpc, outside PostgreSQL.
 *   Redis     callers LPUSH a request naming their own reply key onto the
 *             app's list and BLPOP that key; workers BRPOP the list and
 *             LPUSH the reply.  The server runs with appendonly yes;
 *             redis_prepare sets appendfsync (always or everysec).
 *   RabbitMQ  direct reply-to: callers publish with reply_to =
 *             amq.rabbitmq.reply-to and consume it without acks; workers
 *             consume the request queue (prefetch 1, acked after the
 *             reply is published) and publish to the reply_to key.
 * tools/bench.sh starts the servers on throwaway ports and says where in
 * BENCH_REDIS_PORT and BENCH_AMQP_PORT.  Built without hiredis or
 * librabbitmq (bench/Makefile asks pkg-config), a peer is only a stub
 * that says it is missing, so that the bench runs without it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#if defined(HAVE_HIREDIS) || defined(HAVE_LIBRABBITMQ)
static const char *payload = "{\"value\": \"hello\", \"n\": 42}";

static int
env_port(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? atoi(v) : 0;
}

/* Count an error; print the first few. */
static void
peer_error(thread_arg *a, const char *what, const char *detail)
{
    if (__atomic_add_fetch(&a->ctx->errors, 1, __ATOMIC_SEQ_CST) < 5)
        fprintf(stderr, "\nbench: %s: %s\n", what, detail ? detail : "?");
}
#endif

/* ---- Redis ---- */

#ifdef HAVE_HIREDIS
#include <hiredis.h>

static redisContext *
redis_connect_or_die(void)
{
    redisContext *r = redisConnect("127.0.0.1", env_port("BENCH_REDIS_PORT"));

    if (r == NULL || r->err) {
        fprintf(stderr, "bench: redis connect: %s\n", r ? r->errstr : "out of memory");
        exit(1);
    }
    return r;
}

const char *
redis_unavailable(void)
{
    redisContext *r;
    redisReply *reply;
    int ok;

    if (env_port("BENCH_REDIS_PORT") == 0)
        return getenv("BENCH_REDIS_SKIP") ? getenv("BENCH_REDIS_SKIP") : "no server (BENCH_REDIS_PORT unset)";
    r = redisConnect("127.0.0.1", env_port("BENCH_REDIS_PORT"));
    if (r == NULL || r->err) {
        redisFree(r);
        return "its server does not answer";
    }
    reply = redisCommand(r, "PING");
    ok = reply && reply->type == REDIS_REPLY_STATUS;
    freeReplyObject(reply);
    redisFree(r);
    return ok ? NULL : "its server does not answer PING";
}

/* Set appendfsync before a round; the server runs with appendonly yes. */
static void
redis_set_fsync(const char *mode)
{
    redisContext *r = redis_connect_or_die();
    redisReply *reply = redisCommand(r, "CONFIG SET appendfsync %s", mode);

    if (reply == NULL || reply->type != REDIS_REPLY_STATUS) {
        fprintf(stderr, "bench: redis CONFIG SET appendfsync %s: %s\n", mode,
                reply && reply->type == REDIS_REPLY_ERROR ? reply->str : r->errstr);
        exit(1);
    }
    freeReplyObject(reply);
    /* a request left over from an interrupted round must not be answered into this one */
    freeReplyObject(redisCommand(r, "FLUSHALL"));
    redisFree(r);
}

void redis_always(void) { redis_set_fsync("always"); }
void redis_everysec(void) { redis_set_fsync("everysec"); }

void *
redis_caller(void *arg)
{
    thread_arg *a = arg;
    redisContext *r = redis_connect_or_die();
    char key[32];

    snprintf(key, sizeof(key), "bench:reply:%d", a->id);
    while (!a->ctx->stop_callers) {
        double t0 = now_s();
        redisReply *reply = redisCommand(r, "LPUSH bench:req %s\n%s", key, payload);
        int got = 0;

        if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
            peer_error(a, "redis LPUSH", reply && reply->type == REDIS_REPLY_ERROR ? reply->str : r->errstr);
            freeReplyObject(reply);
            if (r->err)
                break;
            continue;
        }
        freeReplyObject(reply);
        /* the workers run until the last caller is done: wait for them */
        while (!got && !a->ctx->stop_workers) {
            reply = redisCommand(r, "BLPOP %s 1", key);
            if (reply == NULL) {
                peer_error(a, "redis BLPOP", r->errstr);
                break;
            }
            got = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2;
            freeReplyObject(reply);
        }
        if (r->err)
            break;
        if (got) {
            lat_add(&a->lat, (now_s() - t0) * 1000);
            __atomic_add_fetch(&a->ctx->done, 1, __ATOMIC_RELAXED);
        }
    }
    redisFree(r);
    return NULL;
}

void *
redis_worker(void *arg)
{
    thread_arg *a = arg;
    redisContext *r = redis_connect_or_die();

    while (!a->ctx->stop_workers) {
        /* a short timeout: hiredis retries a read that a signal interrupts */
        redisReply *reply = redisCommand(r, "BRPOP bench:req 0.2");
        redisReply *msg, *put;
        char *nl;

        if (reply == NULL) {
            peer_error(a, "redis BRPOP", r->errstr);
            break;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
            freeReplyObject(reply);
            continue;
        }
        msg = reply->element[1];
        nl = memchr(msg->str, '\n', msg->len);
        if (nl == NULL) {
            peer_error(a, "redis worker", "request without a reply key");
            freeReplyObject(reply);
            continue;
        }
        put = redisCommand(r, "LPUSH %b %b", msg->str, (size_t) (nl - msg->str),
                           nl + 1, (size_t) (msg->len - (nl + 1 - msg->str)));
        if (put == NULL || put->type != REDIS_REPLY_INTEGER)
            peer_error(a, "redis LPUSH reply", put && put->type == REDIS_REPLY_ERROR ? put->str : r->errstr);
        freeReplyObject(put);
        freeReplyObject(reply);
    }
    redisFree(r);
    return NULL;
}

#else

const char *redis_unavailable(void) { return "the bench was built without hiredis (libhiredis-dev)"; }
void redis_always(void) { }
void redis_everysec(void) { }
void *redis_caller(void *arg) { (void) arg; return NULL; }
void *redis_worker(void *arg) { (void) arg; return NULL; }

#endif

/* ---- RabbitMQ, direct reply-to ---- */

#ifdef HAVE_LIBRABBITMQ
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#define REQUEST_QUEUE "bench_req"

static const char *
amqp_reply_text(amqp_rpc_reply_t r)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return NULL;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        return "server exception (channel or connection closed)";
    default:
        return "no reply";
    }
}

/*
 * A connection with channel 1 open and the request queue declared (by
 * callers too: a request published before any worker declared the queue
 * would be dropped as unroutable).  NULL with *why set on failure.
 */
static amqp_connection_state_t
amqp_open(const char **why)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    amqp_rpc_reply_t r;

    *why = NULL;
    if (sock == NULL || amqp_socket_open(sock, "127.0.0.1", env_port("BENCH_AMQP_PORT")) != AMQP_STATUS_OK) {
        *why = "cannot connect";
        amqp_destroy_connection(conn);
        return NULL;
    }
    r = amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if ((*why = amqp_reply_text(r)) == NULL) {
        amqp_channel_open(conn, 1);
        *why = amqp_reply_text(amqp_get_rpc_reply(conn));
    }
    if (*why == NULL) {
        /* transient, as in RabbitMQ's own RPC tutorial: replies through direct reply-to are never stored */
        amqp_queue_declare(conn, 1, amqp_cstring_bytes(REQUEST_QUEUE), 0, 0, 0, 0, amqp_empty_table);
        *why = amqp_reply_text(amqp_get_rpc_reply(conn));
    }
    if (*why != NULL) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    return conn;
}

static void
amqp_close(amqp_connection_state_t conn)
{
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

static amqp_connection_state_t
amqp_open_or_die(void)
{
    const char *why;
    amqp_connection_state_t conn = amqp_open(&why);

    if (conn == NULL) {
        fprintf(stderr, "bench: rabbitmq: %s\n", why);
        exit(1);
    }
    return conn;
}

const char *
rabbitmq_unavailable(void)
{
    const char *why;
    amqp_connection_state_t conn;

    if (env_port("BENCH_AMQP_PORT") == 0)
        return getenv("BENCH_AMQP_SKIP") ? getenv("BENCH_AMQP_SKIP") : "no server (BENCH_AMQP_PORT unset)";
    if ((conn = amqp_open(&why)) == NULL)
        return why;
    /* a request left over from an interrupted run must not be answered into this one */
    amqp_queue_purge(conn, 1, amqp_cstring_bytes(REQUEST_QUEUE));
    amqp_close(conn);
    return NULL;
}

void *
rabbitmq_caller(void *arg)
{
    thread_arg *a = arg;
    amqp_connection_state_t conn = amqp_open_or_die();
    amqp_bytes_t reply_to = amqp_cstring_bytes("amq.rabbitmq.reply-to");
    amqp_basic_properties_t props;
    const char *why;

    /* direct reply-to: consume the pseudo-queue, without acks, before publishing to it */
    amqp_basic_consume(conn, 1, reply_to, amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    if ((why = amqp_reply_text(amqp_get_rpc_reply(conn))) != NULL) {
        peer_error(a, "rabbitmq consume amq.rabbitmq.reply-to", why);
        amqp_destroy_connection(conn);
        return NULL;
    }
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.reply_to = reply_to;
    props.delivery_mode = 1;    /* transient */
    while (!a->ctx->stop_callers) {
        double t0 = now_s();
        int got = 0;

        if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(REQUEST_QUEUE), 0, 0,
                               &props, amqp_cstring_bytes(payload)) != AMQP_STATUS_OK) {
            peer_error(a, "rabbitmq publish", "failed");
            break;
        }
        while (!got && !a->ctx->stop_workers) {
            struct timeval tv = { 1, 0 };
            amqp_envelope_t env;
            amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);

            if (r.reply_type == AMQP_RESPONSE_NORMAL) {
                amqp_destroy_envelope(&env);
                got = 1;
            } else if (!(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                         r.library_error == AMQP_STATUS_TIMEOUT)) {
                peer_error(a, "rabbitmq consume reply", amqp_reply_text(r));
                break;
            }
        }
        if (got) {
            lat_add(&a->lat, (now_s() - t0) * 1000);
            __atomic_add_fetch(&a->ctx->done, 1, __ATOMIC_RELAXED);
        }
    }
    amqp_close(conn);
    return NULL;
}

void *
rabbitmq_worker(void *arg)
{
    thread_arg *a = arg;
    amqp_connection_state_t conn = amqp_open_or_die();
    const char *why;

    /* one unacknowledged request at a time, so that idle workers share the load */
    amqp_basic_qos(conn, 1, 0, 1, 0);
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(REQUEST_QUEUE), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if ((why = amqp_reply_text(amqp_get_rpc_reply(conn))) != NULL) {
        peer_error(a, "rabbitmq consume " REQUEST_QUEUE, why);
        amqp_destroy_connection(conn);
        return NULL;
    }
    while (!a->ctx->stop_workers) {
        struct timeval tv = { 0, 200000 };
        amqp_envelope_t env;
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        amqp_basic_properties_t props;

        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            if (!(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)) {
                peer_error(a, "rabbitmq consume request", amqp_reply_text(r));
                break;
            }
            continue;
        }
        memset(&props, 0, sizeof(props));
        props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.delivery_mode = 1;
        if (!(env.message.properties._flags & AMQP_BASIC_REPLY_TO_FLAG) ||
            amqp_basic_publish(conn, 1, amqp_empty_bytes, env.message.properties.reply_to, 0, 0,
                               &props, env.message.body) != AMQP_STATUS_OK)
            peer_error(a, "rabbitmq publish reply", "failed");
        amqp_basic_ack(conn, 1, env.delivery_tag, 0);
        amqp_destroy_envelope(&env);
    }
    amqp_close(conn);
    return NULL;
}

#else

const char *rabbitmq_unavailable(void) { return "the bench was built without librabbitmq (librabbitmq-dev)"; }
void *rabbitmq_caller(void *arg) { (void) arg; return NULL; }
void *rabbitmq_worker(void *arg) { (void) arg; return NULL; }

#endif
