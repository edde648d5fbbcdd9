/*-------------------------------------------------------------------------
 *
 * syrpc.h
 *	  Declarations shared by the syrpc extension's source files.
 *
 * syrpc.c    SQL-callable functions: argument checks, GUCs
 * procedures.c SQL-callable procedures (they commit inside)
 * wait.c     waiting for requests and results, answering requests
 * store.c    every SQL statement syrpc runs, as saved SPI plans
 * wakeup.c   waiter registration, wake-ups at commit
 * registry.c the shared-memory waiter registry (when preloaded)
 *
 *-------------------------------------------------------------------------
 */
#ifndef SYRPC_H
#define SYRPC_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/uuid.h"

/*
 * syrpc.so is built with -fvisibility=hidden: it exports only what
 * PostgreSQL looks up by name (the module magic, _PG_init, the fmgr entry
 * points and their info functions), declared between these two.  Nothing
 * else of ours leaks into every backend's symbol table.
 */
#define SYRPC_EXPORTS_BEGIN	_Pragma("GCC visibility push(default)")
#define SYRPC_EXPORTS_END	_Pragma("GCC visibility pop")

/* Number of result partitions ("hash table of 64 result queues"). */
#define SYRPC_BUCKETS		64

/* Longest app or type name, in bytes. */
#define SYRPC_NAME_MAX		63

/* SQLSTATEs of our own, class SY. */
#define ERRCODE_SYRPC_REQUEST_FAILED	MAKE_SQLSTATE('S','Y','0','0','1')
#define ERRCODE_SYRPC_REQUEST_EXPIRED	MAKE_SQLSTATE('S','Y','0','0','2')
#define ERRCODE_SYRPC_RESULT_CONSUMED	MAKE_SQLSTATE('S','Y','0','0','3')
#define ERRCODE_SYRPC_NOT_IN_FLIGHT		MAKE_SQLSTATE('S','Y','0','0','4')
#define ERRCODE_SYRPC_WRONG_APP			MAKE_SQLSTATE('S','Y','0','0','5')
/* SY006 and SY007 are kept for remote errors and cancellation. */
#define ERRCODE_SYRPC_UNKNOWN_RESULT	MAKE_SQLSTATE('S','Y','0','0','8')

/* Longest reason a worker may give for failing a request, in bytes. */
#define SYRPC_REASON_MAX	1024

/*
 * Longest lease_time, result_ttl and request_ttl: far from what a
 * timestamp can take (now + 100 years cannot overflow), far beyond any
 * use.  The C and SQL forms must agree.
 */
#define SYRPC_INTERVAL_MAX_US	INT64CONST(3155760000000000)
#define SYRPC_INTERVAL_MAX_SQL	"interval '100 years'"

/* An app's settings, in microseconds where they are times. */
typedef struct SyrpcApp
{
	int64		lease_us;
	int32		max_attempts;
	int64		result_ttl_us;
	int64		request_ttl_us;
} SyrpcApp;

/* What store_request_state found out about one request. */
typedef enum SyrpcRequestState
{
	SYRPC_REQ_NONE,				/* no such request (answered, expired or never put) */
	SYRPC_REQ_WRONG_APP,		/* it belongs to another app */
	SYRPC_REQ_WAITING,			/* queued or leased: *until says when to look again */
	SYRPC_REQ_FAILED,			/* last lease ran out at max_attempts */
	SYRPC_REQ_EXPIRED			/* request_ttl passed before it was answered */
} SyrpcRequestState;

/* What store_result_state found out about one result. */
typedef enum SyrpcResultState
{
	SYRPC_RES_NONE,				/* no such result (not yet put, expired, or unknown) */
	SYRPC_RES_WRONG_APP,		/* it belongs to another app */
	SYRPC_RES_PRESENT,			/* there and not consumed */
	SYRPC_RES_CONSUMED			/* already taken by a syrpc_get_result */
} SyrpcResultState;

/* What store_finish_request did with the request a result answers. */
typedef enum SyrpcFinishState
{
	SYRPC_FIN_OK,				/* deleted: the result may be stored */
	SYRPC_FIN_WRONG_APP,		/* the request belongs to another app */
	SYRPC_FIN_NOT_CLAIMED,		/* queued, never handed to a worker */
	SYRPC_FIN_ANSWERED,			/* a result is already there */
	SYRPC_FIN_FAILED,			/* a worker failed it (syrpc_fail_request) */
	SYRPC_FIN_UNKNOWN			/* no such request: never put, or expired */
} SyrpcFinishState;

/* GUCs, in syrpc.c */
extern int	syrpc_max_payload_kb;
extern int	syrpc_cleanup_interval_ms;
extern bool syrpc_async_acks;
extern bool syrpc_async_results;
extern bool syrpc_notify;

/* syrpc.c: argument checks (they raise the errors), and the put */
extern text *arg_name(FunctionCallInfo fcinfo, int n, const char *what);
extern Datum arg_data(FunctionCallInfo fcinfo, int n);
extern pg_uuid_t *arg_uuid(FunctionCallInfo fcinfo, int n);
extern TimestampTz arg_deadline(FunctionCallInfo fcinfo, int n, const char *func);
extern void check_writable(const char *func);
extern pg_uuid_t *put_request(text *app, text *type, Datum data);

/* store.c: all of these run inside an SPI connection of the caller's */
extern void store_init(void);
extern int	syrpc_bucket_of(const pg_uuid_t *id);
extern bool store_load_app(text *app, bool create, SyrpcApp *settings);
extern void store_configure(text *app, Datum *values, bool *isnull);
extern pg_uuid_t *store_put_request(text *app, text *type, Datum data,
									TimestampTz now, const SyrpcApp *settings);
extern bool store_claim(text *app, TimestampTz now, const SyrpcApp *settings,
						Datum *values);
extern TimestampTz store_next_look(text *app, TimestampTz now,
										const SyrpcApp *settings);
extern SyrpcFinishState store_finish_request(text *app, const pg_uuid_t *id,
											   TimestampTz now);
extern SyrpcFinishState store_fail_request(text *app, const pg_uuid_t *id,
											 text *reason, TimestampTz now);
extern void store_put_result(text *app, const pg_uuid_t *id, Datum data,
							 TimestampTz now, const SyrpcApp *settings);
extern bool store_consume_result(text *app, const pg_uuid_t *id,
								 TimestampTz now, Datum *data);
extern SyrpcResultState store_result_state(text *app, const pg_uuid_t *id,
										   TimestampTz now);
extern SyrpcRequestState store_request_state(text *app, const pg_uuid_t *id,
											 TimestampTz now,
											 const SyrpcApp *settings,
											 TimestampTz *until,
											 int32 *attempts,
											 text **failure);
extern int64 store_cleanup(TimestampTz now);

/* wait.c */
extern bool syrpc_sleep_without_snapshot;
extern bool owns_transaction(void);
extern void commit_without_flush(void);
extern void relax_commit(bool owned);
extern void relax_result_commit(bool owned);
extern void maybe_cleanup(TimestampTz now);
extern bool wait_for_request(text *app, TimestampTz deadline, bool owned, Datum *values);
extern void answer_request(text *app, pg_uuid_t *id, Datum data, TimestampTz now);
extern void fail_request(text *app, pg_uuid_t *id, text *reason, TimestampTz now);
extern void check_client(void);
extern void syrpc_wait_init(void);
extern bool wait_for_result(text *app, pg_uuid_t *id, TimestampTz deadline, bool owned,
							Datum *data);

/* wakeup.c */
typedef enum SyrpcWaitKind
{
	SYRPC_WAIT_REQUEST = 0x5352,	/* waiters for any request of an app */
	SYRPC_WAIT_RESULT = 0x5353		/* waiters for one result_id */
} SyrpcWaitKind;

extern uint64 syrpc_app_key(text *app);
extern uint64 syrpc_result_key(const pg_uuid_t *id);
extern void syrpc_waiter_register(SyrpcWaitKind kind, uint64 key);
extern void syrpc_waiter_unregister(SyrpcWaitKind kind, uint64 key);
extern int	syrpc_waiter_count(SyrpcWaitKind kind, uint64 key);
typedef void (*syrpc_waiter_fn) (void *arg, int pid, SyrpcWaitKind kind, uint64 key);
extern void syrpc_list_waiters(syrpc_waiter_fn fn, void *arg);
extern void syrpc_wake_at_commit(SyrpcWaitKind kind, uint64 key);
extern void syrpc_wake_on_abort(SyrpcWaitKind kind, uint64 key);
extern void syrpc_pass_on_wake(SyrpcWaitKind kind, uint64 key);
extern void syrpc_waiter_rearm(void);
extern bool syrpc_cleanup_trylock(void);
extern bool syrpc_cleanup_window_claim(TimestampTz now, int64 interval_us);
extern void syrpc_wakeup_init(void);
extern void syrpc_give_way(void);
extern bool syrpc_must_give_way(void);

/* registry.c */
extern void registry_install_hooks(void);
extern bool registry_in_use(void);
extern void registry_register(SyrpcWaitKind kind, uint64 key);
extern void registry_forget(void);
extern void registry_forget_sub(SubTransactionId sub);
extern void registry_wake(SyrpcWaitKind kind, uint64 key, int count);
extern void registry_rearm(void);
extern bool registry_was_picked(void);
extern int	registry_count(SyrpcWaitKind kind, uint64 key);
extern void registry_list(syrpc_waiter_fn fn, void *arg);

#endif							/* SYRPC_H */
