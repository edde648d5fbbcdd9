/*
 * bench.c: the syrpc benchmark.
 *
 * For each configuration of W workers x C callers and each
 * synchronous_commit setting it measures, in the same run on the same
 * cluster, these systems, R rounds of T seconds each, taking turns:
 *   floor   single-row INSERT of a small jsonb, W + C connections
 *   naive   a hand-written RPC queue (bench/naive.sql, systems.c):
 *           SKIP LOCKED claim and LISTEN/NOTIFY wake-ups
 *   peers   what users would pick instead (-p): notify, naive with its
 *           NOTIFYs in transactions of their own (systems.c); Redis lists
 *           with appendfsync always and everysec, RabbitMQ direct
 *           reply-to (peers.c), on servers tools/bench.sh starts
 *   syrpc   echo RPC through libsyrpc, one request in flight per caller:
 *           syrpc_call; put + get; syrpc_call with async results
 * and prints RPC/s (transactions/s for the floor: the median of the
 * rounds), latency percentiles (of all rounds), CPU per RPC (the whole
 * machine's, from /proc/stat), xids and WAL bytes per RPC (PostgreSQL
 * systems), and the ratios of syrpc to the others, as a Markdown table.
 * Then, with -L, a long run of the fastest syrpc configuration (xids
 * consumed, relfrozenxid age), and the idle test (idle.c).
 * Taking turns matters on a shared VM, whose speed drifts by tens of
 * percent within minutes: every system sees the same drift.
 *
 *   bench [-T SECONDS] [-r ROUNDS] [-m 1x1,2x4,...] [-s on,off] [-i IDLE_WAITERS]
 *         [-p redis,rabbitmq,notify] [-L LONG_SECONDS] [-o FILE]
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

/* One round of one system: per RPC, except n; xids and wal < 0: not PostgreSQL. */
typedef struct round_stats {
    long n;
    double rate, cpu_us, xids, wal;
} round_stats;

typedef struct result {
    double rate, p50, p90, p99, max;
    double cpu_us, xids, wal;   /* medians of the rounds' */
    int errors;
} result;

typedef void *(*thread_fn)(void *);

/*
 * The machine's busy CPU time so far, in µs: user, nice, system, irq and
 * softirq of every CPU; not idle, iowait (a CPU waiting for a flush is
 * free for others) or steal (another VM's).  It covers the servers and
 * the bench's own threads alike, which is the point: a peer that is
 * cheap for PostgreSQL but expensive in its own server must show it.
 */
static double
cpu_busy_us(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu",
               &user, &nice, &sys, &idle, &iowait, &irq, &softirq) != 7)
        user = nice = sys = irq = softirq = 0;
    fclose(f);
    return (double) (user + nice + sys + irq + softirq) * 1e6 / sysconf(_SC_CLK_TCK);
}

/*
 * The next xid and the WAL insert position, read without consuming an
 * xid (txid_current() would assign one).  wal_from: the LSN the previous
 * call returned; then *wal is the bytes since.
 */
static void
pg_counters(PGconn *pg, char *lsn, size_t lsn_size, const char *wal_from, double *xid, double *wal)
{
    const char *values[1] = { wal_from };
    PGresult *res = PQexecParams(pg,
                                 wal_from
                                 ? "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
                                   " pg_current_wal_insert_lsn(), pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1)"
                                 : "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
                                   " pg_current_wal_insert_lsn(), 0",
                                 wal_from ? 1 : 0, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(stderr, "bench: xid and WAL counters: %s", PQerrorMessage(pg));
        exit(1);
    }
    *xid = atof(PQgetvalue(res, 0, 0));
    snprintf(lsn, lsn_size, "%s", PQgetvalue(res, 0, 1));
    *wal = atof(PQgetvalue(res, 0, 2));
    PQclear(res);
}

/*
 * Run nworkers threads of worker_fn and ncallers of caller_fn for seconds;
 * callers stop first, then workers.  Returns the throughput and the costs
 * per RPC, and adds the latencies to pool; *errors counts failed
 * operations.  pg: count xids and WAL too.
 */
static round_stats
measure(const char *label, const char *conninfo, const char *app,
        int nworkers, thread_fn worker_fn, int ncallers, thread_fn caller_fn, double seconds,
        int pg, lat_buf *pool, int *errors)
{
    run_ctx ctx;
    thread_arg *w = calloc(nworkers > 0 ? nworkers : 1, sizeof(thread_arg));
    thread_arg *c = calloc(ncallers, sizeof(thread_arg));
    pthread_t *wt = calloc(nworkers > 0 ? nworkers : 1, sizeof(pthread_t));
    pthread_t *ct = calloc(ncallers, sizeof(pthread_t));
    double t0, elapsed, cpu0, xid0 = 0, xid1 = 0, wal = 0;
    long start_done;
    round_stats st = { 0, 0, 0, -1, -1 };
    PGconn *mon = NULL;
    char lsn[32];

    memset(&ctx, 0, sizeof(ctx));
    ctx.conninfo = conninfo;
    ctx.app = app;
    if (pg) {
        mon = PQconnectdb("application_name=syrpc_bench_counters");
        if (PQstatus(mon) != CONNECTION_OK) {
            fprintf(stderr, "bench: connect: %s", PQerrorMessage(mon));
            exit(1);
        }
    }
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
    if (pg)
        pg_counters(mon, lsn, sizeof(lsn), NULL, &xid0, &wal);
    cpu0 = cpu_busy_us();
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
    /*
     * After the callers' last RPCs, which they count: the costs are of
     * the RPCs counted.  The workers, still running, have nothing to do.
     */
    st.cpu_us = cpu_busy_us() - cpu0;
    if (pg) {
        pg_counters(mon, lsn, sizeof(lsn), lsn, &xid1, &wal);
        PQfinish(mon);
    }
    ctx.stop_workers = 1;
    for (int i = 0; i < nworkers; i++) {
        pthread_kill(wt[i], SIGUSR1);
        pthread_join(wt[i], NULL);
    }
    for (int i = 0; i < ncallers; i++) {
        for (long j = 0; j < c[i].lat.n; j++)
            lat_add(pool, c[i].lat.ms[j]);
        st.n += c[i].lat.n;
        free(c[i].lat.ms);
    }
    st.rate = st.n / elapsed;
    if (st.n > 0) {
        st.cpu_us /= st.n;
        if (pg) {
            st.xids = (xid1 - xid0) / st.n;
            st.wal = wal / st.n;
        }
    }
    *errors += ctx.errors;
    fprintf(stderr, "\r  %-40s done: %8.0f /s\n", label, st.rate);
    free(w);
    free(c);
    free(wt);
    free(ct);
    return st;
}

static double
median(double *v, int n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The medians of the rounds' rates and costs, and percentiles of all their latencies. */
static result
summarise(lat_buf *pool, round_stats *rounds_st, int rounds, int errors)
{
    result r = { 0 };
    double v[rounds];

    for (int i = 0; i < rounds; i++)
        v[i] = rounds_st[i].rate;
    r.rate = median(v, rounds);
    for (int i = 0; i < rounds; i++)
        v[i] = rounds_st[i].cpu_us;
    r.cpu_us = median(v, rounds);
    for (int i = 0; i < rounds; i++)
        v[i] = rounds_st[i].xids;
    r.xids = median(v, rounds);
    for (int i = 0; i < rounds; i++)
        v[i] = rounds_st[i].wal;
    r.wal = median(v, rounds);
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

/*
 * The systems compared, in the order of the table.  worker NULL: the
 * floor, W + C connections of INSERTs.  peer: the name -p selects it by
 * (else -y selects it by key); prepare: run before each of its rounds.
 */
typedef struct bench_system {
    const char *key;
    const char *name;
    thread_fn worker;
    thread_fn caller;
    int pg;                     /* in PostgreSQL: count xids and WAL */
    int syrpc;                  /* a syrpc row, with ratios to the others */
    const char *peer;
    void (*prepare)(void);
} bench_system;

enum { SYS_FLOOR, SYS_NAIVE, SYS_NOTIFY, SYS_REDIS_ALWAYS, SYS_REDIS_EVERYSEC, SYS_RABBITMQ };

static const bench_system all_systems[] = {
    [SYS_FLOOR] = { "floor", "floor", NULL, floor_thread, 1, 0, NULL, NULL },
    [SYS_NAIVE] = { "naive", "naive", naive_worker, naive_caller, 1, 0, NULL, NULL },
    [SYS_NOTIFY] = { "notify", "notify (naive, NOTIFY apart)", notify_worker, notify_caller, 1, 0, "notify", NULL },
    [SYS_REDIS_ALWAYS] = { "redis-always", "redis: appendfsync always", redis_worker, redis_caller, 0, 0, "redis",
                           redis_always },
    [SYS_REDIS_EVERYSEC] = { "redis-everysec", "redis: appendfsync everysec", redis_worker, redis_caller, 0, 0,
                             "redis", redis_everysec },
    [SYS_RABBITMQ] = { "rabbitmq", "rabbitmq: direct reply-to", rabbitmq_worker, rabbitmq_caller, 0, 0,
                       "rabbitmq", NULL },
    { "call", "syrpc: call", syrpc_worker, syrpc_caller, 1, 1, NULL, NULL },
    { "table", "syrpc: call, table path", syrpc_worker, syrpc_caller_table, 1, 1, NULL, NULL },
    { "putget", "syrpc: put + get", syrpc_worker, syrpc_caller_put_get, 1, 1, NULL, NULL },
    { "prepared", "syrpc: put + get, prepared", syrpc_worker_prepared, syrpc_caller_prepared, 1, 1, NULL, NULL },
    { "rows", "syrpc: put + get, leases in rows", syrpc_worker_rows, syrpc_caller_rows, 1, 1, NULL, NULL },
    { "sql", "syrpc: plain SQL API", sql_worker, sql_caller, 1, 1, NULL, NULL },
    { "async", "syrpc: call, async results", syrpc_worker_async_results, syrpc_caller, 1, 1, NULL, NULL },
    { "nostats", "syrpc: call, stats off", syrpc_worker_no_stats, syrpc_caller_no_stats, 1, 1, NULL, NULL },
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

/* Whether the comma-separated list has the item (not merely a substring of one). */
static int
list_has(const char *list, const char *item)
{
    size_t len = strlen(item);

    for (const char *p = list; (p = strstr(p, item)) != NULL; p += len)
        if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
            return 1;
    return 0;
}

static void
row(FILE *out, const char *config, const char *sync, const char *system, result r, int pg, const char *ratio)
{
    char xids[32] = "-", wal[32] = "-";

    if (pg) {
        snprintf(xids, sizeof(xids), "%.2f", r.xids);
        snprintf(wal, sizeof(wal), "%.0f", r.wal);
    }
    fprintf(out, "| %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f | %s | %s | %s |%s\n",
            config, sync, system, r.rate, r.p50, r.p90, r.p99, r.max, r.cpu_us, xids, wal, ratio,
            r.errors ? " errors!" : "");
}

/* syrpc's ratios to the systems that ran; "" for a run without them */
static void
ratios(char *buf, size_t size, const result *res, const int *on, int s)
{
    static const struct { int sys; const char *name; } to[] = {
        { SYS_FLOOR, "floor" }, { SYS_NAIVE, "naive" },
        { SYS_RABBITMQ, "rabbitmq" }, { SYS_REDIS_ALWAYS, "redis always" },
    };
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
        if (!on[to[i].sys] || res[to[i].sys].rate <= 0 || len + 2 >= size)
            continue;
        len += snprintf(buf + len, size - len, "%s%.2fx %s", len ? ", " : "**",
                        res[s].rate / res[to[i].sys].rate, to[i].name);
    }
    if (len > 0 && len + 2 < size)
        strcat(buf, "**");
}

/*
 * The long run: the fastest syrpc configuration for seconds.  What a
 * queue costs in xids decides how often the tables must be frozen; the
 * age of their oldest relfrozenxid shows whether autovacuum keeps up.
 */
static void
long_run(FILE *out, int sys, const char *conninfo, const char *sync, int nw, int nc, double seconds)
{
    lat_buf pool = { 0 };
    int errors = 0;
    char label[80], *age;
    round_stats st;

    snprintf(label, sizeof(label), "long run: %s %dx%d sync=%s", all_systems[sys].name, nw, nc, sync);
    exec_or_die("", "TRUNCATE floor_insert, naive_request, naive_result");
    st = measure(label, conninfo, "bench", nw, all_systems[sys].worker, nc, all_systems[sys].caller, seconds,
                 1, &pool, &errors);
    age = query_value("SELECT max(age(c.relfrozenxid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                      " WHERE n.nspname = 'syrpc' AND c.relkind = 'r'"
                      "   AND (c.relname IN ('request', 'app') OR c.relname LIKE 'result%')");
    fprintf(out, "\nLong run, %s at %dx%d, sync commit %s (the fastest syrpc configuration above), %g s:\n\n",
            all_systems[sys].name, nw, nc, sync, seconds);
    fprintf(out, "- %ld RPCs (%.0f/s), %.0f xids consumed (%.2f per RPC), %.0f WAL bytes per RPC, %.0f CPU µs per RPC%s\n",
            st.n, st.rate, st.xids * st.n, st.xids, st.wal, st.cpu_us, errors ? ", errors!" : "");
    fprintf(out, "- at the end, the oldest relfrozenxid of the queue tables (syrpc.request, syrpc.result*,\n"
            "  syrpc.app) is %s xids old\n", age);
    free(pool.ms);
    free(age);
}

int
main(int argc, char **argv)
{
    double seconds = 3, long_seconds = 0;
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
    const char *systems = "floor,naive,call,table,putget,prepared,rows,sql,async";
    const char *peers = "redis,rabbitmq,notify";
    static const char *const known_peers[] = { "notify", "redis", "rabbitmq" };
    char peer_on[3] = { 0 };
    char skipped[512] = "";
    /* the fastest syrpc configuration, for the long run */
    double best_rate = 0;
    int best_sys = -1, best_nw = 0, best_nc = 0;
    char best_sync[8] = "", best_conninfo[128] = "";

    while ((opt = getopt(argc, argv, "T:r:m:s:i:o:n:y:p:L:")) != -1) {
        switch (opt) {
        case 'T': seconds = atof(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'm': free(matrix); matrix = strdup(optarg); break;
        case 's': free(syncs); syncs = strdup(optarg); break;
        case 'i': idle_waiters = atoi(optarg); break;
        case 'o': outfile = optarg; break;
        case 'n': naive_sql = optarg; break;
        case 'y': systems = optarg; break;
        case 'p': peers = optarg; break;
        case 'L': long_seconds = atof(optarg); break;
        default:
            fprintf(stderr, "usage: bench [-T SECONDS] [-r ROUNDS] [-m 1x1,2x4,...] [-s on,off] [-i IDLE_WAITERS]"
                    " [-y floor,naive,call,table,putget,prepared,rows,sql,async,nostats] [-p redis,rabbitmq,notify|none] [-L LONG_SECONDS]"
                    " [-o FILE] -n naive.sql\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "bench: -r takes 1 to %d rounds\n", MAX_ROUNDS);
        return 2;
    }
    /* a peer that cannot run is skipped, with a line that says why: never a failed run */
    for (int i = 0; i < 3; i++) {
        const char *why = NULL;

        if (!list_has(peers, known_peers[i]))
            continue;
        if (strcmp(known_peers[i], "redis") == 0)
            why = redis_unavailable();
        else if (strcmp(known_peers[i], "rabbitmq") == 0)
            why = rabbitmq_unavailable();
        peer_on[i] = why == NULL;
        if (why) {
            fprintf(stderr, "bench: skipping %s: %s\n", known_peers[i], why);
            snprintf(skipped + strlen(skipped), sizeof(skipped) - strlen(skipped),
                     "- skipped: %s (%s)\n", known_peers[i], why);
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
    fprintf(out, "- %s\n- %ld CPUs; shared_preload_libraries = '%s'; %d rounds of %g s per system,\n"
            "  taking turns; RPC/s and the costs per RPC are the median round's, latencies are of all rounds\n",
            pgversion, sysconf(_SC_NPROCESSORS_ONLN), saved, rounds, seconds);
    fprintf(out, "- floor: single-row INSERT of a small jsonb on W+C connections (tps); naive: two tables,\n"
            "  SKIP LOCKED claim, LISTEN/NOTIFY (bench/naive.sql); syrpc: echo through libsyrpc, callers\n"
            "  using syrpc_call (one CALL syrpc_call per RPC) or syrpc_put_request + syrpc_get_result;\n"
            "  with the library preloaded syrpc_call hands requests and answers over in shared memory;\n"
            "  table path: callers SET syrpc.memory_calls = off (every call writes its request);\n"
            "  async results: workers SET syrpc.async_results = on; stats off: callers and workers\n"
            "  SET syrpc.track_stats = off (what syrpc_stats_latency's counting costs);\n"
            "  prepared: callers and workers prepare their statements (syrpc_set_prepared).\n"
            "  One request in flight per caller; latencies in ms.\n");
    if (peer_on[0])
        fprintf(out, "- notify: naive with each NOTIFY in a transaction of its own, after the put's commit.\n");
    if (peer_on[1])
        fprintf(out, "- redis: lists, callers LPUSH a request naming their reply key and BLPOP it, workers\n"
                "  BRPOP and LPUSH the reply; appendonly yes, appendfsync always (fsync before each\n"
                "  reply, as synchronous_commit = on) or everysec.\n");
    if (peer_on[2])
        fprintf(out, "- rabbitmq: direct reply-to (amq.rabbitmq.reply-to), transient queue and messages (nothing\n"
                "  reaches the disk), workers with prefetch 1 and acks.\n");
    if (peer_on[1] || peer_on[2])
        fprintf(out, "- synchronous_commit does not apply to redis and rabbitmq: they run in every sync commit\n"
                "  block, so that each block takes turns with them.\n");
    fprintf(out, "- CPU µs/RPC: the whole machine's busy time (user+nice+system+irq+softirq in /proc/stat)\n"
            "  over the measured window, per RPC: every server (PostgreSQL, Redis, RabbitMQ) and the\n"
            "  bench's own client threads.  xids/RPC and WAL B/RPC: PostgreSQL systems only (next xid\n"
            "  from pg_current_snapshot() and pg_current_wal_insert_lsn(), before and after the window).\n");
    fprintf(out, "%s\n", skipped);
    fprintf(out, "| W x C | sync commit | system | RPC/s | p50 | p90 | p99 | max | CPU µs/RPC | xids/RPC | WAL B/RPC | syrpc ratio |\n");
    fprintf(out, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    fflush(out);
    free(pgversion);
    free(saved);

    for (char *sv, *sync = strtok_r(syncs, ",", &sv); sync; sync = strtok_r(NULL, ",", &sv)) {
        char conninfo[128], *mcopy = strdup(matrix);

        snprintf(conninfo, sizeof(conninfo), "options='-c synchronous_commit=%s' application_name=syrpc_bench", sync);
        for (char *mv, *cfg = strtok_r(mcopy, ",", &mv); cfg; cfg = strtok_r(NULL, ",", &mv)) {
            int nw, nc;
            char label[80], config[32], ratio[160];
            round_stats st[NSYSTEMS][MAX_ROUNDS];
            lat_buf pool[NSYSTEMS];
            int errors[NSYSTEMS], on[NSYSTEMS];
            result res[NSYSTEMS];

            if (sscanf(cfg, "%dx%d", &nw, &nc) != 2)
                continue;
            snprintf(config, sizeof(config), "%dx%d", nw, nc);
            memset(pool, 0, sizeof(pool));
            memset(errors, 0, sizeof(errors));
            memset(res, 0, sizeof(res));
            for (int s = 0; s < NSYSTEMS; s++) {
                const bench_system *sys = &all_systems[s];
                int wanted = sys->peer == NULL ? list_has(systems, sys->key) : 0;

                for (int i = 0; i < 3; i++)
                    if (sys->peer && strcmp(sys->peer, known_peers[i]) == 0)
                        wanted = peer_on[i];
                /* with synchronous_commit off, async results change nothing */
                on[s] = wanted && !(strcmp(sys->key, "async") == 0 && strcmp(sync, "off") == 0);
            }
            /* rounds of every system in turn, so that drift hits them all alike */
            for (int r = 0; r < rounds; r++) {
                exec_or_die("", "TRUNCATE floor_insert, naive_request, naive_result");
                for (int s = 0; s < NSYSTEMS; s++) {
                    const bench_system *sys = &all_systems[s];

                    if (!on[s])
                        continue;
                    if (sys->prepare)
                        sys->prepare();
                    snprintf(label, sizeof(label), "%s %s sync=%s, round %d", sys->name, config, sync, r + 1);
                    st[s][r] = sys->worker == NULL
                        ? measure(label, conninfo, NULL, 0, NULL, nw + nc, sys->caller, seconds,
                                  sys->pg, &pool[s], &errors[s])
                        : measure(label, conninfo, "bench", nw, sys->worker, nc, sys->caller, seconds,
                                  sys->pg, &pool[s], &errors[s]);
                }
            }
            for (int s = 0; s < NSYSTEMS; s++)
                if (on[s])
                    res[s] = summarise(&pool[s], st[s], rounds, errors[s]);
            for (int s = 0; s < NSYSTEMS; s++) {
                if (!on[s])
                    continue;
                if (!all_systems[s].syrpc) {
                    row(out, config, sync, all_systems[s].name, res[s], all_systems[s].pg, "");
                    continue;
                }
                if (res[s].rate > best_rate) {
                    best_rate = res[s].rate;
                    best_sys = s;
                    best_nw = nw;
                    best_nc = nc;
                    snprintf(best_sync, sizeof(best_sync), "%s", sync);
                    snprintf(best_conninfo, sizeof(best_conninfo), "%s", conninfo);
                }
                ratios(ratio, sizeof(ratio), res, on, s);
                snprintf(label, sizeof(label), "**%s**", all_systems[s].name);
                row(out, config, sync, label, res[s], 1, ratio);
            }
            fflush(out);
        }
        free(mcopy);
    }
    if (long_seconds > 0 && best_sys >= 0)
        long_run(out, best_sys, best_conninfo, best_sync, best_nw, best_nc, long_seconds);
    if (idle_waiters > 0)
        idle_test("application_name=syrpc_idle", idle_waiters, 10, out);
    if (out != stdout)
        fclose(out);
    free(matrix);
    free(syncs);
    return 0;
}
