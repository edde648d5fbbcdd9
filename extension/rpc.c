/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  The blocking parts of the RPC calls: waiting for a request or a
 *	  result, answering a request, and what a wait leaves behind.
 *
 * A blocking call registers as a waiter (wakeup.c), re-checks the tables
 * with a fresh snapshot, and sleeps on its latch until a put that it can
 * use commits, its timeout passes, or a lease runs out.  It holds no row
 * lock and no LWLock while it sleeps; the only lock it holds is its
 * registration, which nobody ever waits for.  CHECK_FOR_INTERRUPTS after
 * each sleep makes statement_timeout and pg_cancel_backend work.
 *
 * Called from a SELECT, the statement's snapshot stays registered for the
 * whole wait and holds back the xmin horizon, so that no row deleted
 * meanwhile can be removed.  Called from CALL at top level there is no
 * outer snapshot: the waiting procedures (syrpc_wait_request,
 * syrpc_wait_result) then hold none while they sleep.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "syrpc.h"

/*
 * Set while a waiting procedure runs after its commit: the only active
 * snapshot then is the one SPI makes for the portal, which may go while
 * we sleep (the next SPI statement makes a new one).
 */
bool		syrpc_sleep_without_snapshot = false;

/*
 * Is this call the whole transaction, with nothing written before it?
 * Then it may decide how its commit is flushed (see relax_commit).
 * Call before writing anything.
 */
bool
owns_transaction(void)
{
	return !IsTransactionBlock() &&
		!TransactionIdIsValid(GetTopTransactionIdIfAny());
}

/*
 * Commit without the flush, decided at pre-commit.  Setting
 * synchronous_commit at once would leak into user code that runs later in
 * the same statement or transaction (SELECT audit() FROM
 * syrpc_get_request(...)), and commit its writes without the flush too.
 * So a call only notes how far the WAL of this transaction reached when
 * its own writes were done; at pre-commit, if nothing has been written
 * since, the commit may skip the flush, and synchronous_commit is set for
 * the commit alone.  Any later write (one of the user's) keeps the
 * session's setting.
 */
static bool relax_wanted = false;
static XLogRecPtr relax_upto = InvalidXLogRecPtr;

/* Let the current transaction commit without the WAL flush, if nothing else writes. */
void
commit_without_flush(void)
{
	relax_wanted = true;
	relax_upto = XactLastRecEnd;
}

static void
commit_mode_callback(XactEvent event, void *arg)
{
	if (!relax_wanted)
		return;
	if (event == XACT_EVENT_PRE_COMMIT)
	{
		if (XactLastRecEnd == relax_upto)
			(void) set_config_option("synchronous_commit", "off",
									 PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_LOCAL, true, 0, false);
		relax_wanted = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
			 event == XACT_EVENT_PREPARE || event == XACT_EVENT_PRE_PREPARE)
		relax_wanted = false;
}

void
syrpc_wait_init(void)
{
	RegisterXactCallback(commit_mode_callback, NULL);
}

/*
 * A claim or a taken result need not wait for the WAL flush: losing one in
 * a crash only hands the request out again or makes the result readable
 * again, which at-least-once delivery allows.  Only when the call owns its
 * transaction, so that no other write of the caller's loses durability.
 */
void
relax_commit(bool owned)
{
	if (owned && syrpc_async_acks)
		commit_without_flush();
}

/*
 * A put result need not wait for the WAL flush either if the user says so
 * (syrpc.async_results): losing it in a crash loses the deletion of its
 * request too, which is then answered again.  Off by default, because the
 * work is then done twice.
 */
void
relax_result_commit(bool owned)
{
	if (owned && syrpc_async_results)
		commit_without_flush();
}

/*
 * The client has gone (its socket is closed): end the session the way
 * PostgreSQL does when it finds that out (client_connection_check_interval),
 * which rolls back whatever this call has done, a claim included, and
 * passes its wake-up on.  A backend whose client was killed must not sleep
 * on and then take a request, or a result, that nobody will receive.
 */
static void
client_gone(void)
{
	ClientConnectionLost = true;
	InterruptPending = true;
	CHECK_FOR_INTERRUPTS();
}

/* Can this backend tell that its client's socket closed? */
static bool
can_watch_client(void)
{
	return MyProcPort != NULL && WaitEventSetCanReportClosed();
}

/*
 * Before handing a request or result out: is the client still there?
 * One poll of the socket, when the platform can tell.
 */
void
check_client(void)
{
	if (can_watch_client() && !pq_check_connection())
		client_gone();
}

/*
 * What a sleep waits for: the latch, postmaster death, and (where the
 * platform can report it, and for a backend with a client) the client's
 * socket closing.  Made once per backend.
 */
static WaitEventSet *
sleep_events(void)
{
	static WaitEventSet *set = NULL;

	if (set == NULL)
	{
		bool		watch_client = can_watch_client();
		WaitEventSet *s = CreateWaitEventSet(TopMemoryContext, watch_client ? 3 : 2);

		AddWaitEventToSet(s, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(s, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		if (watch_client)
			AddWaitEventToSet(s, WL_SOCKET_CLOSED, MyProcPort->sock, NULL, NULL);
		set = s;
	}
	return set;
}

/*
 * Sleep until the latch is set, the client goes away, or the earlier of
 * deadline and until (0 = not set) is reached.  Returns false if the
 * deadline has passed.
 */
static bool
sleep_until(TimestampTz deadline, TimestampTz until)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = deadline;
	long		ms = -1;
	WaitEvent	event;

	if (deadline != 0 && now >= deadline)
		return false;
	if (syrpc_must_give_way())
		return false;			/* a DROP or ALTER EXTENSION waits for us */
	if (until != 0 && (wake == 0 || until < wake))
		wake = until;
	if (wake != 0)
	{
		int64		us = Max(wake - now, 0);

		ms = Min((us + 999) / 1000, INT_MAX);
	}
	/* the catalog snapshot would hold back the xmin horizon too */
	InvalidateCatalogSnapshot();
	if (syrpc_sleep_without_snapshot)
		ForgetPortalSnapshots();
	if (WaitEventSetWait(sleep_events(), ms, &event, 1, PG_WAIT_EXTENSION) == 1 &&
		(event.events & WL_SOCKET_CLOSED))
		client_gone();
	CHECK_FOR_INTERRUPTS();
	return true;
}

/*
 * Delete expired rows once per syrpc.cleanup_interval in each database:
 * the first backend of the database to try in an interval's window runs
 * it (a window lock in the lock manager, wakeup.c).  Without that each
 * busy backend would run the 64-partition DELETE, about 5 ms even when it
 * deletes nothing, once per interval.  The election is per database,
 * preloaded or not: one clock for the cluster let a busy database starve
 * a quiet one.  And only if no other backend is running one now.  Runs in
 * the caller's transaction.
 */
void
maybe_cleanup(TimestampTz now)
{
	int64		interval = (int64) syrpc_cleanup_interval_ms * 1000;

	if (interval <= 0)
		return;
	if (!syrpc_cleanup_window_claim(now, interval))
		return;
	if (syrpc_cleanup_trylock())
		(void) store_cleanup(now);
}

/*
 * Claim a request of app, waiting until deadline (0: no limit; now: do
 * not wait).  Fills values (type, result_id, data) and returns true if it
 * claimed one.  owned: the call is its own transaction (relax_commit).
 */
bool
wait_for_request(text *app, TimestampTz deadline, bool owned, Datum *values)
{
	uint64		key = syrpc_app_key(app);
	bool		registered = false;
	bool		claimed = false;
	bool		known;
	SyrpcApp	settings;

	known = store_load_app(app, false, &settings);
	if (deadline == 0 || deadline > GetCurrentTimestamp())
	{
		/*
		 * We may wait: register before the first look, so that a put that
		 * commits after it finds us.  An error ends the wait: pass on a
		 * wake-up we may have had.
		 */
		syrpc_waiter_register(SYRPC_WAIT_REQUEST, key);
		syrpc_wake_on_abort(SYRPC_WAIT_REQUEST, key);
		registered = true;
	}
	for (;;)
	{
		TimestampTz now;

		ResetLatch(MyLatch);
		syrpc_waiter_rearm();
		now = GetCurrentTimestamp();
		if (!known && !(known = store_load_app(app, false, &settings)))
		{
			/* the app has no requests yet: nothing to claim */
		}
		else if (store_claim(app, now, &settings, values))
		{
			claimed = true;
			syrpc_wake_on_abort(SYRPC_WAIT_REQUEST, key);
			check_client();
			relax_commit(owned);
			break;
		}
		if (!registered ||
			!sleep_until(deadline, store_next_look(app, now, &settings)))
			break;
	}
	if (registered)
	{
		syrpc_waiter_unregister(SYRPC_WAIT_REQUEST, key);
		syrpc_pass_on_wake(SYRPC_WAIT_REQUEST, key);
	}
	return claimed;
}

/* result_id as text, for error messages. */
static char *
id_text(const pg_uuid_t *id)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)));
}

/*
 * Raise the error that explains why the result of id cannot come.
 */
static void
report_request_state(SyrpcRequestState state, const pg_uuid_t *id,
					 text *app, int32 attempts, const SyrpcApp *settings,
					 text *failure)
{
	char	   *idstr;

	if (state != SYRPC_REQ_WRONG_APP && state != SYRPC_REQ_FAILED &&
		state != SYRPC_REQ_EXPIRED)
		return;					/* nothing wrong: no error, no text to make */
	idstr = id_text(id);
	switch (state)
	{
		case SYRPC_REQ_WRONG_APP:
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_WRONG_APP),
					 errmsg("result_id %s does not belong to app \"%s\"",
							idstr, text_to_cstring(app))));
			break;
		case SYRPC_REQ_FAILED:
			if (failure != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_SYRPC_REQUEST_FAILED),
						 errmsg("request %s failed: %s", idstr, text_to_cstring(failure)),
						 errdetail("A worker of app \"%s\" gave it up (syrpc_fail_request).",
								   text_to_cstring(app))));
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_REQUEST_FAILED),
					 errmsg("request %s failed after %d attempts", idstr, attempts),
					 errdetail("No worker answered it within its lease %d times.",
							   settings->max_attempts),
					 errhint("Check the workers of app \"%s\", or raise its lease_time or max_attempts with syrpc_configure.",
							 text_to_cstring(app))));
			break;
		case SYRPC_REQ_EXPIRED:
			ereport(ERROR,
					(errcode(ERRCODE_SYRPC_REQUEST_EXPIRED),
					 errmsg("request %s expired before it was answered", idstr),
					 errhint("Start more workers for app \"%s\", or raise its request_ttl with syrpc_configure.",
							 text_to_cstring(app))));
			break;
		default:
			break;
	}
}

/*
 * Raise the error that says why a worker cannot answer or fail request id:
 * it is not in flight.
 */
static void
report_not_in_flight(SyrpcFinishState state, text *app, const pg_uuid_t *id)
{
	switch (state)
	{
		case SYRPC_FIN_OK:
			break;
		case SYRPC_FIN_WRONG_APP:
			report_request_state(SYRPC_REQ_WRONG_APP, id, app, 0, NULL, NULL);
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
 * Store the result of request id of app, or raise the error that says why
 * it cannot be stored.  Wakes its caller at commit.
 */
void
answer_request(text *app, pg_uuid_t *id, Datum data, TimestampTz now)
{
	SyrpcApp	settings;

	report_not_in_flight(store_finish_request(app, id, now), app, id);
	store_load_app(app, true, &settings);
	store_put_result(app, id, data, now, &settings);
	maybe_cleanup(now);
	syrpc_wake_at_commit(SYRPC_WAIT_RESULT, syrpc_result_key(id));
	if (syrpc_notify)
		Async_Notify("syrpc_result", id_text(id));
}

/*
 * Give up request id of app with reason, or raise the error that says why
 * it cannot be.  Wakes its caller at commit, who then gets SY001.
 */
void
fail_request(text *app, pg_uuid_t *id, text *reason, TimestampTz now)
{
	report_not_in_flight(store_fail_request(app, id, reason, now), app, id);
	maybe_cleanup(now);
	syrpc_wake_at_commit(SYRPC_WAIT_RESULT, syrpc_result_key(id));
}

/* Take the result of id if it is there. */
static bool
take_result(text *app, pg_uuid_t *id, TimestampTz now, bool owned, Datum *data)
{
	if (!store_consume_result(app, id, now, data))
		return false;
	check_client();
	relax_commit(owned);
	return true;
}

/*
 * Take the result of id, waiting until deadline (0: no limit; now: do not
 * wait) for it to be put.  Returns false on timeout; raises the error that
 * says why if it cannot come (failed, expired, taken, another app's).
 * owned: the call is its own transaction (relax_commit).
 *
 * While its request is still there the result cannot be: put_result
 * deletes the request in the transaction that stores the result.  So the
 * first look, made when the result is least likely to be there yet (just
 * after syrpc_call's put, say), asks about the request first and tries to
 * take the result only when the request is gone; after a wake-up the
 * result is most likely there, and is taken first.
 */
bool
wait_for_result(text *app, pg_uuid_t *id, TimestampTz deadline, bool owned, Datum *data)
{
	uint64		key = syrpc_result_key(id);
	bool		registered = false;
	bool		found = false;
	TimestampTz until = 0;		/* when the request's state changes by itself */
	SyrpcApp	settings;
	bool		known = store_load_app(app, false, &settings);

	if (deadline == 0 || deadline > GetCurrentTimestamp())
	{
		/* we may wait: register before the first look */
		syrpc_waiter_register(SYRPC_WAIT_RESULT, key);
		registered = true;
	}
	for (bool first = true;; first = false)
	{
		TimestampTz now;
		int32		attempts = 0;
		text	   *failure;
		SyrpcRequestState req;

		ResetLatch(MyLatch);
		now = GetCurrentTimestamp();
		if (!first && (found = take_result(app, id, now, owned, data)))
			break;
		/* Not there: is its request still on its way, or gone wrong? */
		if (!known)
			known = store_load_app(app, false, &settings);
		until = 0;
		req = store_request_state(app, id, now, &settings, &until, &attempts, &failure);
		report_request_state(req, id, app, attempts, &settings, failure);
		if (req == SYRPC_REQ_NONE)
		{
			if (first && (found = take_result(app, id, now, owned, data)))
				break;
			switch (store_result_state(app, id, now))
			{
				case SYRPC_RES_WRONG_APP:
					report_request_state(SYRPC_REQ_WRONG_APP, id, app, 0, &settings, NULL);
					break;
				case SYRPC_RES_CONSUMED:
					ereport(ERROR,
							(errcode(ERRCODE_SYRPC_RESULT_CONSUMED),
							 errmsg("result %s has already been taken",
									id_text(id)),
							 errdetail("A result can be taken by syrpc_get_result once.")));
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
		if (!registered || !sleep_until(deadline, until))
			break;
	}
	if (registered)
		syrpc_waiter_unregister(SYRPC_WAIT_RESULT, key);
	return found;
}
