/*
 * syrpc_int.h: the handle's insides, shared by the library's source files
 * (syrpc.c: connection, errors and the calls; worker.c: the worker's
 * calls; batch.c: the serve loop's batch calls; serve.c: the serve loop;
 * json.c: exact conversion between JSON text and json_t).  Not installed.
 */
#ifndef SYRPC_INT_H
#define SYRPC_INT_H

#include <libpq-fe.h>

#include "syrpc.h"

#define SYRPC_MSG_MAX 1024
/* The longest reason syrpc_fail_request takes, in bytes (the server's limit). */
#define SYRPC_REASON_MAX 1024
/* The longest message of a remote error (syrpc_put_error), in bytes (the server's limit). */
#define SYRPC_ERROR_MESSAGE_MAX 1024
/* How much longer than its own timeout a server-side wait may take. */
#define SYRPC_GRACE_MS 5000

/* The most requests one batch call claims or answers (the server's limit). */
#define SYRPC__BATCH_MAX 1000
/*
 * syrpc_serve's batch unless syrpc_set_batch says otherwise.  A batch
 * saves commits: its answers and the next batch's claims take one
 * statement and one durable commit (the WAL flush that bounds a busy
 * worker), so 8 cuts them to an eighth, most of what batching can save;
 * beyond that, the statements' own work dominates.  And a batch costs,
 * growing with it: its first answer waits for its last handler (latency
 * added to each request, up to 7 handlers' time), its leases run while it
 * is handled (a slow handler times 8 must stay well under lease_time), a
 * worker holding 8 queued requests leaves them to no idle worker, and one
 * that dies leaves 8 requests to wait for their leases.  Under light load
 * none of this shows: a claim takes only what is queued, one request at a
 * time when requests come one at a time.
 */
#define SYRPC__BATCH_DEFAULT 8

/* The most statements one handle prepares (it uses about 20 kinds). */
#define SYRPC__STMTS_MAX 64

typedef struct syrpc_route {
    char type[SYRPC_NAME_MAX + 1];
    syrpc_handler handler;              /* one of these two is set */
    syrpc_text_handler text_handler;
    void *arg;
} syrpc_route;

struct syrpc_conn {
    PGconn *pg;
    char *conninfo;
    char *app_given;           /* the app as given, to repeat why it is refused */
    char app[SYRPC_NAME_MAX + 1];
    int app_ok;                /* app passed the local check */
    syrpc_status status;
    char message[2 * SYRPC_MSG_MAX];   /* room for a remote error's message (SYRPC_ERROR_MESSAGE_MAX) whole */
    char sqlstate[6];
    char detail[SYRPC_MSG_MAX];
    char *long_detail;         /* a detail that does not fit in detail (a remote error's JSON), malloc'd */
    char hint[SYRPC_MSG_MAX];
    volatile sig_atomic_t *interrupt;
    /* from the probe of pg_extension, at each (re)connect */
    int probed;                /* the extension was found: the fields below are set */
    char schema[2 * SYRPC_NAME_MAX + 3];   /* its schema, quoted as an identifier */
    char extversion[32];
    int no_combined_call;      /* the server's extension predates syrpc_put_result_get_request (1.1) */
    int no_procedures;         /* ... or the waiting procedures (1.1): wait with SELECT */
    int no_call_procedure;     /* ... or syrpc_call (1.2): put, then get */
    int no_answer_wait;        /* ... or syrpc_put_result_wait_request (1.2) */
    int no_fail_request;       /* ... or syrpc_fail_request (1.3) */
    int no_batch;              /* ... or the batch calls (1.6): serve one request at a time */
    int no_semantics;          /* ... or 1.7's: remote errors, cancel, deadlines, extending and
                                * releasing leases, attempts and deadlines in the claims */
    int batch;                 /* syrpc_set_batch: the most requests syrpc_serve claims at once */
    syrpc_route *routes;       /* handlers by type, for syrpc_serve */
    int nroutes;
    syrpc_route fallback;      /* handler for any other type, if set */
    /*
     * While syrpc_serve runs a handler: the result_id of its request, and
     * how the handler settled that request itself on this handle, if it
     * did (syrpc__settle), so that the loop does not answer it again.
     */
    const char *handling;
    int handling_attempts;     /* ... and the attempt it came with (0: not said) */
    int settled;
    /*
     * syrpc_set_prepared: statements are prepared once per connection and
     * run by name.  Those prepared on the current connection (emptied at
     * each reconnect): stmts[i] is "syrpc_<stmt_nums[i]>".  A number is
     * never used twice on one connection: a prepare cut short (a timeout,
     * an interrupt) may have taken its name on the server all the same.
     */
    int prepared;
    char *stmts[SYRPC__STMTS_MAX];
    int stmt_nums[SYRPC__STMTS_MAX];
    int nstmts;
    int next_stmt_num;
};

/* How a handler settled its own request (syrpc_conn.settled). */
enum { SYRPC__UNSETTLED = 0, SYRPC__ANSWERED = 1, SYRPC__RELEASED = 2 };

/*
 * A claimed request.  The serve loop keeps its own on the stack and
 * converts the text only for a json_t handler; syrpc_get_request hands
 * out one it allocated, converted.
 */
struct syrpc_request {
    char type[SYRPC_NAME_MAX + 1];
    char result_id[SYRPC_ID_SIZE];     /* "" when no request is held */
    char *text;                /* the data as the server's JSON text, malloc'd */
    json_t *data;              /* text as a json_t, or NULL: not converted, or it cannot be */
    int attempts;              /* 0: the server did not say */
    double deadline;           /* when it expires, in seconds since the epoch; 0: the server did not say */
    char *error_message;       /* syrpc_reply_error: answer with this error instead (malloc'd), or NULL */
    char *error_detail;        /* ... and its detail as JSON text (malloc'd), or NULL: none */
};

/* Set the handle's status and message (printf-style); returns status. */
syrpc_status syrpc__fail(syrpc_conn *c, syrpc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
syrpc_status syrpc__ok(syrpc_conn *c);
int syrpc__interrupted(const syrpc_conn *c);
/*
 * Whether the server has a call (lacks: its no_* flag): 1 if it does;
 * else 0, with SYRPC_SERVER_ERROR "WHAT needs extension VERSION or later"
 * and a hint.
 */
int syrpc__server_has(syrpc_conn *c, int lacks, const char *what, const char *version);
/* A handler ran a call that settles result_id on the serve loop's handle (how: SYRPC__ANSWERED, ...). */
void syrpc__settle(syrpc_conn *c, const char *result_id, int how);
/* CLOCK_MONOTONIC in milliseconds. */
long long syrpc__now_ms(void);

/* The serve loop's calls on requests as text, not converted (syrpc.c). */
syrpc_status syrpc__get_request_raw(syrpc_conn *c, int timeout_ms, syrpc_request *req);
/* Answer and wait up to a slice for the next request, in one statement if the server can. */
syrpc_status syrpc__put_result_wait_request(syrpc_conn *c, const char *result_id,
                                            const char *json, syrpc_request *next);
/* Release what req holds and empty it (req itself stays). */
void syrpc__request_clear(syrpc_request *req);

/*
 * batch.c: the serve loop's batch calls (extension 1.6), on requests as
 * text.  Claim up to max requests into reqs[0..*n), waiting up to
 * wait_ms, at most a slice (CALL syrpc_wait_requests): SYRPC_OK with
 * *n >= 1, SYRPC_TIMEOUT with *n 0 when none came (also:
 * statement_timeout ended the wait).  From 1.7 each request has its
 * attempts and deadline.
 */
syrpc_status syrpc__wait_requests(syrpc_conn *c, int max, int wait_ms, syrpc_request *reqs, int *n);
/*
 * Answer requests ids[i] with json[i] (i < n) all in one transaction, or
 * none of them (the status says why: SY004, or data the server refuses),
 * and claim up to max more into next[0..*nnext), waiting up to a slice
 * (CALL syrpc_put_results_wait_requests); max 0: claim none (SELECT
 * syrpc_put_results).  SYRPC_OK: answered, *nnext >= 1 claimed;
 * SYRPC_TIMEOUT: answered, none claimed (with max > 0: none came, or
 * statement_timeout ended the wait; if that came before the commit, the
 * requests come back by their leases); with max 0 SYRPC_OK.
 */
syrpc_status syrpc__put_results_wait_requests(syrpc_conn *c, int n, char *const *ids, char *const *json,
                                              int max, syrpc_request *next, int *nnext);

/* json.c: exact conversion.  Returns one of these; err says why not. */
enum { SYRPC__EXACT = 0, SYRPC__REFUSED = 1, SYRPC__NO_MEMORY = 2 };
int syrpc__decode_exact(const char *text, json_t **result, char *err, size_t errsize);
int syrpc__encode_exact(const json_t *value, char **text, char *err, size_t errsize);

/* syrpc.c: the plumbing the calls share (worker.c uses them too) */
void syrpc__copy_str(char *dst, size_t size, const char *src);
PGresult *syrpc__run(syrpc_conn *c, const char *sql, int nparams, const char *const *values, int wait_ms);
int syrpc__check_timeout(syrpc_conn *c, int timeout_ms);
int syrpc__check_id(syrpc_conn *c, const char *result_id);
int syrpc__check_text(syrpc_conn *c, const char *json);
int syrpc__ready(syrpc_conn *c);
char *syrpc__encode(syrpc_conn *c, const json_t *data);
json_t *syrpc__decode(syrpc_conn *c, const char *text, const char *what);
char *syrpc__copy_text(syrpc_conn *c, const char *text);
PGresult *syrpc__run_with_text(syrpc_conn *c, const char *sql, const char *arg, const char *json, int waits, int timeout_ms);
PGresult *syrpc__run_waiting(syrpc_conn *c, const char *sql, const char *arg, const char *json, int timeout_ms);
/* The seconds of one server-side wait of remaining_ms (-1: no limit) as text; its ms. */
int syrpc__slice_of(int remaining_ms, char *buf, size_t size);
/* The last statement was cancelled by statement_timeout (not by a user's cancel). */
int syrpc__statement_timed_out(const syrpc_conn *c);
PGresult *syrpc__wait_sliced(syrpc_conn *c, const char *proc_sql, const char *func_sql, int nparams, const char **values, int col, int timeout_ms, const char *what);

#endif /* SYRPC_INT_H */
