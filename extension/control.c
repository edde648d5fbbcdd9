/*-------------------------------------------------------------------------
 *
 * control.c
 *	  What 1.7 adds to an RPC in flight: its caller cancels it, its worker
 *	  asks whether it was cancelled, extends the lease it holds, or hands
 *	  the request back.  (A worker's error is an answer: rpc.c.)
 *
 * A lease is in one of three places: in an in-memory call's slot
 * (handoff.c), in a mark (marks.c, preloaded), or in the request's row.
 * Each function looks in that order; a request is in one of them at a
 * time, except a row lease whose claim marked it until its commit.
 *
 * A cancel replaces the request by a result that says so, in one
 * transaction, as an answer does: so a late answer finds the result and
 * is dropped, a waiting caller is woken at commit and gets SY007, and the
 * cancel is as durable as a result.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

static void report_unknown(text *app, const pg_uuid_t *id) pg_attribute_noreturn();
static void report_lease_lost(text *app, const pg_uuid_t *id) pg_attribute_noreturn();
static void report_claim_open(const pg_uuid_t *id) pg_attribute_noreturn();

/* Neither request nor result: the error a caller gets (as wait_for_result's). */
static void
report_unknown(text *app, const pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYRPC_UNKNOWN_RESULT),
			 errmsg("no request or result %s in app \"%s\"",
					id_text(id), text_to_cstring(app)),
			 errdetail("The result_id is unknown, or its result expired (result_ttl).")));
}

/* A worker's lease that is not there any more. */
static void
report_lease_lost(text *app, const pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYRPC_NOT_IN_FLIGHT),
			 errmsg("request %s is not leased", id_text(id)),
			 errdetail("Its lease ran out (another worker may hold it now), or it was never claimed, or it was answered, failed or expired."),
			 errhint("Extend a lease before it runs out.")));
}

static void
report_claim_open(const pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("request %s was claimed in this transaction", id_text(id)),
			 errdetail("An in-memory request's lease can be extended or released once its claim has committed."),
			 errhint("Commit the claim first (CALL syrpc_wait_request commits by itself).")));
}

/* Is there a lease of id in a mark that a claim of ours, or one committed, holds? */
static bool
running_mark(const pg_uuid_t *id, TimestampTz now, SyrpcMarkInfo *mark)
{
	return leased_in_mark(id, mark) && mark->until > now;
}

/*
 * Cancel request id of app for its caller: true if this did, false if it
 * had already ended (answered, failed, expired, cancelled).
 */
bool
cancel_request(text *app, pg_uuid_t *id)
{
	TimestampTz now = GetCurrentTimestamp();
	SyrpcApp	settings;
	SyrpcRequestInfo req;
	TimestampTz created_at;
	SyrpcOutcome cancelled = {NULL, true};
	int			in_memory;

	if (!store_load_app(app, false, &settings))
		settings = store_any_app;	/* no such app: then not its request either */
	req = store_request_state(app, id, now, &settings);
	switch (req.state)
	{
		case SYRPC_REQ_WRONG_APP:
			report_wrong_app(app, id);
		case SYRPC_REQ_FAILED:
		case SYRPC_REQ_EXPIRED:
			return false;
		case SYRPC_REQ_WAITING:
			if (!store_withdraw_request(app, id, now, settings.max_attempts, &created_at))
				return false;	/* it ended meanwhile */
			if (marks_exist())
				mark_remove_at_commit(SYRPC_MARK_LEASE, id, -1);
			store_put_outcome(app, id, (Datum) 0, now, &settings, created_at, &cancelled);
			wake_at_commit(SYRPC_WAIT_RESULT, syrpc_result_key(id));
			maybe_cleanup(now);
			return true;
		case SYRPC_REQ_NONE:
			break;
	}
	switch (store_result_state(app, id, now))
	{
		case SYRPC_RES_WRONG_APP:
			report_wrong_app(app, id);
		case SYRPC_RES_NONE:
			in_memory = handoff_withdrawn(app, id);
			if (in_memory > 0)
				return false;	/* its call has ended */
			if (in_memory == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("request %s is an in-memory syrpc_call still waiting", id_text(id)),
						 errdetail("Only the session that made the call knows it until the call returns."),
						 errhint("Cancel the call in its session (a client's cancel, or pg_cancel_backend): its answer is then dropped.")));
			report_unknown(app, id);
			break;
		default:
			break;
	}
	return false;
}

/* Has the caller of request id of app cancelled it (for its worker)? */
bool
request_cancelled(text *app, pg_uuid_t *id)
{
	TimestampTz now = GetCurrentTimestamp();
	SyrpcRequestInfo req;
	int			in_memory = handoff_withdrawn(app, id);

	if (in_memory >= 0)
		return in_memory == 1;	/* its caller has gone: cancelled */
	req = store_request_state(app, id, now, &store_any_app);
	if (req.state == SYRPC_REQ_WRONG_APP)
		report_wrong_app(app, id);
	if (req.state != SYRPC_REQ_NONE)
		return false;
	switch (store_result_state(app, id, now))
	{
		case SYRPC_RES_WRONG_APP:
			report_wrong_app(app, id);
		case SYRPC_RES_NONE:
			report_unknown(app, id);
		case SYRPC_RES_CANCELLED:
			return true;
		default:
			return false;
	}
}

/*
 * Why a worker's lease of id cannot be extended or released: cancelled
 * (true: the caller decides what that means), another app's, or lost.
 */
static bool
lease_gone(text *app, const pg_uuid_t *id, TimestampTz now)
{
	SyrpcRequestInfo req = store_request_state(app, id, now, &store_any_app);

	if (req.state == SYRPC_REQ_WRONG_APP)
		report_wrong_app(app, id);
	if (req.state == SYRPC_REQ_NONE)
		switch (store_result_state(app, id, now))
		{
			case SYRPC_RES_WRONG_APP:
				report_wrong_app(app, id);
			case SYRPC_RES_CANCELLED:
				return true;
			default:
				break;
		}
	report_lease_lost(app, id);
	return false;
}

/*
 * May the worker change the lease mark of id (running_mark found it)?
 * The mark is not transactional: only for a request of this app that it
 * still leases, not one whose answer committed (its mark about to go), nor
 * one handed back; and of attempt, unless 0.
 */
static bool
mark_ours(text *app, const pg_uuid_t *id, int32 attempt, TimestampTz now,
		  const SyrpcMarkInfo *mark)
{
	SyrpcRequestInfo req = store_request_state(app, id, now, &store_any_app);

	return req.state == SYRPC_REQ_WAITING && !mark->released &&
		req.attempts == mark->base + 1 && (attempt == 0 || attempt == mark->base + 1);
}

/* What handoff_lease said, for the functions below; true if it did it. */
static bool
lease_in_memory(HandoffLease how, text *app, const pg_uuid_t *id)
{
	switch (how)
	{
		case HANDOFF_LEASE_NOT_HERE:
			return false;
		case HANDOFF_LEASE_DONE:
		case HANDOFF_LEASE_WITHDRAWN:	/* the callers say what that means */
			return true;
		case HANDOFF_LEASE_LOST:
			report_lease_lost(app, id);
		case HANDOFF_LEASE_WRONG_APP:
			report_wrong_app(app, id);
		case HANDOFF_LEASE_OPEN:
			report_claim_open(id);
	}
	return false;
}

/*
 * The running lease of request id (of attempt, unless 0: without it the
 * lease of a later claim, after ours ran out, cannot be told from ours)
 * now ends lease_us from now; returns that time.  SY007 if it was
 * cancelled, SY004 if the lease was lost.
 */
TimestampTz
extend_lease(text *app, pg_uuid_t *id, int32 attempt, int64 lease_us)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until = now + lease_us;
	TimestampTz end;
	HandoffLease how = handoff_lease(app, id, attempt, until, false, &end);
	SyrpcMarkInfo mark;

	if (lease_in_memory(how, app, id))
	{
		if (how == HANDOFF_LEASE_WITHDRAWN)
			report_cancelled(app, id);
		return end;
	}
	if (running_mark(id, now, &mark))
	{
		if (mark_ours(app, id, attempt, now, &mark) &&
			mark_change(id, mark.base, until, false))
		{
			/* a shorter lease ends before waiting workers' next look */
			if (until < mark.until)
				wake_at_commit(SYRPC_WAIT_REQUEST, syrpc_app_key(app));
			return until;
		}
	}
	else if (store_change_row_lease(app, id, attempt, until, false))
		return until;
	if (lease_gone(app, id, now))
		report_cancelled(app, id);
	return 0;
}

/*
 * Hand request id back: claimable again delay_us from now, its attempt
 * not counted.  A cancelled request: nothing to do.
 */
void
release_request(text *app, pg_uuid_t *id, int32 attempt, int64 delay_us)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz ready_at = now + delay_us;
	TimestampTz end;
	SyrpcMarkInfo mark;
	bool		done;

	if (lease_in_memory(handoff_lease(app, id, attempt, ready_at, true, &end), app, id))
		return;
	if (running_mark(id, now, &mark))
		done = mark_ours(app, id, attempt, now, &mark) &&
			mark_change(id, mark.base, ready_at, true);
	else
		done = store_change_row_lease(app, id, attempt, ready_at, true);
	if (done)
		wake_at_commit(SYRPC_WAIT_REQUEST, syrpc_app_key(app));
	else
		(void) lease_gone(app, id, now);
}
