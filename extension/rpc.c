/*-------------------------------------------------------------------------
 *
 * rpc.c
 *	  The RPC itself: putting a request, waiting for and claiming one,
 *	  answering or failing it, waiting for and taking its result, and the
 *	  errors that say why a result cannot come.
 *
 * A blocked call registers as a waiter (wakeup.c) before its first look at
 * the tables, looks with a fresh snapshot each time, and sleeps
 * (sleep_until) until a put that it can use commits, its deadline passes,
 * or a lease runs out.  Everything here runs inside the caller's SPI
 * connection, as the owner of the calling function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

/* The settings of the app a request is put for, which it may create. */
void
load_app_for_put(text *app, SyrpcApp *settings)
{
	if (!store_load_app(app, syrpc_create_apps, settings))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("app \"%s\" does not exist", text_to_cstring(app)),
				 errdetail("syrpc.create_apps is off: apps are created by syrpc_configure, not by their first request."),
				 errhint("Ask the extension's owner to create it with syrpc_configure('%s').",
						 text_to_cstring(app))));
}

/*
 * A request with a deadline (1.7; 0: none) expires at it, if request_ttl
 * does not end first: it is never handed to a worker after it, and its
 * caller gets SY002.
 */
void
limit_to_deadline(SyrpcApp *settings, TimestampTz deadline, TimestampTz now)
{
	if (deadline != 0)
		settings->request_ttl_us = deadline <= now ? 0 :
			Min(settings->request_ttl_us, deadline - now);
}

/*
 * Queue a request (with a deadline, or 0) and wake a worker at commit.
 */
pg_uuid_t *
put_request(text *app, text *type, Datum data, TimestampTz deadline)
{
	TimestampTz now = GetCurrentTimestamp();
	SyrpcApp	settings;
	pg_uuid_t  *id;

	load_app_for_put(app, &settings);
	limit_to_deadline(&settings, deadline, now);
	id = store_put_request(app, type, data, now, &settings);
	stats_count(app, SYRPC_STAT_REQUESTS, 1);
	maybe_cleanup(now);
	wake_at_commit(SYRPC_WAIT_REQUEST, syrpc_app_key(app));
	if (syrpc_notify)
		Async_Notify("syrpc_request", text_to_cstring(app));
	return id;
}

/*
 * syrpc_call's put: through shared memory if it can (handoff.c; returns
 * true), else queued in the table as by put_request.  A call that may not
 * wait (its deadline has passed) has nothing to gain from memory.  *id is
 * palloc'd outside SPI.  With syrpc.call_deadline, the call's deadline is
 * also its request's.
 */
bool
put_call(text *app, text *type, Datum data, TimestampTz deadline, pg_uuid_t **id)
{
	SyrpcApp	settings;
	TimestampTz request_deadline = syrpc_call_deadline ? deadline : 0;

	if (handoff_usable() && (deadline == 0 || deadline > GetCurrentTimestamp()))
	{
		load_app_for_put(app, &settings);
		limit_to_deadline(&settings, request_deadline, GetCurrentTimestamp());
		*id = SPI_palloc(sizeof(pg_uuid_t));
		if (handoff_put(app, type, data, &settings, *id))
		{
			stats_count(app, SYRPC_STAT_REQUESTS, 1);
			return true;
		}
	}
	*id = put_request(app, type, data, request_deadline);
	return false;
}

/*
 * The last look at the table that found no request: which app, at which
 * table epoch (request_table_epoch, read before it), under which settings.
 */
static char empty_app[NAMEDATALEN];
static uint64 empty_epoch = 0;
static uint64 empty_generation = 0;
static TimestampTz empty_until = 0;	/* when a lease it saw running ends */
static uint64 next_look_epoch = 0;	/* the epoch store_next_look's answer is of */

/*
 * How long an empty look is trusted at most: what no epoch shows (a put
 * in a prepared transaction committed later, say) waits no longer.
 */
#define EMPTY_TRUST_US	USECS_PER_SEC

/*
 * Claim a request of app from the table, unless the last look found none
 * and nothing can have changed since: no put committed, no claim rolled
 * back (the epoch has not moved), no lease it saw running has ended
 * (store_next_look), the app's settings are the same, and this transaction
 * has put none of its own (which it sees before its commit).  A worker of
 * in-memory calls then answers and waits without a statement on the table.
 */
static bool
claim_from_table(text *app, TimestampTz now, const SyrpcApp *settings,
				 uint64 key, bool in_subxact, SyrpcClaim *claim)
{
	uint64		epoch = request_table_epoch(key);
	char		name[NAMEDATALEN];

	text_to_cstring_buffer(app, name, sizeof(name));
	if (epoch != next_look_epoch)
	{
		/* a spilled request may have a lease that began before its answer */
		store_forget_next_look();
		next_look_epoch = epoch;
	}
	if (epoch != 0 && epoch == empty_epoch && empty_generation == app_generation() &&
		strcmp(name, empty_app) == 0 && now < empty_until &&
		!put_pending(SYRPC_WAIT_REQUEST, key))
		return false;
	if (store_claim(app, now, settings, in_subxact, claim))
	{
		empty_epoch = 0;
		return true;
	}
	if (IsolationUsesXactSnapshot())
		return false;			/* its snapshot may predate the epoch it read */
	strlcpy(empty_app, name, sizeof(empty_app));
	empty_epoch = epoch;
	empty_generation = app_generation();
	/* right as of this look (a later computation would miss leases ended meanwhile) */
	empty_until = Min(store_next_look(app, now, settings), now + EMPTY_TRUST_US);
	return false;
}

/*
 * Claim a request of app, waiting as wait says.  Fills claim and returns
 * true if it claimed one.
 */
bool
wait_for_request(text *app, const SyrpcWait *wait, SyrpcClaim *claim)
{
	uint64		key = syrpc_app_key(app);
	bool		registered = false;
	bool		claimed = false;
	bool		known;
	SyrpcApp	settings;

	known = store_load_app(app, false, &settings);
	if (wait->deadline == 0 || wait->deadline > GetCurrentTimestamp())
	{
		/*
		 * We may wait: register before the first look, so that a put that
		 * commits after it finds us.  An error ends the wait: pass on a
		 * wake-up we may have had.
		 */
		waiter_register(SYRPC_WAIT_REQUEST, key);
		wake_on_abort(SYRPC_WAIT_REQUEST, key);
		registered = true;
	}
	for (;;)
	{
		TimestampTz now;
		bool		no_xid = wait->owns_xact &&
			!TransactionIdIsValid(GetTopTransactionIdIfAny());

		/*
		 * A claim that finds nothing may leave a row lock (store_claim),
		 * which a subtransaction undoes, at the price of an xid of its
		 * own.  None is needed when nothing can hold such a lock past the
		 * look: a single look that its transaction's end follows
		 * (ends_xact); or a look in a call that owns its transaction and
		 * has no xid yet, since a lock would give it one: then, should
		 * that happen, its wait ends here, as a timeout.
		 */
		bool		in_subxact = registered ? !no_xid : !wait->ends_xact;

		ResetLatch(MyLatch);
		waiter_rearm();
		now = GetCurrentTimestamp();
		if (handoff_claim(app, now, claim) ||
			((known || (known = store_load_app(app, false, &settings))) &&
			 claim_from_table(app, now, &settings, key, in_subxact, claim)))
		{
			claimed = true;
			stats_latency(app, SYRPC_LAT_QUEUE, Max(now - claim->created_at, 0));
			wake_on_abort(SYRPC_WAIT_REQUEST, key);
			check_client();
			relax_commit(wait->owns_xact);
			break;
		}
		if (!registered ||
			(no_xid && TransactionIdIsValid(GetTopTransactionIdIfAny())) ||
			!sleep_until(wait, store_next_look(app, now, &settings)))
			break;
	}
	if (registered)
	{
		waiter_unregister(SYRPC_WAIT_REQUEST, key);
		pass_on_wake(SYRPC_WAIT_REQUEST, key);
	}
	return claimed;
}

/* result_id as text, for error messages. */
char *
id_text(const pg_uuid_t *id)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)));
}

void
report_wrong_app(text *app, const pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYRPC_WRONG_APP),
			 errmsg("result_id %s does not belong to app \"%s\"",
					id_text(id), text_to_cstring(app))));
}

/* A worker gave request id up, saying why (syrpc_fail_request). */
void
report_failed_by_worker(text *app, const pg_uuid_t *id, text *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYRPC_REQUEST_FAILED),
			 errmsg("request %s failed: %s", id_text(id), text_to_cstring(reason)),
			 errdetail("A worker of app \"%s\" gave it up (syrpc_fail_request).",
					   text_to_cstring(app))));
	pg_unreachable();
}

/* Its caller cancelled request id (syrpc_cancel, 1.7). */
void
report_cancelled(text *app, const pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYRPC_CANCELLED),
			 errmsg("request %s was cancelled", id_text(id)),
			 errdetail("Its caller cancelled it with syrpc_cancel (app \"%s\").",
					   text_to_cstring(app))));
	pg_unreachable();
}

/*
 * Raise what a result says besides its data (1.7): a worker's error, with
 * its message and its detail (data, unless JSON null) as the DETAIL; or
 * that its caller cancelled it.  Nothing if it is plain data.
 */
void
report_outcome(text *app, const pg_uuid_t *id, const SyrpcOutcome *outcome, Datum data)
{
	char	   *detail = NULL;

	if (outcome->cancelled)
		report_cancelled(app, id);
	if (outcome->error == NULL)
		return;
	if (data != (Datum) 0)
	{
		Jsonb	   *j = DatumGetJsonbP(data);

		detail = JsonbToCString(NULL, &j->root, VARSIZE(j));
		if (strcmp(detail, "null") == 0)
			detail = NULL;		/* none given */
	}
	ereport(ERROR,
			(errcode(ERRCODE_SYRPC_REMOTE_ERROR),
			 errmsg_internal("%s", text_to_cstring(outcome->error)),
			 detail ? errdetail_internal("%s", detail) : 0));
}

/* No worker answered request id within its lease max_attempts times. */
void
report_call_failed(text *app, const pg_uuid_t *id, int32 attempts, int32 max_attempts)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYRPC_REQUEST_FAILED),
			 errmsg("request %s failed after %d attempts", id_text(id), attempts),
			 errdetail("No worker answered it within its lease %d times.", max_attempts),
			 errhint("Check the workers of app \"%s\", or raise its lease_time or max_attempts with syrpc_configure.",
					 text_to_cstring(app))));
	pg_unreachable();
}

void
report_call_expired(text *app, const pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYRPC_REQUEST_EXPIRED),
			 errmsg("request %s expired before it was answered", id_text(id)),
			 errhint("Start more workers for app \"%s\", or raise its request_ttl with syrpc_configure.",
					 text_to_cstring(app))));
	pg_unreachable();
}

/*
 * Raise the error that explains why the result of id cannot come.
 */
static void
report_request_state(const SyrpcRequestInfo *req, const pg_uuid_t *id,
					 text *app, const SyrpcApp *settings)
{
	switch (req->state)
	{
		case SYRPC_REQ_WRONG_APP:
			report_wrong_app(app, id);
			break;
		case SYRPC_REQ_FAILED:
			if (req->failure != NULL)
				report_failed_by_worker(app, id, req->failure);
			report_call_failed(app, id, req->attempts, settings->max_attempts);
			break;
		case SYRPC_REQ_EXPIRED:
			report_call_expired(app, id);
			break;
		default:
			break;
	}
}

/*
 * Raise the error that says why a worker cannot answer or fail request id:
 * it is not in flight.
 */
void
report_not_in_flight(SyrpcFinishState state, text *app, const pg_uuid_t *id)
{
	switch (state)
	{
		case SYRPC_FIN_OK:
		case SYRPC_FIN_CANCELLED:	/* accepted, dropped: the callers return */
			break;
		case SYRPC_FIN_WRONG_APP:
			report_wrong_app(app, id);
			break;
		case SYRPC_FIN_FAILED:
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_NOT_IN_FLIGHT),
					 errmsg("request %s has been failed", id_text(id)),
					 errdetail("A worker gave it up with syrpc_fail_request; its caller has been told.")));
			break;
		case SYRPC_FIN_NOT_CLAIMED:
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_NOT_IN_FLIGHT),
					 errmsg("request %s has not been claimed", id_text(id)),
					 errhint("Take requests with syrpc_get_request before answering them.")));
			break;
		case SYRPC_FIN_ANSWERED:
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_NOT_IN_FLIGHT),
					 errmsg("request %s has already been answered", id_text(id)),
					 errdetail("Its lease may have run out and another worker answered it first.")));
			break;
		case SYRPC_FIN_UNKNOWN:
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_NOT_IN_FLIGHT),
					 errmsg("no request %s is in flight", id_text(id)),
					 errdetail("The result_id is unknown, its request expired, or its result expired.")));
			break;
	}
}

/*
 * Claim up to max requests of app (1.6): wait as wait says for the first,
 * then take what is claimable at once, so that a busy worker commits once
 * per batch.  Fills claims and returns how many.
 */
int
wait_for_requests(text *app, const SyrpcWait *wait, int max, SyrpcClaim *claims)
{
	/* the rest at once; a row lock left by a look ends with the call's transaction */
	SyrpcWait	more = {.owns_xact = wait->owns_xact, .ends_xact = owns_transaction()};
	int			n;

	if (!wait_for_request(app, wait, &claims[0]))
		return 0;
	more.deadline = GetCurrentTimestamp();
	for (n = 1; n < max; n++)
		if (!wait_for_request(app, &more, &claims[n]))
			break;
	return n;
}

/*
 * Store the result of request id of app (data, or with outcome a worker's
 * error whose detail is data), or raise the error that says why it cannot
 * be stored.  Wakes its caller at commit.  A cancelled request's answer
 * is accepted and dropped.
 */
static void
answer_outcome(text *app, pg_uuid_t *id, Datum data, const SyrpcOutcome *outcome,
			   TimestampTz now)
{
	SyrpcApp	settings;
	TimestampTz requested_at = 0;
	TimestampTz lease_end = 0;
	SyrpcFinishState refused = SYRPC_FIN_OK;
	SyrpcFinishState state;
	TimestampTz claimed_at = now;
	Datum		in_slot = outcome ? PointerGetDatum(outcome->error) : data;

	/* an error goes to an in-memory caller as a result row */
	switch (handoff_answer(app, id, in_slot, false, outcome != NULL, &refused, &claimed_at))
	{
		case HANDOFF_NOT_HERE:
			break;
		case HANDOFF_REFUSED:
			report_not_in_flight(refused, app, id);
			break;
		case HANDOFF_TAKEN_IN_TABLE:
			/* too large for the slot, or an error: its caller takes it from the table */
			store_load_app(app, true, &settings);
			if (outcome)
				store_put_outcome(app, id, data, now, &settings, 0, outcome);
			else
				store_put_result(app, id, data, now, &settings, 0);
			/* FALLTHROUGH */
		case HANDOFF_TAKEN:
		case HANDOFF_DROPPED:
			stats_count(app, SYRPC_STAT_ANSWERED, 1);
			stats_latency(app, SYRPC_LAT_SERVICE, Max(now - claimed_at, 0));
			return;
	}
	state = store_finish_request(app, id, now, &requested_at, &lease_end);
	if (state == SYRPC_FIN_CANCELLED)
		return;
	report_not_in_flight(state, app, id);
	store_load_app(app, true, &settings);
	if (outcome)
		store_put_outcome(app, id, data, now, &settings, requested_at, outcome);
	else
		store_put_result(app, id, data, now, &settings, requested_at);
	stats_count(app, SYRPC_STAT_ANSWERED, 1);
	/* its last claim began a lease_time before its lease ends */
	stats_latency(app, SYRPC_LAT_SERVICE, Max(now - (lease_end - settings.lease_us), 0));
	maybe_cleanup(now);
	wake_at_commit(SYRPC_WAIT_RESULT, syrpc_result_key(id));
	if (syrpc_notify)
		Async_Notify("syrpc_result", id_text(id));
}

void
answer_request(text *app, pg_uuid_t *id, Datum data, TimestampTz now)
{
	answer_outcome(app, id, data, NULL, now);
}

/*
 * Answer request id of app with a worker's error (1.7): its caller's
 * syrpc_get_result raises SY006 with message, and detail (jsonb, or 0).
 */
void
answer_with_error(text *app, pg_uuid_t *id, text *message, Datum detail, TimestampTz now)
{
	SyrpcOutcome outcome = {message, false};

	answer_outcome(app, id, detail, &outcome, now);
}

/*
 * Store n results in one transaction (1.6): all of them, or, at the first
 * that cannot be stored, none (the error says which and why).
 */
void
answer_requests(text *app, int n, const Datum *ids, const Datum *data)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < n; i++)
		answer_request(app, DatumGetUUIDP(ids[i]), data[i], now);
}

/*
 * Give up request id of app with reason, or raise the error that says why
 * it cannot be.  Wakes its caller at commit, who then gets SY001.
 */
void
fail_request(text *app, pg_uuid_t *id, text *reason, TimestampTz now)
{
	SyrpcFinishState refused = SYRPC_FIN_OK;
	TimestampTz claimed_at;

	SyrpcFinishState state;

	switch (handoff_answer(app, id, PointerGetDatum(reason), true, false, &refused,
						   &claimed_at))
	{
		case HANDOFF_NOT_HERE:
			break;
		case HANDOFF_REFUSED:
			report_not_in_flight(refused, app, id);
			break;
		default:
			stats_count(app, SYRPC_STAT_FAILED, 1);
			return;
	}
	state = store_fail_request(app, id, reason, now);
	if (state == SYRPC_FIN_CANCELLED)
		return;					/* accepted, dropped */
	report_not_in_flight(state, app, id);
	stats_count(app, SYRPC_STAT_FAILED, 1);
	maybe_cleanup(now);
	wake_at_commit(SYRPC_WAIT_RESULT, syrpc_result_key(id));
}

/* Take the result of id if it is there. */
static bool
take_result(text *app, pg_uuid_t *id, TimestampTz now, const SyrpcWait *wait,
			Datum *data)
{
	TimestampTz requested_at;
	SyrpcOutcome outcome;

	if (!store_consume_result(app, id, now, data, &requested_at, &outcome))
		return false;
	report_outcome(app, id, &outcome, *data);	/* the error undoes the take */
	if (requested_at != 0)
		stats_latency(app, SYRPC_LAT_ROUND_TRIP, Max(now - requested_at, 0));
	check_client();
	relax_commit(wait->owns_xact);
	return true;
}

/*
 * Take the result of id, waiting as wait says for it to be put.  Returns
 * false on timeout; raises the error that says why if it cannot come
 * (failed, expired, taken, another app's).
 *
 * While its request is still there the result cannot be: put_result
 * deletes the request in the transaction that stores the result.  So the
 * first look, made when the result is least likely to be there yet (just
 * after syrpc_call's put, say), asks about the request first and tries to
 * take the result only when the request is gone; after a wake-up the
 * result is most likely there, and is taken first.
 */
bool
wait_for_result(text *app, pg_uuid_t *id, const SyrpcWait *wait, Datum *data)
{
	uint64		key = syrpc_result_key(id);
	bool		registered = false;
	bool		found = false;
	TimestampTz until = 0;		/* when the request's state changes by itself */
	SyrpcApp	settings;
	bool		known = store_load_app(app, false, &settings);

	if (wait->deadline == 0 || wait->deadline > GetCurrentTimestamp())
	{
		/* we may wait: register before the first look */
		waiter_register(SYRPC_WAIT_RESULT, key);
		registered = true;
	}
	for (bool first = true;; first = false)
	{
		TimestampTz now;
		SyrpcRequestInfo req;

		ResetLatch(MyLatch);
		now = GetCurrentTimestamp();
		if (!first && (found = take_result(app, id, now, wait, data)))
			break;
		/* Not there: is its request still on its way, or gone wrong? */
		if (!known)
			known = store_load_app(app, false, &settings);
		req = store_request_state(app, id, now, &settings);
		report_request_state(&req, id, app, &settings);
		until = req.state == SYRPC_REQ_WAITING ? req.until : 0;
		if (req.state == SYRPC_REQ_NONE)
		{
			if (first && (found = take_result(app, id, now, wait, data)))
				break;
			switch (store_result_state(app, id, now))
			{
				case SYRPC_RES_WRONG_APP:
					report_wrong_app(app, id);
					break;
				case SYRPC_RES_CONSUMED:
					ereport(ERROR,
							(errcode(ERRCODE_SYRPC_RESULT_CONSUMED),
							 errmsg("result %s has already been taken",
									id_text(id)),
							 errdetail("A result can be taken by syrpc_get_result once.")));
					break;
				case SYRPC_RES_CANCELLED:
					report_cancelled(app, id);
					break;
				case SYRPC_RES_PRESENT:
					/* it arrived after our look: take it */
					continue;
				case SYRPC_RES_NONE:

					/*
					 * Neither request nor result: the put that made the
					 * result_id committed before anyone could know it, and
					 * a result replaces its request in one transaction.
					 * So nothing will come: waiting would only use up the
					 * caller's timeout.
					 */
					ereport(ERROR,
							(errcode(ERRCODE_SYRPC_UNKNOWN_RESULT),
							 errmsg("no request or result %s in app \"%s\"",
									id_text(id), text_to_cstring(app)),
							 errdetail("The result_id is unknown, or its result expired (result_ttl) before it was taken."),
							 errhint("Take results within the app's result_ttl, or raise it with syrpc_configure.")));
					break;
			}
		}
		if (!registered || !sleep_until(wait, until))
			break;
	}
	if (registered)
		waiter_unregister(SYRPC_WAIT_RESULT, key);
	return found;
}
