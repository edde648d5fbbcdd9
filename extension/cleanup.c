/*-------------------------------------------------------------------------
 *
 * cleanup.c
 *	  When expired requests and results are deleted, and by whom (the
 *	  statement itself is store_cleanup, in store.c).
 *
 * Every put and answer may run the cleanup, in its own transaction: the
 * first backend of a database to try in each syrpc.cleanup_interval wins
 * an election in the lock manager and runs it, if no other backend is
 * running one now.  Without the election each busy backend would run the
 * 64-partition DELETE, about 5 ms even when it deletes nothing, once per
 * interval.  The election is per database, preloaded or not: one clock for
 * the cluster let a busy database starve a quiet one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lock.h"

#include "syrpc_internal.h"

/*
 * Time is cut into windows of interval_us; the first backend of the
 * database to try in a window takes a session lock on that window's key
 * (which holds the database's oid) and runs the cleanup; the others find
 * it taken.  The lock is kept until its holder wins a later window (or
 * exits, or calls pg_advisory_unlock_all), when nobody asks for the old
 * window any more: each backend holds at most one such lock (pg_locks:
 * advisory, objsubid 22359).  Each backend tries at most once per window,
 * so every window in which a database is busy has a cleanup.
 */
static bool
cleanup_window_claim(TimestampTz now, int64 interval_us)
{
	static uint64 held = 0;		/* the window whose lock we hold, 0: none */
	static uint64 tried = 0;	/* the last window we tried */
	static Oid	tried_db = InvalidOid;
	uint64		window = (uint64) (now / interval_us);
	LOCKTAG		tag;

	if ((window == tried && tried_db == MyDatabaseId) || window == held)
		return false;
	tried = window;
	tried_db = MyDatabaseId;
	syrpc_lock_tag(&tag, SYRPC_LOCK_CLEANUP_WINDOW, window);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	if (held != 0)
	{
		/* pg_advisory_unlock_all() (DISCARD ALL) may have released it */
		syrpc_lock_tag(&tag, SYRPC_LOCK_CLEANUP_WINDOW, held);
		if (LockHeldByMe(&tag, ExclusiveLock))
			LockRelease(&tag, ExclusiveLock, true);
	}
	held = window;
	return true;
}

/* Take the cleanup lock for the rest of the transaction if nobody has it. */
static bool
cleanup_trylock(void)
{
	LOCKTAG		tag;

	syrpc_lock_tag(&tag, SYRPC_LOCK_CLEANUP, 0);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * Delete expired rows if this backend is the one for this interval of its
 * database; inside the caller's transaction and SPI connection.
 */
void
maybe_cleanup(TimestampTz now)
{
	int64		interval = (int64) syrpc_cleanup_interval_ms * 1000;

	if (interval <= 0)
		return;
	if (!cleanup_window_claim(now, interval))
		return;
	if (cleanup_trylock())
		(void) store_cleanup(now);
}
