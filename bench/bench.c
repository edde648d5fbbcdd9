/*
 * bench.c: the syrpc benchmark.
 *
 * For each configuration of W workers x C callers and each
 * synchronous_commit setting it measures, in the same run on the same
 * cluster, these systems, R rounds of T seconds each, taking turns:
 *   floor   single-row INSERT of a small jsonb, W + C connections
 *   naive   a hand-written RPC queue (bench/naive.sql, systems.c):
 *           SKIP LOCKED claim and LISTEN/NOTIFY wake-ups
 *   syrpc   echo RPC through libsyrpc, one request in flight per caller:
 *           syrpc_call; put + get; syrpc_call with async results
 * and prints RPC/s (transactions/s for the floor: the median of the
 * rounds), latency percentiles (of all rounds), and the ratios syrpc/floor
 * and syrpc/naive, as a Markdown table.  Then the idle test (idle.c).
 * Taking turns matters on a shared VM, whose speed drifts by tens of
 * percent within minutes: every system sees the same drift.
 *
 *   bench [-T SECONDS] [-r ROUNDS] [-m 1x1,2x4,...] [-s on,off] [-i IDLE_WAITERS] [-o FILE]
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
 * callers stop first, then workers.  Returns the throughput and adds the
 * latencies to pool; *errors counts failed operations.
 */
static double
measure(const char *label, const char *conninfo, const char *app,
        int nworkers, thread_fn worker_fn, int ncallers, thread_fn caller_fn, double seconds,
        lat_buf *pool, int *errors)
{
    run_ctx ctx;
    thread_arg *w = calloc(nworkers > 0 ? nworkers : 1, sizeof(thread_arg));
    thread_arg *c = calloc(ncallers, sizeof(thread_arg));
    pthread_t *wt = calloc(nworkers > 0 ? nworkers : 1, sizeof(pthread_t));
    pthread_t *ct = calloc(ncallers, sizeof(pthread_t));
    double t0, elapsed, rate;
    long n = 0;
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
            lat_add(pool, c[i].lat.ms[j]);
        n += c[i].lat.n;
        free(c[i].lat.ms);
    }
    rate = n / elapsed;
    *errors += ctx.errors;
    fprintf(stderr, "\r  %-40s done: %8.0f /s\n", label, rate);
    free(w);
    free(c);
    free(wt);
    free(ct);
    return rate;
}

/* The median of the rounds' rates, and percentiles of all their latencies. */
static result
summarise(lat_buf *pool, double *rates, int rounds, int errors)
{
    result r = { 0 };

    qsort(rates, rounds, sizeof(double), cmp_double);
    r.rate = rounds % 2 ? rates[rounds / 2] : (rates[rounds / 2 - 1] + rates[rounds / 2]) / 2;
    qsort(pool->ms, pool->n, sizeof(double), cmp_double);
    if (pool->n > 0) {
        r.p50 = pool->ms[pool->n / 2];
        r.p90 = pool->ms[(long) (pool->n * 0.90)];
        r.p99 = pool->ms[(long) (pool->n * 0.99)];
        r.max = pool->ms[pool->n - 1];
    }
    r.errors = errors;
    free(pool->ms);
    memset(pool, 0, sizeof(*pool));
    return r;
}

/* The systems compared; worker NULL: the floor, W + C connections of INSERTs. */
typedef struct bench_system {
    const char *key;
    const char *name;
    thread_fn worker;
    thread_fn caller;
} bench_system;

static const bench_system all_systems[] = {
    { "floor", "floor", NULL, floor_thread },
    { "naive", "naive", naive_worker, naive_caller },
    { "call", "syrpc: call", syrpc_worker, syrpc_caller },
    { "putget", "syrpc: put + get", syrpc_worker, syrpc_caller_put_get },
    { "async", "syrpc: call, async results", syrpc_worker_async_results, syrpc_caller },
};
#define NSYSTEMS ((int) (sizeof(all_systems) / sizeof(all_systems[0])))
#define MAX_ROUNDS 9

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
    double seconds = 3;
    int rounds = 3;
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

    while ((opt = getopt(argc, argv, "T:r:m:s:i:o:n:y:")) != -1) {
        switch (opt) {
        case 'T': seconds = atof(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'm': free(matrix); matrix = strdup(optarg); break;
        case 's': free(syncs); syncs = strdup(optarg); break;
        case 'i': idle_waiters = atoi(optarg); break;
        case 'o': outfile = optarg; break;
        case 'n': naive_sql = optarg; break;
        case 'y': systems = optarg; break;
        default:
            fprintf(stderr, "usage: bench [-T SECONDS] [-r ROUNDS] [-m 1x1,2x4,...] [-s on,off] [-i IDLE_WAITERS] [-y floor,naive,call,putget,async] [-o FILE] -n naive.sql\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "bench: -r takes 1 to %d rounds\n", MAX_ROUNDS);
        return 2;
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
    fprintf(out, "- %s\n- %ld CPUs; shared_preload_libraries = '%s'; %d rounds of %g s per system,\n"
            "  taking turns; RPC/s is the median round, latencies are of all rounds\n",
            pgversion, sysconf(_SC_NPROCESSORS_ONLN), saved, rounds, seconds);
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
            char label[80], config[32], ratio[64];
            double rates[NSYSTEMS][MAX_ROUNDS];
            lat_buf pool[NSYSTEMS];
            int errors[NSYSTEMS], on[NSYSTEMS];
            result res[NSYSTEMS];

            if (sscanf(cfg, "%dx%d", &nw, &nc) != 2)
                continue;
            snprintf(config, sizeof(config), "%dx%d", nw, nc);
            memset(pool, 0, sizeof(pool));
            memset(errors, 0, sizeof(errors));
            memset(res, 0, sizeof(res));
            for (int s = 0; s < NSYSTEMS; s++)
                /* with synchronous_commit off, async results change nothing */
                on[s] = strstr(systems, all_systems[s].key) != NULL &&
                    !(strcmp(all_systems[s].key, "async") == 0 && strcmp(sync, "off") == 0);
            /* rounds of every system in turn, so that drift hits them all alike */
            for (int r = 0; r < rounds; r++) {
                exec_or_die("", "TRUNCATE floor_insert, naive_request, naive_result");
                for (int s = 0; s < NSYSTEMS; s++) {
                    const bench_system *sys = &all_systems[s];

                    if (!on[s])
                        continue;
                    snprintf(label, sizeof(label), "%s %s sync=%s, round %d", sys->name, config, sync, r + 1);
                    rates[s][r] = sys->worker == NULL
                        ? measure(label, conninfo, NULL, 0, NULL, nw + nc, sys->caller, seconds,
                                  &pool[s], &errors[s])
                        : measure(label, conninfo, "bench", nw, sys->worker, nc, sys->caller, seconds,
                                  &pool[s], &errors[s]);
                }
            }
            for (int s = 0; s < NSYSTEMS; s++) {
                if (!on[s])
                    continue;
                res[s] = summarise(&pool[s], rates[s], rounds, errors[s]);
                if (s < 2) {
                    row(out, config, sync, all_systems[s].name, res[s], "");
                    continue;
                }
                snprintf(ratio, sizeof(ratio), "**%.2fx floor, %.2fx naive**",
                         res[0].rate > 0 ? res[s].rate / res[0].rate : 0,
                         res[1].rate > 0 ? res[s].rate / res[1].rate : 0);
                snprintf(label, sizeof(label), "**%s**", all_systems[s].name);
                row(out, config, sync, label, res[s], ratio);
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
