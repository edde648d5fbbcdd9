/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Waiter registration, and wake-ups at commit.
 *
 * With shared_preload_libraries = 'syrpc', waiters register in syrpc's
 * own shared memory (registry.c).  Without it (a plain CREATE EXTENSION)
 * they register in the lock manager, as described here, which needs only
 * shared memory every backend already has: the lock table and the PGPROC
 * latches.  Both wake the same waiters in the same way.
 *
 * A backend that is about to sleep for something (any request of an app,
 * or one result_id) takes a transaction-level lock in ShareLock mode on a
 * key made from it: an advisory-lock tag whose field4 (SYRPC_WAIT_*) keeps
 * it apart from pg_advisory_lock's keys.  Nobody ever asks for a lock that
 * conflicts with it, so taking it never blocks; it is only a registration
 * that other backends can look up.
 *
 * A transaction that puts a request or result remembers the key, and
 * after its commit is visible (XACT_EVENT_COMMIT runs after the proc array
 * says so) it asks the lock manager who holds that key (GetLockConflicts
 * with ExclusiveLock) and sets their latches.  The waiter registers before
 * it checks the table, and resets its latch before each check, so a put
 * that commits after the check finds the waiter registered and its latch
 * wakes the sleep: no wake-up is lost.  Hash collisions between keys only
 * cause a spurious wake-up and a re-check.
 *
 * A result wakes all its waiters (normally one).  A request wakes one
 * waiting worker: the first registered one not picked by another put since
 * its last look (in the lock manager: whose latch is not set yet; the
 * puts of a key pick one at a time, under a session lock on a key of
 * their own, so that two puts committing at once never pick the same
 * worker; the registry does it with an atomic flag per waiter).  So that
 * no request is left with nobody awake for it, a worker that stops waiting
 * after it was picked passes the wake-up on to another
 * (syrpc_pass_on_wake), and a wait that ends in an error does the same
 * from the abort callback.
 *
 * On abort nothing else is woken, except for claims: a claim rolled back
 * makes a request claimable again, and a waiter that skipped it while it
 * was locked must look again.  That holds for a subtransaction too
 * (ROLLBACK TO SAVEPOINT, a PL/pgSQL exception block): its claims' wake-ups
 * are passed on when it aborts, and its puts' wake-ups are dropped.
 *
 * Wake-ups run after the commit, where an ERROR would be a PANIC.  The
 * registry's wake allocates nothing and cannot fail; the lock manager's
 * can (GetLockConflicts allocates; the pick lock needs lock table space),
 * so an error there is caught and reported as a WARNING: a wake-up is only
 * a hint, and a waiter that misses one looks again at its next look time.
 *
 * A prepared transaction (PREPARE TRANSACTION) wakes nobody when it is
 * committed later; waiters then see its rows at their next re-check.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/sinvaladt.h"
#include "utils/memutils.h"

#include "syrpc.h"

/* field4 of the lock that serialises cleanup runs */
#define SYRPC_LOCK_CLEANUP	0x5343
/* field4 of the locks that elect one cleanup per interval and database */
#define SYRPC_LOCK_CLEANUP_WINDOW	0x5357
/* field4 of the lock under which puts pick request waiters (lock manager) */
#define SYRPC_LOCK_PICK		0x5350
/* field4 of the lock a DROP or ALTER EXTENSION holds while waiters give way */
#define SYRPC_LOCK_GIVE_WAY	0x5347

/* A key to wake at the end of the current transaction. */
typedef struct PendingWake
{
	SyrpcWaitKind kind;
	uint64		key;
	bool		on_abort;		/* wake on abort (claims), else on commit */
	int			count;			/* how many request waiters to wake */
	SubTransactionId subid;		/* the subtransaction that asked for it */
} PendingWake;

/* Keys to wake, in TopTransactionContext; NIL between transactions. */
static List *pending = NIL;

static void
make_tag(LOCKTAG *tag, uint16 kind, uint64 key)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (key >> 32),
						 (uint32) key, kind);
}

/* The wait key of an app's request queue. */
uint64
syrpc_app_key(text *app)
{
	return hash_bytes_extended((const unsigned char *) VARDATA_ANY(app),
							   VARSIZE_ANY_EXHDR(app), 0);
}

/* The wait key of a result: result_ids are random, so their bytes will do. */
uint64
syrpc_result_key(const pg_uuid_t *id)
{
	uint64		key;

	memcpy(&key, id->data, sizeof(key));
	return key;
}

/*
 * Register this backend as waiting on key until syrpc_waiter_unregister
 * or the end of the transaction.
 */
void
syrpc_waiter_register(SyrpcWaitKind kind, uint64 key)
{
	LOCKTAG		tag;

	if (registry_in_use())
	{
		registry_register(kind, key);
		return;
	}
	make_tag(&tag, kind, key);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		elog(ERROR, "syrpc: waiter registration unexpectedly conflicted");
}

void
syrpc_waiter_unregister(SyrpcWaitKind kind, uint64 key)
{
	LOCKTAG		tag;

	if (registry_in_use())
	{
		registry_forget();
		return;
	}
	make_tag(&tag, kind, key);
	LockRelease(&tag, ShareLock, false);
}

/* How many backends of this database are registered on key. */
int
syrpc_waiter_count(SyrpcWaitKind kind, uint64 key)
{
	LOCKTAG		tag;
	VirtualTransactionId *vxids;
	int			n;

	if (registry_in_use())
		return registry_count(kind, key);
	make_tag(&tag, kind, key);
	vxids = GetLockConflicts(&tag, ExclusiveLock, &n);
	pfree(vxids);
	return n;
}

/*
 * Call fn for every backend of this database that is registered, from
 * whichever registry is in use.
 */
void
syrpc_list_waiters(syrpc_waiter_fn fn, void *arg)
{
	LockData   *locks;

	if (registry_in_use())
	{
		registry_list(fn, arg);
		return;
	}
	locks = GetLockStatusData();
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

/*
 * The lock manager elects one backend per interval and database to run
 * the cleanup.  Time is cut into windows of interval_us; the first backend
 * of the database to try in a window takes a session lock on that
 * window's key (which holds the database's oid) and runs the cleanup; the
 * others find it taken.  The lock is kept until its holder wins a later
 * window (or exits, or calls pg_advisory_unlock_all), when nobody asks for
 * the old window any more: each backend holds at most one such lock
 * (pg_locks: advisory, objsubid 22359).  Each backend tries at most once
 * per window, so every window in which a database is busy has a cleanup.
 */
bool
syrpc_cleanup_window_claim(TimestampTz now, int64 interval_us)
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
	make_tag(&tag, SYRPC_LOCK_CLEANUP_WINDOW, window);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	if (held != 0)
	{
		/* pg_advisory_unlock_all() (DISCARD ALL) may have released it */
		make_tag(&tag, SYRPC_LOCK_CLEANUP_WINDOW, held);
		if (LockHeldByMe(&tag, ExclusiveLock))
			LockRelease(&tag, ExclusiveLock, true);
	}
	held = window;
	return true;
}

/*
 * Take the cleanup lock for the rest of the transaction if nobody has it.
 */
bool
syrpc_cleanup_trylock(void)
{
	LOCKTAG		tag;

	make_tag(&tag, SYRPC_LOCK_CLEANUP, 0);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

static void
remember(SyrpcWaitKind kind, uint64 key, bool on_abort)
{
	ListCell   *lc;
	PendingWake *w;
	MemoryContext old;

	SubTransactionId sub = GetCurrentSubTransactionId();

	foreach(lc, pending)
	{
		w = lfirst(lc);
		if (w->kind == kind && w->key == key && w->on_abort == on_abort &&
			w->subid == sub)
		{
			w->count++;
			return;
		}
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	w = palloc(sizeof(PendingWake));
	w->kind = kind;
	w->key = key;
	w->on_abort = on_abort;
	w->count = 1;
	w->subid = sub;
	pending = lappend(pending, w);
	MemoryContextSwitchTo(old);
}

/*
 * Wake waiters on key once this transaction has committed: all waiters of
 * a result, one waiter of an app's requests per call.
 */
void
syrpc_wake_at_commit(SyrpcWaitKind kind, uint64 key)
{
	remember(kind, key, false);
}

/* Wake one more waiter on key if this transaction aborts. */
void
syrpc_wake_on_abort(SyrpcWaitKind kind, uint64 key)
{
	remember(kind, key, true);
}

/*
 * Set the latches of backends registered on key in the lock manager: every
 * waiter of a result; for requests, count of them whose latch is not set
 * (a set latch is a wake-up that backend has not acted on yet), in
 * registration order.  Puts of one key pick under a session lock of their
 * own, so that two never both see the same latch unset and pick it.
 */
static void
lockmgr_wake(SyrpcWaitKind kind, uint64 key, int count)
{
	LOCKTAG		tag;
	LOCKTAG		pick;
	VirtualTransactionId *vxids;
	int			n;
	int			woken = 0;

	make_tag(&tag, kind, key);
	make_tag(&pick, SYRPC_LOCK_PICK, key);
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

/* Wake waiters on key from whichever registry is in use. */
static void
wake(SyrpcWaitKind kind, uint64 key, int count)
{
	if (registry_in_use())
		registry_wake(kind, key, count);
	else
		lockmgr_wake(kind, key, count);
}

/*
 * Wake waiters where an error must not escape (after commit, during
 * abort): see the top of the file.
 */
static void
wake_safely(SyrpcWaitKind kind, uint64 key, int count)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		wake(kind, key, count);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ereport(WARNING,
				(errmsg("syrpc could not wake waiters at commit"),
				 errdetail("They look again at their next look time.")));
	}
	PG_END_TRY();
}

/*
 * This backend is about to look at the table for what it waits for: any
 * wake-up it was picked for so far is used up by that look.
 */
void
syrpc_waiter_rearm(void)
{
	registry_rearm();
}

/*
 * A request waiter that stops waiting (unregistered already) and was
 * picked by a put since its last look may have been chosen for a request
 * it did not take: it passes the wake-up on to another waiter.
 */
void
syrpc_pass_on_wake(SyrpcWaitKind kind, uint64 key)
{
	if (registry_in_use() ? registry_was_picked() : MyLatch->is_set)
		wake(kind, key, 1);
}

/*
 * Wake what the transaction asked for at its end: on commit the puts'
 * wake-ups, on abort the claims'.  Entries of subid and its children only
 * (a subtransaction's abort), or all (InvalidSubTransactionId); those done
 * or dropped are removed from the list.
 */
static void
wake_pending(bool committed, SubTransactionId subid)
{
	List	   *keep = NIL;
	ListCell   *lc;

	foreach(lc, pending)
	{
		PendingWake *w = lfirst(lc);

		if (subid != InvalidSubTransactionId && w->subid < subid)
		{
			keep = lappend(keep, w);	/* an outer level's: stays */
			continue;
		}
		if (w->on_abort != committed)
			wake_safely(w->kind, w->key, w->count);
	}
	if (subid != InvalidSubTransactionId)
	{
		list_free(pending);
		pending = keep;
	}
}

static void
xact_callback(XactEvent event, void *arg)
{
	/*
	 * A registration lasts until the end of the transaction at most, as a
	 * lock does: a wait that errors out leaves nothing behind.
	 */
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		registry_forget();
	if (pending == NIL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			wake_pending(true, InvalidSubTransactionId);
			pending = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_pending(false, InvalidSubTransactionId);
			pending = NIL;
			break;
		case XACT_EVENT_PREPARE:
			pending = NIL;
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case SUBXACT_EVENT_ABORT_SUB:
			registry_forget_sub(mySubid);

			/*
			 * Its claims are undone (the abort is already visible: the
			 * subtransaction left the proc array before this callback):
			 * pass their wake-ups on now; its puts will never be seen.
			 */
			if (pending != NIL)
			{
				MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

				wake_pending(false, mySubid);
				MemoryContextSwitchTo(old);
			}
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			foreach(lc, pending)
			{
				PendingWake *w = lfirst(lc);

				if (w->subid >= mySubid)
					w->subid = parentSubid;
			}
			break;
		default:
			break;
	}
}

void
syrpc_wakeup_init(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}

/*
 * DROP EXTENSION and ALTER EXTENSION need their tables' locks, which every
 * blocked call holds for its whole wait (its looks lock syrpc.request), and
 * every new call would queue behind them: one waiter with no timeout would
 * stall the database's RPC.  So syrpc's event trigger on those commands
 * (syrpc.give_way, 1.3) takes the give-way lock until its transaction ends
 * and wakes every waiter of the database; a waiter that finds the lock
 * taken before it sleeps ends its wait as a timeout (no row, NULL), which
 * releases its locks; the client's next call waits for the DDL to finish.
 */
static void
wake_to_give_way(void *arg, int pid, SyrpcWaitKind kind, uint64 key)
{
	PGPROC	   *proc = BackendPidGetProc(pid);

	if (proc != NULL && proc != MyProc)
		SetLatch(&proc->procLatch);
}

void
syrpc_give_way(void)
{
	LOCKTAG		tag;

	make_tag(&tag, SYRPC_LOCK_GIVE_WAY, 0);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	syrpc_list_waiters(wake_to_give_way, NULL);
}

/* Is a DROP or ALTER EXTENSION waiting for the waiters to give way? */
bool
syrpc_must_give_way(void)
{
	LOCKTAG		tag;

	make_tag(&tag, SYRPC_LOCK_GIVE_WAY, 0);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, ShareLock, false);
	return false;
}
