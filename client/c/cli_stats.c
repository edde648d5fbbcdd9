/*
 * cli_stats.c: syrpc stats [--watch] and syrpc metrics, which read the
 * views syrpc_stats and syrpc_stats_latency with plain libpq.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "syrpc.h"
#include "cli.h"

static const char *usage_stats =
    "Usage: syrpc stats [APP] [--watch [SECONDS]] [--count N]\n"
    "\n"
    "Print syrpc_stats: per app, requests queued, in flight and failed, the\n"
    "oldest queued request's age, results waiting to be fetched, and workers\n"
    "waiting for requests (\"-\": none, or not in this version of syrpc).\n"
    "  --watch [SECONDS]  print it again every SECONDS (default 2, 0.1 to 86400)\n"
    "                     until interrupted, with requests and answers per second\n"
    "                     since the last time (from syrpc_stats_latency; \"-\" the\n"
    "                     first time, or without counters); on a terminal the\n"
    "                     screen is cleared each time, else blocks are separated\n"
    "                     by a blank line.  An argument after --watch that starts\n"
    "                     like a number is SECONDS.\n"
    "  --count N          with --watch: stop after N (1 or more) tables\n";

static const char *usage_metrics =
    "Usage: syrpc metrics [APP]\n"
    "\n"
    "Print syrpc_stats and syrpc_stats_latency (syrpc 1.4 and later) in\n"
    "Prometheus's text exposition format, for node_exporter's textfile\n"
    "collector or a sidecar: gauges syrpc_requests_queued, _in_flight, _failed,\n"
    "syrpc_oldest_queued_age_seconds, syrpc_results_waiting,\n"
    "syrpc_workers_waiting; counters syrpc_requests_total, syrpc_answered_total,\n"
    "syrpc_failed_total, syrpc_expired_total; gauges syrpc_queue_wait_seconds,\n"
    "syrpc_service_seconds, syrpc_round_trip_seconds (quantile 0.5 and 0.99 over\n"
    "syrpc_latency_window_seconds).  Each labelled app=\"APP\"; a NULL value is\n"
    "left out.  Nothing is printed on an error (exit code 1 or 4).\n";

/*
 * stats and metrics read the views with plain libpq: they need no app, and
 * must work against every version of the extension.
 */
typedef struct views {
    PGconn     *pg;
    char       *schema;         /* the extension's schema, quoted (PQescapeIdentifier) */
    int         has_waiting;    /* syrpc_stats has workers_waiting (1.1 and later) */
    int         has_latency;    /* there is a syrpc_stats_latency */
} views;

static void
views_close(views *v)
{
    PQfreemem(v->schema);
    PQfinish(v->pg);
    v->schema = NULL;
    v->pg = NULL;
}

static void
server_error(PGresult *res)
{
    if (res == NULL)
        fprintf(stderr, "syrpc: out of memory\n");
    else
        fprintf(stderr, "syrpc: server error: %s", PQresultErrorMessage(res));
}

/*
 * Look up, on v->pg, the extension's schema (it need not be on
 * search_path) and which of the views' columns this version has.  Asked
 * again after a reconnect: ALTER EXTENSION may have run meanwhile.
 */
static int
views_describe(views *v)
{
    PGresult   *res;
    const char *sql =
        "SELECT n.nspname,"
        "       EXISTS (SELECT FROM pg_catalog.pg_attribute a"
        "                WHERE a.attrelid = pg_catalog.to_regclass(pg_catalog.quote_ident(n.nspname)"
        "                                                          || '.syrpc_stats')"
        "                  AND a.attname = 'workers_waiting' AND NOT a.attisdropped),"
        "       pg_catalog.to_regclass(pg_catalog.quote_ident(n.nspname) || '.syrpc_stats_latency')"
        "         IS NOT NULL"
        "  FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'syrpc'";

    PQfreemem(v->schema);
    v->schema = NULL;
    res = PQexec(v->pg, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            server_error(res);
        else
            fprintf(stderr, "syrpc: server error: the syrpc extension is not installed in database \"%s\"\n"
                    "HINT: Run CREATE EXTENSION syrpc in that database.\n", PQdb(v->pg));
        PQclear(res);
        return PQstatus(v->pg) == CONNECTION_OK ? EXIT_ERROR : EXIT_CONNECTION;
    }
    v->schema = PQescapeIdentifier(v->pg, PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)));
    v->has_waiting = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    v->has_latency = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    PQclear(res);
    if (v->schema == NULL) {
        fprintf(stderr, "syrpc: out of memory\n");
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

static int
views_open(const char *conninfo, views *v)
{
    memset(v, 0, sizeof(*v));
    v->pg = PQconnectdb(conninfo);
    if (PQstatus(v->pg) != CONNECTION_OK) {
        fprintf(stderr, "syrpc: connection error: %s", PQerrorMessage(v->pg));
        views_close(v);
        return EXIT_CONNECTION;
    }
    return views_describe(v);
}

/*
 * The rows of syrpc_stats (of APP, or of every app), with the counters of
 * syrpc_stats_latency when counters is set: its columns, NULL where the
 * view or the column is missing, so that callers read one shape.
 */
enum {
    COL_APP, COL_QUEUED, COL_IN_FLIGHT, COL_FAILED, COL_OLDEST_S, COL_RESULTS_WAITING,
    COL_WORKERS_WAITING, COL_REQUESTS_TOTAL, COL_ANSWERED_TOTAL, NCOLS
};

static PGresult *
query_stats(views *v, const char *app)
{
    char        sql[1024];

    snprintf(sql, sizeof(sql),
             "SELECT s.app, s.queued, s.in_flight, s.failed,"
             "       round(extract(epoch FROM s.oldest_queued_age)::numeric, 3) AS oldest_queued_s,"
             "       s.results_waiting, %s AS workers_waiting, %s"
             "  FROM %s.syrpc_stats s %s%s%s"
             " WHERE $1::text IS NULL OR s.app = $1 ORDER BY s.app",
             v->has_waiting ? "s.workers_waiting" : "NULL::bigint",
             v->has_latency ? "l.requests_total, l.answered_total"
             : "NULL::bigint AS requests_total, NULL::bigint AS answered_total",
             v->schema,
             v->has_latency ? "LEFT JOIN " : "", v->has_latency ? v->schema : "",
             v->has_latency ? ".syrpc_stats_latency l ON l.app = s.app" : "");
    return PQexecParams(v->pg, sql, 1, NULL, &app, NULL, NULL, 0);
}

/* Print a table: nf columns, nt rows, cell[t * nf + f]; the first column left-aligned. */
static void
print_table(int nf, int nt, const char *const *name, const char *const *cell)
{
    int         width[NCOLS + 2];

    for (int f = 0; f < nf; f++) {
        width[f] = (int) strlen(name[f]);
        for (int t = 0; t < nt; t++)
            if ((int) strlen(cell[t * nf + f]) > width[f])
                width[f] = (int) strlen(cell[t * nf + f]);
    }
    for (int f = 0; f < nf; f++)
        printf("%s%-*s", f ? "  " : "", width[f], name[f]);
    putchar('\n');
    for (int t = 0; t < nt; t++) {
        for (int f = 0; f < nf; f++)
            printf(f ? "  %*s" : "%-*s", width[f], cell[t * nf + f]);
        putchar('\n');
    }
}

/*
 * What a watch remembers of the last block, to make rates of the
 * counters' deltas.
 */
typedef struct counters {
    char       *app;
    int         known;          /* requests_total and answered_total were not NULL */
    long long   requests, answered;
} counters;

static void
counters_free(counters *c, int n)
{
    for (int i = 0; i < n; i++)
        free(c[i].app);
    free(c);
}

/* The rate from prev to cur over dt seconds into buf, or "-" when there is none. */
static const char *
format_rate(char *buf, size_t size, const counters *prev, int have_prev, long long prev_n,
            const counters *cur, long long cur_n, double dt)
{
    /* a counter that went back: the server restarted, the delta means nothing */
    if (!have_prev || !prev->known || !cur->known || cur_n < prev_n || dt <= 0)
        return "-";
    snprintf(buf, size, "%.1f", (double) (cur_n - prev_n) / dt);
    return buf;
}

static double
monotonic_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Sleep for seconds, or until SIGINT/SIGTERM.  The signals are blocked
 * between the look at stop_flag and the sleep, and ppoll unblocks them
 * atomically (pselect), so one that arrives in between still ends the
 * sleep.
 */
static void
sleep_unless_stopped(double seconds)
{
    sigset_t    block, old;
    double      until = monotonic_s() + seconds;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    for (double left; !stop_flag && (left = until - monotonic_s()) > 0;) {
        struct timespec ts;

        ts.tv_sec = (time_t) left;
        ts.tv_nsec = (long) ((left - ts.tv_sec) * 1e9);
        pselect(0, NULL, NULL, NULL, &ts, &old);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* One block of stats (plain, or of a watch with the rates since prev). */
static void
print_stats(PGresult *res, int with_rates, counters *prev, int nprev, counters *cur, double dt)
{
    static const char *const names[] = {
        "app", "queued", "in_flight", "failed", "oldest_queued_s", "results_waiting",
        "workers_waiting", "requests_per_s", "answered_per_s"
    };
    int         nt = PQntuples(res), nf = COL_WORKERS_WAITING + 1 + (with_rates ? 2 : 0);
    const char **cell = calloc((size_t) nt * nf + 1, sizeof(char *));
    char       (*rate)[2][32] = calloc((size_t) nt + 1, sizeof(*rate));

    if (cell == NULL || rate == NULL) {
        fprintf(stderr, "syrpc: out of memory\n");
        free(cell);
        free(rate);
        return;
    }
    for (int t = 0; t < nt; t++) {
        for (int f = 0; f <= COL_WORKERS_WAITING; f++)
            cell[t * nf + f] = PQgetisnull(res, t, f) ? "-" : PQgetvalue(res, t, f);
        if (with_rates) {
            counters   *p = NULL;

            for (int i = 0; i < nprev && p == NULL; i++)
                if (strcmp(prev[i].app, cur[t].app) == 0)
                    p = &prev[i];
            cell[t * nf + nf - 2] = format_rate(rate[t][0], sizeof(rate[t][0]), p, p != NULL,
                                                p ? p->requests : 0, &cur[t], cur[t].requests, dt);
            cell[t * nf + nf - 1] = format_rate(rate[t][1], sizeof(rate[t][1]), p, p != NULL,
                                                p ? p->answered : 0, &cur[t], cur[t].answered, dt);
        }
    }
    print_table(nf, nt, names, cell);
    free(cell);
    free(rate);
}

/* The counters of each row of a query_stats result, malloc'd; NULL if out of memory. */
static counters *
counters_of(PGresult *res)
{
    int         nt = PQntuples(res);
    counters   *c = calloc((size_t) nt + 1, sizeof(counters));

    for (int t = 0; c != NULL && t < nt; t++) {
        if ((c[t].app = strdup(PQgetvalue(res, t, COL_APP))) == NULL) {
            counters_free(c, t);
            return NULL;
        }
        c[t].known = !PQgetisnull(res, t, COL_REQUESTS_TOTAL) && !PQgetisnull(res, t, COL_ANSWERED_TOTAL);
        c[t].requests = strtoll(PQgetvalue(res, t, COL_REQUESTS_TOTAL), NULL, 10);
        c[t].answered = strtoll(PQgetvalue(res, t, COL_ANSWERED_TOTAL), NULL, 10);
    }
    return c;
}

/*
 * stats --watch: a block every interval until a signal or count blocks.
 * A lost connection is said on stderr and retried at the next interval
 * (the rates start again after it); any other error ends the watch.
 */
static int
watch_stats(views *v, const char *app, double interval, long count)
{
    struct sigaction sa;
    int         tty = isatty(STDOUT_FILENO), code = EXIT_OK;
    counters   *prev = NULL;
    int         nprev = 0;
    double      prev_at = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (long block = 0; !stop_flag && (count == 0 || block < count); block++) {
        PGresult   *res;
        counters   *cur;
        double      at;

        if (block > 0)
            sleep_unless_stopped(interval);
        if (stop_flag)
            break;
        if (PQstatus(v->pg) != CONNECTION_OK) {
            PQreset(v->pg);
            if (PQstatus(v->pg) != CONNECTION_OK) {
                fprintf(stderr, "syrpc: connection error: %s", PQerrorMessage(v->pg));
                continue;
            }
            if ((code = views_describe(v)) != EXIT_OK) {
                if (code == EXIT_CONNECTION)
                    continue;
                break;
            }
        }
        res = query_stats(v, app);
        at = monotonic_s();
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            server_error(res);
            PQclear(res);
            if (PQstatus(v->pg) != CONNECTION_OK) {
                counters_free(prev, nprev);
                prev = NULL;
                nprev = 0;
                continue;
            }
            code = EXIT_ERROR;
            break;
        }
        if ((cur = counters_of(res)) == NULL) {
            fprintf(stderr, "syrpc: out of memory\n");
            PQclear(res);
            code = EXIT_ERROR;
            break;
        }
        if (tty) {
            char        stamp[64];
            time_t      now = time(NULL);

            strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", localtime(&now));
            printf("\033[H\033[2J%s  every %g s  (Ctrl-C to stop)\n\n", stamp, interval);
        } else if (block > 0)
            putchar('\n');
        print_stats(res, 1, prev, nprev, cur, at - prev_at);
        fflush(stdout);         /* a block as it is made, to a pipe or file too */
        counters_free(prev, nprev);
        prev = cur;
        nprev = PQntuples(res);
        prev_at = at;
        PQclear(res);
    }
    counters_free(prev, nprev);
    return code;
}

/* --watch's interval: 0.1 to 86400 seconds; -1 if not. */
static double
parse_interval(const char *arg)
{
    char       *end;
    double      s;

    errno = 0;
    s = strtod(arg, &end);
    if (end == arg || *end != '\0' || errno != 0 || !isfinite(s) || s < 0.1 || s > 86400)
        return -1;
    return s;
}

/*
 * Could arg be --watch's SECONDS (rather than APP or the next option)? It
 * starts as a number does: a digit or ".", after a sign or not.
 */
static int
looks_numeric(const char *arg)
{
    if (arg[0] == '-' || arg[0] == '+')
        arg++;
    return (arg[0] >= '0' && arg[0] <= '9') || arg[0] == '.';
}

int
cmd_stats(const char *conninfo, int argc, char **argv)
{
    const char *app = NULL;
    double      interval = 0;
    long        count = 0;
    views       v;
    int         code;

    if (wants_help(argc, argv)) {
        fputs(usage_stats, stdout);
        return EXIT_OK;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--watch") == 0) {
            interval = 2;
            if (i + 1 < argc && looks_numeric(argv[i + 1]) &&
                (interval = parse_interval(argv[++i])) < 0)
                return usage_error(usage_stats, "--watch takes a number of seconds from 0.1 to 86400");
        } else if (strcmp(argv[i], "--count") == 0) {
            if (i + 1 >= argc || (count = parse_count(argv[++i])) < 0)
                return usage_error(usage_stats, "--count takes a whole number, 1 or more");
        } else if (argv[i][0] == '-')
            return usage_error(usage_stats, "unknown option");
        else if (app != NULL)
            return usage_error(usage_stats, "stats takes at most one APP");
        else
            app = argv[i];
    }
    if (count > 0 && interval == 0)
        return usage_error(usage_stats, "--count goes with --watch");
    if ((code = views_open(conninfo, &v)) != EXIT_OK)
        return code;
    if (interval > 0)
        code = watch_stats(&v, app, interval, count);
    else {
        PGresult   *res = query_stats(&v, app);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            server_error(res);
            code = EXIT_ERROR;
        } else
            print_stats(res, 0, NULL, 0, NULL, 0);
        PQclear(res);
    }
    views_close(&v);
    return code;
}

/* A label value in the exposition format: \, " and newline escaped. */
static void
print_label_value(const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            printf("\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", stdout);
        else
            putchar(*s);
    }
}

/* A sample's value: PostgreSQL's text of a number, with Prometheus's names for the infinities. */
static const char *
prom_value(const char *v)
{
    if (strcmp(v, "Infinity") == 0)
        return "+Inf";
    if (strcmp(v, "-Infinity") == 0)
        return "-Inf";
    return v;
}

/*
 * One metric family: HELP and TYPE, then a sample per row of res whose
 * column col is not NULL (quantile, if given, as a label too).  A family
 * is one or more (col, quantile) parts: the quantiles of one latency.  No
 * sample at all: nothing, not even HELP and TYPE.
 */
static void
print_family(PGresult *res, const char *name, const char *type, const char *help,
             int ncols, const int *col, const char *const *quantile)
{
    int         printed = 0;

    for (int k = 0; k < ncols; k++)
        for (int t = 0; t < PQntuples(res); t++) {
            if (PQgetisnull(res, t, col[k]))
                continue;
            if (!printed++)
                printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
            printf("%s{app=\"", name);
            print_label_value(PQgetvalue(res, t, 0));
            if (quantile && quantile[k])
                printf("\",quantile=\"%s", quantile[k]);
            printf("\"} %s\n", prom_value(PQgetvalue(res, t, col[k])));
        }
}

int
cmd_metrics(const char *conninfo, int argc, char **argv)
{
    static const char *const q[] = {"0.5", "0.99"};
    const char *app = NULL;
    PGresult   *stats, *lat = NULL;
    views       v;
    int         code;

    if (wants_help(argc, argv)) {
        fputs(usage_metrics, stdout);
        return EXIT_OK;
    }
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-')
            return usage_error(usage_metrics, "unknown option");
        if (app != NULL)
            return usage_error(usage_metrics, "metrics takes at most one APP");
        app = argv[i];
    }
    if ((code = views_open(conninfo, &v)) != EXIT_OK)
        return code;
    stats = query_stats(&v, app);
    if (PQresultStatus(stats) == PGRES_TUPLES_OK && v.has_latency) {
        char        sql[768];

        /* milliseconds to seconds, Prometheus's base unit */
        snprintf(sql, sizeof(sql),
                 "SELECT app, requests_total, answered_total, failed_total, expired_total, window_seconds,"
                 "       queue_wait_p50_ms / 1000, queue_wait_p99_ms / 1000,"
                 "       service_p50_ms / 1000, service_p99_ms / 1000,"
                 "       round_trip_p50_ms / 1000, round_trip_p99_ms / 1000"
                 "  FROM %s.syrpc_stats_latency WHERE $1::text IS NULL OR app = $1 ORDER BY app",
                 v.schema);
        lat = PQexecParams(v.pg, sql, 1, NULL, &app, NULL, NULL, 0);
    }
    /* all or nothing: a scrape of half the metrics would read as a drop */
    if (PQresultStatus(stats) != PGRES_TUPLES_OK || (v.has_latency && PQresultStatus(lat) != PGRES_TUPLES_OK)) {
        server_error(PQresultStatus(stats) != PGRES_TUPLES_OK ? stats : lat);
        code = PQstatus(v.pg) == CONNECTION_OK ? EXIT_ERROR : EXIT_CONNECTION;
    } else {
        print_family(stats, "syrpc_requests_queued", "gauge",
                     "Requests ready to be claimed by a worker.", 1, (int[]) {COL_QUEUED}, NULL);
        print_family(stats, "syrpc_requests_in_flight", "gauge",
                     "Requests claimed by a worker whose lease has not run out.", 1, (int[]) {COL_IN_FLIGHT}, NULL);
        print_family(stats, "syrpc_requests_failed", "gauge",
                     "Failed requests not yet cleaned up.", 1, (int[]) {COL_FAILED}, NULL);
        print_family(stats, "syrpc_oldest_queued_age_seconds", "gauge",
                     "Age of the oldest queued request.", 1, (int[]) {COL_OLDEST_S}, NULL);
        print_family(stats, "syrpc_results_waiting", "gauge",
                     "Results not yet fetched by their callers.", 1, (int[]) {COL_RESULTS_WAITING}, NULL);
        print_family(stats, "syrpc_workers_waiting", "gauge",
                     "Workers waiting for a request.", 1, (int[]) {COL_WORKERS_WAITING}, NULL);
        if (lat) {
            print_family(lat, "syrpc_requests_total", "counter",
                         "Requests put since the server started.", 1, (int[]) {1}, NULL);
            print_family(lat, "syrpc_answered_total", "counter",
                         "Requests answered since the server started.", 1, (int[]) {2}, NULL);
            print_family(lat, "syrpc_failed_total", "counter",
                         "Requests failed since the server started (by a worker, or after max_attempts when cleaned up).", 1, (int[]) {3}, NULL);
            print_family(lat, "syrpc_expired_total", "counter",
                         "Requests whose request_ttl passed unanswered, counted when cleaned up, since the server started.", 1, (int[]) {4}, NULL);
            print_family(lat, "syrpc_latency_window_seconds", "gauge",
                         "The window over which the latency quantiles are taken.", 1, (int[]) {5}, NULL);
            print_family(lat, "syrpc_queue_wait_seconds", "gauge",
                         "Time from put to claim, quantiles over the window.", 2, (int[]) {6, 7}, q);
            print_family(lat, "syrpc_service_seconds", "gauge",
                         "Time from claim to answer, quantiles over the window.", 2, (int[]) {8, 9}, q);
            print_family(lat, "syrpc_round_trip_seconds", "gauge",
                         "Time from put to the result taken by its caller, quantiles over the window.", 2, (int[]) {10, 11}, q);
        }
    }
    PQclear(stats);
    PQclear(lat);
    views_close(&v);
    return code;
}

