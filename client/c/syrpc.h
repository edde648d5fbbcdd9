/*
 * syrpc.h: the C client library of syrpc, RPC over PostgreSQL.
 *
 * A caller puts a request and later (possibly from another process) gets
 * its result by result_id; a worker gets requests and puts results.
 *
 *     syrpc_conn *c = syrpc_connect("dbname=app", "echo_app");
 *     if (syrpc_status_of(c) != SYRPC_OK) { puts(syrpc_error_message(c)); ... }
 *     json_t *result;
 *     if (syrpc_call(c, "echo", data, 5000, &result) == SYRPC_OK) { ...; json_decref(result); }
 *     syrpc_finish(c);
 *
 * Threads: a syrpc_conn wraps one libpq connection and may be used by one
 * thread at a time.  Use one handle per thread; handles share nothing, and
 * the library has no mutable global state.
 *
 * Memory: functions that hand back a json_t * give the caller a new
 * reference, which the caller releases with json_decref().  json_t *
 * arguments are borrowed: the library never steals a reference.  JSON text
 * handed back by the _text functions is the caller's, to release with
 * syrpc_free().  Strings returned by syrpc_error_*() belong to the handle
 * and stay valid until the next call on it.
 *
 * Exact data: the _text functions pass JSON text as it is, and hand back
 * the server's text (jsonb keeps every digit of a number).  The json_t
 * functions never change a value silently: a number that a json_t cannot
 * hold exactly (an integer beyond 64 bits, a real with more digits than a
 * double keeps, 1e400) is refused with SYRPC_BAD_INPUT and a message
 * naming it; reals are sent with the fewest digits that read back as the
 * same double (1.1, not 1.1000000000000001); NaN and infinities are
 * refused.
 *
 * Waiting: blocking calls wait inside the server (woken at the commit of
 * the matching put) in slices of at most SYRPC_WAIT_SLICE_MS, each its own
 * short transaction, so no transaction stays open for a long wait.  A
 * statement_timeout shorter than a slice is fine: the server ends such a
 * wait just before it (and a wait cancelled by it anyway counts as a slice
 * that ended), and the call waits on until its own timeout.
 *
 * The extension may be in any schema (CREATE EXTENSION syrpc SCHEMA x):
 * at each (re)connect the library looks up its schema and version once,
 * and uses the calls that version has.
 */
#ifndef SYRPC_CLIENT_H
#define SYRPC_CLIENT_H

#include <jansson.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The library's version: these three lines are the only place it is
 * written (the Makefile reads them for the shared library's name, its
 * soname libsyrpc.so.MAJOR, and syrpc.pc).  2.0.0 broke 1.x's API and ABI:
 * syrpc_request became opaque (accessors, syrpc_request_free) and
 * handlers get the request; see the README, "Upgrading from libsyrpc 1".
 * 2.1.0 added syrpc_set_batch (the serve loop in batches).
 */
#define SYRPC_VERSION_MAJOR 2
#define SYRPC_VERSION_MINOR 1
#define SYRPC_VERSION_PATCH 0
#define SYRPC__STR(x) #x
#define SYRPC__XSTR(x) SYRPC__STR(x)
#define SYRPC_VERSION SYRPC__XSTR(SYRPC_VERSION_MAJOR) "." SYRPC__XSTR(SYRPC_VERSION_MINOR) "." \
    SYRPC__XSTR(SYRPC_VERSION_PATCH)
#define SYRPC_VERSION_NUM (SYRPC_VERSION_MAJOR * 10000 + SYRPC_VERSION_MINOR * 100 + SYRPC_VERSION_PATCH)

/* Room for a result_id as text: 36 characters and the NUL. */
#define SYRPC_ID_SIZE 37
/* Longest app or type name, in bytes (the server enforces it too). */
#define SYRPC_NAME_MAX 63
/* Pass as timeout_ms to wait until the call is interrupted (any other negative is refused). */
#define SYRPC_FOREVER (-1)
/* The longest single wait inside the server. */
#define SYRPC_WAIT_SLICE_MS 10000

/*
 * Status codes; append-only.  The server's SQLSTATE (syrpc_error_sqlstate)
 * tells more: SY001 request failed (after its last attempt, or given up by
 * a worker with syrpc_fail_request: the message has the reason), SY002
 * request expired, SY003 result already taken, SY004 request not in
 * flight (not claimed, or already answered), SY005 result_id of another
 * app, SY008 unknown or expired result_id.
 */
typedef enum syrpc_status {
    SYRPC_OK = 0,
    SYRPC_TIMEOUT = 1,         /* nothing arrived within the timeout (also: statement_timeout ended the wait) */
    SYRPC_BAD_INPUT = 2,       /* arguments rejected (here or by the server: SQLSTATE class 22, SY003-SY005,
                                * SY008, ...), or data a json_t cannot hold exactly */
    SYRPC_CONNECTION = 3,      /* could not connect, or the connection was lost */
    SYRPC_SERVER_ERROR = 4,    /* any other error from the server (also: the extension is not installed) */
    SYRPC_REQUEST_FAILED = 5,  /* the request failed (SY001: after its last attempt, or given up by a
                                * worker) or expired (SY002) */
    SYRPC_INTERRUPTED = 6,     /* the interrupt flag was set while waiting */
    SYRPC_NO_MEMORY = 7
} syrpc_status;

typedef struct syrpc_conn syrpc_conn;

/*
 * A claimed request.  Opaque, so that it can carry more without breaking
 * callers: read it with the syrpc_request_*() accessors.
 */
typedef struct syrpc_request syrpc_request;

/* Version of the library at run time, as SYRPC_VERSION_NUM. */
int syrpc_version(void);

/* Release memory the library handed back (the JSON text of the _text functions). */
void syrpc_free(void *ptr);

/* Readable name of a status ("ok", "timeout", ...); static storage. */
const char *syrpc_status_name(syrpc_status status);

/*
 * Connect to PostgreSQL (conninfo as for libpq's PQconnectdb: "" takes
 * PGHOST, PGDATABASE, ... from the environment) for app (1 to
 * SYRPC_NAME_MAX bytes of letters, digits, "_", "." and "-"; checked here,
 * SYRPC_BAD_INPUT).  Returns a handle even when the connection fails
 * (check syrpc_status_of); NULL only when out of memory.  Release with
 * syrpc_finish.  If the database has no syrpc extension, the connection
 * succeeds and the first call says so (SYRPC_SERVER_ERROR, with a hint).
 */
syrpc_conn *syrpc_connect(const char *conninfo, const char *app);
void syrpc_finish(syrpc_conn *conn);

/* Reconnect with the same parameters after SYRPC_CONNECTION. */
syrpc_status syrpc_reconnect(syrpc_conn *conn);

/* Status of the last call on the handle, and its error details. */
syrpc_status syrpc_status_of(const syrpc_conn *conn);
const char *syrpc_error_message(const syrpc_conn *conn);  /* "" after success */
const char *syrpc_error_sqlstate(const syrpc_conn *conn); /* "" if none */
const char *syrpc_error_detail(const syrpc_conn *conn);   /* "" if none */
const char *syrpc_error_hint(const syrpc_conn *conn);     /* "" if none */

/*
 * While *flag is non-zero, blocking calls give up with SYRPC_INTERRUPTED
 * (they notice it when a signal interrupts their wait, and between
 * slices).  Meant for a flag set by a SIGINT/SIGTERM handler; NULL turns
 * it off.
 */
void syrpc_set_interrupt_flag(syrpc_conn *conn, volatile sig_atomic_t *flag);

/* The underlying libpq connection (PGconn *), for anything else. */
void *syrpc_pgconn(syrpc_conn *conn);

/* ---- caller side ---- */

/* Queue a request; its result_id is written to result_id. */
syrpc_status syrpc_put_request(syrpc_conn *conn, const char *type,
                               const json_t *data, char result_id[SYRPC_ID_SIZE]);
/* The same with data as JSON text, sent as is (the server refuses invalid JSON: 22P02). */
syrpc_status syrpc_put_request_text(syrpc_conn *conn, const char *type,
                                    const char *json, char result_id[SYRPC_ID_SIZE]);

/*
 * Wait up to timeout_ms (SYRPC_FOREVER: no limit) for the result of
 * result_id and take it: *result is a new reference.  On any status other
 * than SYRPC_OK, *result is NULL.  A result that a json_t cannot hold
 * exactly is SYRPC_BAD_INPUT, and taken all the same: use
 * syrpc_get_result_text where results may hold such numbers.
 */
syrpc_status syrpc_get_result(syrpc_conn *conn, const char *result_id,
                              int timeout_ms, json_t **result);
/* The same with the result as the server's JSON text (free with syrpc_free). */
syrpc_status syrpc_get_result_text(syrpc_conn *conn, const char *result_id,
                                   int timeout_ms, char **result);

/*
 * syrpc_put_request and syrpc_get_result in one, in one round trip (CALL
 * syrpc_call, extension 1.2; older ones: the two calls).  If the
 * connection is lost or the call is interrupted, whether the request was
 * queued is unknown: treat the call as failed, and retry if it is safe.
 */
syrpc_status syrpc_call(syrpc_conn *conn, const char *type, const json_t *data,
                        int timeout_ms, json_t **result);
/*
 * The same with JSON text both ways: json is sent as is, *result is the
 * server's text (free with syrpc_free; NULL on any status but SYRPC_OK).
 */
syrpc_status syrpc_call_text(syrpc_conn *conn, const char *type, const char *json,
                             int timeout_ms, char **result);

/* ---- worker side ---- */

/*
 * Wait up to timeout_ms for a request and claim it (a lease).  *req is a
 * new request, the caller's to release with syrpc_request_free, whenever
 * one was claimed: with SYRPC_OK; with SYRPC_BAD_INPUT if its data cannot
 * be held exactly in a json_t (syrpc_request_data is NULL, the text is
 * there); with SYRPC_NO_MEMORY if converting it ran out.  Such a request
 * is claimed all the same: answer it or give it up (syrpc_fail_request).
 * On any other status *req is NULL.
 */
syrpc_status syrpc_get_request(syrpc_conn *conn, int timeout_ms, syrpc_request **req);

/* Release a request (NULL: nothing); what its accessors returned goes with it. */
void syrpc_request_free(syrpc_request *req);

/* The request's type and result_id; they belong to req. */
const char *syrpc_request_type(const syrpc_request *req);
const char *syrpc_request_result_id(const syrpc_request *req);

/*
 * Its data as a json_t, borrowed from req (json_incref it to keep it past
 * syrpc_request_free); NULL if a json_t cannot hold it exactly, and in the
 * request a text handler gets.
 */
json_t *syrpc_request_data(const syrpc_request *req);

/* Its data as the server's JSON text, as stored; belongs to req. */
const char *syrpc_request_data_text(const syrpc_request *req);

/*
 * Which attempt this claim is: 1 for the first, 2 after a lease ran out
 * once, and so on, when the server reports it; 0 when it does not.  No
 * released extension version (1.0 to 1.3) reports it yet: with them this
 * is always 0, and a handler cannot tell a retry from a first attempt.
 */
int syrpc_request_attempts(const syrpc_request *req);

/* Answer a claimed request (_text: with JSON text, sent as is). */
syrpc_status syrpc_put_result(syrpc_conn *conn, const char *result_id, const json_t *data);
syrpc_status syrpc_put_result_text(syrpc_conn *conn, const char *result_id, const char *json);

/*
 * Give up a claimed request (extension 1.3): its caller gets
 * SYRPC_REQUEST_FAILED (SY001) with "request ID failed: REASON", and no
 * worker gets it again.  reason: 1 to 1024 bytes.
 */
syrpc_status syrpc_fail_request(syrpc_conn *conn, const char *result_id, const char *reason);

/*
 * Answer a claimed request and claim the next one in the same transaction,
 * without waiting (one statement and one durable commit per request for a
 * busy worker).  SYRPC_OK: answered, and *next is the next request
 * (free it with syrpc_request_free); SYRPC_TIMEOUT: answered, no request
 * is waiting (*next is NULL); SYRPC_BAD_INPUT with *next set: answered,
 * and the next request claimed, but its data cannot be held in a json_t
 * (see syrpc_get_request); any other status: not answered.  Works with
 * extension version 1.0 too (as two statements).
 */
syrpc_status syrpc_put_result_get_request(syrpc_conn *conn, const char *result_id,
                                          const json_t *data, syrpc_request **next);

/*
 * A handler computes the result of one request: it returns a new
 * reference, or NULL on failure, in which case the serve loop answers
 * {"error": "handler failed", "type": TYPE}.  It gets the request itself
 * (lent for the call; syrpc_request_data is never NULL here), so that
 * what a request carries can grow without changing this type.
 */
typedef json_t *(*syrpc_handler)(const syrpc_request *req, void *arg);

/* Register handler for type (NULL type: for every type without its own). */
syrpc_status syrpc_register(syrpc_conn *conn, const char *type,
                            syrpc_handler handler, void *arg);

/*
 * A text handler reads the request data as the server's JSON text
 * (syrpc_request_data_text; syrpc_request_data is NULL: nothing is
 * converted) and returns the result as JSON text allocated with malloc
 * (the serve loop frees it with free()), sent as is; NULL on failure,
 * answered as for syrpc_handler.  If the server refuses the text (not
 * JSON, too large), the request is given up with the server's reason
 * (syrpc_fail_request).
 */
typedef char *(*syrpc_text_handler)(const syrpc_request *req, void *arg);

/* Register a text handler for type (NULL: every type); replaces any handler of type. */
syrpc_status syrpc_register_text(syrpc_conn *conn, const char *type,
                                 syrpc_text_handler handler, void *arg);

/*
 * Serve requests until the interrupt flag is set or max_requests have been
 * answered or given up (0: no limit).  Unknown types are answered with
 * {"error": "unknown type", "type": TYPE}.  A request that its json_t
 * handler cannot get exactly (see "Exact data"), or whose result cannot be
 * sent, is given up with syrpc_fail_request and a reason ("request data
 * cannot be represented by the C library: ..."); its caller gets
 * SYRPC_REQUEST_FAILED.  (With extension < 1.3, it is answered with
 * {"error": "request failed", "type": TYPE, "reason": REASON} instead.)
 * With extension 1.6 it claims requests in batches (syrpc_set_batch):
 * the answers of a batch and the claim of the next take one statement and
 * one commit.  It never claims more than max_requests leaves to serve.
 * A lost connection is re-established with backoff; the requests it held
 * come back by their leases.  Returns SYRPC_OK when max_requests were
 * served, SYRPC_INTERRUPTED when stopped by the flag, another status on
 * an error it cannot get past.
 */
syrpc_status syrpc_serve(syrpc_conn *conn, long max_requests);

/*
 * The most requests syrpc_serve claims at once (extension 1.6; older ones
 * serve one at a time whatever this says): max from 1 (one at a time) to
 * 1000, else SYRPC_BAD_INPUT; 8 unless set.  A claim takes only what is
 * queued, so under light load a batch is one request.  A batch's
 * handlers run one after another, then its answers go together: each
 * waits for the batch's last handler, and the leases of the batch run
 * meanwhile (keep max times the slowest handler well under the app's
 * lease_time).  Requests the server refuses answers for (too large, not
 * JSON) are given up one by one with its reason, as without batches.
 */
syrpc_status syrpc_set_batch(syrpc_conn *conn, int max);

#ifdef __cplusplus
}
#endif

#endif /* SYRPC_CLIENT_H */
