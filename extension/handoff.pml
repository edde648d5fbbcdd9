/*
 * handoff.pml: the design of issue #12's in-memory syrpc_call, as a model
 * checked by spin (test/model_test.sh) before any of it is written in C.
 *
 * A caller's request goes to a worker through a slot in shared memory,
 * and the answer comes back the same way, with no row, no xid and no WAL,
 * while both are alive; every way out (timeout, cancel, a worker that dies
 * or aborts, a lease that runs out, max_attempts) must keep today's
 * guarantees.  The slot's states, and who moves it (always under the
 * slot's lock, a spinlock: each atomic block below):
 *
 *   FREE       nobody's
 *   QUEUED     the caller put a request (gen numbers it); workers may claim
 *   LEASED     a worker claimed it (attempts counts), until its lease ends
 *   ANSWERING  a worker's syrpc_put_result took it, its transaction not yet
 *              ended: its commit makes it ANSWERED, its abort puts it back
 *   ANSWERED   the answer is in the slot; the caller takes it -> FREE
 *   SPILLING   the caller timed out and is writing the request to the
 *              table (queued, or leased to its holder until the lease ends)
 *   SPILLED    that row has committed, flushed and replicated; the slot is
 *              only a signpost: a late answer takes the table path
 *   WITHDRAWN  the caller was cancelled (or hit statement_timeout): nobody
 *              can ask for the result; a late answer is accepted, dropped
 *   FAILED     the last lease ran out at max_attempts: the caller gets SY001
 *
 *   caller:  FREE -> QUEUED (put, gen++); ANSWERED -> FREE (take);
 *            QUEUED/LEASED -> SPILLING -> SPILLED (timeout; waits while
 *            ANSWERING); QUEUED/LEASED -> WITHDRAWN (cancel; waits while
 *            ANSWERING); LEASED (lease over) -> QUEUED, or FAILED at
 *            max_attempts; FAILED -> FREE
 *   worker:  QUEUED -> LEASED (claim); LEASED -> QUEUED (its abort, or its
 *            backend exits); LEASED/QUEUED of its gen -> ANSWERING
 *            (put_result); ANSWERING -> ANSWERED (commit) or back (abort);
 *            SPILLING: its put_result waits; SPILLED: the table path;
 *            WITHDRAWN, or another gen: accepted and dropped
 *
 * The model: one caller making CALLS calls in turn through one slot, W
 * workers that may claim, answer, abort, or die, any lease that may run
 * out, and a caller that may time out or be cancelled at any moment.
 * What must hold: a caller ends each call with exactly one outcome (its
 * answer, a spilled request, SY001, or cancelled); an answer committed to
 * the slot reaches its caller unless the caller was cancelled; no answer
 * reaches the wrong call; a spilled request takes no answer in memory, and
 * a late answer to it finds its row in the table.
 *
 * Mutants that test/model_test.sh checks spin finds wrong: NO_ANSWERING
 * (put_result publishes at commit without holding the slot meanwhile, so a
 * timeout can spill under it), NO_GEN (a late answer is not checked
 * against the call it answers).
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
#define NONE 255

#ifdef NO_GEN
#define NO_GEN_TEST || true
#else
#define NO_GEN_TEST
#endif

mtype = { FREE, QUEUED, LEASED, ANSWERING, ANSWERED, SPILLING, SPILLED, WITHDRAWN, FAILED };

mtype state = FREE;
byte gen = 0;				/* the call the slot holds */
byte holder = NONE;			/* the worker whose lease runs */
byte answerer = NONE;		/* the worker in ANSWERING */
byte answer_gen = 0;		/* the call the slot's answer is for */
byte attempts = 0;
bool lease_over = false;	/* the running lease has ended */

/* What happened, per call (index gen - 1). */
byte committed[CALLS];		/* answers committed into the slot */
bool delivered[CALLS];		/* the caller got its answer */
bool outcome[CALLS];		/* the call ended (one outcome) */
bool cancelled[CALLS];
bool row[CALLS];			/* the request is in the table */
bool row_answered[CALLS];
byte calls_done = 0;

/* One call: put, then wait for one of the ways out. */
inline one_call()
{
	atomic { gen++; state = QUEUED; attempts = 0; holder = NONE; lease_over = false };
	do
	:: atomic { state == ANSWERED ->
			assert(answer_gen == gen);
			assert(!outcome[gen - 1]);
			delivered[gen - 1] = true; outcome[gen - 1] = true;
			state = FREE };
		break
	:: atomic { state == FAILED -> assert(!outcome[gen - 1]); outcome[gen - 1] = true; state = FREE };
		break
	:: atomic { state == LEASED && lease_over ->	/* the caller watches the lease */
			lease_over = false; holder = NONE;
			if
			:: attempts >= MAX_ATTEMPTS -> state = FAILED
			:: else -> state = QUEUED
			fi }
	:: atomic { (state == QUEUED || state == LEASED) -> state = SPILLING };	/* timeout */
		row[gen - 1] = true;	/* insert, commit, flush, replicate */
		atomic { assert(state == SPILLING); state = SPILLED; outcome[gen - 1] = true };
		break
	:: atomic { (state == QUEUED || state == LEASED) ->	/* cancel */
			state = WITHDRAWN; cancelled[gen - 1] = true; outcome[gen - 1] = true };
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

proctype worker(byte me)
{
	byte mygen;
	bool leased;

	do
	:: atomic { state == QUEUED && calls_done < CALLS ->
			state = LEASED; holder = me; attempts++; mygen = gen; lease_over = false };
		leased = true;
		do
		:: atomic { leased && holder == me && state == LEASED && !lease_over -> lease_over = true }
		:: break
		od;
		if
		:: atomic { state == LEASED && holder == me ->	/* it dies, or its transaction aborts */
				state = QUEUED; holder = NONE };
			break
		:: true ->	/* its put_result */
#ifdef NO_ANSWERING
			/* looks, then publishes at commit without holding the slot */
			if
			:: atomic { gen == mygen && (state == LEASED || state == QUEUED) };
				atomic { state = ANSWERED; answer_gen = mygen; committed[mygen - 1]++ }
			:: else -> skip
			fi
#else
			if
			:: atomic { (gen == mygen NO_GEN_TEST) && (state == LEASED || state == QUEUED) ->
					state = ANSWERING; answerer = me };
				if
				:: atomic { state = ANSWERED; answer_gen = mygen; committed[mygen - 1]++;
						answerer = NONE; holder = NONE }	/* commit */
				:: atomic { answerer = NONE;	/* abort */
						if
						:: holder != NONE -> state = LEASED
						:: else -> state = QUEUED
						fi }
				fi
			:: atomic { gen == mygen && state == SPILLING };	/* wait for the row */
				atomic { state != SPILLING };
				assert(row[mygen - 1]); row_answered[mygen - 1] = true
			:: atomic { gen == mygen && state == SPILLED ->
					assert(row[mygen - 1]); row_answered[mygen - 1] = true }
			:: atomic { gen != mygen || state == WITHDRAWN || state == FREE ||
						state == FAILED || state == ANSWERED || state == ANSWERING } /* dropped */
			fi
#endif
		fi
	:: calls_done >= CALLS -> break
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
	do
	:: c < CALLS ->
		assert(outcome[c]);
		/* an answer committed to the slot reached its caller, unless cancelled */
		assert(committed[c] == 0 || delivered[c] || cancelled[c]);
		/* a spilled request took no answer in memory */
		assert(!(row[c] && committed[c] > 0));
		c++
	:: else -> break
	od
}
