/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Waiter registration, and wake-ups at commit.
 *
 * Blocked calls register as waiters in one of two registries, chosen at
 * start-up: syrpc's own shared memory when it is in
 * shared_preload_libraries (waiters_shmem.c), else the lock manager
 * (waiters_lockmgr.c), which needs only shared memory every backend
 * already has.  Both wake the same waiters in the same way; this file
 * decides when and whom, they find and wake them.
 *
 * A transaction that puts a request or result remembers the key, and
 * after its commit is visible (XACT_EVENT_COMMIT runs after the proc array
 * says so) it asks the registry who waits on that key and sets their
 * latches.  The waiter registers before it checks the table, and resets
 * its latch before each check, so a put that commits after the check finds
 * the waiter registered and its latch wakes the sleep: no wake-up is lost.  Hash collisions between keys only
 * cause a spurious wake-up and a re-check.
 *
 * A result wakes all its waiters (normally one).  A request wakes one
 * waiting worker: the first registered one not picked by another put since
 * its last look (two puts committing at once never pick the same worker:
 * each registry says how at the top of its file).  So that no request is
 * left with nobody awake for it, a worker that stops waiting after it was
 * picked passes the wake-up on to another (pass_on_wake), and a wait that
 * ends in an error does the same from the abort callback.
 *
 * On abort nothing else is woken, except for claims: a claim rolled back
 * makes a request claimable again, and a waiter that skipped it while it
 * was locked must look again.  That holds for a subtransaction too
 * (ROLLBACK TO SAVEPOINT, a PL/pgSQL exception block): its claims' wake-ups
 * are passed on when it aborts, and its puts' wake-ups are dropped.
 *
 * Wake-ups run after the commit, where an ERROR would be a PANIC.  The
 * shared-memory registry's wake allocates nothing and cannot fail; the
 * lock manager's can, so an error there is caught and reported as a
 * WARNING: a wake-up is only a hint, and a waiter that misses one looks
 * again at its next look time.
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
#include "utils/memutils.h"

#include "syrpc_internal.h"

/* The registry in use, chosen once by wakeup_init. */
static const SyrpcWaiterOps *waiters = &waiters_lockmgr;

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
 * Register this backend as waiting on key until waiter_unregister or the
 * end of the transaction.
 */
void
waiter_register(SyrpcWaitKind kind, uint64 key)
{
	waiters->enroll(kind, key);
}

void
waiter_unregister(SyrpcWaitKind kind, uint64 key)
{
	waiters->leave(kind, key);
}

/*
 * This backend is about to look at the table for what it waits for: any
 * wake-up it was picked for so far is used up by that look.
 */
void
waiter_rearm(void)
{
	waiters->rearm();
}

/* How many backends of this database are registered on key. */
int
waiter_count(SyrpcWaitKind kind, uint64 key)
{
	return waiters->count(kind, key);
}

/*
 * Call fn for every backend of this database that is registered, and for
 * every caller waiting in memory (handoff.c), as a waiter on its result.
 */
void
list_waiters(syrpc_waiter_fn fn, void *arg)
{
	waiters->list(fn, arg);
	handoff_list(fn, arg);
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
wake_at_commit(SyrpcWaitKind kind, uint64 key)
{
	remember(kind, key, false);
}

/* Wake one more waiter on key if this transaction aborts. */
void
wake_on_abort(SyrpcWaitKind kind, uint64 key)
{
	remember(kind, key, true);
}

/*
 * Wake one waiter on key now: an in-memory request (handoff.c), which no
 * commit makes visible.  Only with the shared-memory registry, whose wake
 * cannot fail: it may be called under handoff.c's lock, and in callbacks.
 */
void
wake_now(SyrpcWaitKind kind, uint64 key)
{
	Assert(waiters == &waiters_shmem);
	waiters->wake(kind, key, 1);
}

/* Has this transaction put something on key that its commit will wake for? */
bool
put_pending(SyrpcWaitKind kind, uint64 key)
{
	ListCell   *lc;

	foreach(lc, pending)
	{
		PendingWake *w = lfirst(lc);

		if (w->kind == kind && w->key == key && !w->on_abort)
			return true;
	}
	return false;
}

/* The table epoch of an app's requests (SyrpcWaiterOps.table_epoch); 0: unknown. */
uint64
request_table_epoch(uint64 key)
{
	return waiters->table_epoch(key);
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
		waiters->wake(kind, key, count);
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
 * A request waiter that stops waiting (unregistered already) and was
 * picked by a put since its last look may have been chosen for a request
 * it did not take: it passes the wake-up on to another waiter.
 */
void
pass_on_wake(SyrpcWaitKind kind, uint64 key)
{
	if (waiters->was_picked())
		waiters->wake(kind, key, 1);
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
		{
			/* a put committed, or a claim rolled back: look at the table */
			if (w->kind == SYRPC_WAIT_REQUEST)
				waiters->table_changed(w->key);
			wake_safely(w->kind, w->key, w->count);
		}
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
		waiters->leave_at_end();
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
			waiters->leave_sub(mySubid);

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

/* preloaded: syrpc is in shared_preload_libraries, with its registry */
void
wakeup_init(bool preloaded)
{
	if (preloaded)
	{
		waiters = &waiters_shmem;
		waiters_shmem_install();
	}
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
give_way(void)
{
	LOCKTAG		tag;

	syrpc_lock_tag(&tag, SYRPC_LOCK_GIVE_WAY, 0);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	waiters->list(wake_to_give_way, NULL);
}

/* Is a DROP or ALTER EXTENSION waiting for the waiters to give way? */
bool
must_give_way(void)
{
	LOCKTAG		tag;

	syrpc_lock_tag(&tag, SYRPC_LOCK_GIVE_WAY, 0);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, ShareLock, false);
	return false;
}
