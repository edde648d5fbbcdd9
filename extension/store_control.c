/*-------------------------------------------------------------------------
 *
 * store_control.c
 *	  The statements of 1.7 on requests: a caller's cancel deletes its
 *	  request, a worker extends the lease it holds in the row, or hands
 *	  the request back.  Leases kept in marks are changed by control.c.
 *
 * They run only on tables of 1.7 (the functions that call them come with
 * it), which have the column failure: one form each.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

static SPIPlanPtr plan_withdraw;
static SPIPlanPtr plan_extend;
static SPIPlanPtr plan_release;
static SPIPlanPtr plan_release_mark;

/*
 * Delete request id of app for a cancel, if it is still on its way:
 * leased, or queued with attempts left and not expired.  *created_at:
 * when it was put.
 */
bool
store_withdraw_request(text *app, const pg_uuid_t *id, TimestampTz now,
					   int32 max_attempts, TimestampTz *created_at)
{
	Oid			argtypes[4] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, INT4OID};
	Datum		values[4];
	bool		done;

	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = TimestampTzGetDatum(now);
	values[3] = Int32GetDatum(max_attempts);
	plan_prepare(&plan_withdraw,
				 "DELETE FROM syrpc.request"
				 " WHERE result_id = $1 AND app = $2 AND failure IS NULL"
				 "   AND (ready_at > $3 OR (expires_at > $3 AND attempts < $4))"
				 " RETURNING created_at",
				 4, argtypes);
	done = plan_run(plan_withdraw, values, NULL, 0) == 1;
	if (done)
		*created_at = DatumGetTimestampTz(result_col_notnull(1));
	SPI_freetuptable(SPI_tuptable);
	return done;
}

/*
 * A lease of request id written in its row, still running at now (of
 * attempt, unless 0), ends at until instead.  Returns whether there was one.
 */
bool
store_extend_lease(text *app, const pg_uuid_t *id, int32 attempt, TimestampTz now,
				   TimestampTz until)
{
	Oid			argtypes[5] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID};
	Datum		values[5];

	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = TimestampTzGetDatum(now);
	values[3] = TimestampTzGetDatum(until);
	values[4] = Int32GetDatum(attempt);
	plan_prepare(&plan_extend,
				 "UPDATE syrpc.request SET ready_at = $4"
				 " WHERE result_id = $1 AND app = $2 AND attempts > 0"
				 "   AND ready_at > $3 AND failure IS NULL"
				 "   AND ($5 = 0 OR attempts = $5)",
				 5, argtypes);
	return plan_run(plan_extend, values, NULL, 0) == 1;
}

/*
 * Hand request id back, claimable at ready_at, its attempt not counted
 * (only the lease of attempt, unless 0).  base -1: its lease is in its row, running at now (the row counted the
 * attempt: take it back); else the lease is a mark of base (the row
 * counts nothing yet), which goes at commit.  Returns whether it did.
 */
bool
store_release_request(text *app, const pg_uuid_t *id, int32 attempt, TimestampTz now,
					  TimestampTz ready_at, int32 base)
{
	Oid			argtypes[5] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, INT4OID, INT4OID};
	Datum		values[5];

	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = TimestampTzGetDatum(base < 0 ? now : ready_at);
	values[3] = Int32GetDatum(base);
	if (base < 0)
	{
		argtypes[3] = TIMESTAMPTZOID;
		values[3] = TimestampTzGetDatum(ready_at);
		values[4] = Int32GetDatum(attempt);
		plan_prepare(&plan_release,
					 "UPDATE syrpc.request SET ready_at = $4, attempts = attempts - 1"
					 " WHERE result_id = $1 AND app = $2 AND attempts > 0"
					 "   AND ready_at > $3 AND failure IS NULL"
					 "   AND ($5 = 0 OR attempts = $5)",
					 5, argtypes);
		return plan_run(plan_release, values, NULL, 0) == 1;
	}
	if (attempt != 0 && attempt != base + 1)
		return false;			/* a later claim's lease */
	plan_prepare(&plan_release_mark,
				 "UPDATE syrpc.request SET ready_at = $3"
				 " WHERE result_id = $1 AND app = $2 AND attempts = $4"
				 "   AND failure IS NULL",
				 4, argtypes);
	if (plan_run(plan_release_mark, values, NULL, 0) != 1)
		return false;
	mark_remove_at_commit(SYRPC_MARK_LEASE, id, base);
	return true;
}
