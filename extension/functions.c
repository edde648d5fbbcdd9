/*-------------------------------------------------------------------------
 *
 * functions.c
 *	  The SQL-callable RPC functions of syrpc: each checks its arguments
 *	  (args.c), opens SPI and calls rpc.c.  The procedures, which commit
 *	  inside, are in procedures.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "syrpc_internal.h"

SYRPC_EXPORTS_BEGIN
PG_FUNCTION_INFO_V1(syrpc_put_request);
PG_FUNCTION_INFO_V1(syrpc_get_request);
PG_FUNCTION_INFO_V1(syrpc_put_result);
PG_FUNCTION_INFO_V1(syrpc_put_result_get_request);
PG_FUNCTION_INFO_V1(syrpc_fail_request);
PG_FUNCTION_INFO_V1(syrpc_get_result);
PG_FUNCTION_INFO_V1(syrpc_get_requests);
PG_FUNCTION_INFO_V1(syrpc_put_results);
PG_FUNCTION_INFO_V1(syrpc_claim_requests);
PG_FUNCTION_INFO_V1(syrpc_put_error);
PG_FUNCTION_INFO_V1(syrpc_cancel);
PG_FUNCTION_INFO_V1(syrpc_is_cancelled);
PG_FUNCTION_INFO_V1(syrpc_extend_lease);
PG_FUNCTION_INFO_V1(syrpc_release);
SYRPC_EXPORTS_END

/*
 * Every function starts so: it may run here, runs as the extension's
 * owner inside SPI, and the caller may use the app on that side.
 */
static void
enter(FunctionCallInfo fcinfo, const char *func, text *app, SyrpcSide side,
	  SyrpcAsOwner *as)
{
	check_writable(func);
	enter_as_owner(fcinfo, as);
	check_access(as, app, side);
}

/*
 * A claimed request as a row of an SRF: (type, result_id, data), and
 * (1.7) attempts and deadline when the result type has them.
 */
static void
return_claim(FunctionCallInfo fcinfo, const SyrpcClaim *claim)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[5] = {claim->type, claim->result_id, claim->data,
		Int32GetDatum(claim->attempts), TimestampTzGetDatum(claim->expires_at)};
	bool		nulls[5] = {false, false, false, false, false};

	Assert(rsinfo->setDesc->natts == 3 || rsinfo->setDesc->natts == 5);

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * syrpc_put_request(app, type, data [, deadline]) returns uuid (the
 * deadline from 1.7)
 */
Datum
syrpc_put_request(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	text	   *type = arg_name(fcinfo, 1, "type");
	Datum		data = arg_data(fcinfo, 2);
	TimestampTz deadline = arg_request_deadline(fcinfo, 3);
	pg_uuid_t  *id;
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_put_request", app, SYRPC_CALLER, &as);
	id = put_request(app, type, data, deadline);
	leave_as_owner(&as);
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
	bool		owned = owns_transaction();

	/* ends_xact: for the one look of a timeout that has passed */
	SyrpcWait	wait = {.deadline = deadline, .owns_xact = owned, .ends_xact = owned};
	SyrpcClaim	claim;
	bool		found;
	SyrpcAsOwner as;

	InitMaterializedSRF(fcinfo, 0);
	enter(fcinfo, "syrpc_get_request", app, SYRPC_WORKER, &as);
	found = wait_for_request(app, &wait, &claim);
	leave_as_owner(&as);
	if (found)
		return_claim(fcinfo, &claim);
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
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_put_result", app, SYRPC_WORKER, &as);
	answer_request(app, id, data, GetCurrentTimestamp());
	leave_as_owner(&as);
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
	text	   *reason = arg_reason(fcinfo, 2);
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_fail_request", app, SYRPC_WORKER, &as);
	fail_request(app, id, reason, GetCurrentTimestamp());
	leave_as_owner(&as);
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
	TimestampTz now = GetCurrentTimestamp();
	bool		owned = owns_transaction();
	SyrpcWait	no_wait = {.deadline = now, .owns_xact = false, .ends_xact = owned};
	SyrpcClaim	claim;
	bool		found;
	SyrpcAsOwner as;

	InitMaterializedSRF(fcinfo, 0);
	enter(fcinfo, "syrpc_put_result_get_request", app, SYRPC_WORKER, &as);
	answer_request(app, id, data, now);
	found = wait_for_request(app, &no_wait, &claim);
	leave_as_owner(&as);
	if (found)
		return_claim(fcinfo, &claim);
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
	SyrpcWait	wait = {.deadline = deadline, .owns_xact = owns_transaction()};
	Datum		data;
	bool		found;
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_get_result", app, SYRPC_CALLER, &as);
	found = wait_for_result(app, id, &wait, &data);
	leave_as_owner(&as);
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(data);
}

/*
 * Up to max claimed requests of app (the arguments app, max, timeout),
 * waiting up to timeout for the first; no row when the timeout passes.
 * The rows as the function's result type has them (return_claim).
 */
static Datum
claim_requests(FunctionCallInfo fcinfo, const char *func)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	int			max = arg_batch_max(fcinfo, 1);
	TimestampTz deadline = arg_deadline(fcinfo, 2, func);
	bool		owned = owns_transaction();
	SyrpcWait	wait = {.deadline = deadline, .owns_xact = owned, .ends_xact = owned};
	SyrpcClaim *claims = palloc(sizeof(SyrpcClaim) * max);
	int			n;
	SyrpcAsOwner as;

	InitMaterializedSRF(fcinfo, 0);
	enter(fcinfo, func, app, SYRPC_WORKER, &as);
	n = wait_for_requests(app, &wait, max, claims);
	leave_as_owner(&as);
	for (int i = 0; i < n; i++)
		return_claim(fcinfo, &claims[i]);
	return (Datum) 0;
}

/* syrpc_get_requests(app, max, timeout) returns setof (type, result_id, data) (1.6) */
Datum
syrpc_get_requests(PG_FUNCTION_ARGS)
{
	return claim_requests(fcinfo, "syrpc_get_requests");
}

/*
 * syrpc_put_results(app, result_ids uuid[], data jsonb[]) returns integer
 * (1.6): answer several claimed requests in one transaction, all or none;
 * returns how many.
 */
Datum
syrpc_put_results(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	Datum	   *ids;
	Datum	   *data;
	int			n = arg_answers(fcinfo, 1, &ids, &data);
	bool		owned = owns_transaction();
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_put_results", app, SYRPC_WORKER, &as);
	answer_requests(app, n, ids, data);
	leave_as_owner(&as);
	relax_result_commit(owned);
	PG_RETURN_INT32(n);
}

/*
 * syrpc_claim_requests(app, max, timeout) returns setof (type, result_id,
 * data, attempts, deadline) (1.7): syrpc_get_requests with what a worker
 * sees besides: the attempt (1 on the first delivery), and when the
 * request expires (its deadline, or request_ttl's end).
 */
Datum
syrpc_claim_requests(PG_FUNCTION_ARGS)
{
	return claim_requests(fcinfo, "syrpc_claim_requests");
}

/*
 * syrpc_put_error(app, result_id, message, detail) (1.7): answer a
 * claimed request with an error; its caller gets SY006.
 */
Datum
syrpc_put_error(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	text	   *message = arg_message(fcinfo, 2, "message",
									  "Say what went wrong; the caller gets it as the error's message.");
	Datum		detail = arg_detail(fcinfo, 3);
	bool		owned = owns_transaction();
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_put_error", app, SYRPC_WORKER, &as);
	answer_with_error(app, id, message, detail, GetCurrentTimestamp());
	leave_as_owner(&as);
	relax_result_commit(owned);
	PG_RETURN_VOID();
}

/*
 * syrpc_cancel(app, result_id) returns boolean (1.7, caller side): true if
 * this cancelled the request, false if it had already ended.
 */
Datum
syrpc_cancel(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	bool		done;
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_cancel", app, SYRPC_CALLER, &as);
	done = cancel_request(app, id);
	leave_as_owner(&as);
	PG_RETURN_BOOL(done);
}

/*
 * syrpc_is_cancelled(app, result_id) returns boolean (1.7, worker side).
 */
Datum
syrpc_is_cancelled(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	bool		cancelled;
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_is_cancelled", app, SYRPC_WORKER, &as);
	cancelled = request_cancelled(app, id);
	leave_as_owner(&as);
	PG_RETURN_BOOL(cancelled);
}

/*
 * syrpc_extend_lease(app, result_id, seconds, attempt) returns
 * timestamptz (1.7): the running lease (of attempt, if not NULL) now ends
 * seconds from now.
 */
Datum
syrpc_extend_lease(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	int64		lease_us = arg_lease_seconds(fcinfo, 2);
	int32		attempt = arg_attempt(fcinfo, 3);
	TimestampTz end;
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_extend_lease", app, SYRPC_WORKER, &as);
	end = extend_lease(app, id, attempt, lease_us);
	leave_as_owner(&as);
	PG_RETURN_TIMESTAMPTZ(end);
}

/*
 * syrpc_release(app, result_id, delay, attempt) (1.7): hand a claimed
 * request back (its lease of attempt, if not NULL), claimable after delay,
 * its attempt not counted.
 */
Datum
syrpc_release(PG_FUNCTION_ARGS)
{
	text	   *app = arg_name(fcinfo, 0, "app");
	pg_uuid_t  *id = arg_uuid(fcinfo, 1);
	int64		delay_us = arg_delay(fcinfo, 2);
	int32		attempt = arg_attempt(fcinfo, 3);
	SyrpcAsOwner as;

	enter(fcinfo, "syrpc_release", app, SYRPC_WORKER, &as);
	release_request(app, id, attempt, delay_us);
	leave_as_owner(&as);
	PG_RETURN_VOID();
}
