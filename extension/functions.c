/*-------------------------------------------------------------------------
 *
 * syrpc.c
 *	  The SQL-callable functions of syrpc and the module's GUCs: argument
 *	  checks here, the procedures in procedures.c, the waiting in wait.c,
 *	  the statements in store.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/detoast.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/async.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "common/int.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "syrpc.h"

SYRPC_EXPORTS_BEGIN
PG_MODULE_MAGIC;
SYRPC_EXPORTS_END

int			syrpc_max_payload_kb = 1024;
int			syrpc_cleanup_interval_ms = 1000;
bool		syrpc_async_acks = true;
bool		syrpc_async_results = false;
bool		syrpc_notify = false;
static char *syrpc_wakeup_registry = NULL;

/* A timeout of this many seconds or more means no timeout. */
#define SYRPC_TIMEOUT_FOREVER	1e9

SYRPC_EXPORTS_BEGIN
PG_FUNCTION_INFO_V1(syrpc_put_request);
PG_FUNCTION_INFO_V1(syrpc_get_request);
PG_FUNCTION_INFO_V1(syrpc_put_result);
PG_FUNCTION_INFO_V1(syrpc_put_result_get_request);
PG_FUNCTION_INFO_V1(syrpc_fail_request);
PG_FUNCTION_INFO_V1(syrpc_give_way_trigger);
PG_FUNCTION_INFO_V1(syrpc_get_result);
PG_FUNCTION_INFO_V1(syrpc_workers_waiting);
PG_FUNCTION_INFO_V1(syrpc_waiters);
PG_FUNCTION_INFO_V1(syrpc_configure);
PG_FUNCTION_INFO_V1(syrpc_cleanup);
PG_FUNCTION_INFO_V1(syrpc_bucket);
PG_FUNCTION_INFO_V1(syrpc_wait_key);

void		_PG_init(void);
SYRPC_EXPORTS_END

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
	DefineCustomBoolVariable("syrpc.async_results",
							 "Commit put results without waiting for the WAL flush, "
							 "when the call is its own transaction.",
							 "A result lost in a crash takes its request's "
							 "deletion with it: the request is handed out and "
							 "answered again, so nothing is lost, but the work "
							 "is done twice.",
							 &syrpc_async_results,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.notify",
							 "Also send NOTIFY syrpc_request (payload: the app) and "
							 "syrpc_result (payload: the result_id) when a put commits.",
							 "Only for clients that LISTEN instead of blocking in a "
							 "syrpc call; blocked calls are woken without it.  "
							 "NOTIFY takes a cluster-wide lock at commit.",
							 &syrpc_notify,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("syrpc.wakeup_registry",
							   "Where blocked calls register to be woken: "
							   "shared_memory when syrpc is in "
							   "shared_preload_libraries, else lock_manager.",
							   NULL,
							   &syrpc_wakeup_registry,
							   process_shared_preload_libraries_in_progress ?
							   "shared_memory" : "lock_manager",
							   PGC_INTERNAL, 0,
							   NULL, NULL, NULL);
	MarkGUCPrefixReserved("syrpc");
	if (process_shared_preload_libraries_in_progress)
		registry_install_hooks();
	syrpc_wakeup_init();
	syrpc_wait_init();
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
text *
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
Datum
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

pg_uuid_t *
arg_uuid(FunctionCallInfo fcinfo, int n)
{
	check_not_null(fcinfo, n, "result_id");
	return PG_GETARG_UUID_P(n);
}

static TimestampTz within_statement_timeout(TimestampTz deadline);

/*
 * A timeout in seconds, as the deadline it gives from now: 0 for none
 * (SQL NULL), now itself for a timeout of 0 (check once, do not wait).
 */
TimestampTz
arg_deadline(FunctionCallInfo fcinfo, int n, const char *func)
{
	float8		t;

	if (PG_ARGISNULL(n))
		return within_statement_timeout(0);
	t = PG_GETARG_FLOAT8(n);
	if (isnan(t) || isinf(t) || t < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must be a finite number of seconds, 0 or more"),
				 errhint("Use NULL to wait until cancelled.")));
	if (t > 0 && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot wait in a REPEATABLE READ or SERIALIZABLE transaction", func),
				 errdetail("Its snapshot would never show a new row."),
				 errhint("Call it in READ COMMITTED, or with timeout 0.")));
	return within_statement_timeout(t >= SYRPC_TIMEOUT_FOREVER ? 0 :
									GetCurrentTimestamp() + (int64) (t * USECS_PER_SEC));
}

/*
 * A wait ends before statement_timeout would cancel it, as a timeout
 * (no row, NULL): a wait longer than the statement may run is a wait that
 * times out, and a worker or caller whose statement_timeout (of its role,
 * say) is shorter than its client's wait slice must not see an error
 * where nothing went wrong.  The margin leaves time for the last look and
 * the commit.  The timer started when the statement did.
 */
static TimestampTz
within_statement_timeout(TimestampTz deadline)
{
	int64		timeout_us = (int64) StatementTimeout * 1000;
	int64		margin_us;
	TimestampTz limit;

	if (StatementTimeout <= 0)
		return deadline;
	margin_us = Min(Max(timeout_us / 10, 5000), 1000000);
	limit = GetCurrentStatementStartTimestamp() + timeout_us - margin_us;
	if (deadline == 0 || limit < deadline)
		return limit;
	return deadline;
}

/*
 * Every call writes (a put, a claim, a taken result), so none can run in a
 * read-only transaction or on a standby: say so before anything is done.
 */
void
check_writable(const char *func)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s cannot run on a standby", func),
				 errdetail("Every syrpc call writes to the queue tables, and a standby is read-only."),
				 errhint("Connect to the primary, for example with target_session_attrs=read-write in the connection string.")));
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s cannot run in a read-only transaction", func),
				 errdetail("Every syrpc call writes to the queue tables."),
				 errhint("Call it in a read-write transaction (see default_transaction_read_only).")));
}

/* ---------------------------------------------------------------------- */
/* The RPC calls                                                          */
/* ---------------------------------------------------------------------- */

/*
 * Queue a request and wake a worker at commit; inside an SPI connection.
 */
pg_uuid_t *
put_request(text *app, text *type, Datum data)
{
	TimestampTz now = GetCurrentTimestamp();
	SyrpcApp	settings;
	pg_uuid_t  *id;

	store_load_app(app, true, &settings);
	id = store_put_request(app, type, data, now, &settings);
	maybe_cleanup(now);
	syrpc_wake_at_commit(SYRPC_WAIT_REQUEST, syrpc_app_key(app));
	if (syrpc_notify)
		Async_Notify("syrpc_request", text_to_cstring(app));
	return id;
}

/*
 * syrpc_put_request(app, type, data) returns uuid
 */
Datum
syrpc_put_request(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	text	   *type = arg_name(fcinfo, 1, "type");
	Datum		data = arg_data(fcinfo, 2);
	pg_uuid_t  *id;

	check_writable("syrpc_put_request");
	SPI_connect();
	id = put_request(app, type, data);
	SPI_finish();
	PG_RETURN_UUID_P(id);
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

	check_writable("syrpc_get_request");
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	if (wait_for_request(app, deadline, owned, values))
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	SPI_finish();
	return (Datum) 0;
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
	bool		owned = owns_transaction();

	check_writable("syrpc_put_result");
	SPI_connect();
	answer_request(app, id, data, GetCurrentTimestamp());
	SPI_finish();
	relax_result_commit(owned);
	PG_RETURN_VOID();
}

/*
 * syrpc_fail_request(app, result_id, reason): give up a claimed request
 * (1.3).  Its caller gets SY001 with the reason; no worker gets it again.
 */
Datum
syrpc_fail_request(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	text	   *reason;
	int			len;

	check_not_null(fcinfo, 2, "reason");
	reason = PG_GETARG_TEXT_PP(2);
	len = VARSIZE_ANY_EXHDR(reason);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reason must not be empty"),
				 errhint("Say why the request cannot be handled; its caller gets the reason.")));
	if (len > SYRPC_REASON_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("reason is too long"),
				 errdetail("It is %d bytes long; the limit is %d.", len, SYRPC_REASON_MAX)));
	check_writable("syrpc_fail_request");
	SPI_connect();
	fail_request(app, id, reason, GetCurrentTimestamp());
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
	bool		owned = owns_transaction();
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	check_writable("syrpc_put_result_get_request");
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	answer_request(app, id, data, now);
	if (wait_for_request(app, now, false, values))
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	SPI_finish();
	relax_result_commit(owned);
	return (Datum) 0;
}

/*
 * syrpc_get_result(app, result_id, timeout) returns jsonb: the result,
 * taken, or NULL when the timeout passes.
 */
Datum
syrpc_get_result(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	TimestampTz deadline = arg_deadline(fcinfo, 2, "syrpc_get_result");
	bool		owned = owns_transaction();
	Datum		data;
	bool		found;

	check_writable("syrpc_get_result");
	SPI_connect();
	found = wait_for_result(app, id, deadline, owned, &data);
	SPI_finish();
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(data);
}

/* ---------------------------------------------------------------------- */
/* Administration                                                         */
/* ---------------------------------------------------------------------- */

/*
 * A lease_time or TTL: from 1 millisecond to 100 years, counted as
 * extract(epoch) counts them (which is how the settings are read: a year
 * is 365.25 days, a month left over 30 days).  The upper bound keeps now +
 * the interval a valid timestamp; the sum is computed without overflow so
 * that no interval, however large, slips through.
 */
static void
check_interval_range(FunctionCallInfo fcinfo, int n, const char *what)
{
	Interval   *iv;
	int64		us;
	int64		days_us;
	int64		months_us;
	bool		overflow;

	if (PG_ARGISNULL(n))
		return;
	iv = PG_GETARG_INTERVAL_P(n);
	overflow = pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &days_us) ||
		pg_mul_s64_overflow((int64) (iv->month / MONTHS_PER_YEAR),
							(int64) (DAYS_PER_YEAR * USECS_PER_DAY), &months_us) ||
		pg_add_s64_overflow(iv->time, days_us, &us) ||
		pg_add_s64_overflow(us, months_us, &us) ||
		pg_add_s64_overflow(us, (int64) (iv->month % MONTHS_PER_YEAR) * DAYS_PER_MONTH * USECS_PER_DAY, &us);
	if (overflow || us < 1000 || us > SYRPC_INTERVAL_MAX_US)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 millisecond and 100 years", what),
				 errdetail("It is %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(iv))))));
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

	check_interval_range(fcinfo, 1, "lease_time");
	if (!PG_ARGISNULL(2) && PG_GETARG_INT32(2) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1")));
	check_interval_range(fcinfo, 3, "result_ttl");
	check_interval_range(fcinfo, 4, "request_ttl");
	for (int i = 0; i < 4; i++)
	{
		isnull[i] = PG_ARGISNULL(i + 1);
		values[i] = isnull[i] ? (Datum) 0 : PG_GETARG_DATUM(i + 1);
	}
	check_writable("syrpc_configure");
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
	PG_RETURN_INT32(syrpc_waiter_count(SYRPC_WAIT_REQUEST,
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
	syrpc_list_waiters(add_waiter, fcinfo->resultinfo);
	return (Datum) 0;
}

/*
 * syrpc.give_way() (1.3): the event trigger on DROP EXTENSION and ALTER
 * EXTENSION: blocked calls end their waits so that the command gets its
 * locks (see syrpc_give_way in wakeup.c).
 */
Datum
syrpc_give_way_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("syrpc.give_way() must be called as an event trigger")));
	syrpc_give_way();
	PG_RETURN_VOID();
}
