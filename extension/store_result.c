/*-------------------------------------------------------------------------
 *
 * store_result.c
 *	  The statements on results: storing one, taking it (in a mark, or by a
 *	  tombstone in its row), and saying why there is none to take.
 *
 * Each goes straight to the result's partition (syrpc.result_NN), computed
 * the way PostgreSQL routes a row of a hash-partitioned table
 * (syrpc_bucket_of), and reads or writes its one row by the primary key
 * without a plan (store_direct.c): a generic plan on the parent would lock
 * all 64 partitions and their indexes on every execution, and a plan per
 * partition made 64 of each statement in every backend.
 *
 * A result is data, or (1.7) a worker's error, whose message is in column
 * error and whose detail is the data, or a cancel (column cancelled).
 * Columns are found by name: tables from before 1.4 have no requested_at,
 * from before 1.7 no error and cancelled.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

/* A result's partition (syrpc.result_NN), opened in lock mode mode. */
static void
open_partition(const pg_uuid_t *id, LOCKMODE mode, SyrpcDirect *d)
{
	char		name[NAMEDATALEN];

	snprintf(name, sizeof(name), "result_%02d", syrpc_bucket_of(id));
	direct_open(d, name, mode);
}

/* Is column name of the row found NULL (or missing from the tables' version)? */
static bool
is_null(SyrpcDirect *d, const char *name)
{
	bool		isnull;

	(void) direct_get(d, name, &isnull);
	return isnull;
}

/* Is the row found a result of app, neither taken nor expired at now? */
static bool
takeable(SyrpcDirect *d, text *app, TimestampTz now)
{
	return is_null(d, "consumed_at") &&
		DatumGetTimestampTz(direct_get_notnull(d, "expires_at")) > now &&
		same_text(app, DatumGetTextPP(direct_get_notnull(d, "app")));
}

/* The row found's outcome, requested_at (0: none) and, if data, its data. */
static void
read_found(SyrpcDirect *d, Datum *data, TimestampTz *requested_at, SyrpcOutcome *outcome)
{
	bool		isnull;
	Datum		v;

	outcome->error = is_null(d, "error") ? NULL : DatumGetTextPP(direct_get_out(d, "error"));
	v = direct_get(d, "cancelled", &isnull);
	outcome->cancelled = !isnull && DatumGetBool(v);
	v = direct_get(d, "requested_at", &isnull);
	*requested_at = isnull ? 0 : DatumGetTimestampTz(v);
	if (data != NULL)
		*data = direct_get_out(d, "data");
}

/*
 * Insert a result of request id; requested_at 0: none.  outcome NULL: data,
 * else a worker's error (data: its detail, or NULL) or a cancel.
 */
static void
insert_result(text *app, const pg_uuid_t *id, Datum data, TimestampTz now,
			  const SyrpcApp *settings, TimestampTz requested_at,
			  const SyrpcOutcome *outcome)
{
	SyrpcDirect d;
	SyrpcRow	row;

	open_partition(id, RowExclusiveLock, &d);
	direct_row(&d, &row);
	direct_set_required(&d, &row, "result_id", UUIDPGetDatum(id));
	direct_set_required(&d, &row, "app", PointerGetDatum(app));
	if (data == (Datum) 0)
		data = DirectFunctionCall1(jsonb_in, CStringGetDatum("null"));
	direct_set_required(&d, &row, "data", data);
	direct_set_required(&d, &row, "created_at", TimestampTzGetDatum(now));
	direct_set_required(&d, &row, "expires_at",
						TimestampTzGetDatum(now + settings->result_ttl_us));
	if (requested_at != 0)
		(void) direct_set(&d, &row, "requested_at", TimestampTzGetDatum(requested_at));
	if (outcome != NULL)
	{
		/* the functions that make outcomes come with the 1.7 tables */
		if (outcome->error != NULL)
			direct_set_required(&d, &row, "error", PointerGetDatum(outcome->error));
		direct_set_required(&d, &row, "cancelled", BoolGetDatum(outcome->cancelled));
	}
	direct_insert(&d, &row);
	direct_close(&d);
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
	insert_result(app, id, data, now, settings, requested_at, NULL);
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
	insert_result(app, id, data, now, settings, requested_at, outcome);
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
	SyrpcDirect d;
	SyrpcMarkInfo info = {0};
	SyrpcMarkInfo found;
	SyrpcMarkAdd added = MARK_RUNNING;	/* nothing to take */

	open_partition(id, AccessShareLock, &d);
	if (direct_find(&d, id) && takeable(&d, app, now))
	{
		info.until = DatumGetTimestampTz(direct_get_notnull(&d, "expires_at"));
		read_found(&d, NULL, requested_at, outcome);
		if (outcome->error != NULL || outcome->cancelled)
			added = MARK_ADDED; /* an error is raised, not taken: no mark */
		else
			added = mark_add(SYRPC_MARK_TAKEN, id, now, &info, &found);
		if (added == MARK_ADDED)
			*data = direct_get_out(&d, "data");
	}
	direct_close(&d);
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
	SyrpcDirect d;
	SyrpcMarkInfo mark;
	bool		taken = false;

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
	open_partition(id, RowExclusiveLock, &d);
	while (!taken && direct_find(&d, id) && takeable(&d, app, now))
	{
		TupleDesc	desc = RelationGetDescr(d.rel);
		Datum	   *values = palloc(desc->natts * sizeof(Datum));
		bool	   *nulls = palloc(desc->natts * sizeof(bool));
		AttrNumber	consumed_at = direct_attnum(&d, "consumed_at");

		/* the tombstone: the same row, with consumed_at */
		read_found(&d, data, requested_at, outcome);
		slot_getallattrs(d.slot);
		memcpy(values, d.slot->tts_values, desc->natts * sizeof(Datum));
		memcpy(nulls, d.slot->tts_isnull, desc->natts * sizeof(bool));
		values[consumed_at - 1] = TimestampTzGetDatum(now);
		nulls[consumed_at - 1] = false;
		/* a concurrent take or cleanup changed it first: look again */
		taken = direct_update(&d, values, nulls);
		pfree(values);
		pfree(nulls);
	}
	direct_close(&d);
	return taken;
}

/*
 * Why store_consume_result found nothing.
 */
SyrpcResultState
store_result_state(text *app, const pg_uuid_t *id, TimestampTz now)
{
	SyrpcDirect d;
	SyrpcResultState state = SYRPC_RES_NONE;
	SyrpcMarkInfo mark;
	bool		isnull;
	Datum		v;

	open_partition(id, AccessShareLock, &d);
	if (direct_find(&d, id) &&
		DatumGetTimestampTz(direct_get_notnull(&d, "expires_at")) > now)
	{
		v = direct_get(&d, "cancelled", &isnull);
		if (!same_text(app, DatumGetTextPP(direct_get_notnull(&d, "app"))))
			state = SYRPC_RES_WRONG_APP;
		else if (!isnull && DatumGetBool(v))
			state = SYRPC_RES_CANCELLED;
		else if (!is_null(&d, "consumed_at") ||
				 mark_lookup(SYRPC_MARK_TAKEN, id, &mark))
			state = SYRPC_RES_CONSUMED;
		else
			state = SYRPC_RES_PRESENT;
	}
	direct_close(&d);
	return state;
}
