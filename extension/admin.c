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
#include "miscadmin.h"
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
PG_FUNCTION_INFO_V1(syrpc_memory_requests);
PG_FUNCTION_INFO_V1(syrpc_memory_lease);
PG_FUNCTION_INFO_V1(syrpc_memory_taken);
PG_FUNCTION_INFO_V1(syrpc_give_way_trigger);
PG_FUNCTION_INFO_V1(syrpc_grant);
PG_FUNCTION_INFO_V1(syrpc_revoke);
PG_FUNCTION_INFO_V1(syrpc_drop_app);
PG_FUNCTION_INFO_V1(syrpc_may_use);
SYRPC_EXPORTS_END

/* An administration function starts so: as the owner, if the caller is one. */
static void
enter_admin(FunctionCallInfo fcinfo, const char *func, SyrpcAsOwner *as)
{
	check_writable(func);
	enter_as_owner(fcinfo, as);
	check_owner(as, func);
}

/*
 * syrpc_configure(app, lease_time, max_attempts, result_ttl, request_ttl)
 */
Datum
syrpc_configure(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	SyrpcAppChange change;
	SyrpcAsOwner as;

	/* one by one: the errors come in the order of the arguments */
	change.lease_time = arg_interval(fcinfo, 1, "lease_time");
	change.max_attempts = arg_max_attempts(fcinfo, 2);
	change.result_ttl = arg_interval(fcinfo, 3, "result_ttl");
	change.request_ttl = arg_interval(fcinfo, 4, "request_ttl");
	enter_admin(fcinfo, "syrpc_configure", &as);
	store_configure(app, &change);
	leave_as_owner(&as);
	PG_RETURN_VOID();
}

/* The app of syrpc_grant and syrpc_revoke: an app name, or "*" for all. */
static text *
arg_app_or_all(FunctionCallInfo fcinfo, int n)
{
	if (!PG_ARGISNULL(n) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(n)) == 1 &&
		*VARDATA_ANY(PG_GETARG_TEXT_PP(n)) == '*')
		return PG_GETARG_TEXT_PP(n);
	return arg_name(fcinfo, n, "app");
}

/*
 * syrpc_grant(app, role, side) and syrpc_revoke(app, role, side) (1.4):
 * let role (and its members) use app on side 'caller' or 'worker', or no
 * longer.  app '*': every app of this database without grants of its own.
 */
static Datum
grant_or_revoke(FunctionCallInfo fcinfo, bool grant)
{
	const char *func = grant ? "syrpc_grant" : "syrpc_revoke";
	text	   *app = arg_app_or_all(fcinfo, 0);
	Oid			role = arg_role(fcinfo, 1);
	SyrpcSide	side = arg_side(fcinfo, 2);
	char	   *rolename = GetUserNameFromId(role, false);
	SyrpcAsOwner as;
	int64		n = 0;
	bool		now_open = false;

	enter_admin(fcinfo, func, &as);
	if (!store_has_grants())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s needs syrpc 1.4", func),
				 errhint("Update the extension: ALTER EXTENSION syrpc UPDATE.")));
	if (grant)
	{
		SyrpcApp	ignored;

		if (strcmp(text_to_cstring(app), "*") != 0)
			(void) store_load_app(app, true, &ignored);
		store_grant(app, rolename, side);
	}
	else
	{
		n = store_revoke(app, rolename, side);
		now_open = n > 0 && strcmp(text_to_cstring(app), "*") != 0 &&
			store_count_grants(app) == 0;
	}
	leave_as_owner(&as);
	if (now_open)
		ereport(WARNING,
				(errmsg("app \"%s\" has no grants left", text_to_cstring(app)),
				 errdetail("The roles granted all apps (\"*\") may now use it."),
				 errhint("Grant a role on the app to keep it to that role.")));
	if (!grant && n == 0)
		ereport(NOTICE,
				(errmsg("role \"%s\" had no %s grant on app \"%s\"",
						rolename, side_name(side), text_to_cstring(app))));
	PG_RETURN_VOID();
}

Datum
syrpc_grant(PG_FUNCTION_ARGS)
{
	return grant_or_revoke(fcinfo, true);
}

Datum
syrpc_revoke(PG_FUNCTION_ARGS)
{
	return grant_or_revoke(fcinfo, false);
}

/*
 * syrpc_drop_app(app, force) returns bigint (1.4): delete an app with its
 * settings and grants; refused while it has requests, unless force, which
 * deletes them and its results too (returns how many).
 */
Datum
syrpc_drop_app(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	bool		force = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	SyrpcAsOwner as;
	SyrpcApp	ignored;
	int64		n;

	enter_admin(fcinfo, "syrpc_drop_app", &as);
	if (!store_load_app(app, false, &ignored))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("app \"%s\" does not exist", text_to_cstring(app))));
	n = store_count_requests(app);
	if (n > 0 && !force)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("app \"%s\" has %lld requests", text_to_cstring(app), (long long) n),
				 errdetail("They are queued, in flight, or failed and not yet cleaned up."),
				 errhint("Let the workers drain them, or pass force => true to delete them with the app.")));
	n = store_drop_app(app);
	leave_as_owner(&as);
	PG_RETURN_INT64(n);
}

/*
 * syrpc.may_use(app) returns boolean (1.4): may the current role use app,
 * on either side?  The views show a role only such apps.
 */
Datum
syrpc_may_use(PG_FUNCTION_ARGS)
{
	text	   *app = PG_GETARG_TEXT_PP(0);
	SyrpcAsOwner as;
	bool		ok;

	enter_as_owner(fcinfo, &as);
	ok = may_use(&as, app, SYRPC_CALLER) || may_use(&as, app, SYRPC_WORKER);
	leave_as_owner(&as);
	PG_RETURN_BOOL(ok);
}

/*
 * syrpc_cleanup() returns bigint: delete expired rows now.
 */
Datum
syrpc_cleanup(PG_FUNCTION_ARGS)
{
	int64		n;
	SyrpcAsOwner as;

	enter_admin(fcinfo, "syrpc_cleanup", &as);
	n = store_cleanup(GetCurrentTimestamp());
	leave_as_owner(&as);
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
 * syrpc.memory_requests() returns setof (app, queued, in_flight,
 * oldest_queued) (1.5): the in-memory requests of syrpc_call in this
 * database (handoff.c), which syrpc_stats adds to the table's.
 */
Datum
syrpc_memory_requests(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	foreach(lc, handoff_requests())
	{
		HandoffCount *c = lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, c->oldest_queued == 0};

		values[0] = CStringGetTextDatum(c->app);
		values[1] = Int64GetDatum(c->queued);
		values[2] = Int64GetDatum(c->in_flight);
		values[3] = TimestampTzGetDatum(c->oldest_queued);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * syrpc.memory_lease(result_id, attempts) returns timestamptz (1.6): the
 * end of the lease of the request that is kept in shared memory (marks.c)
 * while its row says attempts, or NULL; syrpc_stats counts it in flight.
 */
Datum
syrpc_memory_lease(PG_FUNCTION_ARGS)
{
	SyrpcMarkInfo mark;

	/* a lease handed back (1.7) is no lease: its request is queued again */
	if (!mark_lookup(SYRPC_MARK_LEASE, PG_GETARG_UUID_P(0), &mark) ||
		mark.base != PG_GETARG_INT32(1) || mark.released)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(mark.until);
}

/*
 * syrpc.memory_taken(result_id) returns boolean (1.6): has the result been
 * taken, in shared memory (marks.c), though its row does not say so?
 */
Datum
syrpc_memory_taken(PG_FUNCTION_ARGS)
{
	SyrpcMarkInfo mark;

	PG_RETURN_BOOL(mark_lookup(SYRPC_MARK_TAKEN, PG_GETARG_UUID_P(0), &mark));
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
