/*
 * bench.h: shared by the benchmark's files.
 *   bench.c   options, the run matrix, timing, percentiles, the report
 *   systems.c the systems measured: the INSERT floor, the naive
 *             SKIP LOCKED + LISTEN/NOTIFY baseline, and syrpc three ways
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
void *syrpc_caller(void *arg);
void *syrpc_caller_put_get(void *arg);
void *syrpc_worker(void *arg);
void *syrpc_worker_async_results(void *arg);

/* The idle test; prints its Markdown lines to out. */
void idle_test(const char *conninfo, int waiters, double seconds, FILE *out);

#endif
