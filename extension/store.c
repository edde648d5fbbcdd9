/*-------------------------------------------------------------------------
 *
 * store.c
 *	  Every SQL statement syrpc runs, kept as saved SPI plans.
 *
 * Statements on one result go straight to its partition (syrpc.result_NN),
 * computed the way PostgreSQL routes a row of a hash-partitioned table.
 * Addressing the partition by name keeps each statement's plan to a single
 * small table: a generic plan on the parent would lock all 64 partitions
 * and their indexes on every execution.
 *
 * The callers hold an SPI connection.  Datums handed back point into
 * memory that outlives SPI_finish (SPI_datumTransfer, SPI_palloc).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "syrpc.h"

/* Saved plans of statements that do not depend on a bucket. */
static SPIPlanPtr plan_load_app;
static SPIPlanPtr plan_create_app;
static SPIPlanPtr plan_configure;
static SPIPlanPtr plan_put_request;
static SPIPlanPtr plan_claim;
static SPIPlanPtr plan_next_look;
static SPIPlanPtr plan_finish_request;
static SPIPlanPtr plan_request_state;
static SPIPlanPtr plan_cleanup_requests;
static SPIPlanPtr plan_cleanup_results;

/* Saved plans per result partition. */
static SPIPlanPtr plan_put_result[SYRPC_BUCKETS];
static SPIPlanPtr plan_consume[SYRPC_BUCKETS];
static SPIPlanPtr plan_result_state[SYRPC_BUCKETS];

/*
 * The partition of syrpc.result that holds id: the same computation as
 * PostgreSQL's hash partition routing for a single uuid key, so that a row
 * inserted into the partition directly passes its partition constraint.
 */
int
syrpc_bucket_of(const pg_uuid_t *id)
{
	uint64		h;

	h = DatumGetUInt64(DirectFunctionCall2(uuid_hash_extended,
										   UUIDPGetDatum(id),
										   UInt64GetDatum(HASH_PARTITION_SEED)));
	return (int) (hash_combine64(0, h) % SYRPC_BUCKETS);
}

/*
 * Prepare sql once per backend and keep the plan in *slot.
 */
static SPIPlanPtr
prepare_once(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "syrpc: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "syrpc: could not save plan for \"%s\"", sql);
		*slot = plan;
	}
	return *slot;
}

/*
 * Prepare a statement on result partition bucket; sql has one %02d for it.
 */
static SPIPlanPtr
prepare_bucket(SPIPlanPtr *slots, int bucket, const char *sql,
			   int nargs, Oid *argtypes)
{
	if (slots[bucket] == NULL)
	{
		char	   *text = psprintf(sql, bucket);

		prepare_once(&slots[bucket], text, nargs, argtypes);
		pfree(text);
	}
	return slots[bucket];
}

/*
 * Run a saved plan with fresh snapshot; return the number of rows.
 */
static uint64
run(SPIPlanPtr plan, Datum *values, const char *nulls, long count)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, count);

	if (rc < 0)
		elog(ERROR, "syrpc: SPI_execute_plan failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/* Column n (1-based) of row 0 of the last result; *isnull is set. */
static Datum
col(int n, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, n, isnull);
}

/* Column n of row 0, which the query guarantees is not NULL. */
static Datum
col_notnull(int n)
{
	bool		isnull;
	Datum		d = col(n, &isnull);

	if (isnull)
		elog(ERROR, "syrpc: unexpected NULL in column %d", n);
	return d;
}

static bool
same_text(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/*
 * Load app's settings, creating the app with default settings on first use.
 */
void
store_load_app(text *app, SyrpcApp *settings)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {PointerGetDatum(app)};

	prepare_once(&plan_load_app,
				 "SELECT (extract(epoch FROM lease_time) * 1000000)::int8,"
				 "       max_attempts,"
				 "       (extract(epoch FROM result_ttl) * 1000000)::int8,"
				 "       (extract(epoch FROM request_ttl) * 1000000)::int8"
				 "  FROM syrpc.app WHERE app = $1",
				 1, argtypes);
	if (run(plan_load_app, values, NULL, 1) == 0)
	{
		prepare_once(&plan_create_app,
					 "INSERT INTO syrpc.app (app) VALUES ($1) ON CONFLICT DO NOTHING",
					 1, argtypes);
		run(plan_create_app, values, NULL, 0);
		if (run(plan_load_app, values, NULL, 1) == 0)
			elog(ERROR, "syrpc: app vanished while it was being created");
	}
	settings->lease_us = DatumGetInt64(col_notnull(1));
	settings->max_attempts = DatumGetInt32(col_notnull(2));
	settings->result_ttl_us = DatumGetInt64(col_notnull(3));
	settings->request_ttl_us = DatumGetInt64(col_notnull(4));
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Create app if need be and change the settings whose isnull is false.
 * values/isnull: lease_time, max_attempts, result_ttl, request_ttl.
 */
void
store_configure(text *app, Datum *settings, bool *isnull)
{
	Oid			argtypes[5] = {TEXTOID, INTERVALOID, INT4OID, INTERVALOID, INTERVALOID};
	Datum		values[5];
	char		nulls[5];
	SyrpcApp	ignored;

	store_load_app(app, &ignored);
	values[0] = PointerGetDatum(app);
	nulls[0] = ' ';
	for (int i = 0; i < 4; i++)
	{
		values[i + 1] = settings[i];
		nulls[i + 1] = isnull[i] ? 'n' : ' ';
	}
	prepare_once(&plan_configure,
				 "UPDATE syrpc.app SET lease_time = coalesce($2, lease_time),"
				 "       max_attempts = coalesce($3, max_attempts),"
				 "       result_ttl = coalesce($4, result_ttl),"
				 "       request_ttl = coalesce($5, request_ttl)"
				 " WHERE app = $1",
				 5, argtypes);
	run(plan_configure, values, nulls, 0);
}

/*
 * Queue a request; returns its new result_id (palloc'd outside SPI).
 */
pg_uuid_t *
store_put_request(text *app, text *type, Datum data, TimestampTz now,
				  const SyrpcApp *settings)
{
	Oid			argtypes[5] = {TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[5];
	pg_uuid_t  *id;

	values[0] = PointerGetDatum(app);
	values[1] = PointerGetDatum(type);
	values[2] = data;
	values[3] = TimestampTzGetDatum(now);
	values[4] = TimestampTzGetDatum(now + settings->request_ttl_us);
	prepare_once(&plan_put_request,
				 "INSERT INTO syrpc.request"
				 "       (result_id, app, type, data, created_at, ready_at, expires_at)"
				 " VALUES (gen_random_uuid(), $1, $2, $3, $4, $4, $5)"
				 " RETURNING result_id",
				 5, argtypes);
	if (run(plan_put_request, values, NULL, 0) != 1)
		elog(ERROR, "syrpc: request insert returned no row");
	id = SPI_palloc(sizeof(pg_uuid_t));
	memcpy(id, DatumGetUUIDP(col_notnull(1)), sizeof(pg_uuid_t));
	SPI_freetuptable(SPI_tuptable);
	return id;
}

/*
 * Claim the oldest claimable request of app under a lease.  On success
 * fills values[0..2] with type, result_id, data and returns true.
 */
bool
store_claim(text *app, TimestampTz now, const SyrpcApp *settings, Datum *values)
{
	Oid			argtypes[4] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID};
	Datum		args[4];

	args[0] = PointerGetDatum(app);
	args[1] = TimestampTzGetDatum(now);
	args[2] = TimestampTzGetDatum(now + settings->lease_us);
	args[3] = Int32GetDatum(settings->max_attempts);
	prepare_once(&plan_claim,
				 "UPDATE syrpc.request SET attempts = attempts + 1, ready_at = $3"
				 " WHERE result_id = ("
				 "       SELECT result_id FROM syrpc.request"
				 "        WHERE app = $1 AND ready_at <= $2 AND expires_at > $2"
				 "          AND attempts < $4"
				 "        ORDER BY app, created_at"
				 "        LIMIT 1 FOR UPDATE SKIP LOCKED)"
				 " RETURNING type, result_id, data",
				 4, argtypes);
	if (run(plan_claim, args, NULL, 0) == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return false;
	}
	values[0] = SPI_datumTransfer(col_notnull(1), false, -1);
	values[1] = SPI_datumTransfer(col_notnull(2), false, UUID_LEN);
	values[2] = SPI_datumTransfer(col_notnull(3), false, -1);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * When a waiting worker should look again without being woken: when the
 * next running lease of app runs out (its request becomes claimable again),
 * and at the latest a lease_time from now, since a lease taken after this
 * look (which wakes nobody) ends no earlier than that.
 */
TimestampTz
store_next_look(text *app, TimestampTz now, const SyrpcApp *settings)
{
	Oid			argtypes[3] = {TEXTOID, TIMESTAMPTZOID, INT4OID};
	Datum		values[3];
	Datum		d;
	bool		isnull;

	values[0] = PointerGetDatum(app);
	values[1] = TimestampTzGetDatum(now);
	values[2] = Int32GetDatum(settings->max_attempts);
	prepare_once(&plan_next_look,
				 "SELECT min(ready_at) FROM syrpc.request"
				 " WHERE app = $1 AND ready_at > $2 AND expires_at > $2"
				 "   AND attempts < $3",
				 3, argtypes);
	run(plan_next_look, values, NULL, 1);
	d = col(1, &isnull);
	SPI_freetuptable(SPI_tuptable);
	if (isnull || DatumGetTimestampTz(d) > now + settings->lease_us)
		return now + settings->lease_us;
	return DatumGetTimestampTz(d);
}

/*
 * Delete the claimed request that result_id answers, or say why not.
 */
SyrpcFinishState
store_finish_request(text *app, const pg_uuid_t *id, TimestampTz now)
{
	Oid			argtypes[2] = {UUIDOID, TEXTOID};
	Datum		values[2];
	SyrpcRequestState req;
	TimestampTz until;
	int32		attempts;
	SyrpcApp	any = {0, PG_INT32_MAX, 0, 0};

	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	prepare_once(&plan_finish_request,
				 "DELETE FROM syrpc.request"
				 " WHERE result_id = $1 AND app = $2 AND attempts > 0",
				 2, argtypes);
	if (run(plan_finish_request, values, NULL, 0) == 1)
		return SYRPC_FIN_OK;

	/* Not deleted: find out why, for a clear error. */
	req = store_request_state(app, id, now, &any, &until, &attempts);
	if (req == SYRPC_REQ_WRONG_APP)
		return SYRPC_FIN_WRONG_APP;
	if (req != SYRPC_REQ_NONE)
		return attempts == 0 ? SYRPC_FIN_NOT_CLAIMED : SYRPC_FIN_UNKNOWN;
	switch (store_result_state(app, id, now))
	{
		case SYRPC_RES_WRONG_APP:
			return SYRPC_FIN_WRONG_APP;
		case SYRPC_RES_PRESENT:
		case SYRPC_RES_CONSUMED:
			return SYRPC_FIN_ANSWERED;
		case SYRPC_RES_NONE:
			break;
	}
	return SYRPC_FIN_UNKNOWN;
}

/*
 * Store the result of request id in its partition.
 */
void
store_put_result(text *app, const pg_uuid_t *id, Datum data, TimestampTz now,
				 const SyrpcApp *settings)
{
	Oid			argtypes[5] = {UUIDOID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[5];
	int			bucket = syrpc_bucket_of(id);

	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = data;
	values[3] = TimestampTzGetDatum(now);
	values[4] = TimestampTzGetDatum(now + settings->result_ttl_us);
	prepare_bucket(plan_put_result, bucket,
				   "INSERT INTO syrpc.result_%02d"
				   "       (result_id, app, data, created_at, expires_at)"
				   " VALUES ($1, $2, $3, $4, $5)",
				   5, argtypes);
	run(plan_put_result[bucket], values, NULL, 0);
}

/*
 * Take the unexpired, unconsumed result id of app, leaving a tombstone.
 * Returns false if there is none.
 */
bool
store_consume_result(text *app, const pg_uuid_t *id, TimestampTz now, Datum *data)
{
	Oid			argtypes[3] = {UUIDOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	int			bucket = syrpc_bucket_of(id);

	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = TimestampTzGetDatum(now);
	prepare_bucket(plan_consume, bucket,
				   "UPDATE syrpc.result_%02d SET consumed_at = $3"
				   " WHERE result_id = $1 AND app = $2"
				   "   AND consumed_at IS NULL AND expires_at > $3"
				   " RETURNING data",
				   3, argtypes);
	if (run(plan_consume[bucket], values, NULL, 0) == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return false;
	}
	*data = SPI_datumTransfer(col_notnull(1), false, -1);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * Why store_consume_result found nothing.
 */
SyrpcResultState
store_result_state(text *app, const pg_uuid_t *id, TimestampTz now)
{
	Oid			argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	Datum		values[2];
	int			bucket = syrpc_bucket_of(id);
	SyrpcResultState state = SYRPC_RES_NONE;

	values[0] = UUIDPGetDatum(id);
	values[1] = TimestampTzGetDatum(now);
	prepare_bucket(plan_result_state, bucket,
				   "SELECT app, consumed_at IS NOT NULL FROM syrpc.result_%02d"
				   " WHERE result_id = $1 AND expires_at > $2",
				   2, argtypes);
	if (run(plan_result_state[bucket], values, NULL, 1) == 1)
	{
		if (!same_text(app, DatumGetTextPP(col_notnull(1))))
			state = SYRPC_RES_WRONG_APP;
		else if (DatumGetBool(col_notnull(2)))
			state = SYRPC_RES_CONSUMED;
		else
			state = SYRPC_RES_PRESENT;
	}
	SPI_freetuptable(SPI_tuptable);
	return state;
}

/*
 * Where request id stands, for a caller waiting on its result.  *until
 * is set for SYRPC_REQ_WAITING: when the state can change without a put
 * (lease end or expiry).  *attempts is set whenever the request exists.
 */
SyrpcRequestState
store_request_state(text *app, const pg_uuid_t *id, TimestampTz now,
					const SyrpcApp *settings, TimestampTz *until,
					int32 *attempts)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(id)};
	SyrpcRequestState state;
	TimestampTz ready_at;
	TimestampTz expires_at;

	prepare_once(&plan_request_state,
				 "SELECT app, attempts, ready_at, expires_at"
				 "  FROM syrpc.request WHERE result_id = $1",
				 1, argtypes);
	if (run(plan_request_state, values, NULL, 1) == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return SYRPC_REQ_NONE;
	}
	*attempts = DatumGetInt32(col_notnull(2));
	ready_at = DatumGetTimestampTz(col_notnull(3));
	expires_at = DatumGetTimestampTz(col_notnull(4));
	if (!same_text(app, DatumGetTextPP(col_notnull(1))))
		state = SYRPC_REQ_WRONG_APP;
	else if (ready_at > now)
	{
		/* leased: look again when the lease runs out */
		*until = ready_at;
		state = SYRPC_REQ_WAITING;
	}
	else if (*attempts >= settings->max_attempts)
		state = SYRPC_REQ_FAILED;
	else if (expires_at <= now)
		state = SYRPC_REQ_EXPIRED;
	else
	{
		/*
		 * Queued.  A claim does not wake us, so look again a lease_time
		 * from now: a lease taken later than that look ends after it, and
		 * that look sees it and sleeps until its end.
		 */
		*until = Min(expires_at, now + settings->lease_us);
		state = SYRPC_REQ_WAITING;
	}
	SPI_freetuptable(SPI_tuptable);
	return state;
}

/*
 * Delete expired requests and results; returns the number of rows.
 *
 * A request goes when its request_ttl has passed and no lease is running,
 * or, once failed, when a result would have expired (result_ttl after its
 * last lease ended), so that its caller can still learn that it failed.
 */
int64
store_cleanup(TimestampTz now)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {TimestampTzGetDatum(now)};
	int64		n;

	prepare_once(&plan_cleanup_requests,
				 "DELETE FROM syrpc.request r USING syrpc.app a"
				 " WHERE a.app = r.app"
				 "   AND ((r.expires_at <= $1 AND r.ready_at <= $1)"
				 "        OR (r.attempts >= a.max_attempts"
				 "            AND r.ready_at + a.result_ttl <= $1))",
				 1, argtypes);
	prepare_once(&plan_cleanup_results,
				 "DELETE FROM syrpc.result WHERE expires_at <= $1",
				 1, argtypes);
	n = run(plan_cleanup_requests, values, NULL, 0);
	n += run(plan_cleanup_results, values, NULL, 0);
	return n;
}
