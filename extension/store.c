/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The statements on requests, kept as saved SPI plans, but for the
 *	  insert of one, the look at one by its result_id and its delete when
 *	  it is answered, which go by the primary key without a plan
 *	  (store_direct.c) (on results:
 *	  store_result.c; on apps and grants: store_apps.c; 1.7's cancel,
 *	  lease extension and release: store_control.c; the plan helpers:
 *	  store_spi.c).
 *
 * The callers hold an SPI connection.  Datums handed back point into
 * memory that outlives SPI_finish (SPI_datumTransfer, SPI_palloc).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

/* What a subtransaction must restore when it ends. */
typedef struct Subxact
{
	MemoryContext context;
	ResourceOwner owner;
} Subxact;

static void
subxact_begin(Subxact *sx)
{
	sx->context = CurrentMemoryContext;
	sx->owner = CurrentResourceOwner;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(sx->context);
}

static void
subxact_end(Subxact *sx, bool keep)
{
	if (keep)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(sx->context);
	CurrentResourceOwner = sx->owner;
}

/*
 * An error inside the subtransaction (a read-only transaction, a lock
 * timeout, a cancel while the claim waits for a lock): roll it back before
 * the error leaves, as PL/pgSQL's exception blocks do.  Left open, the
 * aborted subtransaction would be taken for a transaction block of the
 * user's, and the next ROLLBACK would end the session with a FATAL error.
 */
static void
subxact_abort_rethrow(Subxact *sx)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(sx->context);
	edata = CopyErrorData();
	FlushErrorState();
	subxact_end(sx, false);
	ReThrowError(edata);
}

static Oid	request_relid = InvalidOid;
static Oid	result_relid = InvalidOid;
static bool schema_dirty = true;

/* store_next_look's answer for one app, valid until it has passed. */
static char next_look_app[NAMEDATALEN];
static TimestampTz next_look_at = 0;
static uint64 next_look_generation = 0;	/* of the app settings it used */

/*
 * ... and the part of it that the leases in marks give, which stays right
 * until it has passed even when the table's part is forgotten (a put's
 * commit): a walk of the whole shared hash table, which it saves.
 */
static char marks_look_app[NAMEDATALEN];
static TimestampTz marks_look_at = 0;
static uint64 marks_look_generation = 0;

/*
 * Which version of the tables this database has (SCHEMA_*): 1.3 added the
 * column syrpc.request.failure, 1.4 syrpc.result.requested_at, 1.7
 * syrpc.result.error and cancelled.  The library
 * serves every version of the SQL objects (a database is updated by ALTER
 * EXTENSION, maybe long after the library), so the statements on them
 * come in two forms.  Looked up again after a change to either table, and
 * the plans of the other form are dropped.
 */
static int	schema = -1;

/* A relation changed: if it is one of the two, look up their version again. */
static void
schema_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == request_relid || relid == result_relid)
		schema_dirty = true;
}

void
store_init(void)
{
	CacheRegisterRelcacheCallback(schema_invalidate, (Datum) 0);
}

/* Saved plans of the statements on more than one row, or with conditions. */
static SPIPlanPtr plan_claim;
static SPIPlanPtr plan_lease_in_row;
static SPIPlanPtr plan_fail_request;
static SPIPlanPtr plan_cleanup_requests;
static SPIPlanPtr plan_cleanup_results;
static SPIPlanPtr plan_cleanup_leases;


/* The plans whose text depends on the version of the tables. */
static SPIPlanPtr *const variant_plans[] = {
	&plan_claim, &plan_lease_in_row,
	&plan_cleanup_requests
};

static void
free_plan(SPIPlanPtr *slot)
{
	if (*slot != NULL)
		SPI_freeplan(*slot);
	*slot = NULL;
}

/* What this database's tables have (SCHEMA_*). */
int
store_schema(void)
{
	if (schema_dirty)
	{
		Oid			nsp = get_namespace_oid("syrpc", false);
		int			now = 0;

		request_relid = get_relname_relid("request", nsp);
		result_relid = get_relname_relid("result", nsp);
		if (OidIsValid(request_relid) &&
			get_attnum(request_relid, "failure") != InvalidAttrNumber)
			now |= SCHEMA_FAILURE;
		if (OidIsValid(result_relid) &&
			get_attnum(result_relid, "requested_at") != InvalidAttrNumber)
			now |= SCHEMA_REQUESTED_AT;
		if (OidIsValid(result_relid) &&
			get_attnum(result_relid, "error") != InvalidAttrNumber)
			now |= SCHEMA_OUTCOME;
		if (now != schema)
		{
			for (int i = 0; i < lengthof(variant_plans); i++)
				free_plan(variant_plans[i]);
			schema = now;
		}
		schema_dirty = false;
	}
	return schema;
}

/*
 * Prepare a statement on syrpc.request in the form that this database's
 * version of the table takes: with_failure for 1.3 on, else without.
 */
static SPIPlanPtr
prepare_variant(SPIPlanPtr *slot, const char *with_failure, const char *without,
				int nargs, Oid *argtypes)
{
	bool		failure = (store_schema() & SCHEMA_FAILURE) != 0;

	return plan_prepare(slot, failure ? with_failure : without, nargs, argtypes);
}


/* Insert a request row (by its primary key, without a plan: store_direct.c). */
static void
insert_request(text *app, const pg_uuid_t *id, text *type, Datum data,
			   TimestampTz created_at, TimestampTz ready_at, TimestampTz expires_at,
			   int32 attempts)
{
	SyrpcDirect d;
	SyrpcRow	row;

	direct_open(&d, "request", RowExclusiveLock);
	direct_row(&d, &row);
	direct_set_required(&d, &row, "result_id", UUIDPGetDatum(id));
	direct_set_required(&d, &row, "app", PointerGetDatum(app));
	direct_set_required(&d, &row, "type", PointerGetDatum(type));
	direct_set_required(&d, &row, "data", data);
	direct_set_required(&d, &row, "created_at", TimestampTzGetDatum(created_at));
	direct_set_required(&d, &row, "ready_at", TimestampTzGetDatum(ready_at));
	direct_set_required(&d, &row, "expires_at", TimestampTzGetDatum(expires_at));
	direct_set_required(&d, &row, "attempts", Int32GetDatum(attempts));
	direct_insert(&d, &row);
	direct_close(&d);
}

/*
 * Queue a request; returns its new result_id (a version 4 uuid, as
 * gen_random_uuid makes), in the memory of SPI's caller.
 */
pg_uuid_t *
store_put_request(text *app, text *type, Datum data, TimestampTz now,
				  const SyrpcApp *settings)
{
	pg_uuid_t  *id = SPI_palloc(sizeof(pg_uuid_t));

	if (!pg_strong_random(id->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	id->data[6] = (id->data[6] & 0x0f) | 0x40;	/* version 4 */
	id->data[8] = (id->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	insert_request(app, id, type, data, now, now, now + settings->request_ttl_us, 0);
	return id;
}

/*
 * Write an in-memory request whose caller timed out (handoff.c), as it
 * stands: its result_id, attempts so far, and ready_at the end of its
 * holder's lease if it is leased.
 */
void
store_spill_request(text *app, const SyrpcSpill *spill)
{
	insert_request(app, &spill->id, spill->type, spill->data, spill->created_at,
				   spill->ready_at, spill->expires_at, spill->attempts);
}

/* The claim in columns type, result_id, data, attempts, created_at, expires_at of the last result. */
static void
claim_from_result(SyrpcClaim *claim)
{
	claim->type = result_col_out(1);
	claim->result_id = SPI_datumTransfer(result_col_notnull(2), false, UUID_LEN);
	claim->data = result_col_out(3);
	claim->attempts = DatumGetInt32(result_col_notnull(4));
	claim->created_at = DatumGetTimestampTz(result_col_notnull(5));
	claim->expires_at = DatumGetTimestampTz(result_col_notnull(6));
}

/*
 * Run a claim's UPDATE ... RETURNING (the claim's columns, see
 * claim_from_result) in a subtransaction if in_subxact, kept only if it
 * wrote its row; fills claim, if not NULL, and returns whether it did.
 */
static bool
run_claim(SPIPlanPtr plan, Datum *args, bool in_subxact, SyrpcClaim *claim)
{
	Subxact		sx = {0};
	bool		written = false;

	if (in_subxact)
		subxact_begin(&sx);
	PG_TRY();
	{
		written = plan_run(plan, args, NULL, 0) == 1;
		if (written && claim != NULL)
			claim_from_result(claim);
		SPI_freetuptable(SPI_tuptable);
	}
	PG_CATCH();
	{
		if (!in_subxact)
			PG_RE_THROW();
		subxact_abort_rethrow(&sx);
	}
	PG_END_TRY();
	if (in_subxact)
		subxact_end(&sx, written);
	return written;
}

/*
 * Claim the oldest claimable request of app under a lease, in its row.
 *
 * The claim runs in a subtransaction that is rolled back when nothing was
 * claimed (in_subxact).  FOR UPDATE SKIP LOCKED may lock a row that then
 * fails its recheck (a concurrent claim changed it); such a lock lasts
 * until the end of the (sub)transaction, and must not last through a
 * wait: it would block the put_result of the worker that holds the lease.
 * A look that its transaction's end follows at once needs none: the
 * subtransaction's own xid would be one more per RPC.
 */
static bool
claim_in_row(text *app, TimestampTz now, const SyrpcApp *settings, bool in_subxact,
			 SyrpcClaim *claim)
{
	Oid			argtypes[4] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID};
	Datum		args[4];

	args[0] = PointerGetDatum(app);
	args[1] = TimestampTzGetDatum(now);
	args[2] = TimestampTzGetDatum(now + settings->lease_us);
	args[3] = Int32GetDatum(settings->max_attempts);
#define CLAIM_SQL(failure) \
	"UPDATE syrpc.request SET attempts = attempts + 1, ready_at = $3" \
	" WHERE result_id = (" \
	"       SELECT result_id FROM syrpc.request" \
	"        WHERE app = $1 AND ready_at <= $2 AND expires_at > $2" \
	"          AND attempts < $4" failure \
	"        ORDER BY app, created_at" \
	"        LIMIT 1 FOR UPDATE SKIP LOCKED)" \
	" RETURNING type, result_id, data, attempts, created_at, expires_at"
	prepare_variant(&plan_claim, CLAIM_SQL(" AND failure IS NULL"), CLAIM_SQL(""),
					4, argtypes);
	return run_claim(plan_claim, args, in_subxact, claim);
}

/*
 * Write a lease into row id, if its attempts are still base: attempts and
 * ready_at as given.  The row is locked SKIP LOCKED: an answer in progress
 * (its delete holds the lock) or another claimer wins.  Fills claim, if
 * not NULL, and returns whether the row was written.
 */
static bool
lease_in_row(const pg_uuid_t *id, int32 base, int32 attempts, TimestampTz ready_at,
			 TimestampTz now, bool in_subxact, SyrpcClaim *claim)
{
	Oid			argtypes[5] = {UUIDOID, INT4OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[5];

	args[0] = UUIDPGetDatum(id);
	args[1] = Int32GetDatum(base);
	args[2] = Int32GetDatum(attempts);
	args[3] = TimestampTzGetDatum(ready_at);
	args[4] = TimestampTzGetDatum(now);
	/* not while a lease in the row runs: one a worker took, and handed back with a delay */
#define LEASE_IN_ROW_SQL(failure) \
	"UPDATE syrpc.request SET attempts = $3, ready_at = $4" \
	" WHERE result_id = (" \
	"       SELECT result_id FROM syrpc.request" \
	"        WHERE result_id = $1 AND attempts = $2 AND ready_at <= $5" failure \
	"        FOR UPDATE SKIP LOCKED)" \
	" RETURNING type, result_id, data, attempts, created_at, expires_at"
	prepare_variant(&plan_lease_in_row, LEASE_IN_ROW_SQL(" AND failure IS NULL"),
					LEASE_IN_ROW_SQL(""), 5, argtypes);
	return run_claim(plan_lease_in_row, args, in_subxact, claim);
}

/*
 * A lease in a mark ran out (attempt base + 1): move it into the row, so
 * that the row counts that attempt (not if it was handed back), and either
 * lease the request again in the row (returns true) or, at max_attempts,
 * leave it failed.  The mark goes at commit, once the row shows it.
 */
static bool
move_lease_into_row(const pg_uuid_t *id, const SyrpcMarkInfo *mark, TimestampTz now,
					const SyrpcApp *settings, bool in_subxact, SyrpcClaim *claim)
{
	int32		counted = mark->base + (mark->released ? 0 : 1);
	bool		again = counted < settings->max_attempts;

	if (!lease_in_row(id, mark->base, again ? counted + 1 : counted,
					  again ? now + settings->lease_us : mark->until, now,
					  in_subxact, again ? claim : NULL))
		return false;
	mark_remove_at_commit(SYRPC_MARK_LEASE, id, mark->base);
	return again;
}

/*
 * Is the request that a claim has just marked still what the claim read:
 * there, with the same attempts, not failed, not leased in its row, and
 * not being written by an open transaction?  Read with a new snapshot,
 * taken after the mark was added (see marks.c).  The open write: a
 * worker's extension or release of the lease in the row, begun while it
 * ran and still open when it ran out (that snapshot shows the row as
 * before it), or a late answer's delete: either would leave two holders
 * (marks.pml's mutant NO_OPEN_WRITE_RECHECK; specs/row_lease.spec).  Such
 * a request is skipped; the write's commit (or rollback) settles it for
 * the next look.
 */
static bool
still_claimable(const pg_uuid_t *id, int32 attempts, TimestampTz now)
{
	SyrpcDirect d;
	bool		ok = false;
	bool		no_failure;

	direct_open(&d, "request", AccessShareLock);
	if (direct_find(&d, id) && !direct_being_written(&d))
	{
		(void) direct_get(&d, "failure", &no_failure);
		ok = no_failure &&
			DatumGetInt32(direct_get_notnull(&d, "attempts")) == attempts &&
			DatumGetTimestampTz(direct_get_notnull(&d, "ready_at")) <= now;
	}
	direct_close(&d);
	return ok;
}

/*
 * Is the request of the row a walk of the claim index is at still in play
 * at now (not failed, not expired, attempts left)?  Then *ready_at and
 * *attempts are its own.  Both walks (the claim's candidates, a worker's
 * next look) test the same.
 */
static bool
walked_in_play(SyrpcDirect *d, TimestampTz now, int32 max_attempts,
			   TimestampTz *ready_at, int32 *attempts)
{
	bool		no_failure;

	(void) direct_get(d, "failure", &no_failure);
	*attempts = DatumGetInt32(direct_get_notnull(d, "attempts"));
	*ready_at = DatumGetTimestampTz(direct_get_notnull(d, "ready_at"));
	return no_failure && *attempts < max_attempts &&
		DatumGetTimestampTz(direct_get_notnull(d, "expires_at")) > now;
}

/*
 * Claim the oldest claimable request of app, with marks (preloaded): walk
 * the candidates in order, skipping those a mark shows leased, until one
 * can be marked and is still there (marks.c).  The lease stays in the
 * mark, writing nothing, unless in_row (a REPEATABLE READ transaction,
 * whose snapshot the recheck cannot renew, or syrpc.memory_leases off),
 * or the request is older than the marks (a lease the last crash or
 * restart lost may have run it): then the lease is written to the row,
 * and the mark stays until that commits, so that no claim in memory takes
 * the request meanwhile.  With no room for a mark, nothing is claimed.
 */
static bool
claim_with_mark(text *app, TimestampTz now, const SyrpcApp *settings, bool in_subxact,
				bool in_row, SyrpcClaim *claim)
{
	SyrpcDirect d;
	bool		claimed = false;
	SyrpcMarkInfo info;
	TimestampTz born = marks_born_at();

	info.until = now + settings->lease_us;
	info.app_hash = marks_app_hash(app);

	/*
	 * The candidates, oldest first: SELECT ... FROM syrpc.request WHERE app
	 * = app AND ready_at <= now AND expires_at > now AND attempts <
	 * max_attempts AND failure IS NULL ORDER BY app, created_at, as a walk
	 * of the claim index without a plan (store_direct.c).
	 */
	direct_open_on(&d, "request", "request_claim_idx", AccessShareLock);
	direct_scan_begin(&d, PointerGetDatum(app), F_TEXTEQ);
	while (!claimed && direct_scan_next(&d))
	{
		pg_uuid_t	id;
		SyrpcMarkInfo found;
		TimestampTz ready_at;
		bool		old;

		if (!walked_in_play(&d, now, settings->max_attempts, &ready_at, &info.base) ||
			ready_at > now)
			continue;
		memcpy(&id, DatumGetUUIDP(direct_get_notnull(&d, "result_id")), sizeof(id));
		info.expires = DatumGetTimestampTz(direct_get_notnull(&d, "expires_at"));
		switch (mark_add(SYRPC_MARK_LEASE, &id, now, &info, &found))
		{
			case MARK_ADDED:
				old = DatumGetTimestampTz(direct_get_notnull(&d, "created_at")) < born;
				if (in_row || old)
				{
					claimed = lease_in_row(&id, info.base, info.base + 1, info.until, now,
										   in_subxact, claim);
					if (claimed)
						mark_remove_at_commit(SYRPC_MARK_LEASE, &id, info.base);
					if (claimed && old)
						commit_with_flush();	/* its attempt must survive a crash */
				}
				else if (still_claimable(&id, info.base, now))
				{
					claim->type = direct_get_out(&d, "type");
					claim->result_id = SPI_datumTransfer(UUIDPGetDatum(&id), false, UUID_LEN);
					claim->data = direct_get_out(&d, "data");
					claim->created_at = DatumGetTimestampTz(direct_get_notnull(&d, "created_at"));
					claim->expires_at = info.expires;
					claim->attempts = info.base + 1;
					claimed = true;
				}
				if (!claimed)
					mark_drop_mine(SYRPC_MARK_LEASE, &id);
				break;
			case MARK_RUNNING:
			case MARK_FULL:
				break;
			case MARK_EXPIRED:
				claimed = found.base == info.base &&
					move_lease_into_row(&id, &found, now, settings, in_subxact, claim);
				break;
		}
	}
	direct_close(&d);
	return claimed;
}

/*
 * Claim the oldest claimable request of app under a lease.  On success
 * fills claim and returns true.  With marks (preloaded), the lease is
 * kept in shared memory and the row is not written: no xid.
 */
bool
store_claim(text *app, TimestampTz now, const SyrpcApp *settings, bool in_subxact,
			SyrpcClaim *claim)
{
	if (marks_exist())
		return claim_with_mark(app, now, settings, in_subxact, !marks_usable(), claim);
	return claim_in_row(app, now, settings, in_subxact, claim);
}

/*
 * Forget store_next_look's answer: a request may have been written leased
 * (a spilled in-memory call), its lease begun before the answer was made.
 */
void
store_forget_next_look(void)
{
	next_look_at = 0;
}

/*
 * When a waiting worker should look again without being woken: when the
 * next running lease of app runs out (its request becomes claimable again),
 * and at the latest a lease_time from now, since a lease taken after this
 * look (which wakes nobody) ends no earlier than that.
 *
 * The answer stays right until it has passed: leases running now are in
 * it, later ones end after it.  So it is kept per backend and the query
 * (which walks all of the app's index entries, dead ones included, until
 * vacuum removes them) runs only once it has passed, or for another app.
 */
TimestampTz
store_next_look(text *app, TimestampTz now, const SyrpcApp *settings)
{
	TimestampTz next;
	char		name[NAMEDATALEN];
	SyrpcDirect d;

	text_to_cstring_buffer(app, name, sizeof(name));
	if (now < next_look_at && strcmp(name, next_look_app) == 0 &&
		next_look_generation == app_generation())
		return next_look_at;

	/*
	 * SELECT min(ready_at) FROM syrpc.request WHERE app = app AND ready_at
	 * > now AND expires_at > now AND attempts < max_attempts AND failure IS
	 * NULL, as a walk of the claim index without a plan (store_direct.c).
	 */
	next = now + settings->lease_us;
	direct_open_on(&d, "request", "request_claim_idx", AccessShareLock);
	direct_scan_begin(&d, PointerGetDatum(app), F_TEXTEQ);
	while (direct_scan_next(&d))
	{
		int32		attempts;
		TimestampTz ready_at;

		if (walked_in_play(&d, now, settings->max_attempts, &ready_at, &attempts) &&
			ready_at > now && ready_at < next)
			next = ready_at;
	}
	direct_close(&d);

	/*
	 * A lease a claim takes after this walk ends a lease_time after it, no
	 * earlier than the walk's answer; one shortened since (a release) wakes
	 * the workers at its commit, as does an extension that shortens one.
	 */
	if (!(now < marks_look_at && strcmp(name, marks_look_app) == 0 &&
		  marks_look_generation == app_generation()))
	{
		marks_look_at = marks_next_lease_end(marks_app_hash(app), now,
											 now + settings->lease_us);
		strlcpy(marks_look_app, name, sizeof(marks_look_app));
		marks_look_generation = app_generation();
	}
	next = Min(next, marks_look_at);
	strlcpy(next_look_app, name, sizeof(next_look_app));
	next_look_at = next;
	next_look_generation = app_generation();
	return next;
}

/*
 * Settings under which no request counts as failed by its attempts: for a
 * look that only asks where a request stands (store_request_state).
 */
const SyrpcApp store_any_app = {0, PG_INT32_MAX, 0, 0};

/*
 * Has request id been handed to a worker under a lease kept in a mark?
 * Not if the mark is another backend's claim that has not committed.
 */
bool
leased_in_mark(const pg_uuid_t *id, SyrpcMarkInfo *mark)
{
	return mark_lookup(SYRPC_MARK_LEASE, id, mark) && (!mark->pending || mark->mine);
}

/*
 * Delete the claimed request that result_id answers, or say why not.
 */
static SyrpcFinishState why_not_in_flight(text *app, const pg_uuid_t *id,
										  TimestampTz now);

SyrpcFinishState
store_finish_request(text *app, const pg_uuid_t *id, TimestampTz now,
					 TimestampTz *created_at, TimestampTz *ready_at)
{
	SyrpcMarkInfo mark;
	bool		marked = leased_in_mark(id, &mark);
	bool		deleted = false;
	bool		no_failure;
	SyrpcDirect d;

	/*
	 * DELETE ... WHERE app = app AND attempts >= (marked ? 0 : 1) AND
	 * failure IS NULL RETURNING created_at, ready_at, by the primary key:
	 * looked at again if a concurrent claim or cleanup changed the row first.
	 */
	direct_open(&d, "request", RowExclusiveLock);
	while (!deleted && direct_find(&d, id))
	{
		(void) direct_get(&d, "failure", &no_failure);
		if (!same_text(app, DatumGetTextPP(direct_get_notnull(&d, "app"))) ||
			DatumGetInt32(direct_get_notnull(&d, "attempts")) < (marked ? 0 : 1) ||
			!no_failure)
			break;
		*created_at = DatumGetTimestampTz(direct_get_notnull(&d, "created_at"));
		*ready_at = DatumGetTimestampTz(direct_get_notnull(&d, "ready_at"));
		deleted = direct_delete(&d);
	}
	direct_close(&d);
	if (!deleted)
		return why_not_in_flight(app, id, now);
	if (marked)
		*ready_at = Max(*ready_at, mark.until);
	/* any mark: also one a claim made while this delete was open */
	if (marks_exist())
		mark_remove_at_commit(SYRPC_MARK_LEASE, id, -1);
	return SYRPC_FIN_OK;
}

/*
 * Why a request that a worker answers or fails is not in flight, for a
 * clear error.
 */
static SyrpcFinishState
why_not_in_flight(text *app, const pg_uuid_t *id, TimestampTz now)
{
	SyrpcRequestInfo req = store_request_state(app, id, now, &store_any_app);

	if (req.state == SYRPC_REQ_WRONG_APP)
		return SYRPC_FIN_WRONG_APP;
	if (req.state == SYRPC_REQ_FAILED)
		return SYRPC_FIN_FAILED;
	if (req.state != SYRPC_REQ_NONE)
		return req.attempts == 0 ? SYRPC_FIN_NOT_CLAIMED : SYRPC_FIN_UNKNOWN;
	switch (store_result_state(app, id, now))
	{
		case SYRPC_RES_WRONG_APP:
			return SYRPC_FIN_WRONG_APP;
		case SYRPC_RES_PRESENT:
		case SYRPC_RES_CONSUMED:
			return SYRPC_FIN_ANSWERED;
		case SYRPC_RES_CANCELLED:
			return SYRPC_FIN_CANCELLED;
		case SYRPC_RES_NONE:
			break;
	}
	return SYRPC_FIN_UNKNOWN;
}

/*
 * Give up the claimed request id: keep the reason, end its lease, and
 * never hand it out again.  SYRPC_FIN_OK if it was failed, else why not.
 */
SyrpcFinishState
store_fail_request(text *app, const pg_uuid_t *id, text *reason, TimestampTz now)
{
	Oid			argtypes[5] = {UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID};
	Datum		values[5];
	SyrpcMarkInfo mark;
	bool		marked = leased_in_mark(id, &mark);

	values[0] = UUIDPGetDatum(id);
	values[1] = PointerGetDatum(app);
	values[2] = PointerGetDatum(reason);
	values[3] = TimestampTzGetDatum(now);
	values[4] = Int32GetDatum(marked ? 0 : 1);
	/* the attempt of a lease in a mark counts in the row from now on */
	plan_prepare(&plan_fail_request,
				 "UPDATE syrpc.request SET failure = $3, ready_at = $4,"
				 "       attempts = attempts + 1 - $5"
				 " WHERE result_id = $1 AND app = $2 AND attempts >= $5"
				 "   AND failure IS NULL",
				 5, argtypes);
	if (plan_run(plan_fail_request, values, NULL, 0) == 1)
	{
		if (marks_exist())
			mark_remove_at_commit(SYRPC_MARK_LEASE, id, -1);
		return SYRPC_FIN_OK;
	}
	return why_not_in_flight(app, id, now);
}

/*
 * Where request id stands, for a caller waiting on its result: see
 * SyrpcRequestInfo.
 */
SyrpcRequestInfo
store_request_state(text *app, const pg_uuid_t *id, TimestampTz now,
					const SyrpcApp *settings)
{
	SyrpcRequestInfo req = {SYRPC_REQ_NONE, 0, 0, NULL};
	TimestampTz ready_at;
	TimestampTz expires_at;
	bool		no_failure;
	SyrpcMarkInfo mark;
	SyrpcDirect d;

	direct_open(&d, "request", AccessShareLock);
	if (!direct_find(&d, id))
	{
		direct_close(&d);
		return req;
	}
	req.attempts = DatumGetInt32(direct_get_notnull(&d, "attempts"));
	ready_at = DatumGetTimestampTz(direct_get_notnull(&d, "ready_at"));
	expires_at = DatumGetTimestampTz(direct_get_notnull(&d, "expires_at"));
	(void) direct_get(&d, "failure", &no_failure);
	if (mark_lookup(SYRPC_MARK_LEASE, id, &mark) && mark.base == req.attempts)
	{
		/* leased in a mark: attempt base + 1 (not if handed back), until mark.until */
		req.attempts = mark.base + (mark.released ? 0 : 1);
		ready_at = Max(ready_at, mark.until);
	}
	if (!same_text(app, DatumGetTextPP(direct_get_notnull(&d, "app"))))
		req.state = SYRPC_REQ_WRONG_APP;
	else if (!no_failure)
	{
		/* a worker gave it up (syrpc_fail_request) */
		req.failure = DatumGetTextPP(direct_get_out(&d, "failure"));
		req.state = SYRPC_REQ_FAILED;
	}
	else if (ready_at > now)
	{
		/* leased: look again when the lease runs out */
		req.until = ready_at;
		req.state = SYRPC_REQ_WAITING;
	}
	else if (req.attempts >= settings->max_attempts)
		req.state = SYRPC_REQ_FAILED;
	else if (expires_at <= now)
		req.state = SYRPC_REQ_EXPIRED;
	else
	{
		/*
		 * Queued.  A claim does not wake us, so look again a lease_time
		 * from now: a lease taken later than that look ends after it, and
		 * that look sees it and sleeps until its end.
		 */
		req.until = Min(expires_at, now + settings->lease_us);
		req.state = SYRPC_REQ_WAITING;
	}
	direct_close(&d);
	return req;
}

/*
 * Leases in marks that ran out (their workers died, or took too long):
 * count their attempts in the rows, so that a request whose last attempt
 * it was is failed (and deleted and counted so below) even if no worker
 * claims again, and that the marks can go.  At most 1000 per run.
 */
static void
move_expired_leases(TimestampTz now)
{
	Oid			argtypes[3] = {UUIDARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		values[3];
	SyrpcExpiredLeases *e = marks_expired_leases(now, 1000);

	if (e->n == 0)
		return;
	values[0] = PointerGetDatum(construct_array(e->ids, e->n, UUIDOID, UUID_LEN, false,
												TYPALIGN_CHAR));
	values[1] = PointerGetDatum(construct_array(e->bases, e->n, INT4OID, 4, true,
												TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(e->untils, e->n, TIMESTAMPTZOID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	plan_prepare(&plan_cleanup_leases,
				 "UPDATE syrpc.request r SET attempts = m.base + 1, ready_at = m.until"
				 "  FROM unnest($1, $2, $3) AS m(id, base, until)"
				 " WHERE r.result_id = m.id AND r.attempts = m.base",
				 3, argtypes);
	plan_run(plan_cleanup_leases, values, NULL, 0);
	for (int i = 0; i < e->n; i++)
		mark_remove_at_commit(SYRPC_MARK_LEASE, DatumGetUUIDP(e->ids[i]),
							  DatumGetInt32(e->bases[i]));
}

/*
 * Delete expired requests and results; returns the number of rows.
 *
 * A request goes once it has expired (request_ttl, or its deadline) or
 * failed, when a result would have expired: result_ttl after it expired
 * and after its last lease ended (in its row, or in a mark), so that its
 * caller can still learn what became of it (SY002, SY001) rather than
 * that it is unknown, and a worker that holds it can still answer.
 * Settings are clamped, and the arithmetic is on $1 (now), so that no
 * app's settings, nor a row from before they were checked, can make the
 * statement overflow a timestamp and stop cleanup for every app.
 */
int64
store_cleanup(TimestampTz now)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {TimestampTzGetDatum(now)};
	int64		n;

	/*
	 * RETURNING says what each deleted request counts as: 0 nothing more
	 * (a worker failed it: counted then), 1 failed after max_attempts, 2
	 * expired.
	 */
#define CLEANUP_SQL(failure, counted, no_mark) \
	"DELETE FROM syrpc.request r USING syrpc.app a" \
	" WHERE a.app = r.app" no_mark \
	"   AND (((r.expires_at <= $1 - least(a.result_ttl, " SYRPC_INTERVAL_MAX_SQL ")" \
	"          OR r.attempts >= a.max_attempts" failure ")" \
	"         AND r.ready_at <= $1 - least(a.result_ttl, " SYRPC_INTERVAL_MAX_SQL ")))" \
	" RETURNING r.app, CASE " counted " WHEN r.attempts >= a.max_attempts THEN 1 ELSE 2 END"
	/*
	 * A lease kept in a mark (the row shows none) keeps its request too, if
	 * the tables are of 1.7 (whose functions include syrpc.memory_lease).
	 */
	if (store_schema() & SCHEMA_OUTCOME)
		plan_prepare(&plan_cleanup_requests,
					 CLEANUP_SQL(" OR r.failure IS NOT NULL", "WHEN r.failure IS NOT NULL THEN 0",
								 " AND syrpc.memory_lease(r.result_id, r.attempts) IS NULL"),
					 1, argtypes);
	else
		prepare_variant(&plan_cleanup_requests,
						CLEANUP_SQL(" OR r.failure IS NOT NULL", "WHEN r.failure IS NOT NULL THEN 0", ""),
						CLEANUP_SQL("", "", ""), 1, argtypes);
	plan_prepare(&plan_cleanup_results,
				 "DELETE FROM syrpc.result WHERE expires_at <= $1",
				 1, argtypes);
	move_expired_leases(now);
	n = plan_run(plan_cleanup_requests, values, NULL, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int			kind = DatumGetInt32(result_row_col(i, 2, &isnull));

		if (kind != 0)
			stats_count(DatumGetTextPP(result_row_col(i, 1, &isnull)),
						kind == 1 ? SYRPC_STAT_FAILED : SYRPC_STAT_EXPIRED, 1);
	}
	SPI_freetuptable(SPI_tuptable);
	n += plan_run(plan_cleanup_results, values, NULL, 0);
	marks_sweep(now);
	return n;
}
