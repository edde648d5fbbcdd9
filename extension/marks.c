/*-------------------------------------------------------------------------
 *
 * marks.c
 *	  Leases and taken results in shared memory (preloaded), so that a
 *	  claim and a taken result write no row and need no xid (issue #13).
 *
 * A put + get RPC on the table path used to write four times: the put, the
 * claim (an UPDATE of the request: attempts, ready_at), the answer and the
 * take (an UPDATE of the result: consumed_at).  Each write costs an xid,
 * and xids are what drive a whole database into anti-wraparound vacuums.
 * Here the claim and the take leave the rows as they are and put a mark
 * in a shared hash table instead, keyed by (database, kind, result_id):
 *
 *   LEASE   a worker's lease of request result_id: until (its end), base
 *           (the row's attempts when it was taken: the lease is attempt
 *           base + 1), expires (the request's expires_at, for the sweep)
 *   TAKEN   result result_id has been taken: until (the result's
 *           expires_at, after which the mark is swept)
 *
 * A mark's holder is the backend (pgprocno) whose open transaction made
 * it, or NOBODY once that transaction committed.  The states of a mark,
 * and who moves them (each step one hold of its partition's LWLock):
 *
 *   (none)  -> pending   a claim or take adds it, holder = itself
 *   pending -> running   its transaction commits (or is prepared)
 *   pending -> (none)    its transaction, or the subtransaction that made
 *                        it, aborts; or the claim's recheck fails (below)
 *   running -> running   (1.7) a worker extends the lease (until later),
 *                        or hands it back (released: until now + delay,
 *                        its attempt not counted when the next claimer
 *                        or cleanup moves it into the row), only while
 *                        it has not run out nor been handed back
 *   running -> (none)    the commit callback of the transaction that
 *                        answered, failed or cancelled the request, or
 *                        that moved an
 *                        expired lease into the row; the sweep, for a
 *                        TAKEN mark whose result expired and a LEASE that
 *                        ended after its request expired
 *
 * Why a claim is right (extension/marks.pml checks it over every
 * interleaving, with mutants that break each rule):
 *
 * 1. A claim reads a candidate row (attempts N) with a snapshot S1, then
 *    adds the mark, then reads the row again with a new snapshot S2 and
 *    keeps the lease only if the row is still there with attempts N.
 * 2. An answer deletes the row and removes the mark only in its commit
 *    callback, which runs after its commit is visible to new snapshots
 *    (ProcArrayEndTransaction comes first).
 * A row is a candidate only while its own columns show no lease, so a
 * lease it has is a mark.  A claimer that finds no mark either adds its
 * own before any answer (whose delete then shows in no snapshot yet, or
 * in S2, which sees the row gone), or after an answer removed the mark,
 * which was after that answer's commit became visible: S2, taken later
 * still, sees the row gone, and the claimer takes its mark back.  A lease
 * that ran out stays as a mark: the next claimer moves it into the row (an
 * UPDATE, attempts N + 2, under a row lock that SKIP LOCKED does not wait
 * for, and that a concurrent answer's delete holds), and removes the mark
 * at its commit; until then other claimers find the mark, and after it
 * the row's new attempts fail their recheck.
 *
 * A claim that cannot renew its snapshot (REPEATABLE READ), or with
 * syrpc.memory_leases off, writes its lease to the row, as without
 * preload, but adds its mark first all the same and removes it once the
 * row's lease is visible: a claim in memory must not take the row while
 * that UPDATE is open.  With no room for a mark, nothing is claimed (taken
 * results may fill at most 3/4 of the table; a take with no room writes
 * its row).
 *
 * A crash or a restart loses every mark: a leased request is handed out
 * again at once, its lost lease's attempt not counted in the row; a taken
 * result can be taken again until it expires.  Both are what at-least-once
 * allows.  So that a request that crashes the server each time it runs
 * still reaches max_attempts, a request put before the marks were made
 * (marks_born_at) is leased in its row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "syrpc_internal.h"

int			syrpc_memory_marks = 65536;
bool		syrpc_memory_leases = true;

#define MARK_PARTITIONS	16
#define NOBODY			(-1)

typedef struct MarkKey
{
	Oid			db;
	int32		kind;			/* SyrpcMarkKind */
	pg_uuid_t	id;
} MarkKey;

typedef struct Mark
{
	MarkKey		key;
	int32		holder;			/* pgprocno of the open transaction, or NOBODY */
	int32		base;			/* LEASE: the row's attempts */
	uint32		app_hash;		/* LEASE: hash of the app's name */
	TimestampTz until;
	TimestampTz expires;		/* LEASE: the request's expires_at */
	bool		released;		/* LEASE: handed back (1.7): its attempt does not count */
} Mark;

/* What this transaction must do to marks at its end. */
typedef enum OpKind
{
	OP_ADDED,					/* commit: running; abort: removed */
	OP_REMOVE					/* commit: removed; abort: nothing */
} OpKind;

typedef struct Op
{
	OpKind		what;
	MarkKey		key;
	int32		base;			/* OP_REMOVE: only a mark of this base (-1: any) */
	SubTransactionId subid;
} Op;

/* Beside the table. */
typedef struct MarksShared
{
	pg_atomic_uint32 taken;		/* TAKEN marks: at most 3/4 of the table */
	TimestampTz born_at;		/* when the table was made: the server's start */
} MarksShared;

static HTAB *marks = NULL;
static MarksShared *shared = NULL;
static LWLockPadded *mark_locks = NULL;
static List *ops = NIL;			/* in TopTransactionContext */

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
marks_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(hash_estimate_size(syrpc_memory_marks, sizeof(Mark)),
									MAXALIGN(sizeof(MarksShared))));
	RequestNamedLWLockTranche("syrpc marks", MARK_PARTITIONS);
}

static void
marks_shmem_startup(void)
{
	HASHCTL		info;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	info.keysize = sizeof(MarkKey);
	info.entrysize = sizeof(Mark);
	info.num_partitions = MARK_PARTITIONS;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	marks = ShmemInitHash("syrpc marks", syrpc_memory_marks, syrpc_memory_marks, &info,
						  HASH_ELEM | HASH_BLOBS | HASH_PARTITION | HASH_FIXED_SIZE);
	mark_locks = GetNamedLWLockTranche("syrpc marks");
	shared = ShmemInitStruct("syrpc marks shared", sizeof(MarksShared), &found);
	if (!found)
	{
		pg_atomic_init_u32(&shared->taken, 0);
		shared->born_at = GetCurrentTimestamp();
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
key_of(MarkKey *key, SyrpcMarkKind kind, const pg_uuid_t *id)
{
	memset(key, 0, sizeof(MarkKey));
	key->db = MyDatabaseId;
	key->kind = kind;
	memcpy(&key->id, id, sizeof(pg_uuid_t));
}

static LWLock *
lock_of(uint32 hash)
{
	return &mark_locks[hash % MARK_PARTITIONS].lock;
}

static void
remember(OpKind what, const MarkKey *key, int32 base)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	Op		   *op = palloc(sizeof(Op));

	op->what = what;
	op->key = *key;
	op->base = base;
	op->subid = GetCurrentSubTransactionId();
	ops = lappend(ops, op);
	MemoryContextSwitchTo(old);
}

/* Are marks kept at all (preloaded, with room)? */
bool
marks_exist(void)
{
	return marks != NULL;
}

/*
 * May this claim or take use a mark instead of writing its row?  Not when
 * the transaction's snapshot cannot move: the claim's recheck needs a new
 * one.
 */
bool
marks_usable(void)
{
	return marks != NULL && syrpc_memory_leases && !IsolationUsesXactSnapshot();
}

/*
 * Add a mark held by this transaction.  If one is there, *found gets it
 * and the answer says whether it is still running (held by an open
 * transaction, or a lease not yet over, or any TAKEN mark).
 */
SyrpcMarkAdd
mark_add(SyrpcMarkKind kind, const pg_uuid_t *id, TimestampTz now,
		 const SyrpcMarkInfo *info, SyrpcMarkInfo *found)
{
	MarkKey		key;
	uint32		hash;
	LWLock	   *lock;
	Mark	   *m;
	bool		existed;
	SyrpcMarkAdd result;

	key_of(&key, kind, id);
	hash = get_hash_value(marks, &key);
	lock = lock_of(hash);
	/* the list entry first: no error may come between the mark and it */
	remember(OP_ADDED, &key, -1);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (kind == SYRPC_MARK_TAKEN &&
		pg_atomic_read_u32(&shared->taken) >= (uint32) syrpc_memory_marks / 4 * 3)
	{
		/* taken results may not crowd out leases, which have no fallback */
		m = hash_search_with_hash_value(marks, &key, hash, HASH_FIND, NULL);
		existed = m != NULL;
	}
	else
		m = hash_search_with_hash_value(marks, &key, hash, HASH_ENTER_NULL, &existed);
	if (m == NULL)
		result = MARK_FULL;
	else if (existed)
	{
		found->until = m->until;
		found->base = m->base;
		found->released = m->released;
		found->pending = m->holder != NOBODY;
		result = (kind == SYRPC_MARK_TAKEN || m->holder != NOBODY || m->until > now) ?
			MARK_RUNNING : MARK_EXPIRED;
	}
	else
	{
		m->holder = MyProc->pgprocno;
		m->base = info->base;
		m->app_hash = info->app_hash;
		m->until = info->until;
		m->expires = info->expires;
		m->released = false;
		if (kind == SYRPC_MARK_TAKEN)
			pg_atomic_fetch_add_u32(&shared->taken, 1);
		result = MARK_ADDED;
	}
	LWLockRelease(lock);
	if (result != MARK_ADDED)
	{
		/* not ours: forget the list entry again */
		pfree(llast(ops));
		ops = list_delete_last(ops);
	}
	return result;
}

/* Look up a mark; false if there is none. */
bool
mark_lookup(SyrpcMarkKind kind, const pg_uuid_t *id, SyrpcMarkInfo *found)
{
	MarkKey		key;
	uint32		hash;
	LWLock	   *lock;
	Mark	   *m;

	if (marks == NULL)
		return false;
	key_of(&key, kind, id);
	hash = get_hash_value(marks, &key);
	lock = lock_of(hash);
	LWLockAcquire(lock, LW_SHARED);
	m = hash_search_with_hash_value(marks, &key, hash, HASH_FIND, NULL);
	if (m != NULL)
	{
		found->until = m->until;
		found->base = m->base;
		found->released = m->released;
		found->pending = m->holder != NOBODY;
		found->mine = m->holder == MyProc->pgprocno;
	}
	LWLockRelease(lock);
	return m != NULL;
}

/*
 * A worker changes its running lease mark of base (1.7): extends it to
 * until (syrpc_extend_lease), or (release) hands it back: the lease ends
 * at until, and its attempt does not count when it is moved into the row
 * (move_lease_into_row, cleanup), so that the mark keeps other claims off
 * until then, as any lease that runs out does.  Only a mark that has not
 * run out nor been handed back, so that a claimer that found it expired
 * (and moves it into the row) is never contradicted.  Returns whether it
 * did.  Not transactional: it stays if its transaction rolls back.
 */
bool
mark_change(const pg_uuid_t *id, int32 base, TimestampTz until, bool release)
{
	MarkKey		key;
	uint32		hash;
	LWLock	   *lock;
	Mark	   *m;
	bool		done = false;

	if (marks == NULL)
		return false;
	key_of(&key, SYRPC_MARK_LEASE, id);
	hash = get_hash_value(marks, &key);
	lock = lock_of(hash);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	m = hash_search_with_hash_value(marks, &key, hash, HASH_FIND, NULL);
	/* the clock read under the lock: a lease that ran out since the caller looked is lost */
	if (m != NULL && m->base == base && m->until > GetCurrentTimestamp() && !m->released &&
		(m->holder == NOBODY || m->holder == MyProc->pgprocno))
	{
		m->until = until;
		m->released = release;
		done = true;
	}
	LWLockRelease(lock);
	return done;
}

/*
 * Remove a mark: only this backend's pending one (only_mine); any (base
 * -1: the request is gone, whoever marked it since); or one of base that
 * no other open transaction holds (a lease moved into its row may have a
 * new mark by now, of another base).
 */
static void
remove_mark(const MarkKey *key, bool only_mine, int32 base)
{
	uint32		hash = get_hash_value(marks, key);
	LWLock	   *lock = lock_of(hash);
	Mark	   *m;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	m = hash_search_with_hash_value(marks, key, hash, HASH_FIND, NULL);
	if (m != NULL &&
		(only_mine ? m->holder == MyProc->pgprocno :
		 base < 0 ||
		 (m->base == base && (m->holder == NOBODY || m->holder == MyProc->pgprocno))))
	{
		if (key->kind == SYRPC_MARK_TAKEN)
			pg_atomic_fetch_sub_u32(&shared->taken, 1);
		hash_search_with_hash_value(marks, key, hash, HASH_REMOVE, NULL);
	}
	LWLockRelease(lock);
}

/* The claim's recheck failed: take back the mark it just added. */
void
mark_drop_mine(SyrpcMarkKind kind, const pg_uuid_t *id)
{
	MarkKey		key;
	ListCell   *lc;

	key_of(&key, kind, id);
	remove_mark(&key, true, -1);
	foreach(lc, ops)
	{
		Op		   *op = lfirst(lc);

		if (op->what == OP_ADDED && memcmp(&op->key, &key, sizeof(key)) == 0)
		{
			ops = foreach_delete_current(ops, lc);
			pfree(op);
		}
	}
}

/*
 * Remove the mark (of base, unless -1) when this transaction commits, once
 * its changes (the request deleted, or its lease moved into the row) are
 * visible.
 */
void
mark_remove_at_commit(SyrpcMarkKind kind, const pg_uuid_t *id, int32 base)
{
	MarkKey		key;

	key_of(&key, kind, id);
	remember(OP_REMOVE, &key, base);
}

/*
 * End this transaction's ops: all of them (subid Invalid) or those of
 * subtransaction subid and its children, which abort.
 */
static void
end_ops(bool committed, bool prepared, SubTransactionId subid)
{
	ListCell   *lc;

	foreach(lc, ops)
	{
		Op		   *op = lfirst(lc);

		if (subid != InvalidSubTransactionId && op->subid < subid)
			continue;
		if (committed && op->what == OP_ADDED)
		{
			uint32		hash = get_hash_value(marks, &op->key);
			LWLock	   *lock = lock_of(hash);
			Mark	   *m;

			LWLockAcquire(lock, LW_EXCLUSIVE);
			m = hash_search_with_hash_value(marks, &op->key, hash, HASH_FIND, NULL);
			if (m != NULL && m->holder == MyProc->pgprocno)
				m->holder = NOBODY;
			LWLockRelease(lock);
		}
		else if (!committed && op->what == OP_ADDED)
			remove_mark(&op->key, true, -1);
		else if (committed && !prepared)
			remove_mark(&op->key, false, op->base);

		/*
		 * A prepared answer's deletion becomes visible only at COMMIT
		 * PREPARED, which runs no callback of ours: its mark stays until
		 * its lease ends, and the claimer that then finds it cannot lock
		 * the row while the prepared transaction holds it.
		 */
		if (subid != InvalidSubTransactionId)
		{
			ops = foreach_delete_current(ops, lc);
			pfree(op);
		}
	}
	if (subid == InvalidSubTransactionId)
		ops = NIL;
}

static void
marks_xact_callback(XactEvent event, void *arg)
{
	if (ops == NIL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			end_ops(true, false, InvalidSubTransactionId);
			break;
		case XACT_EVENT_PREPARE:
			end_ops(true, true, InvalidSubTransactionId);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			end_ops(false, false, InvalidSubTransactionId);
			break;
		default:
			break;
	}
}

static void
marks_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	/*
	 * The ops of a subtransaction and of its children, all opened after
	 * it, have subids >= mySubid; one that committed into its parent keeps
	 * its subid, which is still greater than its parent's.
	 */
	if (event == SUBXACT_EVENT_ABORT_SUB && ops != NIL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		end_ops(false, false, mySubid);
		MemoryContextSwitchTo(old);
	}
}

/*
 * Call fn on every mark, holding every partition's lock in mode, in order
 * (what dynahash asks for a scan of a partitioned table).
 */
static void
scan_marks(LWLockMode mode, bool (*fn) (Mark *m, void *arg), void *arg)
{
	HASH_SEQ_STATUS seq;
	Mark	   *m;

	for (int i = 0; i < MARK_PARTITIONS; i++)
		LWLockAcquire(&mark_locks[i].lock, mode);
	hash_seq_init(&seq, marks);
	while ((m = hash_seq_search(&seq)) != NULL)
		if (fn(m, arg))
			hash_search(marks, &m->key, HASH_REMOVE, NULL);
	for (int i = MARK_PARTITIONS - 1; i >= 0; i--)
		LWLockRelease(&mark_locks[i].lock);
}

typedef struct NextLease
{
	uint32		app_hash;
	TimestampTz now;
	TimestampTz next;
} NextLease;

static bool
next_lease_fn(Mark *m, void *arg)
{
	NextLease  *n = arg;

	if (m->key.db == MyDatabaseId && m->key.kind == SYRPC_MARK_LEASE &&
		m->app_hash == n->app_hash && m->until > n->now && m->until < n->next)
		n->next = m->until;
	return false;
}

/* The earliest end after now of a running lease of the app, if before next. */
TimestampTz
marks_next_lease_end(uint32 app_hash, TimestampTz now, TimestampTz next)
{
	NextLease	n = {app_hash, now, next};

	if (marks == NULL)
		return next;
	scan_marks(LW_SHARED, next_lease_fn, &n);
	return n.next;
}

static bool
sweep_fn(Mark *m, void *arg)
{
	TimestampTz now = *(TimestampTz *) arg;

	if (m->holder != NOBODY || m->until > now)
		return false;
	if (m->key.kind == SYRPC_MARK_TAKEN)
	{
		pg_atomic_fetch_sub_u32(&shared->taken, 1);
		return true;
	}
	return m->expires <= now;
}

/*
 * Remove the marks nobody needs any more: results expired (their rows go
 * too), leases over of requests expired (cleanup deletes their rows).
 */
void
marks_sweep(TimestampTz now)
{
	if (marks != NULL)
		scan_marks(LW_EXCLUSIVE, sweep_fn, &now);
}

typedef struct Expired
{
	TimestampTz now;
	int			max;
	SyrpcExpiredLeases *out;
} Expired;

static bool
expired_fn(Mark *m, void *arg)
{
	Expired    *e = arg;
	SyrpcExpiredLeases *out = e->out;

	/*
	 * A lease handed back counts nothing: the next claimer moves it into the
	 * row (a cleanup that did, attempts unchanged, could not be told from
	 * that claimer's move by the base check)
	 */
	if (m->key.db == MyDatabaseId && m->key.kind == SYRPC_MARK_LEASE &&
		m->holder == NOBODY && m->until <= e->now && !m->released && out->n < e->max)
	{
		out->ids[out->n] = UUIDPGetDatum(&out->id_space[out->n]);
		memcpy(&out->id_space[out->n], &m->key.id, sizeof(pg_uuid_t));
		out->bases[out->n] = Int32GetDatum(m->base);
		out->untils[out->n] = TimestampTzGetDatum(m->until);
		out->n++;
	}
	return false;
}

/*
 * Up to max leases of this database that ran out, for cleanup to move into
 * their rows (store_cleanup), palloc'd.
 */
SyrpcExpiredLeases *
marks_expired_leases(TimestampTz now, int max)
{
	SyrpcExpiredLeases *out = palloc0(sizeof(SyrpcExpiredLeases));
	Expired		e = {now, max, out};

	if (marks == NULL)
		return out;
	out->ids = palloc(sizeof(Datum) * max);
	out->id_space = palloc(sizeof(pg_uuid_t) * max);
	out->bases = palloc(sizeof(Datum) * max);
	out->untils = palloc(sizeof(Datum) * max);
	scan_marks(LW_SHARED, expired_fn, &e);
	return out;
}

/*
 * When the marks of this server's life began: a request put before it may
 * have had a lease that the crash or restart lost, its attempt counted
 * nowhere.  Its claim counts in the row (store.c), so that a request that
 * crashes the server every time it runs still reaches max_attempts.
 */
TimestampTz
marks_born_at(void)
{
	return shared != NULL ? shared->born_at : 0;
}

/* The hash of an app's name that LEASE marks keep. */
uint32
marks_app_hash(text *app)
{
	return hash_bytes((const unsigned char *) VARDATA_ANY(app), VARSIZE_ANY_EXHDR(app));
}

/* Called from _PG_init. */
void
marks_init(bool preloaded)
{
	if (preloaded)
	{
		DefineCustomIntVariable("syrpc.memory_marks",
								"How many leases and taken results syrpc keeps in shared "
								"memory instead of writing them to their rows, when "
								"preloaded; 0 turns that off.",
								"A claim or a take that finds no room writes its row.",
								&syrpc_memory_marks,
								65536, 0, INT_MAX / 2,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
		if (syrpc_memory_marks > 0)
		{
			prev_shmem_request_hook = shmem_request_hook;
			shmem_request_hook = marks_shmem_request;
			prev_shmem_startup_hook = shmem_startup_hook;
			shmem_startup_hook = marks_shmem_startup;
			RegisterXactCallback(marks_xact_callback, NULL);
			RegisterSubXactCallback(marks_subxact_callback, NULL);
		}
	}
	DefineCustomBoolVariable("syrpc.memory_leases",
							 "Keep claims' leases and taken results in shared memory, "
							 "with no write to their rows, when syrpc is preloaded.",
							 "Off: every claim and take updates its row (an xid each).",
							 &syrpc_memory_leases,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}
