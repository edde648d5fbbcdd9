/*
 * soak.c: sustained load with work that is never finished, watching the
 * queue tables' sizes.
 *
 *   soak APP SECONDS CALLERS WORKERS
 *
 * One caller puts only requests that are never answered (in an app of
 * their own, APP_drop, whose worker takes them and drops them: their
 * leases run out, they fail after max_attempts and are cleaned up); the
 * others fetch 90% of their answers and leave 10% unfetched (they
 * expire).  Every other caller makes its fetched RPCs with syrpc_call.
 * The workers serve with syrpc_serve, every other one with async results.
 * Every 2 s it prints the size of syrpc.request and of the 64 result
 * partitions (tables and indexes), and the age of the oldest relfrozenxid
 * of the queue tables.  The sizes must stop growing: the largest in the
 * last third of the run may not exceed the largest in the middle third by
 * more than half (plus 1 MB).
 *
 * At the end it reports what a long run costs beyond space: the xids
 * consumed (each one brings wraparound nearer, and anti-wraparound vacuum
 * of the queue tables with it), per request put, and the tables' sizes.
 * These are for reading, not tests: what is normal depends on the
 * machine and on autovacuum's settings.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

static const char *app;
static char drop_app[SYRPC_NAME_MAX + 1];
static volatile sig_atomic_t stop_callers, stop_workers;
static long n_rpc, n_failed, n_skipped, n_dropped;

static void *
caller(void *arg)
{
    syrpc_conn *c = connect_app((long) arg == 1 ? drop_app : app);
    unsigned seed = (unsigned) (long) arg;
    int dropper = (long) arg == 1;
    int use_call = (long) arg % 2 == 0;

    while (c && !stop_callers) {
        int dice = dropper ? 0 : 1 + rand_r(&seed) % 10;
        const char *type = dropper ? "drop" : "echo";
        json_t *data = json_pack("{s:s, s:i}", "pad", "................................................", "n", dice);
        json_t *result = NULL;
        char id[SYRPC_ID_SIZE];

        if (use_call && !dropper && dice != 1) {
            syrpc_status st = syrpc_call(c, type, data, 10000, &result);

            __atomic_add_fetch(st == SYRPC_OK ? &n_rpc : &n_failed, 1, __ATOMIC_RELAXED);
            json_decref(result);
        } else if (syrpc_put_request(c, type, data, id) == SYRPC_OK) {
            if (dice == 1)
                __atomic_add_fetch(&n_skipped, 1, __ATOMIC_RELAXED);    /* never fetched */
            else {
                syrpc_status st = syrpc_get_result(c, id, 10000, &result);

                __atomic_add_fetch(st == SYRPC_OK ? &n_rpc : &n_failed, 1, __ATOMIC_RELAXED);
                json_decref(result);
            }
        }
        json_decref(data);
    }
    syrpc_finish(c);
    return NULL;
}

/*
 * The dropper's worker takes its requests and drops them, which a
 * syrpc_serve handler cannot do (it always answers): a loop of its own, on
 * an app of its own.
 */
static void *
drop_worker(void *arg)
{
    syrpc_conn *c = connect_app(drop_app);

    (void) arg;
    while (c && !stop_workers) {
        syrpc_request *req;

        if (syrpc_get_request(c, 500, &req) == SYRPC_OK)
            __atomic_add_fetch(&n_dropped, 1, __ATOMIC_RELAXED);
        syrpc_request_free(req);
    }
    syrpc_finish(c);
    return NULL;
}

/* SELECT what, as a number; -1 if it failed. */
static long
number_of(const char *what)
{
    char *v = sql_value("SELECT %s", what);
    long n = v ? atol(v) : -1;

    free(v);
    return n;
}

int
main(int argc, char **argv)
{
    enum { MAX_SAMPLES = 1000 };
    long req_size[MAX_SAMPLES], res_size[MAX_SAMPLES];
    int ncallers, nworkers, n = 0;
    double seconds, t0;
    pthread_t *ct, dt;
    test_server *wt;
    long mid_max = 0, last_max = 0, xid_start, xid_end, puts;
    int ok;
    /* the next xid, read without taking one (a SELECT is given none) */
    const char *next_xid = "pg_snapshot_xmax(pg_current_snapshot())::text::bigint";
    const char *frozen_age = "max(age(relfrozenxid)) FROM pg_class"
        " WHERE relnamespace = 'syrpc'::regnamespace AND relkind = 'r'";

    if (argc != 5) {
        fprintf(stderr, "usage: soak APP SECONDS CALLERS WORKERS\n");
        return 2;
    }
    tests_init();
    printf("1..2\n");         /* the TAP plan: a run that stops early prints fewer */
    app = argv[1];
    seconds = atof(argv[2]);
    ncallers = atoi(argv[3]);
    nworkers = atoi(argv[4]);
    snprintf(drop_app, sizeof(drop_app), "%s_drop", app);
    for (int i = 0; i < 2; i++)
        free(sql_value("SELECT syrpc_configure('%s', lease_time => '500 ms', max_attempts => 2,"
                       " result_ttl => '2 s', request_ttl => '10 s')", i == 0 ? app : drop_app));
    xid_start = number_of(next_xid);
    ct = calloc(ncallers, sizeof(pthread_t));
    wt = calloc(nworkers, sizeof(test_server));
    for (int i = 0; i < nworkers; i++)
        server_start(&wt[i], i % 2 == 1 ? ASYNC_RESULTS_CONNINFO : "", app, 0, serve_echo);
    pthread_create(&dt, NULL, drop_worker, NULL);
    for (int i = 0; i < ncallers; i++)
        pthread_create(&ct[i], NULL, caller, (void *) (long) (i + 1));
    printf("# %5s %8s %10s %10s %10s %14s %14s %11s\n", "t (s)", "RPCs", "failed", "unfetched", "requests",
           "request bytes", "result bytes", "frozen age");
    t0 = now_s();
    while (now_s() - t0 < seconds && n < MAX_SAMPLES) {
        sleep(2);               /* the sampling interval */
        req_size[n] = number_of("pg_total_relation_size('syrpc.request')");
        res_size[n] = number_of("sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
                              " WHERE inhparent = 'syrpc.result'::regclass");
        printf("# %5.0f %8ld %10ld %10ld %10ld %14ld %14ld %11ld\n", now_s() - t0, n_rpc, n_failed, n_skipped,
               number_of("count(*) FROM syrpc.request"), req_size[n], res_size[n], number_of(frozen_age));
        n++;
    }
    stop_callers = 1;
    for (int i = 0; i < ncallers; i++)
        pthread_join(ct[i], NULL);
    stop_workers = 1;
    pthread_join(dt, NULL);
    for (int i = 0; i < nworkers; i++)
        if (server_stop(&wt[i]) != SYRPC_INTERRUPTED)
            diag("worker %d: syrpc_serve ended with %s: %s", i, syrpc_status_name(wt[i].status), wt[i].message);
    for (int i = n / 3; i < 2 * n / 3; i++)
        if (req_size[i] + res_size[i] > mid_max)
            mid_max = req_size[i] + res_size[i];
    for (int i = 2 * n / 3; i < n; i++)
        if (req_size[i] + res_size[i] > last_max)
            last_max = req_size[i] + res_size[i];
    ok = n >= 6 && n_rpc > 0 && last_max <= mid_max * 3 / 2 + 1024 * 1024;
    printf("# %ld RPCs, %ld failed (never answered), %ld results never fetched, %ld requests dropped by workers\n",
           n_rpc, n_failed, n_skipped, n_dropped);
    printf("# queue tables: largest %ld bytes in the middle third of the run, %ld in the last third\n",
           mid_max, last_max);
    xid_end = number_of(next_xid);
    puts = n_rpc + n_failed + n_skipped;
    printf("# xids consumed: %ld over the run, %.2f per request put (%ld put)\n",
           xid_end - xid_start, puts > 0 ? (double) (xid_end - xid_start) / puts : 0.0, puts);
    printf("# oldest relfrozenxid of the queue tables: age %ld\n", number_of(frozen_age));
    printf("# sizes at the end (tables and indexes): syrpc.request %ld bytes, syrpc.app %ld bytes,"
           " the 64 result partitions %ld bytes\n",
           number_of("pg_total_relation_size('syrpc.request')"), number_of("pg_total_relation_size('syrpc.app')"),
           number_of("sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
                     " WHERE inhparent = 'syrpc.result'::regclass"));
    printf("%s 1 - soak for %.0f s: queue table sizes stay bounded\n", ok ? "ok" : "not ok", seconds);
    printf("%s 2 - requests never answered fail for their callers\n", n_failed > 0 ? "ok" : "not ok");
    printf("%d passed, %d failed\n", ok + (n_failed > 0), !ok + !(n_failed > 0));
    free(ct);
    free(wt);
    return ok && n_failed > 0 ? 0 : 1;
}
