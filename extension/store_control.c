/*-------------------------------------------------------------------------
 *
 * store_control.c
 *	  The statements of 1.7 on requests: a caller's cancel deletes its
 *	  request, a worker extends the lease it holds in the row, or hands
 *	  the request back.  Leases kept in marks are changed by control.c
 *	  (mark_change).
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
 * A lease of request id written in its row, still running (of attempt,
 * unless 0), ends at until instead; or (release) the request is handed
 * back, claimable at until, the attempt the row counted taken back.
 * Returns whether there was such a lease.  (A lease in a mark:
 * mark_change.)
 *
 * "Still running" is by the clock when the UPDATE looks at the row
 * (clock_timestamp(), again when it has waited for another writer), not
 * by the call's now: a lease that ran out since, and that a claimer took
 * over in memory, must not be extended or handed back (marks.pml found
 * it; the model's -DROW_CALL_NOW is the old form).
 */
bool
store_change_row_lease(text *app, const pg_uuid_t *id, int32 attempt,
					   TimestampTz until, bool release)
{
	Oid			argtypes[4] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, INT4OID};
	Datum		values[4];

	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = TimestampTzGetDatum(until);
	values[3] = Int32GetDatum(attempt);
#define CHANGE_LEASE_SQL(set) \
	"UPDATE syrpc.request SET ready_at = $3" set \
	" WHERE result_id = $1 AND app = $2 AND attempts > 0" \
	"   AND ready_at > pg_catalog.clock_timestamp() AND failure IS NULL" \
	"   AND ($4 = 0 OR attempts = $4)"
	if (release)
		plan_prepare(&plan_release, CHANGE_LEASE_SQL(", attempts = attempts - 1"), 4, argtypes);
	else
		plan_prepare(&plan_extend, CHANGE_LEASE_SQL(""), 4, argtypes);
	return plan_run(release ? plan_release : plan_extend, values, NULL, 0) == 1;
}
