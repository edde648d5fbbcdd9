/*
 * bench.c: the syrpc benchmark.
 *
 * For each configuration of W workers x C callers and each
 * synchronous_commit setting it measures, in the same run on the same
 * cluster, three systems for T seconds each:
 *   floor   single-row INSERT of a small jsonb, W + C connections
 *   naive   a hand-written RPC queue (bench/naive.sql, systems.c):
 *           SKIP LOCKED claim and LISTEN/NOTIFY wake-ups
 *   syrpc   echo RPC through libsyrpc, one request in flight per caller
 * and prints RPC/s (transactions/s for the floor), latency percentiles, and
 * the ratios syrpc/floor and syrpc/naive, as a Markdown table.  Then the
 * idle test (idle.c).
 *
 *   bench [-T SECONDS] [-m 1x1,2x4,...] [-s on,off] [-i IDLE_WAITERS] [-o FILE]
 *
 * The connection comes from libpq's environment.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "bench.h"

double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

void
lat_add(lat_buf *b, double ms)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4096;
        b->ms = realloc(b->ms, b->cap * sizeof(double));
    }
    b->ms[b->n++] = ms;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

typedef struct result {
    double rate, p50, p90, p99, max;
    int errors;
} result;

typedef void *(*thread_fn)(void *);

/*
 * Run nworkers threads of worker_fn and ncallers of caller_fn for seconds;
 * callers stop first, then workers.  Returns throughput and percentiles.
 */
static result
measure(const char *label, const char *conninfo, const char *app,
        int nworkers, thread_fn worker_fn, int ncallers, thread_fn caller_fn, double seconds)
{
    run_ctx ctx;
    thread_arg *w = calloc(nworkers > 0 ? nworkers : 1, sizeof(thread_arg));
    thread_arg *c = calloc(ncallers, sizeof(thread_arg));
    pthread_t *wt = calloc(nworkers > 0 ? nworkers : 1, sizeof(pthread_t));
    pthread_t *ct = calloc(ncallers, sizeof(pthread_t));
    lat_buf all = { 0 };
    result r = { 0 };
    double t0, elapsed;
    long start_done;

    memset(&ctx, 0, sizeof(ctx));
    ctx.conninfo = conninfo;
    ctx.app = app;
    for (int i = 0; i < nworkers; i++) {
        w[i].ctx = &ctx;
        w[i].id = i;
        pthread_create(&wt[i], NULL, worker_fn, &w[i]);
    }
    for (int i = 0; i < ncallers; i++) {
        c[i].ctx = &ctx;
        c[i].id = i;
        pthread_create(&ct[i], NULL, caller_fn, &c[i]);
    }
    /* a short warm-up, not counted: connections, plans, caches */
    usleep(500000);
    for (int i = 0; i < ncallers; i++)
        c[i].lat.n = 0;
    start_done = ctx.done;
    t0 = now_s();
    while ((elapsed = now_s() - t0) < seconds) {
        usleep(1000000);
        fprintf(stderr, "\r  %-32s %4.1fs %8.0f /s", label, now_s() - t0,
                (ctx.done - start_done) / (now_s() - t0));
    }
    ctx.stop_callers = 1;
    elapsed = now_s() - t0;
    for (int i = 0; i < ncallers; i++)
        pthread_join(ct[i], NULL);
    ctx.stop_workers = 1;
    for (int i = 0; i < nworkers; i++) {
        pthread_kill(wt[i], SIGUSR1);
        pthread_join(wt[i], NULL);
    }
    for (int i = 0; i < ncallers; i++) {
        for (long j = 0; j < c[i].lat.n; j++)
            lat_add(&all, c[i].lat.ms[j]);
        free(c[i].lat.ms);
    }
    qsort(all.ms, all.n, sizeof(double), cmp_double);
    r.rate = all.n / elapsed;
    if (all.n > 0) {
        r.p50 = all.ms[all.n / 2];
        r.p90 = all.ms[(long) (all.n * 0.90)];
        r.p99 = all.ms[(long) (all.n * 0.99)];
        r.max = all.ms[all.n - 1];
    }
    r.errors = ctx.errors;
    fprintf(stderr, "\r  %-32s done: %8.0f /s, p50 %.2f ms, p99 %.2f ms\n", label, r.rate, r.p50, r.p99);
    free(all.ms);
    free(w);
    free(c);
    free(wt);
    free(ct);
    return r;
}

static void on_usr1(int sig) { (void) sig; }

static void
exec_or_die(const char *conninfo, const char *sql)
{
    PGconn *pg = PQconnectdb(conninfo);
    PGresult *res = PQexec(pg, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench: %s: %s", sql, PQerrorMessage(pg));
        exit(1);
    }
    PQclear(res);
    PQfinish(pg);
}

static char *
query_value(const char *sql)
{
    PGconn *pg = PQconnectdb("");
    PGresult *res = PQexec(pg, sql);
    char *v = strdup(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) ? PQgetvalue(res, 0, 0) : "?");

    PQclear(res);
    PQfinish(pg);
    return v;
}

static void
row(FILE *out, const char *config, const char *sync, const char *system, result r, const char *ratio)
{
    fprintf(out, "| %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s |%s\n",
            config, sync, system, r.rate, r.p50, r.p90, r.p99, r.max, ratio,
            r.errors ? " errors!" : "");
}

int
main(int argc, char **argv)
{
    double seconds = 8;
    char *matrix = strdup("1x1,2x4,4x16,8x64");
    char *syncs = strdup("on,off");
    int idle_waiters = 1000;
    const char *outfile = NULL;
    char *naive_sql = NULL;
    FILE *out;
    struct sigaction sa;
    int opt;
    time_t now = time(NULL);
    char date[64];
    char *pgversion, *saved;

    const char *systems = "floor,naive,call,putget,async";

    while ((opt = getopt(argc, argv, "T:m:s:i:o:n:y:")) != -1) {
        switch (opt) {
        case 'T': seconds = atof(optarg); break;
        case 'm': free(matrix); matrix = strdup(optarg); break;
        case 's': free(syncs); syncs = strdup(optarg); break;
        case 'i': idle_waiters = atoi(optarg); break;
        case 'o': outfile = optarg; break;
        case 'n': naive_sql = optarg; break;
        case 'y': systems = optarg; break;
        default:
            fprintf(stderr, "usage: bench [-T SECONDS] [-m 1x1,2x4,...] [-s on,off] [-i IDLE_WAITERS] [-y floor,naive,call,putget,async] [-o FILE] -n naive.sql\n");
            return 2;
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    out = outfile ? fopen(outfile, "w") : stdout;
    if (out == NULL) {
        perror(outfile);
        return 1;
    }
    if (naive_sql) {
        char cmd[512];

        snprintf(cmd, sizeof(cmd), "psql -qX -v ON_ERROR_STOP=1 -f %s >/dev/null", naive_sql);
        if (system(cmd) != 0)
            return 1;
    }
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
    pgversion = query_value("SELECT version()");
    saved = query_value("SELECT current_setting('shared_preload_libraries')");
    fprintf(out, "## syrpc benchmark, %s\n\n", date);
    fprintf(out, "- %s\n- %ld CPUs; shared_preload_libraries = '%s'; %g s per measurement\n",
            pgversion, sysconf(_SC_NPROCESSORS_ONLN), saved, seconds);
    fprintf(out, "- floor: single-row INSERT of a small jsonb on W+C connections (tps); naive: two tables,\n"
            "  SKIP LOCKED claim, LISTEN/NOTIFY (bench/naive.sql); syrpc: echo through libsyrpc, callers\n"
            "  using syrpc_call (one CALL syrpc_call per RPC) or syrpc_put_request + syrpc_get_result;\n"
            "  async results: workers SET syrpc.async_results = on.\n"
            "  One request in flight per caller; latencies in ms.\n\n");
    fprintf(out, "| W x C | sync commit | system | RPC/s | p50 | p90 | p99 | max | syrpc ratio |\n");
    fprintf(out, "|---|---|---|---:|---:|---:|---:|---:|---|\n");
    fflush(out);
    free(pgversion);
    free(saved);

    for (char *sv, *sync = strtok_r(syncs, ",", &sv); sync; sync = strtok_r(NULL, ",", &sv)) {
        char conninfo[128], *mcopy = strdup(matrix);

        snprintf(conninfo, sizeof(conninfo), "options='-c synchronous_commit=%s' application_name=syrpc_bench", sync);
        for (char *mv, *cfg = strtok_r(mcopy, ",", &mv); cfg; cfg = strtok_r(NULL, ",", &mv)) {
            int nw, nc;
            char label[64], config[32], ratio[64];
            result fl, nv, sy;

            if (sscanf(cfg, "%dx%d", &nw, &nc) != 2)
                continue;
            snprintf(config, sizeof(config), "%dx%d", nw, nc);
            exec_or_die("", "TRUNCATE floor_insert, naive_request, naive_result");
            memset(&fl, 0, sizeof(fl));
            nv = sy = fl;
            snprintf(label, sizeof(label), "floor %s sync=%s", config, sync);
            if (strstr(systems, "floor"))
                fl = measure(label, conninfo, NULL, 0, NULL, nw + nc, floor_thread, seconds);
            snprintf(label, sizeof(label), "naive %s sync=%s", config, sync);
            if (strstr(systems, "naive"))
                nv = measure(label, conninfo, NULL, nw, naive_worker, nc, naive_caller, seconds);
            row(out, config, sync, "floor", fl, "");
            row(out, config, sync, "naive", nv, "");
            for (int v = 0; v < 3; v++) {
                static const char *const names[] = {
                    "syrpc: call", "syrpc: put + get", "syrpc: call, async results"
                };
                static const char *const keys[] = { "call", "putget", "async" };
                thread_fn workers = v == 2 ? syrpc_worker_async_results : syrpc_worker;
                thread_fn callers = v == 1 ? syrpc_caller_put_get : syrpc_caller;

                /* with synchronous_commit off, async results change nothing */
                if (!strstr(systems, keys[v]) || (v == 2 && strcmp(sync, "off") == 0))
                    continue;
                snprintf(label, sizeof(label), "%s %s sync=%s", names[v], config, sync);
                sy = measure(label, conninfo, "bench", nw, workers, nc, callers, seconds);
                snprintf(ratio, sizeof(ratio), "**%.2fx floor, %.2fx naive**",
                         fl.rate > 0 ? sy.rate / fl.rate : 0, nv.rate > 0 ? sy.rate / nv.rate : 0);
                snprintf(label, sizeof(label), "**%s**", names[v]);
                row(out, config, sync, label, sy, ratio);
            }
            fflush(out);
        }
        free(mcopy);
    }
    if (idle_waiters > 0)
        idle_test("application_name=syrpc_idle", idle_waiters, 10, out);
    if (out != stdout)
        fclose(out);
    free(matrix);
    free(syncs);
    return 0;
}
