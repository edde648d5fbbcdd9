/*-------------------------------------------------------------------------
 *
 * sleep.c
 *	  One sleep of a blocked call, and the client-socket checks.
 *
 * A blocked call holds no row lock and no LWLock while it sleeps; the only
 * lock it holds is its registration, which nobody ever waits for.  It
 * sleeps on its latch (set by a put that commits, wakeup.c), until its
 * deadline or the time its caller gives (a lease that runs out), and also
 * wakes when its client's socket closes.  CHECK_FOR_INTERRUPTS after each
 * sleep makes statement_timeout and pg_cancel_backend work.
 *
 * Called from a SELECT, the statement's snapshot stays registered for the
 * whole wait and holds back the xmin horizon, so that no row deleted
 * meanwhile can be removed.  Called from CALL at top level there is no
 * outer snapshot: the waiting procedures then hold none while they sleep
 * (SyrpcWait.no_snapshot).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

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
 * the wait's deadline and until (0 = not set) is reached.  Returns false
 * if the deadline has passed, or a DROP or ALTER EXTENSION waits for us.
 */
bool
sleep_until(const SyrpcWait *wait, TimestampTz until)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz deadline = wait->deadline;
	TimestampTz wake = deadline;
	long		ms = -1;
	WaitEvent	event;

	if (deadline != 0 && now >= deadline)
		return false;
	if (!wait->in_memory && must_give_way())
		return false;
	if (until != 0 && (wake == 0 || until < wake))
		wake = until;
	if (wake != 0)
	{
		int64		us = Max(wake - now, 0);

		ms = Min((us + 999) / 1000, INT_MAX);
	}
	/* the catalog snapshot would hold back the xmin horizon too */
	InvalidateCatalogSnapshot();
	if (wait->no_snapshot)
		ForgetPortalSnapshots();
	if (WaitEventSetWait(sleep_events(), ms, &event, 1, PG_WAIT_EXTENSION) == 1 &&
		(event.events & WL_SOCKET_CLOSED))
		client_gone();
	CHECK_FOR_INTERRUPTS();
	return true;
}
