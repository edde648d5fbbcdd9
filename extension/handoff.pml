/*
 * handoff.pml: issue #12's in-memory syrpc_call (handoff.c), as a model
 * checked by spin (test/model_test.sh).
 *
 * A caller's request goes to a worker through the caller's slot in shared
 * memory, and the answer comes back the same way, with no row, no xid and
 * no WAL, while both are alive; every way out (timeout, cancel, a worker
 * that dies or aborts, a lease that runs out, max_attempts) must keep
 * today's guarantees.  One LWLock, "syrpc handoff", covers every slot: each
 * atomic block below is one hold of it.  A slot's fields: state; gen (the
 * call's result_id); holder (the worker whose lease runs, or NONE);
 * answerer (the worker whose answering transaction is open, or NONE);
 * attempts; answer_gen (the call the answer in the slot is for).  States:
 *
 *   FREE       nobody's
 *   QUEUED     the caller put a request (gen numbers it); workers may claim
 *   LEASED     a worker claimed it (attempts counts), until its lease ends
 *   ANSWERING  a worker's put_result took it, its transaction not yet
 *              ended: its commit makes it ANSWERED, its abort puts it back
 *   ANSWERED   the answer is in the slot; the caller takes it -> FREE
 *   SPILLING   the caller timed out and is writing the request to the
 *              table (queued, or leased to its holder until the lease ends)
 *   SPILLED    that row has committed; the slot is only a signpost: a late
 *              answer takes the table path
 *   WITHDRAWN  the caller was cancelled (its abort callback, or its backend
 *              exiting): nobody can ask for the result; a late answer is
 *              accepted and dropped
 *   FAILED     the last lease ran out at max_attempts: the caller gets SY001
 *
 *   caller:  put (FREE, or SPILLED or WITHDRAWN with no answerer (and
 *            for WITHDRAWN no running lease) -> QUEUED, gen++; otherwise
 *            the table path); ANSWERED -> FREE (take); FAILED -> FREE;
 *            LEASED with its lease over -> QUEUED, or FAILED at
 *            max_attempts; timeout: QUEUED/LEASED/ANSWERING -> SPILLING,
 *            the row commits, -> SPILLED (an answer in an open transaction
 *            is dropped at its end, and its row run again; once the row
 *            committed, nothing stops it reaching SPILLED); cancel: QUEUED/LEASED/ANSWERING/
 *            ANSWERED/FAILED, or SPILLING before its row committed ->
 *            WITHDRAWN, not waiting for an answerer (whose end clears it)
 *   worker:  claim: QUEUED -> LEASED (holder, attempts++); the claim's
 *            abort: held by it, same gen -> holder cleared, attempts--, and
 *            QUEUED if it was LEASED;
 *            put_result, by gen: another gen or SPILLED -> the table path;
 *            QUEUED (attempts > 0)/LEASED -> ANSWERING (answerer); its
 *            commit -> ANSWERED (if still ANSWERING; else dropped), its
 *            abort -> LEASED if a holder is left,
 *            else QUEUED, or FAILED at max_attempts; ANSWERING by another,
 *            or SPILLING: it waits (not holding the lock), then decides
 *            again; WITHDRAWN: dropped; FAILED/ANSWERED/FREE:
 *            "already answered"; QUEUED with no attempt: "not claimed";
 *            its backend's exit: LEASED by it -> QUEUED, or FAILED at
 *            max_attempts; ANSWERING by it -> as its abort; else its
 *            holder, if it is, is cleared;
 *            (1.7, handoff_worker.c handoff_lease, not transactional)
 *            only for its gen, LEASED, held by it, at the attempt it
 *            names if it names one (85300be; -DATTEMPT: the attempts its
 *            claim got), its lease not run out, and claimed in a
 *            transaction that has ended (not op_pending):
 *            extend: the lease ends later; release (as of 9ae7cdd):
 *            attempts--, holder cleared (nobody's: it cannot be extended
 *            or released again), and either QUEUED at once, or after a
 *            delay (LEASED with no holder, the lease now ending then,
 *            when the caller queues it again, or fails it); otherwise
 *            refused (SY004, SY007)
 *   time:    any running lease may run out (a release's delay too: a
 *            LEASED slot with no holder)
 *
 * The model: one caller making CALLS calls in turn through its slot, W
 * workers that may claim, abort, answer (again after an abort), commit, or
 * exit (and come back as a new backend with the same number), extend the
 * lease they hold or release it (RELEASES that succeed, in all), a lease
 * that may run out at any moment, and a caller that may time out or be
 * cancelled at any moment.  What must hold: a caller ends each call with
 * exactly one outcome (its answer, spilled, SY001, or cancelled); an answer
 * committed to the slot reaches its caller unless the call was cancelled;
 * no answer reaches the wrong call; a spilled call takes no answer in
 * memory, and a late answer to it finds its row in the table (a late
 * answer is dropped only for a call with no row); the slot is never reused
 * while an answerer is set; the call's attempts are its claims that
 * count (not rolled back while held, not released: each one counted off
 * once), never more than max_attempts; a worker whose extension or
 * release succeeds holds the call's lease: its own claim, not handed back,
 * its lease not run out; nothing is left waiting, and no answerer is left
 * set, when nothing can move.  (Before 1.7 the attempts property was
 * "no call is claimed more than max_attempts times": a release takes its
 * attempt back, so now it is the claims that count.)
 *
 * Easy to miss, and each found wrong by spin without it: a cancel in
 * ANSWERED or FAILED withdraws too (or the slot is never put to again); an
 * answering abort that leaves no holder fails the call at max_attempts (or
 * a call can be claimed again and again); the abort callback never
 * withdraws a SPILLING slot whose row has committed (or that row is run
 * again from the table while the in-memory answer to it is dropped).
 *
 * Mutants that test/model_test.sh checks spin finds wrong: NO_ANSWERING
 * (put_result publishes at commit without holding the slot meanwhile, so a
 * timeout can spill under it), NO_GEN (a late answer is not checked
 * against the call it answers), NO_REUSE_CHECK (the caller reuses a
 * WITHDRAWN slot while an answerer is still set), EXTEND_OTHERS
 * (handoff_lease without its holder test: a worker whose lease ran out,
 * the call claimed by another since, is told it extended its lease),
 * and, with -DAGAIN -DRELEASES=2, RELEASE_KEEPS_HOLDER (a release with a
 * delay leaves its worker the holder, as before 9ae7cdd: its retry during
 * the delay, naming no attempt, finds the slot LEASED, held by it, its
 * lease running, and takes an attempt back a second time: attempts 1 -> 0
 * -> -1, and at max_attempts 2 the call is then claimed three more times
 * before it fails).
 *
 * Found wrong in the C of 85300be, mended by 9ae7cdd, and run now: that
 * second release (-DAGAIN -DRELEASES=2, naming the attempt or not).  No
 * configuration finds the C of 9ae7cdd wrong, nor of 08ad56d (which changed
 * the marks only: handoff.c and handoff_worker.c as modelled).  And spin
 * finds no error any more in -DRELEASE_OPEN_CLAIM (handoff_lease without
 * its op_pending test), so it is no mutant now: a release in the claim's
 * own transaction leaves no holder, and the claim's rollback (end_ops: only
 * a slot it still holds) no longer takes the attempt back a second time,
 * which is the reason handoff_worker.c still gives for the test (an
 * extension's rollback was harmless already).
 */

#ifndef W
#define W 2
#endif
#ifndef CALLS
#define CALLS 2
#endif
#ifndef MAX_ATTEMPTS
#define MAX_ATTEMPTS 2
#endif
#ifndef RELEASES
#define RELEASES 1	/* syrpc_release calls that succeed, in all */
#endif
#define NONE 255

#ifdef NO_GEN
#define MINE true
#else
#define MINE (gen == mygen)
#endif
#ifdef NO_REUSE_CHECK
#define NO_ANSWERER true
#else
#define NO_ANSWERER (answerer == NONE)
#endif

mtype = { FREE, QUEUED, LEASED, ANSWERING, ANSWERED, SPILLING, SPILLED, WITHDRAWN, FAILED };

mtype state = FREE;
byte gen = 0;				/* the call the slot holds */
byte holder = NONE;			/* the worker whose lease runs */
byte answerer = NONE;		/* the worker whose answering transaction is open */
byte answer_gen = 0;		/* the call the slot's answer is for */
byte attempts = 0;
bool lease_over = false;	/* the holder's lease has ended */
byte counted = 0;			/* the claims of the call that count: not rolled back, not released */
bool lost[W];				/* the worker's last lease ran out */
byte releases = 0;

/* What happened, per call (index gen - 1). */
byte committed[CALLS];		/* answers committed into the slot */
bool outcome[CALLS];		/* the call ended (one outcome, below) */
bool delivered[CALLS];
bool spilled[CALLS];
bool failed[CALLS];
bool cancelled[CALLS];
bool row[CALLS];			/* the request's row has committed */
byte calls_done = 0;

#define END(what) assert(!outcome[gen - 1]); outcome[gen - 1] = true; what[gen - 1] = true

/* After the lease ended (seen by the caller) or its holder exited. */
#define REQUEUE holder = NONE; if :: attempts >= MAX_ATTEMPTS -> state = FAILED :: else -> state = QUEUED fi

/* The answering transaction's abort. */
#define ANSWER_ABORT assert(gen == mygen); answerer = NONE; \
	if :: holder != NONE -> state = LEASED :: else -> REQUEUE fi

/* One call: put, then wait for one of the ways out. */
inline one_call()
{
	atomic { (state == FREE || (state == SPILLED && NO_ANSWERER) ||
			  (state == WITHDRAWN && NO_ANSWERER && (holder == NONE || lease_over))) ->
		assert(answerer == NONE);	/* never reused under an answerer */
		gen++; state = QUEUED; attempts = 0; counted = 0; holder = NONE; lease_over = false };
	do
	:: atomic { state == ANSWERED ->
			assert(answer_gen == gen); END(delivered); state = FREE };
		break
	:: atomic { state == FAILED -> END(failed); state = FREE };
		break
	:: atomic { state == LEASED && lease_over -> REQUEUE }
	:: atomic { (state == QUEUED || state == LEASED || state == ANSWERING) ->	/* timeout */
			state = SPILLING };	/* an answer in an open transaction is then dropped */
		if
		:: row[gen - 1] = true;	/* insert, commit, flush, replicate */
			atomic { assert(state == SPILLING); state = SPILLED; END(spilled) }
		:: atomic { assert(state == SPILLING); state = WITHDRAWN; END(cancelled) }	/* cancelled first */
		fi;
		break
	:: atomic { (state == QUEUED || state == LEASED || state == ANSWERING ||
				 state == ANSWERED || state == FAILED) ->	/* cancel */
			state = WITHDRAWN; END(cancelled) };
		break
	od
}

active proctype caller()
{
	do
	:: calls_done < CALLS -> one_call(); calls_done++
	:: else -> break
	od
}

active proctype lease()
{
end:
	do
	:: atomic { (holder != NONE || state == LEASED) && !lease_over ->	/* LEASED with no holder: a release's delay */
			lease_over = true;
			if :: holder != NONE -> lost[holder] = true :: else fi }
	od
}

/* handoff_lease's test: its own running lease, claimed in a committed transaction. */
#ifdef EXTEND_OTHERS
#define HOLDER_OK true
#else
#define HOLDER_OK (holder == me)
#endif
#ifdef RELEASE_OPEN_CLAIM
#define CLAIM_OK true
#else
#define CLAIM_OK (!open)
#endif
/* The attempt the worker names (-DATTEMPT: the one its claim got; else none, 0). */
#ifdef ATTEMPT
#define ATTEMPT_OK (attempts == myatt)
#else
#define ATTEMPT_OK true
#endif
#define LEASE_OK (gen == mygen && state == LEASED && HOLDER_OK && ATTEMPT_OK && !lease_over && CLAIM_OK)
/* Who calls syrpc_release: a worker that holds the request (-DAGAIN: also after its release). */
#ifdef AGAIN
#define MAY_RELEASE (held || released)
#else
#define MAY_RELEASE held
#endif

proctype worker(byte me)
{
	byte mygen;
	byte myatt;		/* the attempt its claim got */
	bool answering;
	bool open;		/* its claim's transaction has not ended */
	bool held;		/* it holds the call's lease, as far as it knows: claimed, not released */
	bool released;

end:
	do
	:: atomic { state == QUEUED ->
			state = LEASED; holder = me; attempts++; counted++; mygen = gen; lease_over = false;
			myatt = attempts;
			lost[me] = false; open = true; held = true;
			assert(attempts <= MAX_ATTEMPTS && attempts == counted) };
		do
		:: atomic { open && holder == me && gen == mygen ->	/* the claim aborts, whatever became of the slot */
				holder = NONE; attempts--;
				if :: held -> counted-- :: else fi;	/* a released claim counted no more already */
				assert(attempts == counted);
				if
				:: state == LEASED -> state = QUEUED
				:: else
				fi };
			break
		:: open -> open = false	/* the claim commits: the lease is its backend's */
		:: atomic { held && LEASE_OK ->	/* syrpc_extend_lease: the lease ends later */
				assert(!lost[me]) }	/* its own lease, still running */
		:: atomic { MAY_RELEASE && LEASE_OK && releases < RELEASES ->	/* syrpc_release: its attempt taken back */
				releases++; attempts--;
				if :: held -> counted-- :: else fi;	/* each claim's attempt counted off once */
				assert(attempts == counted);
				assert(held && !lost[me]);	/* its own lease, still running */
				held = false; released = true;
#ifndef RELEASE_KEEPS_HOLDER
				holder = NONE;	/* nobody's: not to be extended or released again */
#endif
				if
				:: holder = NONE; state = QUEUED	/* no delay: queued again at once */
				:: true	/* after a delay: LEASED, the lease (nobody's) now ends then */
				fi }
		:: atomic { !open ->	/* its backend exits */
				if
				:: state == LEASED && holder == me -> REQUEUE
				:: else -> if :: holder == me -> holder = NONE :: else fi
				fi };
			break
		:: !open ->	/* put_result, in a transaction of its own */
#ifdef NO_ANSWERING
			/* looks, then publishes at commit without holding the slot */
			if
			:: atomic { gen == mygen && (state == LEASED || state == QUEUED) };
				atomic { state = ANSWERED; answer_gen = mygen; committed[mygen - 1]++ }
			:: else
			fi;
			break
#else
			answering = false;
			atomic {
				if
				:: !MINE && row[mygen - 1]	/* the slot reused: the table path */
				:: !MINE && !row[mygen - 1] ->	/* "not in flight" */
					assert(outcome[mygen - 1] && !spilled[mygen - 1])
				:: MINE && (state == LEASED || (state == QUEUED && attempts > 0)) ->
					state = ANSWERING; answerer = me; answering = true
				:: MINE && state == QUEUED && attempts == 0 ->	/* "not claimed" */
					assert(released)	/* it released the only claim */
				:: MINE && state == SPILLED -> assert(row[mygen - 1])	/* the table path */
				:: MINE && state == WITHDRAWN ->	/* accepted, dropped */
					assert(!row[mygen - 1]);
					if :: holder == me -> holder = NONE :: else fi
				:: MINE && (state == FAILED || state == ANSWERED || state == FREE) ->
					assert(!row[mygen - 1])	/* "already answered" */
				fi	/* ANSWERING by another, or SPILLING: waits, decides again */
			};
			if
			:: answering ->
				if
				:: atomic { assert(answerer == me && gen == mygen);	/* commit */
						if
						:: state == ANSWERING -> state = ANSWERED; answer_gen = mygen;
							committed[mygen - 1]++; holder = NONE; answerer = NONE
						:: else -> assert(state == WITHDRAWN || state == SPILLING || state == SPILLED);
							answerer = NONE	/* dropped: a spilled row is run again */
						fi };
					break
				:: atomic { assert(answerer == me);	/* abort */
						if
						:: state == ANSWERING -> ANSWER_ABORT
						:: else -> assert(state == WITHDRAWN || state == SPILLING || state == SPILLED);
							answerer = NONE
						fi }	/* then again, or not */
				:: atomic { assert(answerer == me);	/* its backend exits */
						if
						:: state == ANSWERING -> ANSWER_ABORT
						:: else -> assert(state == WITHDRAWN || state == SPILLING || state == SPILLED);
							answerer = NONE;
							if :: holder == me -> holder = NONE :: else fi
						fi };
					break
				fi
			:: else -> break
			fi
#endif
		:: !open -> break	/* gives up: its lease runs out */
		od;
		atomic { open = false; held = false; released = false }
	od
}

init
{
	byte i = 0;

	atomic {
		do
		:: i < W -> run worker(i); i++
		:: else -> break
		od
	}
}

/* When nothing can move: every call ended once, and nothing went astray. */
active proctype check()
{
	byte c = 0;

	timeout ->
	assert(calls_done == CALLS);
	assert(answerer == NONE);
	do
	:: c < CALLS ->
		assert(outcome[c]);
		assert(delivered[c] + spilled[c] + failed[c] + cancelled[c] == 1);
		/* an answer committed to the slot reached its caller, unless cancelled */
		assert(committed[c] == 0 || delivered[c] || cancelled[c]);
		/* a spilled request took no answer in memory */
		assert(!(spilled[c] && committed[c] > 0));
		c++
	:: else -> break
	od
}
