/*-------------------------------------------------------------------------
 *
 * procedures.c
 *	  The SQL-callable procedures of syrpc: syrpc_wait_request,
 *	  syrpc_wait_result, syrpc_call and syrpc_put_result_wait_request, and
 *	  the batch ones, syrpc_wait_requests and
 *	  syrpc_put_results_wait_requests (1.6).
 *	  Unlike the functions they commit inside, so they must be called by
 *	  CALL outside a transaction block to wait without a snapshot (or, for
 *	  the last two, at all).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/syncrep.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

SYRPC_EXPORTS_BEGIN
PG_FUNCTION_INFO_V1(syrpc_wait_request);
PG_FUNCTION_INFO_V1(syrpc_wait_result);
PG_FUNCTION_INFO_V1(syrpc_call);
PG_FUNCTION_INFO_V1(syrpc_put_result_wait_request);
PG_FUNCTION_INFO_V1(syrpc_wait_requests);
PG_FUNCTION_INFO_V1(syrpc_put_results_wait_requests);
SYRPC_EXPORTS_END

/*
 * The procedure versions: CALL syrpc_wait_request(app, timeout,
 * INOUT type, INOUT result_id, INOUT data) and CALL syrpc_wait_result(app,
 * result_id, timeout, INOUT result).  The output is one row, its columns
 * NULL on timeout.
 *
 * Why procedures: a SELECT keeps its statement snapshot for its whole run,
 * and a waiting SELECT so holds back the xmin horizon; with waiters always
 * around, no dead queue row can ever be removed.  A procedure called by
 * CALL outside a transaction block may commit, which drops the portal's
 * snapshot; it does so once, before it waits, and then holds no snapshot
 * while it sleeps (each look takes its own; SyrpcWait.no_snapshot).
 *
 * A procedure that commits cannot be SECURITY DEFINER nor carry a SET
 * clause; like the functions (since 1.4), they switch to their owner and
 * pin search_path themselves (become_owner), after the commit.
 */
/* Was this procedure called by CALL outside a transaction block? */
static bool
may_commit(FunctionCallInfo fcinfo)
{
	CallContext *cc = (CallContext *) fcinfo->context;

	return cc != NULL && IsA(cc, CallContext) && !cc->atomic;
}

/*
 * Commit the transaction so far, if the call allows it and it has written
 * nothing, which drops the portal's snapshot; returns whether it did.
 * Called from a DO block or a procedure after an INSERT, say, a commit
 * would make that work survive a later error of the caller's: then the
 * wait keeps the snapshot instead, as the functions do.
 */
static bool
drop_snapshot(FunctionCallInfo fcinfo)
{
	if (!may_commit(fcinfo) || !owns_transaction())
		return false;
	SPI_connect_ext(SPI_OPT_NONATOMIC);
	SPI_commit();
	SPI_finish();
	return true;
}

static Datum
procedure_result(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "syrpc: procedure must have OUT parameters");
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

/* The row (type, result_id, data) of a claim, all NULL if none. */
static Datum
claim_result(FunctionCallInfo fcinfo, bool found, const SyrpcClaim *claim)
{
	Datum		values[3] = {0, 0, 0};
	bool		nulls[3] = {!found, !found, !found};

	if (found)
	{
		values[0] = claim->type;
		values[1] = claim->result_id;
		values[2] = claim->data;
	}
	return procedure_result(fcinfo, values, nulls);
}

/* A wait of a procedure, on a request or on a result. */
typedef struct ProcWait
{
	SyrpcWait	wait;
	text	   *app;
	SyrpcSide	side;			/* worker: a request; caller: a result */
	bool		checked;		/* check_access done earlier in this call */
	pg_uuid_t  *result_id;		/* of the result waited for */
	SyrpcClaim	claim;			/* the request claimed */
	Datum		result;			/* the result taken */
	int			max;			/* > 0: a batch, up to max into claims */
	SyrpcClaim *claims;
	int			nclaimed;
} ProcWait;

/*
 * Run a procedure's wait as its owner, in an SPI connection of its own;
 * returns whether it found what it waited for.
 */
static bool
wait_as_owner(FunctionCallInfo fcinfo, ProcWait *pw)
{
	bool		found;
	SyrpcAsOwner as;

	enter_as_owner(fcinfo, &as);
	if (!pw->checked)
		check_access(&as, pw->app, pw->side);
	if (pw->side == SYRPC_CALLER)
		found = wait_for_result(pw->app, pw->result_id, &pw->wait, &pw->result);
	else if (pw->max > 0)
		found = (pw->nclaimed = wait_for_requests(pw->app, &pw->wait, pw->max,
												   pw->claims)) > 0;
	else
		found = wait_for_request(pw->app, &pw->wait, &pw->claim);
	leave_as_owner(&as);
	return found;
}

/*
 * CALL syrpc_wait_request(app, timeout, INOUT type, INOUT result_id,
 * INOUT data)
 */
Datum
syrpc_wait_request(PG_FUNCTION_ARGS)
{
	ProcWait	pw = {.side = SYRPC_WORKER};
	bool		found;

	check_writable("syrpc_wait_request");
	pw.wait.no_snapshot = drop_snapshot(fcinfo);
	pw.app = arg_name(fcinfo, 0, "app");
	pw.wait.deadline = arg_deadline(fcinfo, 1, "syrpc_wait_request");
	pw.wait.owns_xact = owns_transaction();
	found = wait_as_owner(fcinfo, &pw);
	PG_RETURN_DATUM(claim_result(fcinfo, found, &pw.claim));
}

/*
 * CALL syrpc_wait_result(app, result_id, timeout, INOUT result)
 */
Datum
syrpc_wait_result(PG_FUNCTION_ARGS)
{
	ProcWait	pw = {.side = SYRPC_CALLER};
	bool		found;

	check_writable("syrpc_wait_result");
	pw.wait.no_snapshot = drop_snapshot(fcinfo);
	pw.app = arg_name(fcinfo, 0, "app");
	pw.result_id = arg_uuid(fcinfo, 1);
	pw.wait.deadline = arg_deadline(fcinfo, 2, "syrpc_wait_result");
	pw.wait.owns_xact = owns_transaction();
	found = wait_as_owner(fcinfo, &pw);
	PG_RETURN_DATUM(procedure_result(fcinfo, &pw.result, (bool[]) {!found}));
}

/*
 * A procedure that commits part of its work before it waits must be called
 * by CALL outside a transaction block, with nothing written before it.
 */
static void
require_own_transaction(FunctionCallInfo fcinfo, const char *func,
						const char *detail, const char *hint)
{
	if (!may_commit(fcinfo) || !owns_transaction())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s must be called by CALL outside a transaction block", func),
				 errdetail_internal("%s", detail),
				 errhint("%s", hint)));
}

/*
 * Write a timed-out in-memory call's request to the table, as its owner,
 * and commit it; returns the end of that commit's WAL.
 */
static XLogRecPtr
spill_call(FunctionCallInfo fcinfo, text *app)
{
	SyrpcAsOwner as;
	XLogRecPtr	end;

	SPI_connect_ext(SPI_OPT_NONATOMIC);
	become_owner(fcinfo, &as);
	handoff_spill(app);
	back_to_caller(&as);

	/*
	 * From its commit the row is the request: a cancel between the commit
	 * and handoff_spilled must not withdraw it from memory (an error still
	 * aborts it before the commit).
	 */
	HOLD_INTERRUPTS();
	SPI_commit();
	end = XactLastCommitEnd;
	handoff_spilled();
	RESUME_INTERRUPTS();
	SPI_finish();
	return end;
}

/*
 * CALL syrpc_call(app, type, data, timeout, INOUT result_id, INOUT result):
 * put a request and wait for its result, in one statement and one round
 * trip.  result is NULL if the timeout passed; result_id then lets the
 * caller wait on with syrpc_get_result.
 *
 * Until the result_id leaves the server only this session knows it: if a
 * crash loses the request, it also ends this session, and the caller gets
 * an error, as for any call cut short.  So when syrpc is preloaded the
 * request and its answer go through shared memory (handoff.c), with no
 * row, no xid and no WAL; on the table path the request's commit does not
 * wait for the WAL flush (the result that answers it commits after it,
 * and its flush takes the request's with it).  When the call times out,
 * its request is written to the table if it was in memory, flushed, and
 * replicated to synchronous standbys as a commit is, before the
 * result_id is returned.
 */
Datum
syrpc_call(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	text	   *type = arg_name(fcinfo, 1, "type");
	Datum		data = arg_data(fcinfo, 2);
	ProcWait	pw = {.wait = {.owns_xact = true, .no_snapshot = true},
	.app = app, .side = SYRPC_CALLER};
	Datum		values[2];
	bool		nulls[2] = {false, false};
	XLogRecPtr	put_end = InvalidXLogRecPtr;
	SyrpcAsOwner as;
	bool		in_memory;
	uint64		statements = store_statements;

	pw.wait.deadline = arg_deadline(fcinfo, 3, "syrpc_call");
	check_writable("syrpc_call");
	SPI_connect_ext(SPI_OPT_NONATOMIC);
	become_owner(fcinfo, &as);
	check_access(&as, app, SYRPC_CALLER);
	pw.checked = true;
	require_own_transaction(fcinfo, "syrpc_call",
							"Its request must commit before a worker can take it.",
							"Inside a transaction, use syrpc_put_request, and syrpc_get_result after the commit.");
	in_memory = put_call(app, type, data, pw.wait.deadline, &pw.result_id);
	back_to_caller(&as);
	if (!in_memory || store_statements != statements)
	{
		/*
		 * Commit the put, or (in memory, after a statement on the tables,
		 * when a cache was cold) drop the locks it took: a wait in memory
		 * holds none, so that DDL need not wait for it.
		 */
		commit_without_flush();
		SPI_commit();
		put_end = XactLastCommitEnd;
	}
	SPI_finish();

	if (in_memory)
	{
		pw.wait.in_memory = true;
		switch (handoff_wait(app, &pw.wait, &pw.result))
		{
			case HANDOFF_ANSWERED:
				break;
			case HANDOFF_IN_TABLE:
				pw.wait.in_memory = false;
				if (!wait_as_owner(fcinfo, &pw))
					elog(ERROR, "syrpc: the answer of an in-memory call is not in the table");
				break;
			case HANDOFF_TIMED_OUT:
				put_end = spill_call(fcinfo, app);
				nulls[1] = true;
				break;
		}
	}
	else
		nulls[1] = !wait_as_owner(fcinfo, &pw);
	if (nulls[1])
	{
		/*
		 * The result_id is about to leave: its request must be as durable
		 * as a commit is, on a synchronous standby too, or a failover could
		 * lose a request its caller goes on waiting for.
		 */
		XLogFlush(put_end);
		SyncRepWaitForLSN(put_end, true);
	}
	values[0] = UUIDPGetDatum(pw.result_id);
	values[1] = pw.result;
	return procedure_result(fcinfo, values, nulls);
}

/*
 * CALL syrpc_put_result_wait_request(app, answered, result, timeout,
 * INOUT type, INOUT result_id, INOUT data): answer a claimed request and
 * take the next one, waiting up to timeout for it, in one statement, so
 * that a worker's loop is one round trip per request whether or not
 * requests are queued.  A request already queued is claimed in the
 * answer's transaction (as by syrpc_put_result_get_request); otherwise the
 * answer commits (waking its caller) and the wait follows, as in
 * syrpc_wait_request.  An error in the wait (a cancel) leaves the answer
 * committed.
 */
Datum
syrpc_put_result_wait_request(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	Datum		data = arg_data(fcinfo, 2);
	TimestampTz deadline = arg_deadline(fcinfo, 3, "syrpc_put_result_wait_request");
	/* it commits (found) or commits before its wait */
	SyrpcWait	no_wait = {.deadline = GetCurrentTimestamp(), .owns_xact = false,
	.ends_xact = true};
	ProcWait	pw = {.wait = {.deadline = deadline, .owns_xact = true, .no_snapshot = true},
	.app = app, .side = SYRPC_WORKER};
	bool		found;
	SyrpcAsOwner as;

	check_writable("syrpc_put_result_wait_request");
	SPI_connect_ext(SPI_OPT_NONATOMIC);
	become_owner(fcinfo, &as);
	check_access(&as, app, SYRPC_WORKER);
	pw.checked = true;
	require_own_transaction(fcinfo, "syrpc_put_result_wait_request",
							"It commits the answer before it waits.",
							"Inside a transaction, use syrpc_put_result_get_request.");
	answer_request(app, id, data, GetCurrentTimestamp());
	found = wait_for_request(app, &no_wait, &pw.claim);
	back_to_caller(&as);
	relax_result_commit(true);
	if (!found)
		SPI_commit();
	SPI_finish();
	if (!found)
		found = wait_as_owner(fcinfo, &pw);
	PG_RETURN_DATUM(claim_result(fcinfo, found, &pw.claim));
}

/*
 * Claimed requests as the jsonb array of the batch procedures (1.6):
 * [{"type": ..., "result_id": ..., "data": ..., "attempts": ...,
 * "deadline": ...}, ...] (the last two from 1.7), [] for none.
 */
static Datum
claims_jsonb(int n, const SyrpcClaim *claims)
{
	JsonbParseState *state = NULL;
	JsonbValue	k, v;

	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
	{
		Jsonb	   *data = DatumGetJsonbP(claims[i].data);
		text	   *type = DatumGetTextPP(claims[i].type);
		char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, claims[i].result_id));

		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "type";
		k.val.string.len = 4;
		pushJsonbValue(&state, WJB_KEY, &k);
		v.type = jbvString;
		v.val.string.val = VARDATA_ANY(type);
		v.val.string.len = VARSIZE_ANY_EXHDR(type);
		pushJsonbValue(&state, WJB_VALUE, &v);
		k.val.string.val = "result_id";
		k.val.string.len = 9;
		pushJsonbValue(&state, WJB_KEY, &k);
		v.val.string.val = id;
		v.val.string.len = strlen(id);
		pushJsonbValue(&state, WJB_VALUE, &v);
		k.val.string.val = "data";
		k.val.string.len = 4;
		pushJsonbValue(&state, WJB_KEY, &k);
		v.type = jbvBinary;
		v.val.binary.data = &data->root;
		v.val.binary.len = VARSIZE(data) - VARHDRSZ;
		pushJsonbValue(&state, WJB_VALUE, &v);
		/* 1.7: what a worker sees besides (old clients skip these keys) */
		k.val.string.val = "attempts";
		k.val.string.len = 8;
		pushJsonbValue(&state, WJB_KEY, &k);
		v.type = jbvNumeric;
		v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int4_numeric,
															Int32GetDatum(claims[i].attempts)));
		pushJsonbValue(&state, WJB_VALUE, &v);
		k.val.string.val = "deadline";
		k.val.string.len = 8;
		pushJsonbValue(&state, WJB_KEY, &k);
		v.type = jbvString;
		v.val.string.val = JsonEncodeDateTime(NULL, TimestampTzGetDatum(claims[i].expires_at),
											  TIMESTAMPTZOID, NULL);
		v.val.string.len = strlen(v.val.string.val);
		pushJsonbValue(&state, WJB_VALUE, &v);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	return JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_ARRAY, NULL)));
}

/*
 * CALL syrpc_wait_requests(app, max, timeout, INOUT requests jsonb) (1.6):
 * as syrpc_wait_request, for up to max requests (claims_jsonb).
 */
Datum
syrpc_wait_requests(PG_FUNCTION_ARGS)
{
	ProcWait	pw = {.side = SYRPC_WORKER};

	check_writable("syrpc_wait_requests");
	pw.wait.no_snapshot = drop_snapshot(fcinfo);
	pw.app = arg_name(fcinfo, 0, "app");
	pw.max = arg_batch_max(fcinfo, 1);
	pw.wait.deadline = arg_deadline(fcinfo, 2, "syrpc_wait_requests");
	pw.wait.owns_xact = owns_transaction();
	pw.claims = palloc(sizeof(SyrpcClaim) * pw.max);
	(void) wait_as_owner(fcinfo, &pw);
	PG_RETURN_DATUM(procedure_result(fcinfo, (Datum[]) {claims_jsonb(pw.nclaimed, pw.claims)},
									 (bool[]) {false}));
}

/*
 * CALL syrpc_put_results_wait_requests(app, result_ids, data, max, timeout,
 * INOUT requests jsonb) (1.6): a batch worker's loop in one statement, as
 * syrpc_put_result_wait_request is one request's: answer the requests of
 * the last batch (all or none) and claim up to max more; requests already
 * queued are claimed in the answers' transaction, otherwise the answers
 * commit and the wait follows.
 */
Datum
syrpc_put_results_wait_requests(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	Datum	   *ids;
	Datum	   *data;
	int			n = arg_answers(fcinfo, 1, &ids, &data);
	int			max = arg_batch_max(fcinfo, 3);
	TimestampTz deadline = arg_deadline(fcinfo, 4, "syrpc_put_results_wait_requests");
	SyrpcWait	no_wait = {.deadline = GetCurrentTimestamp(), .owns_xact = false,
	.ends_xact = true};
	ProcWait	pw = {.wait = {.deadline = deadline, .owns_xact = true, .no_snapshot = true},
	.app = app, .side = SYRPC_WORKER, .max = max};
	SyrpcAsOwner as;

	pw.claims = palloc(sizeof(SyrpcClaim) * max);
	check_writable("syrpc_put_results_wait_requests");
	SPI_connect_ext(SPI_OPT_NONATOMIC);
	become_owner(fcinfo, &as);
	check_access(&as, app, SYRPC_WORKER);
	pw.checked = true;
	require_own_transaction(fcinfo, "syrpc_put_results_wait_requests",
							"It commits the answers before it waits.",
							"Inside a transaction, use syrpc_put_results and syrpc_get_requests.");
	answer_requests(app, n, ids, data);
	pw.nclaimed = wait_for_requests(app, &no_wait, max, pw.claims);
	back_to_caller(&as);
	relax_result_commit(true);
	if (pw.nclaimed == 0)
		SPI_commit();
	SPI_finish();
	if (pw.nclaimed == 0)
		(void) wait_as_owner(fcinfo, &pw);
	PG_RETURN_DATUM(procedure_result(fcinfo, (Datum[]) {claims_jsonb(pw.nclaimed, pw.claims)},
									 (bool[]) {false}));
}
