/*
 * idle.c: the idle test.
 *
 * 1. N callers blocked in syrpc_get_result with nothing to do for S
 *    seconds: the CPU time their server backends use (from /proc).
 * 2. N callers blocked on N different results; results are put one at a
 *    time: how many backends wake per put (a backend woke if its count of
 *    voluntary context switches in /proc moved).
 * 3. The same for requests: W workers blocked in syrpc_get_request,
 *    requests put one at a time.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "bench.h"
#include "syrpc.h"

#define PUTS 20

typedef struct waiter {
    char conninfo[128];
    const char *app;
    char id[SYRPC_ID_SIZE];     /* result to wait for; "" = wait for requests */
    int timeout_ms;
    volatile int claims;
    volatile int done;
    volatile int pid;           /* its server backend */
} waiter;

static void *
waiter_main(void *arg)
{
    waiter *w = arg;
    syrpc_conn *c = syrpc_connect(w->conninfo, w->app);
    json_t *result = NULL;
    syrpc_request *req;

    if (c && syrpc_status_of(c) == SYRPC_OK) {
        w->pid = PQbackendPID(syrpc_pgconn(c));
        if (w->id[0]) {
            syrpc_get_result(c, w->id, w->timeout_ms, &result);
            json_decref(result);
        } else {
            /* a worker that takes requests and never answers them */
            while (syrpc_get_request(c, w->timeout_ms, &req) == SYRPC_OK) {
                __atomic_add_fetch(&w->claims, 1, __ATOMIC_SEQ_CST);
                syrpc_request_free(req);
            }
        }
    }
    syrpc_finish(c);
    w->done = 1;
    return NULL;
}

static char *
value(PGconn *pg, const char *sql, const char *param)
{
    PGresult *res = PQexecParams(pg, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);
    char *v = strdup(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) ? PQgetvalue(res, 0, 0) : "");

    PQclear(res);
    return v;
}

/* Wait (up to 60 s) until n backends of appname sleep in syrpc's wait. */
static int
wait_sleeping(PGconn *pg, const char *appname, int n)
{
    double deadline = now_s() + 60;

    for (;;) {
        char *v = value(pg, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                        " AND wait_event = 'Extension'", appname);
        int got = atoi(v);

        free(v);
        if (got >= n)
            return 1;
        if (now_s() > deadline) {
            fprintf(stderr, "bench: only %d of %d waiters asleep\n", got, n);
            return 0;
        }
        usleep(20000);
    }
}

static int
pids_of(PGconn *pg, const char *appname, int *pids, int max)
{
    const char *p = appname;
    PGresult *res = PQexecParams(pg, "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                                 1, NULL, &p, NULL, NULL, 0);
    int n = 0;

    for (int i = 0; i < PQntuples(res) && n < max; i++)
        pids[n++] = atoi(PQgetvalue(res, i, 0));
    PQclear(res);
    return n;
}

/* utime + stime of a process, in clock ticks. */
static long
cpu_ticks(int pid)
{
    char path[64], buf[1024], *p;
    FILE *f;
    long ut = 0, st = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st);
    fclose(f);
    return ut + st;
}

static long
switches(int pid)
{
    char path[64], line[256];
    FILE *f;
    long v = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* How many of the n backends have switched since before, leaving out skip. */
static int
count_moved(const int *pids, const long *before, int n, int skip)
{
    int moved = 0;

    for (int i = 0; i < n; i++)
        if (pids[i] != skip && switches(pids[i]) != before[i])
            moved++;
    return moved;
}

static waiter *
start_waiters(pthread_t *t, int n, const char *appname, const char *app, int timeout_ms, char ids[][SYRPC_ID_SIZE])
{
    waiter *w = calloc(n, sizeof(waiter));

    for (int i = 0; i < n; i++) {
        snprintf(w[i].conninfo, sizeof(w[i].conninfo), "application_name=%s", appname);
        w[i].app = app;
        w[i].timeout_ms = timeout_ms;
        if (ids)
            snprintf(w[i].id, sizeof(w[i].id), "%s", ids[i]);
        pthread_create(&t[i], NULL, waiter_main, &w[i]);
    }
    return w;
}

static void
stop_waiters(PGconn *pg, pthread_t *t, waiter *w, int n, const char *appname)
{
    PQclear(PQexecParams(pg, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                         1, NULL, &appname, NULL, NULL, 0));
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(w);
}

void
idle_test(const char *conninfo, int n, double seconds, FILE *out)
{
    char app1[32], app2[32], app3[32];
    PGconn *pg = PQconnectdb(conninfo);
    pthread_t *t = calloc(n, sizeof(pthread_t));
    int *pids = calloc(n, sizeof(int));
    long *before = calloc(n, sizeof(long));
    char (*ids)[SYRPC_ID_SIZE] = calloc(n, SYRPC_ID_SIZE);
    long cpu0 = 0, cpu1 = 0;
    int np, moved = 0, nworkers = n < 50 ? n : 50;
    waiter *w;
    double t0;
    syrpc_conn *c;

    /* apps of their own, so that nothing left by an earlier run is in the way */
    snprintf(app1, sizeof(app1), "idle1_%d", (int) getpid());
    snprintf(app2, sizeof(app2), "idle2_%d", (int) getpid());
    snprintf(app3, sizeof(app3), "idle3_%d", (int) getpid());

    /* 1. idle CPU */
    fprintf(stderr, "  idle: %d callers blocked in syrpc_get_result for %g s\n", n, seconds);
    c = syrpc_connect("", app1);
    for (int i = 0; i < n; i++) {
        /* results nobody will put: requests that stay queued */
        json_t *d = json_integer(i);
        syrpc_put_request(c, "noop", d, ids[i]);
        json_decref(d);
    }
    w = start_waiters(t, n, "syrpc_idle1", app1, (int) (seconds * 1000) + 30000, ids);
    if (!wait_sleeping(pg, "syrpc_idle1", n))
        goto done;
    np = pids_of(pg, "syrpc_idle1", pids, n);
    for (int i = 0; i < np; i++)
        cpu0 += cpu_ticks(pids[i]);
    t0 = now_s();
    usleep((useconds_t) (seconds * 1e6));    /* the measurement window */
    for (int i = 0; i < np; i++)
        cpu1 += cpu_ticks(pids[i]);
    fprintf(out, "\n### Idle: %d callers blocked in syrpc_get_result\n\n", np);
    fprintf(out, "- CPU used by their %d server backends in %.1f s: %.0f ms in all (%.3f%% of one core)\n",
            np, now_s() - t0, (cpu1 - cpu0) * 1000.0 / sysconf(_SC_CLK_TCK),
            (cpu1 - cpu0) * 100.0 / sysconf(_SC_CLK_TCK) / (now_s() - t0));
    stop_waiters(pg, t, w, n, "syrpc_idle1");

    /* 2. backends woken per result put: each caller waits for its own claimed request */
    {
        syrpc_conn *wk = syrpc_connect("", app2);
        syrpc_request *req;
        int got = 0;

        for (int i = 0; i < n; i++) {
            json_t *d = json_integer(i);
            syrpc_put_request(wk, "noop", d, ids[i]);
            json_decref(d);
        }
        while (got < n && syrpc_get_request(wk, 1000, &req) == SYRPC_OK) {
            syrpc_request_free(req);
            got++;
        }
        if (got < n)
            fprintf(stderr, "bench: claimed only %d of %d requests: %s\n", got, n, syrpc_error_message(wk));
        w = start_waiters(t, n, "syrpc_idle2", app2, 60000, ids);
        if (wait_sleeping(pg, "syrpc_idle2", n)) {
            int early = 0;

            np = pids_of(pg, "syrpc_idle2", pids, n);
            for (int k = 0; k < PUTS && k < n; k++) {
                early += w[k].done;
                json_t *d = json_integer(k);
                double deadline = now_s() + 10;

                for (int i = 0; i < np; i++)
                    before[i] = switches(pids[i]);
                if (syrpc_put_result(wk, ids[k], d) != SYRPC_OK)
                    fprintf(stderr, "bench: put_result: %s\n", syrpc_error_message(wk));
                json_decref(d);
                while (!w[k].done && now_s() < deadline)
                    usleep(1000);
                /* the others, had they woken, are asleep again once all are */
                wait_sleeping(pg, "syrpc_idle2", n - k - 1);
                moved += 1 + count_moved(pids, before, np, w[k].pid);
            }
            fprintf(out, "- result puts: %d with %d callers waiting on different results: "
                    "%.2f backends woken per put (the one answered, and any other)%s\n", PUTS, np,
                    (double) moved / PUTS, early ? " (some callers had stopped waiting: the count is low)" : "");
            if (early)
                fprintf(stderr, "  idle: %d of %d callers had stopped waiting before their result was put\n", early, PUTS);
        }
        stop_waiters(pg, t, w, n, "syrpc_idle2");
        syrpc_finish(wk);
    }

    /* 3. backends woken per request put, with idle workers */
    w = start_waiters(t, nworkers, "syrpc_idle3", app3, 60000, NULL);
    moved = 0;
    if (wait_sleeping(pg, "syrpc_idle3", nworkers)) {
        syrpc_conn *p = syrpc_connect("", app3);
        int claims = 0;

        np = pids_of(pg, "syrpc_idle3", pids, nworkers);
        for (int k = 0; k < PUTS; k++) {
            json_t *d = json_integer(k);
            double deadline = now_s() + 10;
            char id[SYRPC_ID_SIZE];

            wait_sleeping(pg, "syrpc_idle3", nworkers);
            for (int i = 0; i < np; i++)
                before[i] = switches(pids[i]);
            syrpc_put_request(p, "noop", d, id);
            json_decref(d);
            for (;;) {
                claims = 0;
                for (int i = 0; i < nworkers; i++)
                    claims += w[i].claims;
                if (claims > k || now_s() > deadline)
                    break;
                usleep(1000);
            }
            wait_sleeping(pg, "syrpc_idle3", nworkers);
            moved += count_moved(pids, before, np, 0);
        }
        fprintf(out, "- request puts: %d with %d idle workers: %.2f backends woken per put\n",
                PUTS, np, (double) moved / PUTS);
        syrpc_finish(p);
    }
    stop_waiters(pg, t, w, nworkers, "syrpc_idle3");
done:
    syrpc_finish(c);
    PQfinish(pg);
    free(t);
    free(pids);
    free(before);
    free(ids);
}
