/*-------------------------------------------------------------------------
 *
 * handoff_worker.c
 *	  The worker's side of the in-memory hand-off (handoff.c): claiming an
 *	  in-memory request, answering or failing one, and what monitoring
 *	  sees of them.  Every transition is one hold of handoff_lock; the
 *	  states and who moves them are at the top of handoff.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"

#include "handoff.h"

/* The oldest queued slot of app in this database, or NOBODY; under handoff_lock. */
static int
oldest_queued(const char *app, TimestampTz now)
{
	for (int i = handoff->qhead; i != NOBODY; i = slot_at(i)->qnext)
	{
		Slot	   *s = slot_at(i);

		if (s->dbid == MyDatabaseId && now < s->expires_at && strcmp(s->app, app) == 0)
			return i;
	}
	return NOBODY;
}

/*
 * Claim the oldest in-memory request of app, under a lease; fills claim
 * (in memory that outlives SPI) and returns true if it did.
 *
 * The lease is the app's lease_time as its caller read it: the worker may
 * not see the app yet, when the call that created it has not committed.
 */
bool
handoff_claim(text *app, TimestampTz now, SyrpcClaim *claim)
{
	char		name[NAMEDATALEN];
	char		type[NAMEDATALEN];
	char	   *buf;
	int			best = NOBODY;
	Slot	   *s;
	pg_uuid_t  *id;

	if (handoff == NULL)
		return false;

	/*
	 * The waiter cleared its woken flag (waiter_rearm) just before this
	 * look: that store must not pass the load of queued, or a put could
	 * find the flag still set (and wake nobody) while this look still sees
	 * nothing queued.  Taking the lock would order them; the fast path
	 * needs the barrier.
	 */
	pg_memory_barrier();
	if (pg_atomic_read_u32(&handoff->queued) == 0)
		return false;
	text_to_cstring_buffer(app, name, sizeof(name));

	/*
	 * Queued slots of other apps or databases do not make this worker take
	 * the lock exclusively: a shared look first.
	 */
	LWLockAcquire(handoff_lock, LW_SHARED);
	best = oldest_queued(name, now);
	LWLockRelease(handoff_lock);
	if (best == NOBODY)
		return false;
	buf = SPI_palloc(payload_max);
	id = SPI_palloc(sizeof(pg_uuid_t));
	hook_exit();
	LWLockAcquire(handoff_lock, LW_EXCLUSIVE);
	if ((best = oldest_queued(name, now)) == NOBODY)
	{
		LWLockRelease(handoff_lock);
		pfree(buf);
		pfree(id);
		return false;
	}
	s = slot_at(best);
	s->attempts++;
	s->holder = me();
	s->lease_end = now + s->lease_us;
	s->claimed_at = now;
	set_state(s, HO_LEASED);
	memcpy(buf, slot_data(s), s->len);
	*id = s->id;
	strlcpy(type, s->type, sizeof(type));
	claim->attempts = s->attempts;
	claim->created_at = s->created_at;
	claim->expires_at = s->expires_at;
	/* its caller needs no wake-up: it looks at least once a lease_time */
	LWLockRelease(handoff_lock);

	remember_op(false, best, id, NULL, false, false);
	claim->data = PointerGetDatum(buf);
	claim->result_id = UUIDPGetDatum(id);
	claim->type = SPI_datumTransfer(CStringGetTextDatum(type), false, -1);
	return true;
}

/*
 * A worker answers request id of app with data (or fails it: data is the
 * reason).  HANDOFF_NOT_HERE: it is not in memory, take the table path;
 * HANDOFF_TAKEN: the answer goes to the caller when this transaction
 * commits; HANDOFF_TAKEN_IN_TABLE: the same, but the answer is too large
 * for a slot and the worker must store it as a result row;
 * (so also when in_table asks for it: a worker's error, 1.7);
 * HANDOFF_DROPPED: the caller has gone, the answer is accepted and
 * dropped; HANDOFF_REFUSED: *refused says why (report_not_in_flight).
 * *claimed_at: when it was claimed, for the service time.
 */
HandoffAnswer
handoff_answer(text *app, const pg_uuid_t *id, Datum data, bool failed,
			   bool in_table, SyrpcFinishState *refused, TimestampTz *claimed_at)
{
	char		name[NAMEDATALEN];
	struct varlena *v = (struct varlena *) DatumGetPointer(data);
	bool		sleeping = false;
	HandoffAnswer how = HANDOFF_NOT_HERE;

	if (handoff == NULL)
		return HANDOFF_NOT_HERE;
	in_table = !failed && (in_table || toast_raw_datum_size(data) > payload_max);
	text_to_cstring_buffer(app, name, sizeof(name));
	hook_exit();
	for (;;)
	{
		int			i = (id->data[13] << 16) | (id->data[14] << 8) | id->data[15];
		Slot	   *s = i < handoff->nslots ? slot_at(i) : NULL;
		bool		wait = false;

		LWLockAcquire(handoff_lock, LW_EXCLUSIVE);
		if (s == NULL || s->dbid != MyDatabaseId ||
			memcmp(&s->id, id, sizeof(pg_uuid_t)) != 0)
			how = HANDOFF_NOT_HERE;
		else if (strcmp(s->app, name) != 0)
		{
			how = HANDOFF_REFUSED;
			*refused = SYRPC_FIN_WRONG_APP;
		}
		else
			switch (s->state)
			{
				case HO_QUEUED:
					if (s->attempts == 0)
					{
						how = HANDOFF_REFUSED;
						*refused = SYRPC_FIN_NOT_CLAIMED;
						break;
					}
					/* FALLTHROUGH */
				case HO_LEASED:
					s->answerer = me();
					s->in_table = in_table;	/* its caller must wait for it, then */
					set_state(s, HO_ANSWERING);
					*claimed_at = s->claimed_at;
					how = in_table ? HANDOFF_TAKEN_IN_TABLE : HANDOFF_TAKEN;
					break;
				case HO_ANSWERING:
					if (s->answerer == me())
					{
						how = HANDOFF_REFUSED;
						*refused = SYRPC_FIN_ANSWERED;
					}
					else
						wait = true;	/* as on a row locked by the other answer */
					break;
				case HO_SPILLING:
					wait = true;
					break;
				case HO_SPILLED:
					how = HANDOFF_NOT_HERE;
					break;
				case HO_WITHDRAWN:
					if (s->holder == me())
						s->holder = NOBODY;
					how = HANDOFF_DROPPED;
					break;
				case HO_FAILED:
				case HO_ANSWERED:
				case HO_FREE:
					how = HANDOFF_REFUSED;
					*refused = s->failed ? SYRPC_FIN_FAILED : SYRPC_FIN_ANSWERED;
					break;
			}
		LWLockRelease(handoff_lock);
		if (!wait)
		{
			if (how == HANDOFF_TAKEN || how == HANDOFF_TAKEN_IN_TABLE)
				remember_op(true, i, id, in_table ? NULL : v, failed, in_table);
			break;
		}
		if (!sleeping)
			ConditionVariablePrepareToSleep(&s->cv);
		else
			ConditionVariableSleep(&s->cv, PG_WAIT_EXTENSION);
		sleeping = true;
	}
	if (sleeping)
		ConditionVariableCancelSleep();
	return how;
}

/* The slot of in-memory request id of this database, or NULL; under handoff_lock. */
static Slot *
slot_of(const pg_uuid_t *id)
{
	int			i = (id->data[13] << 16) | (id->data[14] << 8) | id->data[15];
	Slot	   *s = i < handoff->nslots ? slot_at(i) : NULL;

	if (s == NULL || s->dbid != MyDatabaseId || s->state == HO_SPILLED ||
		memcmp(&s->id, id, sizeof(pg_uuid_t)) != 0)
		return NULL;
	return s;
}

/*
 * A worker extends its lease (of attempt, or 0: any) of in-memory request
 * id to until, or (release) hands it back (1.7): the attempt is taken
 * back, as by a claim that rolls back, nobody holds the lease, and it ends
 * at until, when the request is queued again (at once if until has come).
 * Either takes effect at once, not at commit, and only for a claim that
 * has committed, so that what a rollback undoes is only ever a claim
 * (handoff.pml checks releases and rollbacks against each other).  *end:
 * the lease's end.
 */
HandoffLease
handoff_lease(text *app, const pg_uuid_t *id, int32 attempt, TimestampTz until,
			  bool release, TimestampTz *end)
{
	char		name[NAMEDATALEN];
	HandoffLease how;
	Slot	   *s;

	if (handoff == NULL)
		return HANDOFF_LEASE_NOT_HERE;
	text_to_cstring_buffer(app, name, sizeof(name));
	LWLockAcquire(handoff_lock, LW_EXCLUSIVE);
	s = slot_of(id);
	if (s == NULL)
		how = HANDOFF_LEASE_NOT_HERE;
	else if (strcmp(s->app, name) != 0)
		how = HANDOFF_LEASE_WRONG_APP;
	else if (s->state == HO_WITHDRAWN)
		how = HANDOFF_LEASE_WITHDRAWN;
	else if (s->state != HO_LEASED || s->holder != me() ||
			 (attempt != 0 && s->attempts != attempt) ||
			 GetCurrentTimestamp() >= s->lease_end)
		how = HANDOFF_LEASE_LOST;
	else if (op_pending(s - handoff->slots))
		how = HANDOFF_LEASE_OPEN;
	else
	{
		how = HANDOFF_LEASE_DONE;
		s->lease_end = until;
		if (release)
		{
			/* handed back: nobody's, so that it cannot be extended or released again */
			s->attempts--;
			s->holder = NOBODY;
			if (until <= GetCurrentTimestamp())
				requeue(s);
			wake_caller(s - handoff->slots);	/* it sleeps until the old end */
		}
		*end = s->lease_end;
	}
	LWLockRelease(handoff_lock);
	return how;
}

/*
 * Where in-memory request id of app stands (1.7): 0 its call is on (queued,
 * leased, being answered), 1 its caller has gone (cancelled, or its
 * session ended: an answer is dropped), 2 its call has ended (answered,
 * failed, taken), -1 not in memory.  Another app's raises SY005.
 */
int
handoff_withdrawn(text *app, const pg_uuid_t *id)
{
	char		name[NAMEDATALEN];
	int			r = -1;
	bool		wrong_app = false;
	Slot	   *s;

	if (handoff == NULL)
		return -1;
	text_to_cstring_buffer(app, name, sizeof(name));
	LWLockAcquire(handoff_lock, LW_SHARED);
	s = slot_of(id);
	if (s != NULL)
	{
		wrong_app = strcmp(s->app, name) != 0;
		r = s->state == HO_WITHDRAWN ? 1 :
			(s->state == HO_FREE || s->state == HO_ANSWERED || s->state == HO_FAILED) ? 2 : 0;
	}
	LWLockRelease(handoff_lock);
	if (wrong_app)
		report_wrong_app(app, id);
	return r;
}

/*
 * The in-memory requests of this database, per app: queued, and in flight
 * (leased or being answered), for syrpc_stats.
 */
List *
handoff_requests(void)
{
	List	   *apps = NIL;
	HandoffCount *counts;
	int			n = 0;

	if (handoff == NULL)
		return NIL;
	counts = palloc0(sizeof(HandoffCount) * handoff->nslots);
	LWLockAcquire(handoff_lock, LW_SHARED);
	for (int i = 0; i < handoff->nslots; i++)
	{
		Slot	   *s = slot_at(i);
		HandoffCount *c = NULL;
		bool		queued = s->state == HO_QUEUED;

		if (s->dbid != MyDatabaseId ||
			(!queued && s->state != HO_LEASED && s->state != HO_ANSWERING))
			continue;
		for (int j = 0; j < n && c == NULL; j++)
			if (strcmp(counts[j].app, s->app) == 0)
				c = &counts[j];
		if (c == NULL)
		{
			c = &counts[n++];
			strlcpy(c->app, s->app, sizeof(c->app));
		}
		if (queued)
		{
			c->queued++;
			if (c->oldest_queued == 0 || s->created_at < c->oldest_queued)
				c->oldest_queued = s->created_at;
		}
		else
			c->in_flight++;
	}
	LWLockRelease(handoff_lock);
	for (int j = 0; j < n; j++)
		apps = lappend(apps, &counts[j]);
	return apps;
}

/*
 * Call fn for every caller of this database waiting in memory, as a
 * waiter on its result.
 */
void
handoff_list(syrpc_waiter_fn fn, void *arg)
{
	int		   *pids;
	uint64	   *keys;
	int			n = 0;

	if (handoff == NULL)
		return;
	pids = palloc(sizeof(int) * handoff->nslots);
	keys = palloc(sizeof(uint64) * handoff->nslots);
	LWLockAcquire(handoff_lock, LW_SHARED);
	for (int i = 0; i < handoff->nslots; i++)
	{
		Slot	   *s = slot_at(i);

		if (s->dbid == MyDatabaseId &&
			(s->state == HO_QUEUED || s->state == HO_LEASED ||
			 s->state == HO_ANSWERING || s->state == HO_SPILLING))
		{
			pids[n] = GetPGProcByNumber(i)->pid;
			keys[n++] = syrpc_result_key(&s->id);
		}
	}
	LWLockRelease(handoff_lock);
	for (int j = 0; j < n; j++)
		fn(arg, pids[j], SYRPC_WAIT_RESULT, keys[j]);
	pfree(pids);
	pfree(keys);
}
