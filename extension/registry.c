/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  The shared-memory waiter registry, used when syrpc is loaded by
 *	  shared_preload_libraries (without it, wakeup.c registers waiters in
 *	  the lock manager instead).
 *
 * Every backend has one slot, indexed by its BackendId: a backend waits
 * for one thing at a time, so the registry can never be full and nobody
 * ever has to fall back or give up.  A waiting slot is linked into one of
 * SYRPC_REG_PARTS lists, picked by its key, each with its own LWLock: a
 * put touches only the one list its key hashes to, and waiters on other
 * keys never contend with it.  Lists are in registration order, so the
 * worker that has waited longest is woken first.
 *
 * The registry also keeps one clock for the whole cluster: when expired
 * rows were last deleted (see maybe_cleanup).
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

#include "syrpc.h"

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
} RegSlot;

typedef struct RegList
{
	int			head;
	int			tail;
} RegList;

typedef struct Registry
{
	pg_atomic_uint64 last_cleanup;	/* when a backend last started one */
	int			nslots;
	RegList		lists[SYRPC_REG_PARTS];
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
		pg_atomic_init_u64(&registry->last_cleanup, 0);
		for (int i = 0; i < SYRPC_REG_PARTS; i++)
			registry->lists[i].head = registry->lists[i].tail = -1;
		for (int i = 0; i < MaxBackends; i++)
			registry->slots[i].part = -1;
	}
	reg_locks = GetNamedLWLockTranche("syrpc");
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while shared_preload_libraries are loaded. */
void
registry_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = registry_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = registry_shmem_startup;
}

bool
registry_in_use(void)
{
	return registry != NULL;
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
void
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
void
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
void
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
 * Set the latches of backends waiting on key in this database, longest
 * waiting first, as syrpc_wake_proc (wakeup.c) says.
 */
void
registry_wake(SyrpcWaitKind kind, uint64 key, int count)
{
	int			part = part_of(kind, key);
	int			woken = 0;

	LWLockAcquire(&reg_locks[part].lock, LW_SHARED);
	for (int pass = 0; pass < syrpc_wake_passes(kind) && woken < count; pass++)
	{
		for (int i = registry->lists[part].head; i >= 0 && woken < count;
			 i = registry->slots[i].next)
		{
			RegSlot    *s = &registry->slots[i];

			if (s->key == key && s->kind == kind && s->dbid == MyDatabaseId &&
				s->proc != MyProc)
				woken += syrpc_wake_proc(kind, s->proc, pass);
		}
	}
	LWLockRelease(&reg_locks[part].lock);
}

/* How many backends of this database wait on key. */
int
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
void
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

/*
 * Is a cleanup due, interval_us after the last one any backend started?
 * If so, the caller is the one backend that runs it (compare-and-swap).
 */
bool
registry_cleanup_due(TimestampTz now, int64 interval_us)
{
	uint64		last = pg_atomic_read_u64(&registry->last_cleanup);

	if (now - (TimestampTz) last < interval_us)
		return false;
	return pg_atomic_compare_exchange_u64(&registry->last_cleanup, &last, (uint64) now);
}
