/*-------------------------------------------------------------------------
 *
 * store_result.c
 *	  The statements on results: storing one, taking it (in a mark, or by a
 *	  tombstone in its row), and saying why there is none to take.
 *
 * Statements on one result go straight to its partition (syrpc.result_NN),
 * computed the way PostgreSQL routes a row of a hash-partitioned table
 * (syrpc_bucket_of).  Addressing the partition by name keeps each
 * statement's plan to a single small table: a generic plan on the parent
 * would lock all 64 partitions and their indexes on every execution.
 *
 * A result is data, or (1.7) a worker's error, whose message is in column
 * error and whose detail is the data, or a cancel (column cancelled).
 * Statements that read those columns come in two forms, for tables from
 * before 1.7 and after (store_schema).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

/* Saved plans per result partition. */
static SPIPlanPtr plan_put_result[SYRPC_BUCKETS];
static SPIPlanPtr plan_put_outcome[SYRPC_BUCKETS];
static SPIPlanPtr plan_consume[SYRPC_BUCKETS];
static SPIPlanPtr plan_read_result[SYRPC_BUCKETS];
static SPIPlanPtr plan_result_state[SYRPC_BUCKETS];

/* The plans whose text depends on the version of the tables. */
static SPIPlanPtr *const variant_plans[] = {plan_put_result, plan_consume,
plan_read_result, plan_result_state};

/* The tables changed version: their next run prepares them again. */
void
store_result_forget_plans(void)
{
	for (int i = 0; i < lengthof(variant_plans); i++)
		for (int b = 0; b < SYRPC_BUCKETS; b++)
			if (variant_plans[i][b] != NULL)
			{
				SPI_freeplan(variant_plans[i][b]);
				variant_plans[i][b] = NULL;
			}
}

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
 * Store the result of request id in its partition.
 */
void
store_put_result(text *app, const pg_uuid_t *id, Datum data, TimestampTz now,
				 const SyrpcApp *settings, TimestampTz requested_at)
{
	Oid			argtypes[6] = {UUIDOID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID};
	Datum		values[6];
	int			bucket = syrpc_bucket_of(id);
	bool		with = (store_schema() & SCHEMA_REQUESTED_AT) != 0;

	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = data;
	values[3] = TimestampTzGetDatum(now);
	values[4] = TimestampTzGetDatum(now + settings->result_ttl_us);
	values[5] = TimestampTzGetDatum(requested_at);
	plan_prepare_bucket(plan_put_result, bucket, with ?
						"INSERT INTO syrpc.result_%02d"
						"       (result_id, app, data, created_at, expires_at, requested_at)"
						" VALUES ($1, $2, $3, $4, $5, $6)" :
						"INSERT INTO syrpc.result_%02d"
						"       (result_id, app, data, created_at, expires_at)"
						" VALUES ($1, $2, $3, $4, $5)",
						6, argtypes);
	plan_run(plan_put_result[bucket], values, NULL, 0);
}

/*
 * Store a worker's error (data: its detail, or NULL) or a cancel as the
 * result of request id (1.7 tables only: the functions that make them
 * come with 1.7).
 */
void
store_put_outcome(text *app, const pg_uuid_t *id, Datum data, TimestampTz now,
				  const SyrpcApp *settings, TimestampTz requested_at,
				  const SyrpcOutcome *outcome)
{
	Oid			argtypes[8] = {UUIDOID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, TEXTOID, BOOLOID};
	Datum		values[8];
	char		nulls[8] = "        ";
	int			bucket = syrpc_bucket_of(id);

	if ((store_schema() & SCHEMA_OUTCOME) == 0)
		elog(ERROR, "syrpc: the tables of this database are older than 1.7");
	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = data;
	if (data == (Datum) 0)
		values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum("null"));
	values[3] = TimestampTzGetDatum(now);
	values[4] = TimestampTzGetDatum(now + settings->result_ttl_us);
	values[5] = TimestampTzGetDatum(requested_at);
	values[6] = PointerGetDatum(outcome->error);
	nulls[6] = outcome->error == NULL ? 'n' : ' ';
	values[7] = BoolGetDatum(outcome->cancelled);
	nulls[5] = requested_at == 0 ? 'n' : ' ';
	plan_prepare_bucket(plan_put_outcome, bucket,
						"INSERT INTO syrpc.result_%02d"
						"       (result_id, app, data, created_at, expires_at, requested_at,"
						"        error, cancelled)"
						" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
						8, argtypes);
	plan_run(plan_put_outcome[bucket], values, nulls, 0);
}

/* A result's outcome from columns n (error) and n + 1 (cancelled). */
static void
outcome_from_result(int n, SyrpcOutcome *outcome)
{
	bool		isnull;
	Datum		d = result_col(n, &isnull);

	outcome->error = isnull ? NULL : DatumGetTextPP(result_col_out(n));
	d = result_col(n + 1, &isnull);
	outcome->cancelled = !isnull && DatumGetBool(d);
}

/* The columns of a result's outcome in statements on tables of this version. */
static const char *
outcome_columns(void)
{
	return (store_schema() & SCHEMA_OUTCOME) ? "error, cancelled" :
		"NULL::text, NULL::boolean";
}

/*
 * Take the unexpired, unconsumed result id of app, reading it and marking
 * it taken in shared memory (marks.c): no write, no xid.  MARK_FULL if
 * there is no room for the mark.
 */
static SyrpcMarkAdd
take_with_mark(text *app, const pg_uuid_t *id, TimestampTz now, Datum *data,
			   TimestampTz *requested_at, SyrpcOutcome *outcome)
{
	Oid			argtypes[3] = {UUIDOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	int			bucket = syrpc_bucket_of(id);
	bool		with = (store_schema() & SCHEMA_REQUESTED_AT) != 0;
	SyrpcMarkInfo info = {0};
	SyrpcMarkInfo found;
	SyrpcMarkAdd added;
	bool		isnull;
	Datum		d;
	char		sql[512];

	if (plan_read_result[bucket] == NULL)
		snprintf(sql, sizeof(sql),
			 "SELECT data, %s, expires_at, %s FROM syrpc.result_%%02d"
			 " WHERE result_id = $1 AND app = $2"
			 "   AND consumed_at IS NULL AND expires_at > $3",
			 with ? "requested_at" : "NULL::timestamptz", outcome_columns());
	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = TimestampTzGetDatum(now);
	plan_prepare_bucket(plan_read_result, bucket, sql, 3, argtypes);
	if (plan_run(plan_read_result[bucket], values, NULL, 1) == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return MARK_RUNNING;	/* nothing to take */
	}
	info.until = DatumGetTimestampTz(result_col_notnull(3));
	outcome_from_result(4, outcome);
	if (outcome->error != NULL || outcome->cancelled)
		added = MARK_ADDED;		/* an error is raised, not taken: no mark */
	else
		added = mark_add(SYRPC_MARK_TAKEN, id, now, &info, &found);
	if (added == MARK_ADDED)
	{
		*data = result_col_out(1);
		d = result_col(2, &isnull);
		*requested_at = isnull ? 0 : DatumGetTimestampTz(d);
	}
	SPI_freetuptable(SPI_tuptable);
	return added;
}

/*
 * Take the unexpired, unconsumed result id of app: in a mark when marks
 * are usable, else by leaving a tombstone in its row (consumed_at).
 * Returns false if there is none.  A worker's error or a cancel comes back
 * in outcome, for the caller to raise: the error undoes the take.
 */
bool
store_consume_result(text *app, const pg_uuid_t *id, TimestampTz now, Datum *data,
					 TimestampTz *requested_at, SyrpcOutcome *outcome)
{
	Oid			argtypes[3] = {UUIDOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	int			bucket = syrpc_bucket_of(id);
	bool		with = (store_schema() & SCHEMA_REQUESTED_AT) != 0;
	bool		isnull;
	Datum		d;
	SyrpcMarkInfo mark;
	char		sql[512];

	outcome->error = NULL;
	outcome->cancelled = false;
	if (marks_usable())
	{
		SyrpcMarkAdd r = take_with_mark(app, id, now, data, requested_at, outcome);

		if (r != MARK_FULL)
			return r == MARK_ADDED;
	}
	else if (mark_lookup(SYRPC_MARK_TAKEN, id, &mark))
		return false;			/* taken in a mark */
	if (plan_consume[bucket] == NULL)
		snprintf(sql, sizeof(sql),
			 "UPDATE syrpc.result_%%02d SET consumed_at = $3"
			 " WHERE result_id = $1 AND app = $2"
			 "   AND consumed_at IS NULL AND expires_at > $3"
			 " RETURNING data, %s, %s",
			 with ? "requested_at" : "NULL::timestamptz", outcome_columns());
	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = TimestampTzGetDatum(now);
	plan_prepare_bucket(plan_consume, bucket, sql, 3, argtypes);
	if (plan_run(plan_consume[bucket], values, NULL, 0) == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return false;
	}
	*data = result_col_out(1);
	d = result_col(2, &isnull);
	*requested_at = isnull ? 0 : DatumGetTimestampTz(d);
	outcome_from_result(3, outcome);
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
	SyrpcMarkInfo mark;

	values[0] = UUIDPGetDatum(id);
	values[1] = TimestampTzGetDatum(now);
	plan_prepare_bucket(plan_result_state, bucket,
						(store_schema() & SCHEMA_OUTCOME) ?
						"SELECT app, consumed_at IS NOT NULL, cancelled IS TRUE"
						"  FROM syrpc.result_%02d"
						" WHERE result_id = $1 AND expires_at > $2" :
						"SELECT app, consumed_at IS NOT NULL, false"
						"  FROM syrpc.result_%02d"
						" WHERE result_id = $1 AND expires_at > $2",
						2, argtypes);
	if (plan_run(plan_result_state[bucket], values, NULL, 1) == 1)
	{
		if (!same_text(app, DatumGetTextPP(result_col_notnull(1))))
			state = SYRPC_RES_WRONG_APP;
		else if (DatumGetBool(result_col_notnull(3)))
			state = SYRPC_RES_CANCELLED;
		else if (DatumGetBool(result_col_notnull(2)) ||
				 mark_lookup(SYRPC_MARK_TAKEN, id, &mark))
			state = SYRPC_RES_CONSUMED;
		else
			state = SYRPC_RES_PRESENT;
	}
	SPI_freetuptable(SPI_tuptable);
	return state;
}
