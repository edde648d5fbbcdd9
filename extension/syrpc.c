/*-------------------------------------------------------------------------
 *
 * syrpc.c
 *	  The SQL-callable functions of syrpc: argument checks, the wait loops
 *	  of syrpc_get_request and syrpc_get_result, and the module's GUCs.
 *
 * A blocking call registers as a waiter (wakeup.c), re-checks the tables
 * with a fresh snapshot, and sleeps on its latch until a put that it can
 * use commits, its timeout passes, or a lease runs out.  It holds no row
 * lock and no LWLock while it sleeps; the only lock it holds is its
 * registration, which nobody ever waits for.  CHECK_FOR_INTERRUPTS after
 * each sleep makes statement_timeout and pg_cancel_backend work.
 *
 * Note that the calling statement's snapshot stays registered for the
 * whole wait, holding back the xmin horizon: keep waits bounded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/detoast.h"
#include "access/transam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "syrpc.h"

PG_MODULE_MAGIC;

int			syrpc_max_payload_kb = 1024;
int			syrpc_cleanup_interval_ms = 1000;
bool		syrpc_async_acks = true;

/* When this backend last removed expired rows. */
static TimestampTz last_cleanup = 0;

/* A timeout of this many seconds or more means no timeout. */
#define SYRPC_TIMEOUT_FOREVER	1e9

PG_FUNCTION_INFO_V1(syrpc_put_request);
PG_FUNCTION_INFO_V1(syrpc_get_request);
PG_FUNCTION_INFO_V1(syrpc_put_result);
PG_FUNCTION_INFO_V1(syrpc_put_result_get_request);
PG_FUNCTION_INFO_V1(syrpc_get_result);
PG_FUNCTION_INFO_V1(syrpc_configure);
PG_FUNCTION_INFO_V1(syrpc_cleanup);
PG_FUNCTION_INFO_V1(syrpc_bucket);

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("syrpc.max_payload_size",
							"Largest request or result data accepted.",
							NULL,
							&syrpc_max_payload_kb,
							1024, 1, MAX_KILOBYTES / 2,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("syrpc.cleanup_interval",
							"How often a backend that puts requests or results "
							"also deletes expired ones; 0 turns that off.",
							NULL,
							&syrpc_cleanup_interval_ms,
							1000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.async_acks",
							 "Commit claims and taken results without waiting for "
							 "the WAL flush, when the call is its own transaction.",
							 "A claim lost in a crash only makes its request be "
							 "handed out again; a taken result lost in a crash "
							 "only makes it readable again.",
							 &syrpc_async_acks,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("syrpc");
	syrpc_wakeup_init();
	store_init();
}

/* ---------------------------------------------------------------------- */
/* Argument checks                                                        */
/* ---------------------------------------------------------------------- */

static void
check_not_null(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/*
 * An app or type name: 1 to SYRPC_NAME_MAX bytes of letters, digits and
 * "_.-", so that it is safe in any identifier, channel name or log line.
 */
static text *
arg_name(FunctionCallInfo fcinfo, int n, const char *what)
{
	text	   *name;
	const char *p;
	int			len;

	check_not_null(fcinfo, n, what);
	name = PG_GETARG_TEXT_PP(n);
	p = VARDATA_ANY(name);
	len = VARSIZE_ANY_EXHDR(name);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	if (len > SYRPC_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s is too long", what),
				 errdetail("It is %d bytes long; the limit is %d.", len, SYRPC_NAME_MAX)));
	for (int i = 0; i < len; i++)
	{
		char		c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s contains an invalid character at byte %d", what, i + 1),
					 errhint("Use only letters, digits, \"_\", \".\" and \"-\".")));
	}
	return name;
}

/* Request or result data: any JSON value, not SQL NULL, within the limit. */
static Datum
arg_data(FunctionCallInfo fcinfo, int n)
{
	Size		size;

	check_not_null(fcinfo, n, "data");
	size = toast_raw_datum_size(PG_GETARG_DATUM(n)) - VARHDRSZ;
	if (size > (Size) syrpc_max_payload_kb * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("data is too large"),
				 errdetail("It is %zu bytes as jsonb; the limit is %d kB.",
						   size, syrpc_max_payload_kb),
				 errhint("Raise syrpc.max_payload_size, or pass a reference to the data instead.")));
	return PG_GETARG_DATUM(n);
}

static pg_uuid_t *
arg_uuid(FunctionCallInfo fcinfo, int n)
{
	check_not_null(fcinfo, n, "result_id");
	return PG_GETARG_UUID_P(n);
}

/*
 * A timeout in seconds, as the deadline it gives from now: 0 for none
 * (SQL NULL), now itself for a timeout of 0 (check once, do not wait).
 */
static TimestampTz
arg_deadline(FunctionCallInfo fcinfo, int n, const char *func)
{
	float8		t;

	if (PG_ARGISNULL(n))
		return 0;
	t = PG_GETARG_FLOAT8(n);
	if (isnan(t) || isinf(t) || t < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must be a finite number of seconds, 0 or more"),
				 errhint("Use NULL to wait until cancelled.")));
	if (t >= SYRPC_TIMEOUT_FOREVER)
		return 0;
	if (t > 0 && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot wait in a REPEATABLE READ or SERIALIZABLE transaction", func),
				 errdetail("Its snapshot would never show a new row."),
				 errhint("Call it in READ COMMITTED, or with timeout 0.")));
	return GetCurrentTimestamp() + (int64) (t * USECS_PER_SEC);
}

/*
 * Is this call the whole transaction, with nothing written before it?
 * Then it may decide how its commit is flushed (see relax_commit).
 * Call before writing anything.
 */
static bool
owns_transaction(void)
{
	return !IsTransactionBlock() &&
		!TransactionIdIsValid(GetTopTransactionIdIfAny());
}

/*
 * A claim or a taken result need not wait for the WAL flush: losing one in
 * a crash only hands the request out again or makes the result readable
 * again, which at-least-once delivery allows.  Only when the call owns its
 * transaction, so that no other write of the caller's loses durability.
 */
static void
relax_commit(bool owned)
{
	if (owned && syrpc_async_acks)
		(void) set_config_option("synchronous_commit", "off",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
}

/* ---------------------------------------------------------------------- */
/* Waiting                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Sleep until the latch is set or the earlier of deadline and until
 * (0 = not set) is reached.  Returns false if the deadline has passed.
 */
static bool
sleep_until(TimestampTz deadline, TimestampTz until)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = deadline;
	int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;
	long		ms = -1;

	if (deadline != 0 && now >= deadline)
		return false;
	if (until != 0 && (wake == 0 || until < wake))
		wake = until;
	if (wake != 0)
	{
		int64		us = Max(wake - now, 0);

		ms = Min((us + 999) / 1000, INT_MAX);
		events |= WL_TIMEOUT;
	}
	(void) WaitLatch(MyLatch, events, ms, PG_WAIT_EXTENSION);
	CHECK_FOR_INTERRUPTS();
	return true;
}

/*
 * Delete expired rows if this backend has not done so for a while and no
 * other backend is doing it now.  Runs in the caller's transaction.
 */
static void
maybe_cleanup(TimestampTz now)
{
	if (syrpc_cleanup_interval_ms <= 0 ||
		now - last_cleanup < (int64) syrpc_cleanup_interval_ms * 1000)
		return;
	last_cleanup = now;
	if (syrpc_cleanup_trylock())
		(void) store_cleanup(now);
}

/* ---------------------------------------------------------------------- */
/* The RPC calls                                                          */
/* ---------------------------------------------------------------------- */

/*
 * syrpc_put_request(app, type, data) returns uuid
 */
Datum
syrpc_put_request(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	text	   *type = arg_name(fcinfo, 1, "type");
	Datum		data = arg_data(fcinfo, 2);
	TimestampTz now = GetCurrentTimestamp();
	SyrpcApp	settings;
	pg_uuid_t  *id;

	SPI_connect();
	store_load_app(app, true, &settings);
	id = store_put_request(app, type, data, now, &settings);
	maybe_cleanup(now);
	SPI_finish();
	syrpc_wake_at_commit(SYRPC_WAIT_REQUEST, syrpc_app_key(app));
	PG_RETURN_UUID_P(id);
}

/*
 * Claim a request of app, waiting until deadline (0: no limit; now: do
 * not wait).  Fills values (type, result_id, data) and returns true if it
 * claimed one.  owned: the call is its own transaction (relax_commit).
 */
static bool
wait_for_request(text *app, TimestampTz deadline, bool owned, Datum *values)
{
	uint64		key = syrpc_app_key(app);
	bool		registered = false;
	bool		claimed = false;
	SyrpcApp	settings;

	store_load_app(app, false, &settings);
	for (;;)
	{
		TimestampTz now;

		ResetLatch(MyLatch);
		now = GetCurrentTimestamp();
		if (store_claim(app, now, &settings, values))
		{
			claimed = true;
			syrpc_wake_on_abort(SYRPC_WAIT_REQUEST, key);
			relax_commit(owned);
			break;
		}
		if (!registered)
		{
			/* register, then look once more before sleeping */
			if (deadline != 0 && now >= deadline)
				break;
			syrpc_waiter_register(SYRPC_WAIT_REQUEST, key);
			/* an error ends the wait: pass on a wake-up we may have had */
			syrpc_wake_on_abort(SYRPC_WAIT_REQUEST, key);
			registered = true;
			continue;
		}
		if (!sleep_until(deadline, store_next_look(app, now, &settings)))
			break;
	}
	if (registered)
	{
		syrpc_waiter_unregister(SYRPC_WAIT_REQUEST, key);
		syrpc_pass_on_wake(SYRPC_WAIT_REQUEST, key);
	}
	return claimed;
}

/*
 * syrpc_get_request(app, timeout) returns setof (type, result_id, data):
 * one claimed request, or no row when the timeout passes.
 */
Datum
syrpc_get_request(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	TimestampTz deadline = arg_deadline(fcinfo, 1, "syrpc_get_request");
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		owned = owns_transaction();
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	if (wait_for_request(app, deadline, owned, values))
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	SPI_finish();
	return (Datum) 0;
}

/*
 * Store the result of request id of app, or raise the error that says why
 * it cannot be stored.  Wakes its caller at commit.
 */
static void
answer_request(text *app, pg_uuid_t *id, Datum data, TimestampTz now)
{
	SyrpcApp	settings;
	char	   *idstr;

	switch (store_finish_request(app, id, now))
	{
		case SYRPC_FIN_OK:
			break;
		case SYRPC_FIN_WRONG_APP:
			idstr = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)));
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_WRONG_APP),
					 errmsg("result_id %s does not belong to app \"%s\"",
							idstr, text_to_cstring(app))));
			break;
		case SYRPC_FIN_NOT_CLAIMED:
			idstr = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)));
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_NOT_IN_FLIGHT),
					 errmsg("request %s has not been claimed", idstr),
					 errhint("Take requests with syrpc_get_request before answering them.")));
			break;
		case SYRPC_FIN_ANSWERED:
			idstr = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)));
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_NOT_IN_FLIGHT),
					 errmsg("request %s has already been answered", idstr),
					 errdetail("Its lease may have run out and another worker answered it first.")));
			break;
		case SYRPC_FIN_UNKNOWN:
			idstr = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)));
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_NOT_IN_FLIGHT),
					 errmsg("no request %s is in flight", idstr),
					 errdetail("The result_id is unknown, its request expired, or its result expired.")));
			break;
	}
	store_load_app(app, true, &settings);
	store_put_result(app, id, data, now, &settings);
	maybe_cleanup(now);
	syrpc_wake_at_commit(SYRPC_WAIT_RESULT, syrpc_result_key(id));
}

/*
 * syrpc_put_result(app, result_id, data): answer a claimed request.
 */
Datum
syrpc_put_result(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	Datum		data = arg_data(fcinfo, 2);

	SPI_connect();
	answer_request(app, id, data, GetCurrentTimestamp());
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * syrpc_put_result_get_request(app, result_id, data) returns setof
 * (type, result_id, data): answer a claimed request and claim the next one
 * in the same transaction, without waiting: a busy worker's loop then
 * takes one statement and one durable commit per request.  The answer must
 * not wait for a next request: its caller would wait with it.
 */
Datum
syrpc_put_result_get_request(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	Datum		data = arg_data(fcinfo, 2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	answer_request(app, id, data, now);
	if (wait_for_request(app, now, false, values))
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	SPI_finish();
	return (Datum) 0;
}

/*
 * Raise the error that explains why the result of id cannot come.
 */
static void
report_request_state(SyrpcRequestState state, const pg_uuid_t *id,
					 text *app, int32 attempts, const SyrpcApp *settings)
{
	char	   *idstr = DatumGetCString(DirectFunctionCall1(uuid_out,
															UUIDPGetDatum(id)));

	switch (state)
	{
		case SYRPC_REQ_WRONG_APP:
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_WRONG_APP),
					 errmsg("result_id %s does not belong to app \"%s\"",
							idstr, text_to_cstring(app))));
			break;
		case SYRPC_REQ_FAILED:
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_REQUEST_FAILED),
					 errmsg("request %s failed after %d attempts", idstr, attempts),
					 errdetail("No worker answered it within its lease %d times.",
							   settings->max_attempts),
					 errhint("Check the workers of app \"%s\", or raise its lease_time or max_attempts with syrpc_configure.",
							 text_to_cstring(app))));
			break;
		case SYRPC_REQ_EXPIRED:
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_REQUEST_EXPIRED),
					 errmsg("request %s expired before it was answered", idstr),
					 errhint("Start more workers for app \"%s\", or raise its request_ttl with syrpc_configure.",
							 text_to_cstring(app))));
			break;
		default:
			break;
	}
}

/*
 * syrpc_get_result(app, result_id, timeout) returns jsonb: the result,
 * consumed, or NULL when the timeout passes.
 */
Datum
syrpc_get_result(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	TimestampTz deadline = arg_deadline(fcinfo, 2, "syrpc_get_result");
	uint64		key = syrpc_result_key(id);
	bool		registered = false;
	bool		found = false;
	bool		look = true;	/* find out why the result is not there */
	TimestampTz until = 0;		/* when the request's state changes by itself */
	bool		owned = owns_transaction();
	Datum		data = (Datum) 0;
	SyrpcApp	settings;

	SPI_connect();
	store_load_app(app, false, &settings);
	for (;;)
	{
		TimestampTz now;
		int32		attempts = 0;
		SyrpcRequestState req;

		ResetLatch(MyLatch);
		now = GetCurrentTimestamp();
		if (store_consume_result(app, id, now, &data))
		{
			found = true;
			relax_commit(owned);
			break;
		}
		if (look)
		{
			/* Not there: is its request still on its way, or gone wrong? */
			until = 0;
			req = store_request_state(app, id, now, &settings, &until, &attempts);
			report_request_state(req, id, app, attempts, &settings);
			if (req == SYRPC_REQ_NONE)
			{
				switch (store_result_state(app, id, now))
				{
					case SYRPC_RES_WRONG_APP:
						report_request_state(SYRPC_REQ_WRONG_APP, id, app, 0, &settings);
						break;
					case SYRPC_RES_CONSUMED:
						ereport(ERROR,
								(errcode(ERRCODE_SYRPC_RESULT_CONSUMED),
								 errmsg("result %s has already been taken",
										DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)))),
								 errdetail("A result can be taken by syrpc_get_result once.")));
						break;
					case SYRPC_RES_PRESENT:
						/* it arrived after our first look: take it */
						continue;
					case SYRPC_RES_NONE:
						break;
				}
			}
		}
		if (!registered)
		{
			if (deadline != 0 && now >= deadline)
				break;
			/* register, then look for the result once more before sleeping */
			syrpc_waiter_register(SYRPC_WAIT_RESULT, key);
			registered = true;
			look = false;
			continue;
		}
		look = true;
		if (!sleep_until(deadline, until))
			break;
	}
	if (registered)
		syrpc_waiter_unregister(SYRPC_WAIT_RESULT, key);
	SPI_finish();
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(data);
}

/* ---------------------------------------------------------------------- */
/* Administration                                                         */
/* ---------------------------------------------------------------------- */

static void
check_positive_interval(FunctionCallInfo fcinfo, int n, const char *what)
{
	Interval   *iv;

	if (PG_ARGISNULL(n))
		return;
	iv = PG_GETARG_INTERVAL_P(n);
	if (iv->time + (iv->day * USECS_PER_DAY) + (int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY < 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at least 1 millisecond", what)));
}

/*
 * syrpc_configure(app, lease_time, max_attempts, result_ttl, request_ttl)
 */
Datum
syrpc_configure(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	Datum		values[4];
	bool		isnull[4];

	check_positive_interval(fcinfo, 1, "lease_time");
	if (!PG_ARGISNULL(2) && PG_GETARG_INT32(2) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1")));
	check_positive_interval(fcinfo, 3, "result_ttl");
	check_positive_interval(fcinfo, 4, "request_ttl");
	for (int i = 0; i < 4; i++)
	{
		isnull[i] = PG_ARGISNULL(i + 1);
		values[i] = isnull[i] ? (Datum) 0 : PG_GETARG_DATUM(i + 1);
	}
	SPI_connect();
	store_configure(app, values, isnull);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * syrpc_cleanup() returns bigint: delete expired rows now.
 */
Datum
syrpc_cleanup(PG_FUNCTION_ARGS)
{
	int64		n;

	SPI_connect();
	n = store_cleanup(GetCurrentTimestamp());
	SPI_finish();
	PG_RETURN_INT64(n);
}

/*
 * syrpc_bucket(uuid) returns integer: the result partition of a result_id.
 */
Datum
syrpc_bucket(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(syrpc_bucket_of(PG_GETARG_UUID_P(0)));
}
