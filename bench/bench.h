/*
 * bench.h: shared by the benchmark's files.
 *   bench.c   options, the run matrix, timing, percentiles, the report
 *   systems.c the systems measured in PostgreSQL: the INSERT floor, the
 *             naive SKIP LOCKED + LISTEN/NOTIFY baseline, notify (naive
 *             with its NOTIFYs apart), and syrpc three ways
 *   peers.c   the peers outside PostgreSQL: Redis lists, RabbitMQ direct reply-to
 *   idle.c    the idle test: CPU of blocked waiters, backends woken per put
 */
#ifndef BENCH_H
#define BENCH_H

#include <signal.h>
#include <stdio.h>
#include <stdint.h>

typedef struct lat_buf {
    double *ms;
    long n, cap;
} lat_buf;

void lat_add(lat_buf *b, double ms);
double now_s(void);

/* What every thread of one run shares. */
typedef struct run_ctx {
    const char *conninfo;        /* with synchronous_commit set */
    const char *app;
    volatile sig_atomic_t stop_callers;
    volatile sig_atomic_t stop_workers;
    volatile long done;          /* operations finished, for the progress line */
    int errors;
} run_ctx;

/* One thread's part: a loop that runs until ctx->stop_*. */
typedef struct thread_arg {
    run_ctx *ctx;
    lat_buf lat;
    int id;
} thread_arg;

void *floor_thread(void *arg);
void *naive_caller(void *arg);
void *naive_worker(void *arg);
void *notify_caller(void *arg);
void *notify_worker(void *arg);
void *syrpc_caller(void *arg);
void *syrpc_caller_put_get(void *arg);
void *syrpc_worker(void *arg);
void *syrpc_worker_async_results(void *arg);
void *syrpc_caller_no_stats(void *arg);
void *syrpc_caller_table(void *arg);
void *syrpc_worker_no_stats(void *arg);
void *syrpc_caller_rows(void *arg);
void *syrpc_caller_prepared(void *arg);
void *syrpc_worker_prepared(void *arg);
void *syrpc_worker_rows(void *arg);
void *sql_caller(void *arg);
void *sql_worker(void *arg);

/* peers.c; *_unavailable: NULL, or why the peer cannot run */
const char *redis_unavailable(void);
void redis_always(void);
void redis_everysec(void);
void *redis_caller(void *arg);
void *redis_worker(void *arg);
const char *rabbitmq_unavailable(void);
void *rabbitmq_caller(void *arg);
void *rabbitmq_worker(void *arg);

/* The idle test; prints its Markdown lines to out. */
void idle_test(const char *conninfo, int waiters, double seconds, FILE *out);

#endif
