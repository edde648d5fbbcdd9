/*
 * waiters.pml: a model of how a put picks the worker it wakes (wakeup.c,
 * waiters_shmem.c, waiters_lockmgr.c), checked by spin for every
 * interleaving (test/model_test.sh).
 *
 * W workers serve in a loop as wait_for_request does: register, then per
 * look reset the latch and rearm (clear the pick flag), look at the table
 * (claim a queued request if there is one), else sleep until the latch is
 * set.  A worker that stops waiting unregisters and, if a put picked it
 * since its last look, passes the wake-up on (pass_on_wake).  P puts
 * commit one request each (the row becomes visible), then wake one worker:
 * they walk the registered workers in order and pick the first whose flag
 * they can set from 0 to 1 (the registry: compare-and-swap per slot under
 * a shared lock, so two puts walk at once), or, built with -DLOCKMGR,
 * whose latch is not set yet (the lock manager: the latch is the flag, and
 * a pick lock makes each walk one step).
 *
 * What must hold: when nothing can move any more (every put done, every
 * worker asleep or gone into a long handler), no request is queued while a
 * worker sleeps: a request is never left waiting for a worker's next look
 * while another worker is idle.
 *
 * With -DEPOCH, the table epoch of the shared-memory registry (rpc.c,
 * claim_from_table): a put bumps the epoch of its key after its commit is
 * visible and before it wakes; a worker reads the epoch (after its rearm)
 * before it looks, remembers it when the look finds nothing, and skips
 * the look while the epoch is still that one.  Its mutants: NO_BUMP (a
 * put that does not bump), EPOCH_LATE (the epoch read after the look).
 *
 * States of a worker's slot: unlinked (not waiting); linked with woken 0
 * (waiting, not picked since its last look); linked with woken 1 (picked:
 * its latch is set or about to be).  Transitions: register (unlinked ->
 * linked, woken 0), rearm (woken -> 0, by the worker, before each look), a
 * put's pick (woken 0 -> 1, by CAS), unregister (linked -> unlinked, by
 * the worker, then it reads woken to decide on passing the wake-up on).
 */

#ifndef W
#define W 2
#endif
#ifndef P
#define P 3
#endif

byte queued = 0;			/* committed requests not yet claimed */
byte done = 0;				/* puts that have committed and woken */
bool linked[W];
bool woken[W];
bool latch[W];
bool asleep[W];
byte nasleep = 0;			/* workers in the sleep */
byte epoch = 1;				/* the table epoch (-DEPOCH) */

/* Pick one registered worker and set its latch; the caller is the put. */
/*
 * The mutants, which test/model_test.sh checks spin finds wrong: NO_CAS
 * (the flag is read, then set: two puts can pick one worker), NO_PICK_LOCK
 * (the lock manager's walk without its lock), NO_PASS_ON (a worker that
 * stops waiting keeps the wake-up it was picked for).
 */
#if defined(NO_CAS) || defined(NO_PICK_LOCK)
#define PICK_STEP
#else
#define PICK_STEP atomic
#endif

inline wake_one(i, picked, seen)
{
	i = 0;
	picked = false;
	do
	:: i < W && !picked ->
#ifdef LOCKMGR
		PICK_STEP {
			seen = linked[i] && !latch[i];
			if
			:: seen -> latch[i] = true; picked = true
			:: else -> skip
			fi
		}
#else
		PICK_STEP {
			seen = linked[i] && !woken[i];
			if
			:: seen -> woken[i] = true; picked = true
			:: else -> skip
			fi
		}
		if
		:: picked -> latch[i] = true
		:: else -> skip
		fi;
#endif
		i++
	:: else -> break
	od
}

proctype put()
{
	byte i;
	bool picked;
	bool seen;

	atomic { queued++ };	/* the commit: the row is visible */
#if defined(EPOCH) && !defined(NO_BUMP)
	atomic { epoch++ };		/* the commit callback: table_changed ... */
#endif
	wake_one(i, picked, seen);	/* ... then the wake */
	atomic { done++ }
}

proctype worker(byte me)
{
	bool claimed;
	bool was_picked;
	byte e;
	byte empty_epoch = 0;
	byte i;
	bool picked;
	bool seen;

	do
	::
		/* register before the first look */
		atomic { linked[me] = true; woken[me] = false };
		claimed = false;
		do
		::
			latch[me] = false;		/* ResetLatch */
			woken[me] = false;		/* rearm */
#ifndef EPOCH
			atomic {				/* the claim: SKIP LOCKED */
				if
				:: queued > 0 -> queued--; claimed = true
				:: else -> skip
				fi
			}
#else
#ifndef EPOCH_LATE
			e = epoch;				/* read before the look */
#endif
			atomic {
				if
				:: e != 0 && e == empty_epoch -> skip	/* nothing can have changed */
				:: else ->			/* the claim: SKIP LOCKED */
					if
					:: queued > 0 -> queued--; claimed = true; empty_epoch = 0
					:: else -> empty_epoch = e
					fi
				fi
			}
#ifdef EPOCH_LATE
			e = epoch;
			if :: !claimed -> empty_epoch = e :: else fi;
#endif
#endif
			if
			:: claimed -> break
			:: else -> skip
			fi;
			atomic { asleep[me] = true; nasleep++ };
end_sleep:	(latch[me]);			/* the sleep (asleep here at the end is fine) */
			atomic { asleep[me] = false; nasleep-- }
		od;
		/* stop waiting: unregister, then pass a pick on */
		atomic { linked[me] = false };
#ifdef LOCKMGR
		was_picked = latch[me];
#else
		was_picked = woken[me];
#endif
#ifndef NO_PASS_ON
		if
		:: was_picked -> wake_one(i, picked, seen)
		:: else -> skip
		fi;
#endif
		/* handle the request and wait again, or take so long that it
		 * never comes back within the model */
		if
		:: true -> skip
		:: true -> break
		fi
	od
}

init
{
	byte i;

	atomic {
		i = 0;
		do
		:: i < W -> run worker(i); i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < P -> run put(); i++
		:: else -> break
		od
	}
}

/* When nothing else can move: every put done, and no request left behind. */
active proctype check()
{
	timeout -> assert(done == P && (queued == 0 || nasleep == 0))
}
