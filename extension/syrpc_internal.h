/*-------------------------------------------------------------------------
 *
 * syrpc_internal.h
 *	  Declarations shared by the syrpc extension's source files (not to be
 *	  confused with client/c/syrpc.h, the client library's API).
 *
 * Where to change what:
 *
 * module.c          _PG_init and the GUCs (syrpc.*)
 * args.c            checks of SQL arguments, and of whether a call may run
 *                   here (standby, read-only): every error about bad input
 * access.c          who may use which app (the one check of every entry
 *                   point), and running as the extension's owner
 * functions.c       the SQL-callable functions: parse arguments, open SPI,
 *                   call rpc.c; nothing else
 * admin.c           the SQL-callable administration and monitoring functions
 * procedures.c      the SQL-callable procedures, which commit inside: how a
 *                   procedure drops its snapshot and runs as its owner
 * rpc.c             the RPC itself: a put, an answer, a failure, a wait for a
 *                   request or a result, and the errors that explain them
 * marks.c           leases and taken results in shared memory (preloaded):
 *                   claims and takes that write no row; states at the top
 * handoff.c         syrpc_call in shared memory (preloaded): the slots, their
 *                   states (at the top of the file), spilling to the table
 * sleep.c           one sleep of a wait: latch, deadline, client socket,
 *                   DROP EXTENSION giving way
 * commit.c          how a call's commit is flushed (owns_transaction,
 *                   relax_commit, commit_without_flush)
 * store.c           the statements on requests (saved SPI plans)
 * store_result.c    the statements on results (store_direct.c)
 * store_control.c   a cancel's delete, a lease's extension or release
 * store_apps.c      the statements on apps and grants
 * store_spi.c       saved plans, running them, reading their columns
 * store_direct.c    rows by primary key without the planner or executor
 * apps.c            the per-backend cache of app settings
 * cleanup.c         when expired rows are deleted, and by which backend
 * stats.c           counters and latency histograms per app (preloaded)
 * wakeup.c          wake-ups at commit: the pending list, the transaction
 *                   callbacks, whom to wake; waiters register through
 * waiters_lockmgr.c   the lock manager (plain CREATE EXTENSION), or
 * waiters_shmem.c     syrpc's own shared memory (shared_preload_libraries),
 *                   the two behind one SyrpcWaiterOps, chosen in _PG_init
 *
 * A new SQL entry point: its C function in functions.c or admin.c (or
 * procedures.c if it commits), its argument checks from args.c, then
 * become_owner and check_access (or check_owner) before it reads or
 * writes anything, its SQL in
 * a new syrpc--A--B.sql and the full syrpc--B.sql, and its name between
 * SYRPC_EXPORTS_BEGIN/END.  A new statement: store.c.  A new kind of
 * waiter or wake-up: wakeup.c and both waiters_*.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SYRPC_INTERNAL_H
#define SYRPC_INTERNAL_H

#include "postgres.h"

#include "access/genam.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/lock.h"
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

/* Most requests one batched claim takes, and answers one call puts (1.6). */
#define SYRPC_BATCH_MAX		1000

/* Longest app or type name, in bytes. */
#define SYRPC_NAME_MAX		63

/* SQLSTATEs of our own, class SY. */
#define ERRCODE_SYRPC_REQUEST_FAILED	MAKE_SQLSTATE('S','Y','0','0','1')
#define ERRCODE_SYRPC_REQUEST_EXPIRED	MAKE_SQLSTATE('S','Y','0','0','2')
#define ERRCODE_SYRPC_RESULT_CONSUMED	MAKE_SQLSTATE('S','Y','0','0','3')
#define ERRCODE_SYRPC_NOT_IN_FLIGHT		MAKE_SQLSTATE('S','Y','0','0','4')
#define ERRCODE_SYRPC_WRONG_APP			MAKE_SQLSTATE('S','Y','0','0','5')
#define ERRCODE_SYRPC_REMOTE_ERROR		MAKE_SQLSTATE('S','Y','0','0','6')
#define ERRCODE_SYRPC_CANCELLED			MAKE_SQLSTATE('S','Y','0','0','7')
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

/*
 * The locks syrpc takes in the lock manager are advisory-lock tags of
 * this database, told apart from pg_advisory_lock's keys (and from each
 * other) by field4, which pg_locks shows as objsubid.
 */
typedef enum SyrpcLockKind
{
	SYRPC_LOCK_WAIT_REQUEST = 0x5352,	/* waiters for an app's requests */
	SYRPC_LOCK_WAIT_RESULT = 0x5353,	/* waiters for one result_id */
	SYRPC_LOCK_CLEANUP = 0x5343,	/* serialises cleanup runs */
	SYRPC_LOCK_CLEANUP_WINDOW = 0x5357, /* elects one cleanup per interval */
	SYRPC_LOCK_PICK = 0x5350,	/* puts pick request waiters under it */
	SYRPC_LOCK_GIVE_WAY = 0x5347	/* DROP/ALTER EXTENSION waits for waiters */
} SyrpcLockKind;

static inline void
syrpc_lock_tag(LOCKTAG *tag, SyrpcLockKind kind, uint64 key)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (key >> 32),
						 (uint32) key, (uint16) kind);
}

/* What a blocked call waits for; the values are its lock kinds. */
typedef enum SyrpcWaitKind
{
	SYRPC_WAIT_REQUEST = SYRPC_LOCK_WAIT_REQUEST,	/* any request of an app */
	SYRPC_WAIT_RESULT = SYRPC_LOCK_WAIT_RESULT	/* one result_id */
} SyrpcWaitKind;

/* Called for each waiter by list_waiters. */
typedef void (*syrpc_waiter_fn) (void *arg, int pid, SyrpcWaitKind kind, uint64 key);

/* An app's settings, in microseconds where they are times. */
typedef struct SyrpcApp
{
	int64		lease_us;
	int32		max_attempts;
	int64		result_ttl_us;
	int64		request_ttl_us;
} SyrpcApp;

/* Which side of an app a call is on. */
typedef enum SyrpcSide
{
	SYRPC_CALLER,				/* puts requests, takes results */
	SYRPC_WORKER				/* claims requests, answers them */
} SyrpcSide;

/* A call running as the extension's owner (become_owner). */
typedef struct SyrpcAsOwner
{
	Oid			caller;			/* who called: whose grants count */
	Oid			owner;			/* the function's owner, run as */
	int			save_sec;
	int			nestlevel;
} SyrpcAsOwner;

/* The grants of one app (or of "*"), as role oids, cached per backend. */
typedef struct SyrpcAccess
{
	bool		has_grants;		/* any row for the app, either side */
	List	   *callers;		/* roles granted the caller side */
	List	   *workers;		/* roles granted the worker side */
} SyrpcAccess;

/* What syrpc_configure changes: each setting that is not NULL. */
typedef struct SyrpcAppChange
{
	NullableDatum lease_time;	/* interval */
	NullableDatum max_attempts; /* int4 */
	NullableDatum result_ttl;	/* interval */
	NullableDatum request_ttl;	/* interval */
} SyrpcAppChange;

/*
 * How a call waits.  Made by the SQL entry point, which alone knows how it
 * was called; rpc.c and sleep.c only read it.
 */
typedef struct SyrpcWait
{
	TimestampTz deadline;		/* 0: no limit; now or earlier: look once */
	bool		owns_xact;		/* the call is its whole transaction, so it
								 * may choose how its commit is flushed */
	bool		no_snapshot;	/* a procedure after its commit: the only
								 * snapshot left is the one SPI made for
								 * its last statement, which the sleep
								 * may drop (ForgetPortalSnapshots) */
	bool		ends_xact;		/* a look at once (no wait) that its own
								 * transaction's end follows, no later
								 * than before any wait: a row lock left
								 * by a claim that found nothing goes
								 * with it, so no subtransaction */
	bool		in_memory;		/* waits in shared memory holding no lock:
								 * a DROP EXTENSION need not wait for it,
								 * so it does not give way */
} SyrpcWait;

/* A claimed request, in memory that outlives SPI. */
typedef struct SyrpcClaim
{
	Datum		type;			/* text */
	Datum		result_id;		/* uuid */
	Datum		data;			/* jsonb */
	int32		attempts;		/* 1 on the first delivery */
	TimestampTz created_at;		/* when it was put */
	TimestampTz expires_at;		/* its deadline, or request_ttl's end */
} SyrpcClaim;

/* What store_request_state found out about one request. */
typedef enum SyrpcRequestState
{
	SYRPC_REQ_NONE,				/* no such request (answered, expired or never put) */
	SYRPC_REQ_WRONG_APP,		/* it belongs to another app */
	SYRPC_REQ_WAITING,			/* queued or leased: until says when to look again */
	SYRPC_REQ_FAILED,			/* last lease ran out at max_attempts, or failed */
	SYRPC_REQ_EXPIRED			/* request_ttl passed before it was answered */
} SyrpcRequestState;

typedef struct SyrpcRequestInfo
{
	SyrpcRequestState state;
	TimestampTz until;			/* SYRPC_REQ_WAITING: when it changes by itself */
	int32		attempts;		/* whenever the request exists */
	text	   *failure;		/* the reason a worker failed it, else NULL */
} SyrpcRequestInfo;

/* What store_result_state found out about one result. */
typedef enum SyrpcResultState
{
	SYRPC_RES_NONE,				/* no such result (not yet put, expired, or unknown) */
	SYRPC_RES_WRONG_APP,		/* it belongs to another app */
	SYRPC_RES_PRESENT,			/* there and not consumed */
	SYRPC_RES_CONSUMED,			/* already taken by a syrpc_get_result */
	SYRPC_RES_CANCELLED			/* its caller cancelled it (1.7) */
} SyrpcResultState;

/*
 * What a result says besides its data (1.7): a worker's error (data is
 * its detail), or that its caller cancelled the request.
 */
typedef struct SyrpcOutcome
{
	text	   *error;			/* syrpc_put_error's message, else NULL */
	bool		cancelled;		/* syrpc_cancel */
} SyrpcOutcome;

/* What store_finish_request did with the request a result answers. */
typedef enum SyrpcFinishState
{
	SYRPC_FIN_OK,				/* deleted: the result may be stored */
	SYRPC_FIN_WRONG_APP,		/* the request belongs to another app */
	SYRPC_FIN_NOT_CLAIMED,		/* queued, never handed to a worker */
	SYRPC_FIN_ANSWERED,			/* a result is already there */
	SYRPC_FIN_FAILED,			/* a worker failed it (syrpc_fail_request) */
	SYRPC_FIN_CANCELLED,		/* its caller cancelled it: drop the answer */
	SYRPC_FIN_UNKNOWN			/* no such request: never put, or expired */
} SyrpcFinishState;

/* A timed-out in-memory request, as handoff_spill writes it to the table. */
typedef struct SyrpcSpill
{
	pg_uuid_t	id;
	text	   *type;
	Datum		data;			/* jsonb */
	TimestampTz created_at;
	TimestampTz ready_at;		/* now, or when the lease of its holder ends */
	TimestampTz expires_at;
	int32		attempts;
} SyrpcSpill;

/* module.c: the GUCs */
extern int	syrpc_max_payload_kb;
extern int	syrpc_cleanup_interval_ms;
extern bool syrpc_async_acks;
extern bool syrpc_async_results;
extern bool syrpc_notify;
extern bool syrpc_create_apps;
extern bool syrpc_track_stats;
extern int	syrpc_memory_payload_kb;	/* handoff.c */
extern bool syrpc_memory_calls;
extern bool syrpc_call_deadline;

/* args.c: they raise the errors */
extern text *arg_name(FunctionCallInfo fcinfo, int n, const char *what);
extern Datum arg_data(FunctionCallInfo fcinfo, int n);
extern pg_uuid_t *arg_uuid(FunctionCallInfo fcinfo, int n);
extern int	arg_batch_max(FunctionCallInfo fcinfo, int n);
extern int	arg_answers(FunctionCallInfo fcinfo, int n, Datum **ids, Datum **data);
extern text *arg_reason(FunctionCallInfo fcinfo, int n);
extern text *arg_message(FunctionCallInfo fcinfo, int n, const char *what,
						 const char *hint);
extern TimestampTz arg_request_deadline(FunctionCallInfo fcinfo, int n);
extern int64 arg_lease_seconds(FunctionCallInfo fcinfo, int n);
extern int64 arg_delay(FunctionCallInfo fcinfo, int n);
extern Datum arg_detail(FunctionCallInfo fcinfo, int n);
extern int32 arg_attempt(FunctionCallInfo fcinfo, int n);
extern TimestampTz arg_deadline(FunctionCallInfo fcinfo, int n, const char *func);
extern NullableDatum arg_interval(FunctionCallInfo fcinfo, int n, const char *what);
extern NullableDatum arg_max_attempts(FunctionCallInfo fcinfo, int n);
extern Oid	arg_role(FunctionCallInfo fcinfo, int n);
extern SyrpcSide arg_side(FunctionCallInfo fcinfo, int n);
extern void check_writable(const char *func);

/* access.c */
extern const char *side_name(SyrpcSide side);
extern void become_owner(FunctionCallInfo fcinfo, SyrpcAsOwner *as);
extern void back_to_caller(SyrpcAsOwner *as);
extern void enter_as_owner(FunctionCallInfo fcinfo, SyrpcAsOwner *as);
extern void leave_as_owner(SyrpcAsOwner *as);
extern void check_access(const SyrpcAsOwner *as, text *app, SyrpcSide side);
extern bool may_use(const SyrpcAsOwner *as, text *app, SyrpcSide side);
extern void check_owner(const SyrpcAsOwner *as, const char *func);

/* commit.c */
extern void commit_init(void);
extern bool owns_transaction(void);
extern void commit_without_flush(void);
extern void commit_with_flush(void);
extern void relax_commit(bool owned);
extern void relax_result_commit(bool owned);

/* rpc.c: inside an SPI connection of the caller's */
extern pg_uuid_t *put_request(text *app, text *type, Datum data, TimestampTz deadline);
extern bool wait_for_request(text *app, const SyrpcWait *wait, SyrpcClaim *claim);
extern int	wait_for_requests(text *app, const SyrpcWait *wait, int max,
							  SyrpcClaim *claims);
extern void answer_requests(text *app, int n, const Datum *ids, const Datum *data);
extern void answer_request(text *app, pg_uuid_t *id, Datum data, TimestampTz now);
extern void answer_with_error(text *app, pg_uuid_t *id, text *message, Datum detail,
							  TimestampTz now);
extern void fail_request(text *app, pg_uuid_t *id, text *reason, TimestampTz now);
extern bool wait_for_result(text *app, pg_uuid_t *id, const SyrpcWait *wait,
							Datum *data);
extern bool put_call(text *app, text *type, Datum data, TimestampTz deadline,
					 pg_uuid_t **id);
extern void load_app_for_put(text *app, SyrpcApp *settings);
extern void limit_to_deadline(SyrpcApp *settings, TimestampTz deadline, TimestampTz now);
extern char *id_text(const pg_uuid_t *id);
extern void report_wrong_app(text *app, const pg_uuid_t *id) pg_attribute_noreturn();
extern void report_not_in_flight(SyrpcFinishState state, text *app, const pg_uuid_t *id);
extern void report_outcome(text *app, const pg_uuid_t *id, const SyrpcOutcome *outcome,
						   Datum data);
extern void report_cancelled(text *app, const pg_uuid_t *id) pg_attribute_noreturn();

/* control.c (1.7): a caller's cancel, a worker's look, lease and release */
extern bool cancel_request(text *app, pg_uuid_t *id);
extern bool request_cancelled(text *app, pg_uuid_t *id);
extern TimestampTz extend_lease(text *app, pg_uuid_t *id, int32 attempt, int64 lease_us);
extern void release_request(text *app, pg_uuid_t *id, int32 attempt, int64 delay_us);
extern void report_failed_by_worker(text *app, const pg_uuid_t *id,
									text *reason) pg_attribute_noreturn();
extern void report_call_failed(text *app, const pg_uuid_t *id, int32 attempts,
							   int32 max_attempts) pg_attribute_noreturn();
extern void report_call_expired(text *app, const pg_uuid_t *id) pg_attribute_noreturn();

/* handoff.c: syrpc_call through shared memory */
typedef enum HandoffEnd
{
	HANDOFF_ANSWERED,			/* the answer is in result */
	HANDOFF_IN_TABLE,			/* the answer is a row of syrpc.result */
	HANDOFF_TIMED_OUT			/* spill the request (handoff_spill, handoff_spilled) */
} HandoffEnd;

typedef enum HandoffAnswer
{
	HANDOFF_NOT_HERE,			/* not in memory: the table path */
	HANDOFF_TAKEN,				/* goes to its caller at commit */
	HANDOFF_TAKEN_IN_TABLE,		/* the same, the answer stored as a result row */
	HANDOFF_DROPPED,			/* its caller has gone: accepted, dropped */
	HANDOFF_REFUSED				/* not in flight: see *refused */
} HandoffAnswer;

typedef struct HandoffCount
{
	char		app[NAMEDATALEN];
	int64		queued;
	int64		in_flight;
	TimestampTz oldest_queued;
} HandoffCount;

extern void handoff_init(bool preloaded);
extern bool handoff_usable(void);
extern bool handoff_put(text *app, text *type, Datum data, const SyrpcApp *settings,
						pg_uuid_t *id);
extern HandoffEnd handoff_wait(text *app, const SyrpcWait *wait, Datum *result);
extern void handoff_spill(text *app);
extern void handoff_spilled(void);
extern bool handoff_claim(text *app, TimestampTz now, SyrpcClaim *claim);
extern HandoffAnswer handoff_answer(text *app, const pg_uuid_t *id, Datum data,
									bool failed, bool in_table,
									SyrpcFinishState *refused,
									TimestampTz *claimed_at);

/* What handoff_lease did with a lease in memory (1.7). */
typedef enum HandoffLease
{
	HANDOFF_LEASE_NOT_HERE,		/* not in memory: the table path */
	HANDOFF_LEASE_DONE,			/* extended, or released */
	HANDOFF_LEASE_LOST,			/* not leased to this backend (SY004) */
	HANDOFF_LEASE_WITHDRAWN,	/* its caller has gone (SY007) */
	HANDOFF_LEASE_WRONG_APP,	/* another app's (SY005) */
	HANDOFF_LEASE_OPEN			/* claimed in this open transaction */
} HandoffLease;

extern HandoffLease handoff_lease(text *app, const pg_uuid_t *id, int32 attempt,
								  TimestampTz until, bool release, TimestampTz *end);
extern int	handoff_withdrawn(text *app, const pg_uuid_t *id);
extern List *handoff_requests(void);
extern void handoff_list(syrpc_waiter_fn fn, void *arg);

/* sleep.c */
extern bool sleep_until(const SyrpcWait *wait, TimestampTz until);
extern void check_client(void);

/* apps.c */
extern void apps_init(void);
extern bool app_cache_get(const char *name, SyrpcApp *settings);
extern void app_cache_put(const char *name, const SyrpcApp *settings);
extern void app_created(void);
extern void app_changed(void);
extern uint64 app_generation(void);
extern const SyrpcAccess *app_access_get(const char *name);
extern const SyrpcAccess *app_access_put(const char *name, bool has_grants,
										 List *callers, List *workers);

/* store_spi.c: for the store_*.c files, inside an SPI connection */
extern uint64 store_statements;	/* run so far: none, no lock taken */
extern SPIPlanPtr plan_prepare(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes);
extern uint64 plan_run(SPIPlanPtr plan, Datum *values, const char *nulls, long count);
extern Datum result_col(int n, bool *isnull);
extern Datum result_row_col(uint64 row, int n, bool *isnull);
extern Datum result_col_notnull(int n);
extern Datum result_col_out(int n);
extern Datum datum_out(Datum d);
extern bool same_text(text *a, text *b);

/* store.c, store_apps.c: all of these run inside an SPI connection of the caller's */
extern void store_init(void);
extern int	syrpc_bucket_of(const pg_uuid_t *id);
extern bool store_load_app(text *app, bool create, SyrpcApp *settings);
extern void store_configure(text *app, const SyrpcAppChange *change);
extern bool store_has_grants(void);
extern const SyrpcAccess *store_load_access(const char *app);
extern void store_grant(text *app, const char *role, SyrpcSide side);
extern int64 store_revoke(text *app, const char *role, SyrpcSide side);
extern int64 store_count_requests(text *app);
extern int64 store_count_grants(text *app);
extern int64 store_drop_app(text *app);
extern pg_uuid_t *store_put_request(text *app, text *type, Datum data,
									TimestampTz now, const SyrpcApp *settings);
extern bool store_claim(text *app, TimestampTz now, const SyrpcApp *settings,
						bool in_subxact, SyrpcClaim *claim);
extern TimestampTz store_next_look(text *app, TimestampTz now,
								   const SyrpcApp *settings);
extern void store_forget_next_look(void);
extern SyrpcFinishState store_finish_request(text *app, const pg_uuid_t *id,
											 TimestampTz now, TimestampTz *created_at,
											 TimestampTz *ready_at);
extern SyrpcFinishState store_fail_request(text *app, const pg_uuid_t *id,
										   text *reason, TimestampTz now);
extern void store_put_result(text *app, const pg_uuid_t *id, Datum data,
							 TimestampTz now, const SyrpcApp *settings,
							 TimestampTz requested_at);
extern void store_put_outcome(text *app, const pg_uuid_t *id, Datum data,
							  TimestampTz now, const SyrpcApp *settings,
							  TimestampTz requested_at, const SyrpcOutcome *outcome);
extern bool store_consume_result(text *app, const pg_uuid_t *id,
								 TimestampTz now, Datum *data,
								 TimestampTz *requested_at, SyrpcOutcome *outcome);
extern SyrpcResultState store_result_state(text *app, const pg_uuid_t *id,
										   TimestampTz now);
extern SyrpcRequestInfo store_request_state(text *app, const pg_uuid_t *id,
											TimestampTz now,
											const SyrpcApp *settings);
extern int64 store_cleanup(TimestampTz now);
extern const SyrpcApp store_any_app;

/* store.c: what the tables of this database have (SCHEMA_*) */
#define SCHEMA_FAILURE		0x01	/* 1.3: syrpc.request.failure */
#define SCHEMA_REQUESTED_AT	0x02	/* 1.4: syrpc.result.requested_at */
#define SCHEMA_OUTCOME		0x04	/* 1.7: syrpc.result.error, cancelled */
extern int	store_schema(void);

/* store_direct.c: rows by their primary key, without the planner */
typedef struct SyrpcDirect
{
	Relation	rel;
	Relation	index;			/* its primary key */
	TupleTableSlot *slot;		/* the row direct_find found */
	Snapshot	snapshot;		/* ... and the snapshot it was found with */
	IndexScanDesc scan;			/* a scan direct_scan_begin began */
} SyrpcDirect;

extern void direct_open(SyrpcDirect *d, const char *name, LOCKMODE mode);
extern void direct_open_on(SyrpcDirect *d, const char *name, const char *index_name,
						   LOCKMODE mode);
extern void direct_scan_begin(SyrpcDirect *d, Datum key, RegProcedure eqproc);
extern bool direct_scan_next(SyrpcDirect *d);
extern void direct_close(SyrpcDirect *d);
extern AttrNumber direct_attnum(SyrpcDirect *d, const char *name);
extern bool direct_find(SyrpcDirect *d, const pg_uuid_t *id);
extern void direct_done(SyrpcDirect *d);
extern bool direct_being_written(SyrpcDirect *d);
typedef struct SyrpcRow
{
	int			natts;
	Datum	   *values;
	bool	   *nulls;
} SyrpcRow;

extern void direct_row(SyrpcDirect *d, SyrpcRow *row);
extern bool direct_set(SyrpcDirect *d, SyrpcRow *row, const char *name, Datum v);
extern void direct_set_required(SyrpcDirect *d, SyrpcRow *row, const char *name, Datum v);
extern Datum direct_get(SyrpcDirect *d, const char *name, bool *isnull);
extern Datum direct_get_notnull(SyrpcDirect *d, const char *name);
extern Datum direct_get_out(SyrpcDirect *d, const char *name);
extern void direct_insert(SyrpcDirect *d, SyrpcRow *row);
extern bool direct_update(SyrpcDirect *d, Datum *values, bool *nulls);
extern bool direct_delete(SyrpcDirect *d);

/* store_control.c (1.7): a cancel's delete, a lease's extension or release */
extern bool store_withdraw_request(text *app, const pg_uuid_t *id, TimestampTz now,
								   int32 max_attempts, TimestampTz *created_at);
extern bool store_change_row_lease(text *app, const pg_uuid_t *id, int32 attempt,
								   TimestampTz until, bool release);
extern void store_spill_request(text *app, const SyrpcSpill *spill);

/* marks.c: leases and taken results in shared memory (preloaded) */
typedef enum SyrpcMarkKind
{
	SYRPC_MARK_LEASE = 1,		/* a worker's lease of a request */
	SYRPC_MARK_TAKEN = 2		/* a result that has been taken */
} SyrpcMarkKind;

typedef enum SyrpcMarkAdd
{
	MARK_ADDED,					/* ours now, until our transaction ends */
	MARK_RUNNING,				/* another's (or ours from before): keep off */
	MARK_EXPIRED,				/* a lease that ran out, its holder committed */
	MARK_FULL					/* no room (or a take past its share)  */
} SyrpcMarkAdd;

typedef struct SyrpcMarkInfo
{
	TimestampTz until;			/* lease end, or the result's expires_at */
	TimestampTz expires;		/* LEASE: the request's expires_at */
	int32		base;			/* LEASE: the row's attempts when it was taken */
	uint32		app_hash;		/* LEASE: marks_app_hash of its app */
	bool		released;		/* LEASE: handed back: its attempt does not count */
	bool		pending;		/* made by a transaction still open */
	bool		mine;			/* ... by this backend's */
} SyrpcMarkInfo;

extern int	syrpc_memory_marks;
extern bool syrpc_memory_leases;
extern void marks_init(bool preloaded);
extern bool marks_exist(void);
extern bool marks_usable(void);
extern SyrpcMarkAdd mark_add(SyrpcMarkKind kind, const pg_uuid_t *id, TimestampTz now,
							 const SyrpcMarkInfo *info, SyrpcMarkInfo *found);
extern bool mark_lookup(SyrpcMarkKind kind, const pg_uuid_t *id, SyrpcMarkInfo *found);
extern void mark_drop_mine(SyrpcMarkKind kind, const pg_uuid_t *id);
extern bool mark_change(const pg_uuid_t *id, int32 base, TimestampTz until,
						bool release);
extern bool leased_in_mark(const pg_uuid_t *id, SyrpcMarkInfo *mark);	/* store.c */
extern void mark_remove_at_commit(SyrpcMarkKind kind, const pg_uuid_t *id,
								  int32 base);
extern TimestampTz marks_next_lease_end(uint32 app_hash, TimestampTz now,
										TimestampTz next);
extern void marks_sweep(TimestampTz now);

/* Leases that ran out, as arrays for a statement (marks_expired_leases). */
typedef struct SyrpcExpiredLeases
{
	int			n;
	Datum	   *ids;			/* uuid, pointing into id_space */
	pg_uuid_t  *id_space;
	Datum	   *bases;			/* int4: the rows' attempts */
	Datum	   *untils;			/* timestamptz: the leases' ends */
} SyrpcExpiredLeases;

extern SyrpcExpiredLeases *marks_expired_leases(TimestampTz now, int max);
extern uint32 marks_app_hash(text *app);
extern TimestampTz marks_born_at(void);

/* cleanup.c */
extern void maybe_cleanup(TimestampTz now);

/* stats.c: counted at commit, in shared memory when preloaded */
typedef enum SyrpcStatCounter
{
	SYRPC_STAT_NONE = -1,
	SYRPC_STAT_REQUESTS,		/* requests put */
	SYRPC_STAT_ANSWERED,		/* results put */
	SYRPC_STAT_FAILED,			/* failed by a worker, or after max_attempts */
	SYRPC_STAT_EXPIRED,			/* request_ttl passed before an answer */
	SYRPC_STAT_COUNTERS
} SyrpcStatCounter;

typedef enum SyrpcLatency
{
	SYRPC_LAT_NONE = -1,
	SYRPC_LAT_QUEUE,			/* put to claim */
	SYRPC_LAT_SERVICE,			/* claim to answer */
	SYRPC_LAT_ROUND_TRIP,		/* put to result taken */
	SYRPC_LATENCIES
} SyrpcLatency;

extern void stats_init(bool preloaded);
extern void stats_count(text *app, SyrpcStatCounter counter, int64 n);
extern void stats_latency(text *app, SyrpcLatency latency, int64 us);
extern void stats_count_now(text *app, SyrpcStatCounter counter, int64 n);

/* wakeup.c */

extern void wakeup_init(bool preloaded);
extern uint64 syrpc_app_key(text *app);
extern uint64 syrpc_result_key(const pg_uuid_t *id);
extern void waiter_register(SyrpcWaitKind kind, uint64 key);
extern void waiter_unregister(SyrpcWaitKind kind, uint64 key);
extern void waiter_rearm(void);
extern int	waiter_count(SyrpcWaitKind kind, uint64 key);
extern void list_waiters(syrpc_waiter_fn fn, void *arg);
extern void wake_at_commit(SyrpcWaitKind kind, uint64 key);
extern void wake_on_abort(SyrpcWaitKind kind, uint64 key);
extern void wake_now(SyrpcWaitKind kind, uint64 key);
extern uint64 request_table_epoch(uint64 key);
extern bool put_pending(SyrpcWaitKind kind, uint64 key);
extern void pass_on_wake(SyrpcWaitKind kind, uint64 key);
extern void give_way(void);
extern bool must_give_way(void);

/*
 * A waiter registry: where blocked calls register, and how a put finds
 * and wakes them.  Two implement it (waiters_lockmgr.c, waiters_shmem.c);
 * wakeup.c picks one at start-up and calls nothing else of theirs.
 */
typedef struct SyrpcWaiterOps
{
	const char *name;			/* as syrpc.wakeup_registry shows it */
	/* register on key until unregister or the end of the transaction */
	void		(*enroll) (SyrpcWaitKind kind, uint64 key);
	void		(*leave) (SyrpcWaitKind kind, uint64 key);
	/* the transaction, or subtransaction sub, ends: drop what it registered */
	void		(*leave_at_end) (void);
	void		(*leave_sub) (SubTransactionId sub);
	/* about to look at the table: earlier wake-ups are used up */
	void		(*rearm) (void);
	/* was this backend picked by a put since its last look? */
	bool		(*was_picked) (void);
	/* all waiters of a result; count waiters of requests not yet picked */
	void		(*wake) (SyrpcWaitKind kind, uint64 key, int count);
	int			(*count) (SyrpcWaitKind kind, uint64 key);
	void		(*list) (syrpc_waiter_fn fn, void *arg);
	/* how often an app's requests became claimable in the table; 0: unknown */
	uint64		(*table_epoch) (uint64 key);
	void		(*table_changed) (uint64 key);
} SyrpcWaiterOps;

extern const SyrpcWaiterOps waiters_lockmgr;
extern const SyrpcWaiterOps waiters_shmem;
extern void waiters_shmem_install(void);

#endif							/* SYRPC_INTERNAL_H */
