/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  The SQL-callable functions for administration and monitoring:
 *	  settings, cleanup, the waiters, and the event trigger.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "syrpc_internal.h"

SYRPC_EXPORTS_BEGIN
PG_FUNCTION_INFO_V1(syrpc_configure);
PG_FUNCTION_INFO_V1(syrpc_cleanup);
PG_FUNCTION_INFO_V1(syrpc_bucket);
PG_FUNCTION_INFO_V1(syrpc_wait_key);
PG_FUNCTION_INFO_V1(syrpc_workers_waiting);
PG_FUNCTION_INFO_V1(syrpc_waiters);
PG_FUNCTION_INFO_V1(syrpc_give_way_trigger);
SYRPC_EXPORTS_END

/*
 * syrpc_configure(app, lease_time, max_attempts, result_ttl, request_ttl)
 */
Datum
syrpc_configure(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	SyrpcAppChange change;

	/* one by one: the errors come in the order of the arguments */
	change.lease_time = arg_interval(fcinfo, 1, "lease_time");
	change.max_attempts = arg_max_attempts(fcinfo, 2);
	change.result_ttl = arg_interval(fcinfo, 3, "result_ttl");
	change.request_ttl = arg_interval(fcinfo, 4, "request_ttl");
	check_writable("syrpc_configure");
	SPI_connect();
	store_configure(app, &change);
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

	check_writable("syrpc_cleanup");
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

/*
 * syrpc.wait_key(app) returns bigint: the key under which workers waiting
 * for app's requests are registered in the lock manager (pg_locks shows
 * it as classid << 32 | objid with objsubid 21330); syrpc_stats counts
 * them.
 */
Datum
syrpc_wait_key(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) syrpc_app_key(PG_GETARG_TEXT_PP(0)));
}

/*
 * syrpc.workers_waiting(app) returns integer (1.2): how many backends of
 * this database wait for app's requests, from whichever registry is in use.
 */
Datum
syrpc_workers_waiting(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(waiter_count(SYRPC_WAIT_REQUEST,
									   syrpc_app_key(PG_GETARG_TEXT_PP(0))));
}

static void
add_waiter(void *arg, int pid, SyrpcWaitKind kind, uint64 key)
{
	ReturnSetInfo *rsinfo = arg;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = Int32GetDatum(pid);
	values[1] = CStringGetTextDatum(kind == SYRPC_WAIT_REQUEST ? "request" : "result");
	values[2] = Int64GetDatum((int64) key);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * syrpc.waiters() returns setof (pid, kind, key) (1.2): the backends of
 * this database registered to be woken, for monitoring and tests.
 */
Datum
syrpc_waiters(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	list_waiters(add_waiter, fcinfo->resultinfo);
	return (Datum) 0;
}

/*
 * syrpc.give_way() (1.3): the event trigger on DROP EXTENSION and ALTER
 * EXTENSION: blocked calls end their waits so that the command gets its
 * locks (see give_way in wakeup.c).
 */
Datum
syrpc_give_way_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("syrpc.give_way() must be called as an event trigger")));
	give_way();
	PG_RETURN_VOID();
}
