/*-------------------------------------------------------------------------
 *
 * handoff.c
 *	  In-memory RPC for syrpc_call: while the caller waits, its request and
 *	  the worker's answer pass through shared memory, with no row, no xid
 *	  and no WAL (only when syrpc is in shared_preload_libraries).
 *
 * Until syrpc_call returns, only the calling session knows the result_id,
 * and a crash that loses shared memory also ends that session with an
 * error: so a request need not be durable while its caller waits.  When
 * the call times out, the request is written to syrpc.request (queued, or
 * leased to the worker that holds it) and flushed before the result_id
 * leaves the server, and from then on everything is as on the table path.
 *
 * Each backend has one slot, indexed by its pgprocno, for the one call it
 * can make at a time; the last 3 bytes of the result_id name the slot, so
 * an answer finds it without a search.  All slots are under one LWLock
 * (every transition below is one hold of it); the critical sections copy
 * a payload at most, QUEUED slots are linked in put order so that a claim
 * walks only them, and a worker that looks for a request skips the lock
 * while none is queued.  A put wakes one waiting worker at once (there is
 * no commit to wait for), an answer's commit sets its caller's latch; a
 * claim wakes nobody: the caller looks at least once a lease_time, and a
 * lease taken after its last look ends no earlier than that.
 *
 * States of a slot, and who moves it:
 *
 *   FREE       nobody's call (or a call that ended: its id stays, so that
 *              a late answer is told it was answered)
 *   QUEUED     the caller put a request; any worker of its app may claim
 *   LEASED     a worker claimed it (holder; attempts counts), until its
 *              lease ends
 *   ANSWERING  a worker's put_result (or fail_request) took it; the
 *              answer waits in the worker's transaction (answerer)
 *   ANSWERED   the answer is in the slot (or in syrpc.result, when it was
 *              larger than a slot); the caller takes it
 *   SPILLING   the caller timed out and writes the request to the table
 *   SPILLED    that row committed (flushed, replicated): a late answer
 *              takes the table path
 *   WITHDRAWN  the caller was cancelled, or its session ended: nobody can
 *              ask for the result; a late answer is accepted and dropped
 *   FAILED     the last lease ran out at max_attempts
 *
 *   caller   FREE/SPILLED/WITHDRAWN -> QUEUED (put; only when no worker
 *            may still write into the slot: no answerer, and no holder
 *            whose lease runs); ANSWERED -> FREE (takes the answer);
 *            FAILED -> FREE (SY001); QUEUED past request_ttl -> FREE
 *            (SY002); LEASED with its lease over -> QUEUED, or FAILED at
 *            max_attempts; QUEUED/LEASED/ANSWERING -> SPILLING (timeout;
 *            an answer in an open transaction is then dropped at its
 *            commit, and the row is ready at once, to be run again)
 *            -> SPILLED; QUEUED/LEASED/ANSWERING/SPILLING -> WITHDRAWN
 *            (its transaction aborts: cancel, statement_timeout; or its
 *            backend exits), without waiting for an answerer; ANSWERED/
 *            FAILED -> FREE (the same, with the answer there)
 *   worker   QUEUED -> LEASED (claim); the claim's transaction aborts:
 *            its attempt is taken back and it holds nothing, and LEASED
 *            -> QUEUED; LEASED -> QUEUED, or FAILED at max_attempts (its
 *            backend exits); QUEUED (claimed before) / LEASED ->
 *            ANSWERING (put_result); ANSWERING -> ANSWERED (its commit)
 *            or back to LEASED, or if the holder has gone QUEUED or
 *            FAILED at max_attempts (its abort); while another's
 *            ANSWERING or SPILLING it waits (the slot's condition
 *            variable); SPILLED: the table path; WITHDRAWN: dropped;
 *            (1.7) its own LEASED, claimed in a transaction that has
 *            committed -> LEASED with a later lease end (extend_lease),
 *            or with its attempt taken back, no holder, and the lease
 *            ending after the delay, QUEUED at once for none (release);
 *            neither is transactional
 *
 * extension/handoff.pml models these with a caller and two workers that
 * claim, answer, abort and die, leases that run out, and a caller that
 * may time out or be cancelled at any point; test/model_test.sh has spin
 * check every interleaving (exactly one outcome per call, no answer to
 * the wrong call, no answer lost, a spilled call's late answer finds its
 * row).
 *
 * A backend's claims and answers of the running transaction are kept in
 * a list: its commit publishes the answers, its abort (or a
 * subtransaction's) undoes claims and answers, and its exit hands back
 * the leases it holds.  The slot is found by result_id, so an answer to
 * a call that has ended (the slot reused) is never taken for another.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

#include "handoff.h"

int			syrpc_memory_payload_kb = 8;
bool		syrpc_memory_calls = true;

Handoff    *handoff = NULL;
static char *slot_data_base = NULL;
LWLock	   *handoff_lock = NULL;
Size		payload_max = 0;	/* bytes of a slot's data */
static List *ops = NIL;			/* in TopTransactionContext */
static bool calling = false;	/* our slot holds a call of ours */
static bool exit_hooked = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
slots_size(void)
{
	return MAXALIGN(add_size(offsetof(Handoff, slots), mul_size(MaxBackends, sizeof(Slot))));
}

static Size
handoff_size(void)
{
	return add_size(slots_size(), mul_size(MaxBackends, payload_max));
}

static void
handoff_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(handoff_size());
	RequestNamedLWLockTranche("syrpc handoff", 1);
}

static void
handoff_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	handoff = ShmemInitStruct("syrpc handoff", handoff_size(), &found);
	if (!found)
	{
		handoff->nslots = MaxBackends;
		handoff->next_seq = 1;
		handoff->qhead = handoff->qtail = NOBODY;
		pg_atomic_init_u32(&handoff->queued, 0);
		for (int i = 0; i < handoff->nslots; i++)
		{
			Slot	   *s = &handoff->slots[i];

			memset(s, 0, sizeof(Slot));
			s->state = HO_FREE;
			s->qnext = s->qprev = NOBODY;
			s->holder = NOBODY;
			s->answerer = NOBODY;
			ConditionVariableInit(&s->cv);
		}
	}
	slot_data_base = (char *) handoff + slots_size();
	handoff_lock = &(GetNamedLWLockTranche("syrpc handoff"))->lock;
	LWLockRelease(AddinShmemInitLock);
}

char *
slot_data(Slot *s)
{
	return slot_data_base + (s - handoff->slots) * payload_max;
}

/*
 * Move slot s to state to; a slot QUEUED is in the queue, by seq (a
 * request queued again after its lease goes back to its place).
 */
void
set_state(Slot *s, SlotState to)
{
	int			i = s - handoff->slots;

	if (s->state == HO_QUEUED && to != HO_QUEUED)
	{
		if (s->qprev != NOBODY)
			slot_at(s->qprev)->qnext = s->qnext;
		else
			handoff->qhead = s->qnext;
		if (s->qnext != NOBODY)
			slot_at(s->qnext)->qprev = s->qprev;
		else
			handoff->qtail = s->qprev;
		s->qnext = s->qprev = NOBODY;
		pg_atomic_fetch_sub_u32(&handoff->queued, 1);
	}
	else if (s->state != HO_QUEUED && to == HO_QUEUED)
	{
		int			after = handoff->qtail;

		while (after != NOBODY && slot_at(after)->seq > s->seq)
			after = slot_at(after)->qprev;
		s->qprev = after;
		s->qnext = after == NOBODY ? handoff->qhead : slot_at(after)->qnext;
		if (s->qnext != NOBODY)
			slot_at(s->qnext)->qprev = i;
		else
			handoff->qtail = i;
		if (after != NOBODY)
			slot_at(after)->qnext = i;
		else
			handoff->qhead = i;
		pg_atomic_fetch_add_u32(&handoff->queued, 1);
	}
	s->state = to;
}

void
wake_caller(int slot)
{
	SetLatch(&GetPGProcByNumber(slot)->procLatch);
}

/* The slot is queued (again): wake a worker of its app. */
void
requeue(Slot *s)
{
	set_state(s, HO_QUEUED);
	wake_now(SYRPC_WAIT_REQUEST,
			 hash_bytes_extended((const unsigned char *) s->app, strlen(s->app), 0));
}

/* A lease ended (ran out, or its holder went): queued again, or failed. */
static void
lease_over(Slot *s)
{
	s->holder = NOBODY;
	if (s->attempts >= s->max_attempts)
		set_state(s, HO_FAILED);
	else
		requeue(s);
}

/*
 * Undo or publish the claims and answers of the transaction (all), or of
 * subtransaction subid and its children, newest first; the caller holds
 * handoff_lock.  Returns the ops it did not touch.
 */
static List *
end_ops(bool committed, SubTransactionId subid)
{
	List	   *keep = NIL;

	for (int n = list_length(ops) - 1; n >= 0; n--)
	{
		Op		   *op = list_nth(ops, n);
		Slot	   *s = slot_at(op->slot);

		if (subid != InvalidSubTransactionId && op->subid < subid)
		{
			keep = lcons(op, keep);
			continue;
		}
		if (memcmp(&s->id, &op->id, sizeof(pg_uuid_t)) != 0)
			continue;			/* that call has ended, the slot is another's */
		if (op->answer)
		{
			if (s->answerer != me())
				continue;
			s->answerer = NOBODY;
			if (s->state == HO_ANSWERING)
			{
				if (committed)
				{
					if (op->data != NULL)
					{
						s->len = VARSIZE_ANY(op->data);
						memcpy(slot_data(s), op->data, s->len);
					}
					s->failed = op->failed;
					s->in_table = op->in_table;
					s->holder = NOBODY;
					set_state(s, HO_ANSWERED);
				}
				else
				{
					s->in_table = false;
					if (s->holder != NOBODY)
						set_state(s, HO_LEASED);
					else
						lease_over(s);	/* its holder went meanwhile */
				}
				wake_caller(op->slot);
			}
			ConditionVariableBroadcast(&s->cv);
		}
		else if (!committed && s->holder == me())
		{
			/*
			 * A claim rolled back, as the table path's UPDATE would be,
			 * whatever the slot has come to since (spilling, withdrawn, or
			 * being answered by an earlier holder): the attempt does not
			 * count, and nobody holds a lease.
			 */
			s->attempts--;
			s->holder = NOBODY;
			if (s->state == HO_LEASED)
				requeue(s);
			wake_caller(op->slot);
		}
	}
	return keep;
}

/* The caller's call ends in an error or with its session: nobody will ask. */
static void
withdraw(void)
{
	Slot	   *s = slot_at(me());

	calling = false;
	switch (s->state)
	{
		case HO_QUEUED:
		case HO_LEASED:
		case HO_ANSWERING:
		case HO_SPILLING:
			set_state(s, HO_WITHDRAWN);
			break;
		case HO_ANSWERED:
		case HO_FAILED:
			set_state(s, HO_FREE);
			break;
		default:
			break;
	}
	ConditionVariableBroadcast(&s->cv);
}

static void
handoff_xact_callback(XactEvent event, void *arg)
{
	bool		committed;
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			foreach(lc, ops)
				if (((Op *) lfirst(lc))->answer)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot PREPARE a transaction that answered a request in memory"),
							 errdetail("Its caller waits in syrpc_call, and would get the answer only at COMMIT PREPARED.")));
			return;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			committed = true;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			committed = false;
			break;
		default:
			return;
	}
	if (ops == NIL && (committed || !calling))
		return;
	LWLockAcquire(handoff_lock, LW_EXCLUSIVE);
	(void) end_ops(committed, InvalidSubTransactionId);
	ops = NIL;
	if (!committed && calling)
		withdraw();
	LWLockRelease(handoff_lock);
}

static void
handoff_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (ops == NIL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/*
		 * The list that stays must live as long as the transaction: the
		 * current context of a subtransaction's abort is reset after it.
		 */
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		LWLockAcquire(handoff_lock, LW_EXCLUSIVE);
		ops = end_ops(false, mySubid);
		LWLockRelease(handoff_lock);
		MemoryContextSwitchTo(old);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		foreach(lc, ops)
		{
			Op		   *op = lfirst(lc);

			if (op->subid >= mySubid)
				op->subid = parentSubid;
		}
}

/*
 * The backend exits (FATAL, a terminate, its client gone): before its
 * transaction is rolled back, undo that transaction's claims and answers,
 * hand back every lease it holds, and withdraw its call.
 */
static void
handoff_exit(int code, Datum arg)
{
	LWLockAcquire(handoff_lock, LW_EXCLUSIVE);
	(void) end_ops(false, InvalidSubTransactionId);
	ops = NIL;
	if (calling)
		withdraw();
	for (int i = 0; i < handoff->nslots; i++)
	{
		Slot	   *s = slot_at(i);

		if (s->holder != me())
			continue;
		if (s->state == HO_LEASED)
		{
			lease_over(s);
			wake_caller(i);
		}
		else
			s->holder = NOBODY;
	}
	LWLockRelease(handoff_lock);
}

void
hook_exit(void)
{
	if (!exit_hooked)
	{
		before_shmem_exit(handoff_exit, (Datum) 0);
		exit_hooked = true;
	}
}

/* Whether the open transaction has claimed or answered slot; under handoff_lock. */
bool
op_pending(int slot)
{
	ListCell   *lc;

	foreach(lc, ops)
		if (((Op *) lfirst(lc))->slot == slot)
			return true;
	return false;
}

void
remember_op(bool answer, int slot, const pg_uuid_t *id, struct varlena *data,
			bool failed, bool in_table)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	Op		   *op = palloc(sizeof(Op));

	op->answer = answer;
	op->slot = slot;
	op->id = *id;
	op->subid = GetCurrentSubTransactionId();
	op->data = data == NULL ? NULL : (struct varlena *) pg_detoast_datum_copy(data);
	op->failed = failed;
	op->in_table = in_table;
	ops = lappend(ops, op);
	MemoryContextSwitchTo(old);
}

/* syrpc is preloaded with slots: called from _PG_init. */
void
handoff_init(bool preloaded)
{
	if (!preloaded || syrpc_memory_payload_kb == 0)
		return;
	payload_max = Max((Size) syrpc_memory_payload_kb * 1024,
					  SYRPC_REASON_MAX + VARHDRSZ);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = handoff_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = handoff_shmem_startup;
	RegisterXactCallback(handoff_xact_callback, NULL);
	RegisterSubXactCallback(handoff_subxact_callback, NULL);
}

/* May syrpc_call try memory at all (the put checks the size and the slot)? */
bool
handoff_usable(void)
{
	return handoff != NULL && syrpc_memory_calls && me() < handoff->nslots;
}

/* May the caller's slot take a new call: can no worker write into it any more? */
static bool
reusable(Slot *s, TimestampTz now)
{
	switch (s->state)
	{
		case HO_FREE:
			return true;
		case HO_SPILLED:
			return s->answerer == NOBODY;	/* an answer to drop, at its end */
		case HO_WITHDRAWN:
			return s->answerer == NOBODY &&
				(s->holder == NOBODY || now >= s->lease_end);
		default:
			return false;
	}
}

/*
 * Put a request in the caller's slot, if it can go through memory (syrpc
 * preloaded, data small enough, the slot free); fills id and returns true
 * if it did.  One waiting worker of the app is woken at once.
 */
bool
handoff_put(text *app, text *type, Datum data, const SyrpcApp *settings,
			pg_uuid_t *id)
{
	struct varlena *v;
	Slot	   *s;
	TimestampTz now;
	char		app_name[NAMEDATALEN];
	char		type_name[NAMEDATALEN];

	if (!handoff_usable())
		return false;
	v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(data));
	if (VARSIZE_ANY(v) > (Size) syrpc_memory_payload_kb * 1024)
		return false;
	*id = *DatumGetUUIDP(DirectFunctionCall1(gen_random_uuid, (Datum) 0));
	/* its last 3 bytes say which slot it is in: an answer finds it at once */
	id->data[13] = (me() >> 16) & 0xff;
	id->data[14] = (me() >> 8) & 0xff;
	id->data[15] = me() & 0xff;
	hook_exit();
	text_to_cstring_buffer(app, app_name, sizeof(app_name));
	text_to_cstring_buffer(type, type_name, sizeof(type_name));
	s = slot_at(me());
	now = GetCurrentTimestamp();
	LWLockAcquire(handoff_lock, LW_EXCLUSIVE);
	if (!reusable(s, now))
	{
		LWLockRelease(handoff_lock);
		return false;
	}
	s->dbid = MyDatabaseId;
	s->id = *id;
	s->seq = handoff->next_seq++;
	s->holder = NOBODY;
	s->answerer = NOBODY;
	s->attempts = 0;
	s->max_attempts = settings->max_attempts;
	s->created_at = now;
	s->expires_at = now + settings->request_ttl_us;
	s->lease_us = settings->lease_us;
	s->lease_end = 0;
	s->failed = s->in_table = false;
	strlcpy(s->app, app_name, sizeof(s->app));
	strlcpy(s->type, type_name, sizeof(s->type));
	s->len = VARSIZE_ANY(v);
	memcpy(slot_data(s), v, s->len);
	calling = true;
	requeue(s);
	LWLockRelease(handoff_lock);
	return true;
}

/* The caller's call has ended with an error that it raises now. */
static void
call_over(Slot *s, SlotState to)
{
	set_state(s, to);
	calling = false;
	LWLockRelease(handoff_lock);
}

/*
 * Wait for the answer to the caller's request, as wait says.  Returns
 * HANDOFF_ANSWERED with the answer in result, HANDOFF_IN_TABLE when the
 * answer is a row of syrpc.result, or HANDOFF_TIMED_OUT with the slot
 * SPILLING: the caller must then write the request to the table
 * (handoff_spill) and say so (handoff_spilled).  Raises SY001 or SY002
 * as the table path would.
 */
HandoffEnd
handoff_wait(text *app, const SyrpcWait *wait, Datum *result)
{
	Slot	   *s = slot_at(me());
	char	   *buf = palloc(payload_max);

	for (;;)
	{
		TimestampTz now;
		TimestampTz until = 0;
		bool		timed_out;

		ResetLatch(MyLatch);
		now = GetCurrentTimestamp();
		timed_out = wait->deadline != 0 && now >= wait->deadline;
		LWLockAcquire(handoff_lock, LW_EXCLUSIVE);
		if (s->state == HO_LEASED && now >= s->lease_end)
			lease_over(s);
		switch (s->state)
		{
			case HO_ANSWERED:
				{
					bool		in_table = s->in_table;
					bool		failed = s->failed;
					TimestampTz created_at = s->created_at;

					/* the answer, or the reason it failed */
					memcpy(buf, slot_data(s), s->len);
					call_over(s, HO_FREE);
					if (in_table)
						return HANDOFF_IN_TABLE;
					if (failed)
						report_failed_by_worker(app, &s->id, (text *) buf);
					stats_latency(app, SYRPC_LAT_ROUND_TRIP, Max(now - created_at, 0));
					*result = PointerGetDatum(buf);
					return HANDOFF_ANSWERED;
				}
			case HO_FAILED:
				{
					int32		attempts = s->attempts;
					int32		max_attempts = s->max_attempts;

					call_over(s, HO_FREE);
					stats_count_now(app, SYRPC_STAT_FAILED, 1);
					report_call_failed(app, &s->id, attempts, max_attempts);
				}
				break;
			case HO_QUEUED:
				if (now >= s->expires_at)
				{
					call_over(s, HO_FREE);
					stats_count_now(app, SYRPC_STAT_EXPIRED, 1);
					report_call_expired(app, &s->id);
				}

				/*
				 * A claim does not wake the caller (one latch less per
				 * call): look again a lease_time from now, when a lease
				 * taken meanwhile can end at the earliest.
				 */
				until = Min(s->expires_at, now + s->lease_us);
				break;
			case HO_LEASED:
				until = s->lease_end;
				break;
			case HO_ANSWERING:
				break;
			default:
				LWLockRelease(handoff_lock);
				elog(ERROR, "syrpc: in-memory call in unexpected state %d", (int) s->state);
		}
		if (timed_out && !(s->state == HO_ANSWERING && s->in_table))
		{
			/*
			 * An answer still in its worker's open transaction is dropped
			 * when that commits (a commit callback cannot write it to the
			 * table): its row is ready at once, to be run again.  The
			 * caller's timeout is honoured, whatever the worker does;
			 * except for an answer too large for the slot, which its
			 * transaction writes as a result row: the caller waits for
			 * that transaction, or one result_id would get two results.
			 */
			set_state(s, HO_SPILLING);
			LWLockRelease(handoff_lock);
			return HANDOFF_TIMED_OUT;
		}
		LWLockRelease(handoff_lock);
		(void) sleep_until(wait, until);
	}
}

/*
 * Write the caller's timed-out request to syrpc.request, as it stands:
 * queued, or leased to its holder until its lease ends, with its attempts.
 * Inside an SPI connection, as the owner.
 */
void
handoff_spill(text *app)
{
	Slot	   *s = slot_at(me());
	SyrpcSpill	sp;

	/*
	 * SPILLING: only a claim rolled back (its attempt taken back, its
	 * lease gone), a holder's exit or an answerer's end may still change
	 * it.  The row is leased until the lease ends if someone holds it and
	 * has not answered (its late answer takes the table path); an answer
	 * in an open transaction will be dropped, so the row is ready now.
	 */
	LWLockAcquire(handoff_lock, LW_SHARED);
	Assert(s->state == HO_SPILLING);
	sp.attempts = s->attempts;
	sp.ready_at = s->holder != NOBODY && s->answerer == NOBODY ? s->lease_end : 0;
	LWLockRelease(handoff_lock);
	if (sp.ready_at == 0)
		sp.ready_at = GetCurrentTimestamp();
	sp.id = s->id;
	sp.type = cstring_to_text(s->type);
	sp.data = PointerGetDatum(memcpy(palloc(s->len), slot_data(s), s->len));
	sp.created_at = s->created_at;
	sp.expires_at = s->expires_at;
	store_spill_request(app, &sp);
	/* a worker that became idle meanwhile looked at neither */
	wake_at_commit(SYRPC_WAIT_REQUEST, syrpc_app_key(app));
}

/* The spilled row has committed: late answers take the table path. */
void
handoff_spilled(void)
{
	Slot	   *s = slot_at(me());

	LWLockAcquire(handoff_lock, LW_EXCLUSIVE);
	if (s->state == HO_SPILLING)
		set_state(s, HO_SPILLED);
	calling = false;
	ConditionVariableBroadcast(&s->cv);
	LWLockRelease(handoff_lock);
}
