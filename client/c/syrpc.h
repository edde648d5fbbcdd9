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
 * and uses the calls that version has.  A call the server lacks (remote
 * errors, cancel, deadlines, extending and releasing leases need
 * extension 1.7) fails with SYRPC_SERVER_ERROR, "... needs extension 1.7
 * or later (the database has 1.6)", and the hint to update it, before it
 * sends anything.
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
 * 2.1.0 added syrpc_set_batch (the serve loop in batches); 2.2.0 the
 * calls of extension 1.7: remote errors (syrpc_put_error, and
 * syrpc_reply_error in handlers), cancel, deadlines, extending and
 * releasing leases; 2.3.0 syrpc_set_prepared.
 */
#define SYRPC_VERSION_MAJOR 2
#define SYRPC_VERSION_MINOR 3
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
 * request expired (its request_ttl or its deadline passed), SY003 result
 * already taken, SY004 request not in flight (not claimed, or already
 * answered), SY005 result_id of another app, SY006 the worker answered
 * with an error, SY007 the request was cancelled, SY008 unknown or
 * expired result_id.
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
    SYRPC_NO_MEMORY = 7,
    SYRPC_REMOTE_ERROR = 8,    /* SY006 (extension 1.7): the worker answered with an error
                                * (syrpc_put_error): syrpc_error_message is its message, as the
                                * worker wrote it, and syrpc_error_detail its detail as JSON text
                                * ("" if it gave none); every get of the result says it again */
    SYRPC_CANCELLED = 9        /* SY007 (extension 1.7): the request was cancelled (syrpc_cancel);
                                * also a worker's syrpc_extend_lease of a cancelled request */
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

/*
 * Status of the last call on the handle, and its error details.  For
 * SYRPC_REMOTE_ERROR the message is the worker's (up to 1024 bytes) and
 * the detail its JSON text, whole, whatever its size.
 */
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
 * Queue a request with a deadline (extension 1.7): seconds since the Unix
 * epoch, as the server's clock counts them (a syrpc_request_deadline
 * passes on as it is; "in 5 s" is the server's now plus 5, or the
 * client's clock's if it keeps time with the server's).  No worker gets
 * the request at or after its deadline, nor after its app's request_ttl:
 * its caller's syrpc_get_result then returns SYRPC_REQUEST_FAILED (SY002,
 * "request ... expired"), at the deadline.  A deadline already past is
 * accepted, and the request expires at once.  0 (or INFINITY): no
 * deadline, the same as syrpc_put_request (any extension version).
 * Negative or NaN: SYRPC_BAD_INPUT.
 */
syrpc_status syrpc_put_request_deadline(syrpc_conn *conn, const char *type, const json_t *data,
                                        double deadline, char result_id[SYRPC_ID_SIZE]);
syrpc_status syrpc_put_request_deadline_text(syrpc_conn *conn, const char *type, const char *json,
                                             double deadline, char result_id[SYRPC_ID_SIZE]);

/*
 * Wait up to timeout_ms (SYRPC_FOREVER: no limit) for the result of
 * result_id and take it: *result is a new reference.  On any status other
 * than SYRPC_OK, *result is NULL.  A result that a json_t cannot hold
 * exactly is SYRPC_BAD_INPUT, and taken all the same: use
 * syrpc_get_result_text where results may hold such numbers.  A worker's
 * error (extension 1.7) is SYRPC_REMOTE_ERROR, a cancelled request
 * SYRPC_CANCELLED (also for a wait that began before the cancel); neither
 * is taken: each later get says it again, until the app's result_ttl.
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
 * Statuses as for syrpc_get_result (SYRPC_REMOTE_ERROR included).  With
 * the server's syrpc.call_deadline on (extension 1.7) the request's
 * deadline is the call's first wait, at most SYRPC_WAIT_SLICE_MS: for a
 * longer timeout that should also be the deadline, use
 * syrpc_put_request_deadline and syrpc_get_result.
 */
syrpc_status syrpc_call(syrpc_conn *conn, const char *type, const json_t *data,
                        int timeout_ms, json_t **result);
/*
 * The same with JSON text both ways: json is sent as is, *result is the
 * server's text (free with syrpc_free; NULL on any status but SYRPC_OK).
 */
syrpc_status syrpc_call_text(syrpc_conn *conn, const char *type, const char *json,
                             int timeout_ms, char **result);

/*
 * Cancel a request (extension 1.7): *cancelled is 1 if this call
 * cancelled it, 0 if it had already ended (answered, failed, expired, or
 * cancelled before).  A queued request is withdrawn and no worker gets
 * it; one in flight is marked, and its worker's answer (result, error or
 * give-up) is accepted and dropped (syrpc_is_cancelled tells the worker).
 * Its caller's syrpc_get_result then returns SYRPC_CANCELLED, a wait
 * already under way included.  SYRPC_BAD_INPUT: another app's (SY005), or
 * unknown (SY008).
 */
syrpc_status syrpc_cancel(syrpc_conn *conn, const char *result_id, int *cancelled);

/* ---- worker side ---- */

/*
 * Wait up to timeout_ms for a request and claim it (a lease).  *req is a
 * new request, the caller's to release with syrpc_request_free, whenever
 * one was claimed: with SYRPC_OK; with SYRPC_BAD_INPUT if its data cannot
 * be held exactly in a json_t (syrpc_request_data is NULL, the text is
 * there); with SYRPC_NO_MEMORY if converting it ran out.  Such a request
 * is claimed all the same: answer it or give it up (syrpc_fail_request).
 * On any other status *req is NULL.  From extension 1.7 it claims with
 * the batch procedure (a batch of one), which tells the request's
 * attempts and deadline.
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
 * once, and so on (a release does not count), when the server reports
 * it; 0 when it does not.  Extension 1.7 reports it to syrpc_get_request
 * and to syrpc_serve's handlers; older ones, and
 * syrpc_put_result_get_request's next request, do not.
 */
int syrpc_request_attempts(const syrpc_request *req);

/*
 * When the request expires, in seconds since the Unix epoch: its
 * deadline (syrpc_put_request_deadline) or its app's request_ttl after
 * it was put, whichever is earlier; 0 when the server does not say (as
 * for syrpc_request_attempts).  A handler need not start what cannot end
 * before it; syrpc_put_request_deadline passes it on to a request of its
 * own.
 */
double syrpc_request_deadline(const syrpc_request *req);

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
 * Answer a claimed request with an error instead of data (extension 1.7):
 * its caller gets SYRPC_REMOTE_ERROR with message (1 to 1024 bytes, else
 * SYRPC_BAD_INPUT) as syrpc_error_message and detail (any JSON, or NULL
 * for none) as syrpc_error_detail.  Refused as syrpc_put_result is
 * (SY004, SY005; a detail over syrpc.max_payload_size: 54000); for a
 * cancelled request accepted and dropped.  _text: the detail as JSON
 * text, sent as is.
 */
syrpc_status syrpc_put_error(syrpc_conn *conn, const char *result_id, const char *message,
                             const json_t *detail);
syrpc_status syrpc_put_error_text(syrpc_conn *conn, const char *result_id, const char *message,
                                  const char *detail_json);

/*
 * Whether a request was cancelled (extension 1.7): *cancelled is 1 once
 * its caller cancelled it (syrpc_cancel), 0 while it is queued, in flight
 * or answered.  A long handler can ask, and stop: what it answers then is
 * dropped.
 */
syrpc_status syrpc_is_cancelled(syrpc_conn *conn, const char *result_id, int *cancelled);

/*
 * Extend the lease of a claimed request (extension 1.7): it now ends
 * seconds (more than 0, at most 100 years) from now, whatever was left of
 * it, and no other worker gets the request until then.  SYRPC_BAD_INPUT
 * with SY004 when the lease was lost (ran out, answered, never claimed),
 * SYRPC_CANCELLED when the request was cancelled.
 *
 * A handler of syrpc_serve may call it (and the other worker calls) on
 * the serve loop's own handle, passed in the handler's arg: the loop
 * sends nothing while a handler runs.  That is how the serve loop extends
 * a lease while a handler runs: a slow handler extends its request's
 * lease as it goes, before the lease runs out.  In a batch the other
 * requests' leases run on meanwhile.  For the request its handler holds
 * the call names the attempt it came with, so that once that lease ran
 * out and another worker claimed the request, the other worker's lease is
 * refused (SY004), not extended (nor released).
 */
syrpc_status syrpc_extend_lease(syrpc_conn *conn, const char *result_id, double seconds);

/*
 * Hand a claimed request back unanswered (extension 1.7): another claim
 * may take it delay_seconds (0 or more, at most 100 years) from now, or
 * at once for 0, and this attempt does not count against max_attempts.
 * Refused as syrpc_extend_lease; for a cancelled request accepted, and
 * nothing done.  A handler that releases its own request on the serve
 * loop's handle is not answered by the loop, nor counted as served.
 */
syrpc_status syrpc_release(syrpc_conn *conn, const char *result_id, double delay_seconds);

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
 * what a request carries can grow without changing this type.  To answer
 * with an error that its caller gets as SYRPC_REMOTE_ERROR, a handler
 * calls syrpc_reply_error and returns NULL.
 */
typedef json_t *(*syrpc_handler)(const syrpc_request *req, void *arg);

/*
 * In a handler of syrpc_serve (json_t or text): answer the request it was
 * lent with an error instead of a result.  The serve loop puts it
 * (syrpc_put_error) once the handler returns, whatever the handler
 * returns, so the way to use it is
 *
 *     if (user == NULL) {
 *         syrpc_reply_error(req, "no such user", detail);
 *         return NULL;
 *     }
 *
 * message: 1 to 1024 bytes; detail: any JSON (copied), or NULL for none.
 * Returns SYRPC_OK, or SYRPC_BAD_INPUT (a message not 1 to 1024 bytes, a
 * detail a json_t holds but JSON cannot: NaN, say) or SYRPC_NO_MEMORY,
 * and then nothing is set; a second call replaces the first.  Against
 * extension 1.6 or older, which has no remote errors, the error is not
 * sent: the handler's result answers, or for NULL the error object of a
 * failing handler, as without this call (return a result of your own to
 * tell old servers' callers more).  A detail the server refuses (over
 * syrpc.max_payload_size; not JSON, from _text) gives the request up with
 * the server's reason, as a refused result does.  Only syrpc_serve reads
 * it: for a request from syrpc_get_request use syrpc_put_error.
 */
syrpc_status syrpc_reply_error(const syrpc_request *req, const char *message, const json_t *detail);
/* The same with the detail as JSON text (sent as is), or NULL. */
syrpc_status syrpc_reply_error_text(const syrpc_request *req, const char *message, const char *detail_json);

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
 * one commit; from 1.7 with the batch calls also for a batch of one, so
 * that handlers see syrpc_request_attempts and syrpc_request_deadline.
 * An error a handler answers with (syrpc_reply_error) goes with
 * syrpc_put_error, on its own, before the rest of its batch.  A request
 * its handler settled itself on the loop's handle (syrpc_put_result,
 * syrpc_put_error, syrpc_fail_request: served; syrpc_release: not
 * served) is not answered again.  It never claims more than max_requests
 * leaves to serve.
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

/*
 * Prepare each statement once per connection and run it by name (on: 1),
 * or send each with its text, as by default (0).  Prepared, the server
 * parses and analyses a call once per connection instead of at every call:
 * about a tenth of its CPU per RPC.  Leave it off behind pgbouncer in
 * transaction pooling mode before pgbouncer 1.21 (or without its
 * max_prepared_statements): a prepared statement belongs to one server
 * connection, and the next transaction may run on another.  A statement
 * the server lost (DISCARD ALL, DEALLOCATE ALL) is prepared again.
 */
syrpc_status syrpc_set_prepared(syrpc_conn *conn, int on);

#ifdef __cplusplus
}
#endif

#endif /* SYRPC_CLIENT_H */
