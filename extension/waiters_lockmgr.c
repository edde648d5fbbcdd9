/*-------------------------------------------------------------------------
 *
 * waiters_lockmgr.c
 *	  The waiter registry in the lock manager, used without
 *	  shared_preload_libraries: it needs only shared memory that every
 *	  backend already has, the lock table and the PGPROC latches.
 *
 * A backend that is about to sleep for something (any request of an app,
 * or one result_id) takes a transaction-level lock in ShareLock mode on a
 * key made from it (syrpc_lock_tag, of kind SYRPC_LOCK_WAIT_*).  Nobody
 * ever asks for a lock that conflicts with it, so taking it never blocks;
 * it is only a registration that other backends can look up: a put asks
 * the lock manager who holds the key (GetLockConflicts with ExclusiveLock)
 * and sets their latches.  The lock goes with the (sub)transaction that
 * took it, so leave_at_end and leave_sub have nothing to do.
 *
 * A request wakes the first registered waiters whose latch is not set yet
 * (a set latch is a wake-up that backend has not acted on).  The puts of
 * one key pick under a session lock of their own (SYRPC_LOCK_PICK), so
 * that two committing at once never both see the same latch unset and
 * pick the same worker.  A waiter that stops waiting with its latch set
 * was picked (was_picked), and passes the wake-up on (wakeup.c).  The
 * model in extension/waiters.pml (-DLOCKMGR) checks this with spin.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/sinvaladt.h"

#include "syrpc_internal.h"

static void
lockmgr_enroll(SyrpcWaitKind kind, uint64 key)
{
	LOCKTAG		tag;

	syrpc_lock_tag(&tag, (SyrpcLockKind) kind, key);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		elog(ERROR, "syrpc: waiter registration unexpectedly conflicted");
}

static void
lockmgr_leave(SyrpcWaitKind kind, uint64 key)
{
	LOCKTAG		tag;

	syrpc_lock_tag(&tag, (SyrpcLockKind) kind, key);
	LockRelease(&tag, ShareLock, false);
}

/* The lock is the transaction's: it goes by itself. */
static void
lockmgr_leave_at_end(void)
{
}

static void
lockmgr_leave_sub(SubTransactionId sub)
{
}

/* A set latch is the pick; ResetLatch before each look clears it. */
static void
lockmgr_rearm(void)
{
}

static bool
lockmgr_was_picked(void)
{
	return MyLatch->is_set;
}

/*
 * Set the latches of backends registered on key: every waiter of a
 * result; for requests, count of them whose latch is not set, in
 * registration order, under the pick lock.  GetLockConflicts allocates
 * and the pick lock needs lock table space, so this can fail: wakeup.c
 * calls it where an error is caught.
 */
static void
lockmgr_wake(SyrpcWaitKind kind, uint64 key, int count)
{
	LOCKTAG		tag;
	LOCKTAG		pick;
	VirtualTransactionId *vxids;
	int			n;
	int			woken = 0;

	syrpc_lock_tag(&tag, (SyrpcLockKind) kind, key);
	syrpc_lock_tag(&pick, SYRPC_LOCK_PICK, key);
	if (kind == SYRPC_WAIT_REQUEST)
		(void) LockAcquire(&pick, ExclusiveLock, true, false);
	vxids = GetLockConflicts(&tag, ExclusiveLock, &n);
	for (int i = 0; i < n && woken < count; i++)
	{
		PGPROC	   *proc = BackendIdGetProc(vxids[i].backendId);

		if (proc == NULL || proc == MyProc)
			continue;
		if (kind == SYRPC_WAIT_REQUEST)
		{
			if (proc->procLatch.is_set)
				continue;
			woken++;
		}
		SetLatch(&proc->procLatch);
	}
	if (kind == SYRPC_WAIT_REQUEST)
		LockRelease(&pick, ExclusiveLock, true);
	pfree(vxids);
}

/* How many backends of this database are registered on key. */
static int
lockmgr_count(SyrpcWaitKind kind, uint64 key)
{
	LOCKTAG		tag;
	VirtualTransactionId *vxids;
	int			n;

	syrpc_lock_tag(&tag, (SyrpcLockKind) kind, key);
	vxids = GetLockConflicts(&tag, ExclusiveLock, &n);
	pfree(vxids);
	return n;
}

/* Call fn for every backend of this database that is registered. */
static void
lockmgr_list(syrpc_waiter_fn fn, void *arg)
{
	LockData   *locks = GetLockStatusData();

	for (int i = 0; i < locks->nelements; i++)
	{
		LockInstanceData *l = &locks->locks[i];
		uint16		kind = l->locktag.locktag_field4;

		if (l->locktag.locktag_type == LOCKTAG_ADVISORY &&
			l->locktag.locktag_field1 == MyDatabaseId &&
			(kind == SYRPC_WAIT_REQUEST || kind == SYRPC_WAIT_RESULT) &&
			l->holdMask != 0)
			fn(arg, l->pid, (SyrpcWaitKind) kind,
			   (uint64) l->locktag.locktag_field2 << 32 | l->locktag.locktag_field3);
	}
}

/* No shared memory of our own: the table epoch is unknown, always look. */
static uint64
lockmgr_table_epoch(uint64 key)
{
	return 0;
}

static void
lockmgr_table_changed(uint64 key)
{
}

const SyrpcWaiterOps waiters_lockmgr = {
	.name = "lock_manager",
	.enroll = lockmgr_enroll,
	.leave = lockmgr_leave,
	.leave_at_end = lockmgr_leave_at_end,
	.leave_sub = lockmgr_leave_sub,
	.rearm = lockmgr_rearm,
	.was_picked = lockmgr_was_picked,
	.wake = lockmgr_wake,
	.count = lockmgr_count,
	.list = lockmgr_list,
	.table_epoch = lockmgr_table_epoch,
	.table_changed = lockmgr_table_changed,
};
