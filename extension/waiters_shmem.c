/*-------------------------------------------------------------------------
 *
 * waiters_shmem.c
 *	  The waiter registry in syrpc's own shared memory, used when syrpc is
 *	  loaded by shared_preload_libraries (without it, waiters register in
 *	  the lock manager: waiters_lockmgr.c).
 *
 * Every backend has one slot, indexed by its BackendId: a backend waits
 * for one thing at a time, so the registry can never be full and nobody
 * ever has to fall back or give up.  A waiting slot is linked into one of
 * SYRPC_REG_PARTS lists, picked by its key, each with its own LWLock: a
 * put touches only the one list its key hashes to, and waiters on other
 * keys never contend with it.  Lists are in registration order, so the
 * worker that has waited longest is woken first.
 *
 * A put picks the request waiters it wakes by their woken flag: it sets
 * the flag with a compare-and-swap, and only the put that set it wakes
 * that waiter, so two puts committing at once never pick the same idle
 * worker (the latch alone could not tell them apart: both would see it
 * unset, and one request would wait for a worker's next look).  The
 * waiter clears its flag just before each look at the table; a wake-up
 * that comes after that look finds it clear again.
 *
 * States of a slot: unlinked (part -1: not waiting); linked, woken 0
 * (waiting, not picked since its last look); linked, woken 1 (picked: its
 * latch is set or about to be).  register: unlinked -> linked, woken 0;
 * rearm (its backend, before each look): woken -> 0; a put's pick: woken
 * 0 -> 1 by CAS, then SetLatch; unregister: linked -> unlinked, after which
 * its backend reads woken and, if 1, passes the wake-up on (wakeup.c).
 * extension/waiters.pml models this with the puts and the waits around it,
 * and test/model_test.sh has spin check every interleaving: no request is
 * left queued while a worker sleeps unpicked.
 *
 * Fields: next, prev and part of a linked slot are protected by the lock
 * of the list it is in; dbid, kind, key and proc are written only by the
 * slot's own backend while unlinked, and read under the list's lock;
 * woken is atomic.
 *
 * A slot is unlinked when its wait ends, when the (sub)transaction that
 * registered it aborts (cancel, statement_timeout, any error), and when
 * its backend exits; a backend that crashes makes the postmaster
 * reinitialise shared memory.  So no stale slot outlives its wait.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "syrpc_internal.h"

/* Number of lists (and LWLocks) that waiting slots are spread over. */
#define SYRPC_REG_PARTS		128

typedef struct RegSlot
{
	int			next;			/* next slot in the list, or -1 */
	int			prev;			/* previous slot in the list, or -1 */
	int			part;			/* list it is linked into; -1: not waiting */
	Oid			dbid;
	uint16		kind;			/* SyrpcWaitKind */
	uint64		key;
	PGPROC	   *proc;
	pg_atomic_uint32 woken;		/* 1: a put picked it since its last look */
} RegSlot;

typedef struct RegList
{
	int			head;
	int			tail;
} RegList;

typedef struct Registry
{
	int			nslots;
	RegList		lists[SYRPC_REG_PARTS];
	/* per list: how often requests of its keys became claimable in the table */
	pg_atomic_uint64 epochs[SYRPC_REG_PARTS];
	RegSlot		slots[FLEXIBLE_ARRAY_MEMBER];
} Registry;

static Registry *registry = NULL;

/* The subtransaction this backend registered in, while it is registered. */
static SubTransactionId reg_subid = InvalidSubTransactionId;
static LWLockPadded *reg_locks = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
registry_size(void)
{
	return add_size(offsetof(Registry, slots),
					mul_size(MaxBackends, sizeof(RegSlot)));
}

static void
registry_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(registry_size());
	RequestNamedLWLockTranche("syrpc", SYRPC_REG_PARTS);
}

static void
registry_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	registry = ShmemInitStruct("syrpc waiter registry", registry_size(), &found);
	if (!found)
	{
		registry->nslots = MaxBackends;
		for (int i = 0; i < SYRPC_REG_PARTS; i++)
		{
			registry->lists[i].head = registry->lists[i].tail = -1;
			pg_atomic_init_u64(&registry->epochs[i], 1);
		}
		for (int i = 0; i < MaxBackends; i++)
		{
			registry->slots[i].part = -1;
			pg_atomic_init_u32(&registry->slots[i].woken, 0);
		}
	}
	reg_locks = GetNamedLWLockTranche("syrpc");
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while shared_preload_libraries are loaded. */
void
waiters_shmem_install(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = registry_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = registry_shmem_startup;
}

static int
part_of(SyrpcWaitKind kind, uint64 key)
{
	return (int) ((key ^ (key >> 32) ^ kind) % SYRPC_REG_PARTS);
}

static RegSlot *
my_slot(void)
{
	Assert(MyBackendId >= 1 && MyBackendId <= registry->nslots);
	return &registry->slots[MyBackendId - 1];
}

/* Unlink slot s from its list; the caller holds the list's lock. */
static void
unlink_slot(RegSlot *s)
{
	RegList    *l = &registry->lists[s->part];

	if (s->prev >= 0)
		registry->slots[s->prev].next = s->next;
	else
		l->head = s->next;
	if (s->next >= 0)
		registry->slots[s->next].prev = s->prev;
	else
		l->tail = s->prev;
	s->part = -1;
}

/* Stop waiting, if this backend is registered at all. */
static void
registry_forget(void)
{
	RegSlot    *s;
	int			part;

	if (registry == NULL || MyBackendId < 1)
		return;
	s = my_slot();
	/* only this backend links or unlinks its own slot */
	part = s->part;
	if (part < 0)
		return;
	LWLockAcquire(&reg_locks[part].lock, LW_EXCLUSIVE);
	unlink_slot(s);
	LWLockRelease(&reg_locks[part].lock);
	reg_subid = InvalidSubTransactionId;
}

/*
 * Subtransaction sub aborts: stop waiting if we registered in it (or in
 * one of its children, which have later ids).  A registration made before
 * it, such as a wait's around the subtransaction of each claim, stays.
 */
static void
registry_forget_sub(SubTransactionId sub)
{
	if (reg_subid != InvalidSubTransactionId && reg_subid >= sub)
		registry_forget();
}

static void
forget_at_exit(int code, Datum arg)
{
	registry_forget();
}

/* Register this backend, at the end of key's list, until registry_forget. */
static void
registry_register(SyrpcWaitKind kind, uint64 key)
{
	static bool exit_hook = false;
	RegSlot    *s = my_slot();
	int			self = MyBackendId - 1;
	int			part = part_of(kind, key);
	RegList    *l = &registry->lists[part];

	if (!exit_hook)
	{
		before_shmem_exit(forget_at_exit, 0);
		exit_hook = true;
	}
	registry_forget();
	LWLockAcquire(&reg_locks[part].lock, LW_EXCLUSIVE);
	s->dbid = MyDatabaseId;
	s->kind = kind;
	s->key = key;
	s->proc = MyProc;
	pg_atomic_write_u32(&s->woken, 0);
	s->next = -1;
	s->prev = l->tail;
	if (l->tail >= 0)
		registry->slots[l->tail].next = self;
	else
		l->head = self;
	l->tail = self;
	s->part = part;
	LWLockRelease(&reg_locks[part].lock);
	reg_subid = GetCurrentSubTransactionId();
}

/*
 * This backend is about to look at the table: a wake-up that picked it
 * before now is used up by that look.
 */
static void
registry_rearm(void)
{
	if (registry != NULL && MyBackendId >= 1)
		pg_atomic_write_u32(&my_slot()->woken, 0);
}

/* Was this backend picked by a put since its last look? */
static bool
registry_was_picked(void)
{
	return registry != NULL && MyBackendId >= 1 &&
		pg_atomic_read_u32(&my_slot()->woken) != 0;
}

/*
 * Set the latches of backends waiting on key in this database: every
 * waiter of a result; for requests, count of them, longest waiting first,
 * each one whose woken flag this call sets.
 *
 * Called at commit, where an ERROR would be a PANIC: it allocates
 * nothing, and LWLockAcquire, the atomics and SetLatch raise no error.
 */
static void
registry_wake(SyrpcWaitKind kind, uint64 key, int count)
{
	int			part = part_of(kind, key);
	int			woken = 0;

	LWLockAcquire(&reg_locks[part].lock, LW_SHARED);
	for (int i = registry->lists[part].head; i >= 0 && woken < count;
		 i = registry->slots[i].next)
	{
		RegSlot    *s = &registry->slots[i];
		uint32		idle = 0;

		if (s->key != key || s->kind != kind || s->dbid != MyDatabaseId ||
			s->proc == MyProc)
			continue;
		if (kind == SYRPC_WAIT_REQUEST)
		{
			if (!pg_atomic_compare_exchange_u32(&s->woken, &idle, 1))
				continue;		/* another put picked it */
			woken++;
		}
		SetLatch(&s->proc->procLatch);
	}
	LWLockRelease(&reg_locks[part].lock);
}

/* How many backends of this database wait on key. */
static int
registry_count(SyrpcWaitKind kind, uint64 key)
{
	int			part = part_of(kind, key);
	int			n = 0;

	LWLockAcquire(&reg_locks[part].lock, LW_SHARED);
	for (int i = registry->lists[part].head; i >= 0; i = registry->slots[i].next)
	{
		RegSlot    *s = &registry->slots[i];

		if (s->key == key && s->kind == kind && s->dbid == MyDatabaseId)
			n++;
	}
	LWLockRelease(&reg_locks[part].lock);
	return n;
}

/* Call fn for every backend of this database that is registered. */
static void
registry_list(syrpc_waiter_fn fn, void *arg)
{
	for (int part = 0; part < SYRPC_REG_PARTS; part++)
	{
		LWLockAcquire(&reg_locks[part].lock, LW_SHARED);
		for (int i = registry->lists[part].head; i >= 0; i = registry->slots[i].next)
		{
			RegSlot    *s = &registry->slots[i];

			if (s->dbid == MyDatabaseId)
				fn(arg, s->proc->pid, (SyrpcWaitKind) s->kind, s->key);
		}
		LWLockRelease(&reg_locks[part].lock);
	}
}


static void
registry_leave(SyrpcWaitKind kind, uint64 key)
{
	registry_forget();
}

/*
 * The table epoch of an app's key: it moves (after the commit is visible)
 * whenever a request of the app may have become claimable in the table: a
 * put committed, a claim rolled back.  A worker that read it before a look
 * that found nothing need not look again while it has not moved (and no
 * lease it saw running has ended).  Keys share their list's epoch, which
 * only costs a look.
 */
static uint64
registry_table_epoch(uint64 key)
{
	pg_memory_barrier();		/* after the rearm, as the look itself */
	return pg_atomic_read_u64(&registry->epochs[part_of(SYRPC_WAIT_REQUEST, key)]);
}

static void
registry_table_changed(uint64 key)
{
	pg_atomic_fetch_add_u64(&registry->epochs[part_of(SYRPC_WAIT_REQUEST, key)], 1);
}

const SyrpcWaiterOps waiters_shmem = {
	.name = "shared_memory",
	.enroll = registry_register,
	.leave = registry_leave,
	.leave_at_end = registry_forget,
	.leave_sub = registry_forget_sub,
	.rearm = registry_rearm,
	.was_picked = registry_was_picked,
	.wake = registry_wake,
	.count = registry_count,
	.list = registry_list,
	.table_epoch = registry_table_epoch,
	.table_changed = registry_table_changed,
};
