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

/* The columns of syrpc.result, by name: the tables' version decides which it has. */
typedef struct ResultCols
{
	AttrNumber	result_id,
				app,
				data,
				created_at,
				expires_at,
				consumed_at,
				requested_at,	/* 1.4 */
				error,			/* 1.7 */
				cancelled;		/* 1.7 */
} ResultCols;

/* A result's partition (syrpc.result_NN) and its columns, opened in lock mode mode. */
static void
open_partition(const pg_uuid_t *id, LOCKMODE mode, SyrpcDirect *d, ResultCols *cols)
{
	char		name[NAMEDATALEN];

	snprintf(name, sizeof(name), "result_%02d", syrpc_bucket_of(id));
	direct_open(d, name, mode);
	cols->result_id = direct_attnum(d, "result_id");
	cols->app = direct_attnum(d, "app");
	cols->data = direct_attnum(d, "data");
	cols->created_at = direct_attnum(d, "created_at");
	cols->expires_at = direct_attnum(d, "expires_at");
	cols->consumed_at = direct_attnum(d, "consumed_at");
	cols->requested_at = direct_attnum(d, "requested_at");
	cols->error = direct_attnum(d, "error");
	cols->cancelled = direct_attnum(d, "cancelled");
}

/* Column n of the row found (NULL if the tables have no such column). */
static Datum
col(SyrpcDirect *d, AttrNumber n, bool *isnull)
{
	if (n == InvalidAttrNumber)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return slot_getattr(d->slot, n, isnull);
}

/* A varlena column of the row found, detoasted into the memory of SPI's caller. */
static Datum
col_out(SyrpcDirect *d, AttrNumber n)
{
	bool		isnull;
	Datum		v = col(d, n, &isnull);

	if (isnull)
		elog(ERROR, "syrpc: unexpected NULL in column %d of a result", n);
	if (VARATT_IS_EXTENDED(DatumGetPointer(v)))
		v = PointerGetDatum(detoast_attr((struct varlena *) DatumGetPointer(v)));
	return SPI_datumTransfer(v, false, -1);
}

/* Is column n of the row found NULL (or missing)? */
static bool
col_null(SyrpcDirect *d, AttrNumber n)
{
	bool		isnull;

	(void) col(d, n, &isnull);
	return isnull;
}

/* Is the row found a result of app, neither taken nor expired at now? */
static bool
takeable(SyrpcDirect *d, const ResultCols *cols, text *app, TimestampTz now)
{
	bool		isnull;
	Datum		v;

	if (!col_null(d, cols->consumed_at))
		return false;
	v = col(d, cols->expires_at, &isnull);
	if (isnull || DatumGetTimestampTz(v) <= now)
		return false;
	v = col(d, cols->app, &isnull);
	return !isnull && same_text(app, DatumGetTextPP(v));
}

/* The row found's outcome, requested_at (0: none) and, if data, its data. */
static void
read_found(SyrpcDirect *d, const ResultCols *cols, Datum *data,
		   TimestampTz *requested_at, SyrpcOutcome *outcome)
{
	bool		isnull;
	Datum		v;

	v = col(d, cols->error, &isnull);
	outcome->error = isnull ? NULL : DatumGetTextPP(col_out(d, cols->error));
	v = col(d, cols->cancelled, &isnull);
	outcome->cancelled = !isnull && DatumGetBool(v);
	v = col(d, cols->requested_at, &isnull);
	*requested_at = isnull ? 0 : DatumGetTimestampTz(v);
	if (data != NULL)
		*data = col_out(d, cols->data);
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
	ResultCols	cols;
	int			natts;
	Datum	   *values;
	bool	   *nulls;

	open_partition(id, RowExclusiveLock, &d, &cols);
	if (outcome != NULL && (cols.error == InvalidAttrNumber || cols.cancelled == InvalidAttrNumber))
		elog(ERROR, "syrpc: the tables of this database are older than 1.7");
	natts = RelationGetDescr(d.rel)->natts;
	values = palloc0(natts * sizeof(Datum));
	nulls = palloc(natts * sizeof(bool));
	memset(nulls, true, natts * sizeof(bool));
#define SET(n, v) do { values[(n) - 1] = (v); nulls[(n) - 1] = false; } while (0)
	SET(cols.result_id, UUIDPGetDatum(id));
	SET(cols.app, PointerGetDatum(app));
	if (data == (Datum) 0)
		data = DirectFunctionCall1(jsonb_in, CStringGetDatum("null"));
	SET(cols.data, data);
	SET(cols.created_at, TimestampTzGetDatum(now));
	SET(cols.expires_at, TimestampTzGetDatum(now + settings->result_ttl_us));
	if (requested_at != 0 && cols.requested_at != InvalidAttrNumber)
		SET(cols.requested_at, TimestampTzGetDatum(requested_at));
	if (outcome != NULL && outcome->error != NULL)
		SET(cols.error, PointerGetDatum(outcome->error));
	if (outcome != NULL)
		SET(cols.cancelled, BoolGetDatum(outcome->cancelled));
#undef SET
	direct_insert(&d, values, nulls);
	direct_close(&d);
	pfree(values);
	pfree(nulls);
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
	ResultCols	cols;
	SyrpcMarkInfo info = {0};
	SyrpcMarkInfo found;
	SyrpcMarkAdd added = MARK_RUNNING;	/* nothing to take */
	bool		isnull;

	open_partition(id, AccessShareLock, &d, &cols);
	if (direct_find(&d, id) && takeable(&d, &cols, app, now))
	{
		info.until = DatumGetTimestampTz(col(&d, cols.expires_at, &isnull));
		read_found(&d, &cols, NULL, requested_at, outcome);
		if (outcome->error != NULL || outcome->cancelled)
			added = MARK_ADDED; /* an error is raised, not taken: no mark */
		else
			added = mark_add(SYRPC_MARK_TAKEN, id, now, &info, &found);
		if (added == MARK_ADDED)
			*data = col_out(&d, cols.data);
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
	ResultCols	cols;
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
	open_partition(id, RowExclusiveLock, &d, &cols);
	while (!taken && direct_find(&d, id) && takeable(&d, &cols, app, now))
	{
		TupleDesc	desc = RelationGetDescr(d.rel);
		Datum	   *values = palloc(desc->natts * sizeof(Datum));
		bool	   *nulls = palloc(desc->natts * sizeof(bool));

		/* the tombstone: the same row, with consumed_at */
		read_found(&d, &cols, data, requested_at, outcome);
		slot_getallattrs(d.slot);
		memcpy(values, d.slot->tts_values, desc->natts * sizeof(Datum));
		memcpy(nulls, d.slot->tts_isnull, desc->natts * sizeof(bool));
		values[cols.consumed_at - 1] = TimestampTzGetDatum(now);
		nulls[cols.consumed_at - 1] = false;
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
	ResultCols	cols;
	SyrpcResultState state = SYRPC_RES_NONE;
	SyrpcMarkInfo mark;
	bool		isnull;
	Datum		v;

	open_partition(id, AccessShareLock, &d, &cols);
	if (direct_find(&d, id) &&
		DatumGetTimestampTz(col(&d, cols.expires_at, &isnull)) > now)
	{
		v = col(&d, cols.app, &isnull);
		if (!same_text(app, DatumGetTextPP(v)))
			state = SYRPC_RES_WRONG_APP;
		else if (!col_null(&d, cols.cancelled) &&
				 DatumGetBool(col(&d, cols.cancelled, &isnull)))
			state = SYRPC_RES_CANCELLED;
		else if (!col_null(&d, cols.consumed_at) ||
				 mark_lookup(SYRPC_MARK_TAKEN, id, &mark))
			state = SYRPC_RES_CONSUMED;
		else
			state = SYRPC_RES_PRESENT;
	}
	direct_close(&d);
	return state;
}
