/*-------------------------------------------------------------------------
 *
 * args.c
 *	  Checks of the arguments of syrpc's SQL entry points, and of whether
 *	  a call may run here at all.  Each raises the error a user should
 *	  see, before anything has been done.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/detoast.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "common/int.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

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

/* Request or result data within the limit; what = "data" or "data[N]". */
static void
check_data_size(Datum data, const char *what)
{
	Size		size = toast_raw_datum_size(data) - VARHDRSZ;

	if (size > (Size) syrpc_max_payload_kb * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large", what),
				 errdetail("It is %zu bytes as jsonb; the limit is %d kB.",
						   size, syrpc_max_payload_kb),
				 errhint("Raise syrpc.max_payload_size, or pass a reference to the data instead.")));
}

/* Request or result data: any JSON value, not SQL NULL, within the limit. */
Datum
arg_data(FunctionCallInfo fcinfo, int n)
{
	check_not_null(fcinfo, n, "data");
	check_data_size(PG_GETARG_DATUM(n), "data");
	return PG_GETARG_DATUM(n);
}

/* How many requests a batched claim may take at most (1.6). */
int
arg_batch_max(FunctionCallInfo fcinfo, int n)
{
	int			max;

	check_not_null(fcinfo, n, "max");
	max = PG_GETARG_INT32(n);
	if (max < 1 || max > SYRPC_BATCH_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must be between 1 and %d", SYRPC_BATCH_MAX),
				 errdetail("It is %d.", max)));
	return max;
}

/* A one-dimensional array argument without NULLs, deconstructed. */
static int
arg_array(FunctionCallInfo fcinfo, int n, const char *what, Oid elemtype, Datum **elems)
{
	ArrayType  *a;
	bool	   *nulls;
	int			count;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	check_not_null(fcinfo, n, what);
	a = PG_GETARG_ARRAYTYPE_P(n);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", what)));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(a, elemtype, typlen, typbyval, typalign, elems, &nulls, &count);
	for (int i = 0; i < count; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", what),
					 errdetail("Element %d is null.", i + 1)));
	return count;
}

/*
 * The answers of a batch (1.6): result_ids (uuid[]) at n and their data
 * (jsonb[]) at n + 1, as many of each, at most SYRPC_BATCH_MAX, each datum
 * within the payload limit.  Returns how many.
 */
int
arg_answers(FunctionCallInfo fcinfo, int n, Datum **ids, Datum **data)
{
	int			nids = arg_array(fcinfo, n, "result_ids", UUIDOID, ids);
	int			ndata = arg_array(fcinfo, n + 1, "data", JSONBOID, data);

	if (nids != ndata)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("result_ids and data must have as many elements"),
				 errdetail("result_ids has %d, data has %d.", nids, ndata)));
	if (nids > SYRPC_BATCH_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many answers in one call"),
				 errdetail("There are %d; the limit is %d.", nids, SYRPC_BATCH_MAX)));
	for (int i = 0; i < ndata; i++)
	{
		char		what[32];

		snprintf(what, sizeof(what), "data[%d]", i + 1);
		check_data_size((*data)[i], what);
	}
	return nids;
}

pg_uuid_t *
arg_uuid(FunctionCallInfo fcinfo, int n)
{
	check_not_null(fcinfo, n, "result_id");
	return PG_GETARG_UUID_P(n);
}

/* Why a worker fails a request: its caller reads it, so not empty. */
text *
arg_reason(FunctionCallInfo fcinfo, int n)
{
	return arg_message(fcinfo, n, "reason",
					   "Say why the request cannot be handled; its caller gets the reason.");
}

/*
 * A short text that a caller is told (a reason, or a remote error's
 * message): 1 to SYRPC_REASON_MAX bytes.
 */
text *
arg_message(FunctionCallInfo fcinfo, int n, const char *what, const char *hint)
{
	text	   *msg;
	int			len;

	check_not_null(fcinfo, n, what);
	msg = PG_GETARG_TEXT_PP(n);
	len = VARSIZE_ANY_EXHDR(msg);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what),
				 errhint("%s", hint)));
	if (len > SYRPC_REASON_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is too long", what),
				 errdetail("It is %d bytes long; the limit is %d.", len, SYRPC_REASON_MAX)));
	return msg;
}

/*
 * A request's deadline (1.7): 0 for none (NULL, 'infinity'); one already
 * past is kept (the request expires at once), '-infinity' as the earliest.
 */
TimestampTz
arg_request_deadline(FunctionCallInfo fcinfo, int n)
{
	TimestampTz t;

	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return 0;
	t = PG_GETARG_TIMESTAMPTZ(n);
	if (TIMESTAMP_IS_NOEND(t))
		return 0;
	if (TIMESTAMP_IS_NOBEGIN(t))
		return MIN_TIMESTAMP;
	return t;
}

/* A lease extension in seconds (1.7): more than 0, at most 100 years. */
int64
arg_lease_seconds(FunctionCallInfo fcinfo, int n)
{
	float8		t;

	check_not_null(fcinfo, n, "seconds");
	t = PG_GETARG_FLOAT8(n);
	if (isnan(t) || t <= 0 || t > (float8) (SYRPC_INTERVAL_MAX_US / USECS_PER_SEC))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("seconds must be more than 0 and at most 100 years"),
				 errdetail("It is %g.", t)));
	return Max((int64) (t * USECS_PER_SEC), 1);
}

static TimestampTz within_statement_timeout(TimestampTz deadline);

/* A timeout of this many seconds or more means no timeout. */
#define SYRPC_TIMEOUT_FOREVER	1e9

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

/*
 * A lease_time or TTL: from 1 millisecond to 100 years, counted as
 * extract(epoch) counts them (which is how the settings are read: a year
 * is 365.25 days, a month left over 30 days).  The upper bound keeps now +
 * the interval a valid timestamp; the sum is computed without overflow so
 * that no interval, however large, slips through.  NULL (keep the
 * setting) passes.
 */
/* An interval in microseconds, as extract(epoch) counts it; false on overflow. */
static bool
interval_us(const Interval *iv, int64 *us)
{
	int64		days_us;
	int64		months_us;

	return !(pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &days_us) ||
			 pg_mul_s64_overflow((int64) (iv->month / MONTHS_PER_YEAR),
								 (int64) (DAYS_PER_YEAR * USECS_PER_DAY), &months_us) ||
			 pg_add_s64_overflow(iv->time, days_us, us) ||
			 pg_add_s64_overflow(*us, months_us, us) ||
			 pg_add_s64_overflow(*us, (int64) (iv->month % MONTHS_PER_YEAR) * DAYS_PER_MONTH * USECS_PER_DAY, us));
}

NullableDatum
arg_interval(FunctionCallInfo fcinfo, int n, const char *what)
{
	NullableDatum arg = {.value = (Datum) 0, .isnull = true};
	Interval   *iv;
	int64		us;
	bool		overflow;

	if (PG_ARGISNULL(n))
		return arg;
	iv = PG_GETARG_INTERVAL_P(n);
	overflow = !interval_us(iv, &us);
	if (overflow || us < 1000 || us > SYRPC_INTERVAL_MAX_US)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 millisecond and 100 years", what),
				 errdetail("It is %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(iv))))));
	arg.value = IntervalPGetDatum(iv);
	arg.isnull = false;
	return arg;
}

/* max_attempts: NULL (keep the setting) or at least 1. */
NullableDatum
arg_max_attempts(FunctionCallInfo fcinfo, int n)
{
	NullableDatum arg = {.value = (Datum) 0, .isnull = PG_ARGISNULL(n)};

	if (arg.isnull)
		return arg;
	if (PG_GETARG_INT32(n) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1")));
	arg.value = PG_GETARG_DATUM(n);
	return arg;
}

/* A role (regrole, so it exists when the call starts). */
Oid
arg_role(FunctionCallInfo fcinfo, int n)
{
	check_not_null(fcinfo, n, "role");
	return PG_GETARG_OID(n);
}

/* The side of an app: 'caller' or 'worker'. */
SyrpcSide
arg_side(FunctionCallInfo fcinfo, int n)
{
	char	   *side;

	check_not_null(fcinfo, n, "side");
	side = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (strcmp(side, "caller") == 0)
		return SYRPC_CALLER;
	if (strcmp(side, "worker") == 0)
		return SYRPC_WORKER;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("side must be 'caller' or 'worker'"),
			 errdetail("It is '%s'.", side),
			 errhint("Callers put requests and take results; workers take requests and answer them.")));
	return SYRPC_CALLER;		/* not reached */
}

/* syrpc_release's delay (1.7): 0 to 100 years, in microseconds. */
int64
arg_delay(FunctionCallInfo fcinfo, int n)
{
	Interval   *iv;
	int64		us;

	check_not_null(fcinfo, n, "delay");
	iv = PG_GETARG_INTERVAL_P(n);
	if (!interval_us(iv, &us) || us < 0 || us > SYRPC_INTERVAL_MAX_US)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("delay must be between 0 and 100 years"),
				 errdetail("It is %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(iv))))));
	return us;
}

/* A remote error's detail (1.7): jsonb as data is checked, or 0 for NULL. */
Datum
arg_detail(FunctionCallInfo fcinfo, int n)
{
	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return (Datum) 0;
	return arg_data(fcinfo, n);
}

/*
 * The attempt a worker was given with its claim (1.7), so that it changes
 * only its own lease, not one a later claim took after its own ran out: 0
 * for NULL (any).
 */
int32
arg_attempt(FunctionCallInfo fcinfo, int n)
{
	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return 0;
	if (PG_GETARG_INT32(n) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("attempt must be at least 1"),
				 errhint("Pass the attempts that came with the claimed request, or NULL.")));
	return PG_GETARG_INT32(n);
}
