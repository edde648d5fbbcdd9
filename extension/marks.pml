/*
 * marks.pml: issue #13's claims in shared memory ("marks", marks.c), as a
 * model checked by spin (test/model_test.sh).
 *
 * A request is a row R of syrpc.request, keyed by result_id, with attempts
 * N.  Claimed the old way, by UPDATE (attempts + 1, ready_at moved to the
 * end of the lease), a claim costs an xid.  When the library is preloaded
 * and the worker's transaction is READ COMMITTED, a claim writes nothing
 * to the table: it puts a mark for R in a shared hash table keyed by
 * result_id, under the LWLock of R's partition.  Each atomic block below
 * that touches a mark is one hold of that lock; each one that reads or
 * writes the row is one statement (a read: a snapshot of what has
 * committed at that moment; a write: it takes R's row lock, and what it
 * wrote becomes visible when its transaction commits).
 *
 * A mark: holder (the backend whose open transaction made it, or NONE
 * once that transaction committed) and base (R's attempts when it was
 * made).  The states of R's mark:
 *
 *   none          no mark: R is claimable if its row is (visible, and not
 *                 leased in the table: ready_at <= now)
 *   PENDING(h,N)  made by backend h's open transaction: a claim in memory
 *                 between its steps 2 and 4, or a table claim's marker
 *   LEASED(N)     its claim committed (holder NONE): the lease runs, the
 *                 worker holds the work
 *   EXPIRED(N)    LEASED whose lease ran out (lease end <= now: a time,
 *                 not a stored state)
 *
 *   claim in memory, by backend h, per candidate R:
 *     1. S1, a statement's snapshot, reads R: visible (its deletion not
 *        committed), not leased in the table, attempts N
 *     2. lock: none -> PENDING(h,N); any other mark: skip R (EXPIRED: the
 *        table claim below instead); unlock
 *     3. S2, a NEW snapshot taken after step 2, reads R again: deleted, or
 *        attempts != N -> lock, PENDING(h,N) -> none (only if it is still
 *        h's), unlock, skip R.  Else h holds R (the claim succeeded)
 *     4. h's claim transaction ends: commit: PENDING(h,N) -> LEASED(N);
 *        abort: PENDING(h,N) -> none (R claimable again at once), h drops R
 *   answer (put_result) by the holder, in a transaction T (T may also be
 *     the claim's own transaction): DELETE R, waiting for R's row lock and
 *     finding nothing if R's deletion committed meanwhile ("already
 *     answered": T aborts); T commits (R's deletion visible to every later
 *     snapshot), THEN, in its commit callback (XACT_EVENT_COMMIT, which
 *     runs after ProcArrayEndTransaction: never at PRE_COMMIT), lock, R's
 *     mark, whatever it is -> none, unlock.  T's abort: the mark stays
 *     (the lease still runs; T the claim's own: the claim's abort, above),
 *     and the worker may answer again
 *   table claim (-DTABLE: a claim that writes its row, under REPEATABLE
 *     READ or with syrpc.memory_leases off): steps 1 and 2 as above (none ->
 *     PENDING(h,N), a marker that keeps claims in memory off R while the
 *     UPDATE is not visible); UPDATE R SET attempts = N + 1, ready_at =
 *     lease end WHERE ready_at <= now, FOR UPDATE SKIP LOCKED (a locked
 *     row, or one that no longer qualifies: PENDING(h,N) -> none, skip);
 *     h holds R; commit: the row's lease visible, then in the commit
 *     callback PENDING(h,N) -> none; abort: the UPDATE undone,
 *     PENDING(h,N) -> none
 *   table claim with no room for its marker (-DTABLE_FULL, instead of the
 *     one above; not what marks.c does, which then claims nothing, nor run
 *     by test/model_test.sh: the way it would have to be done): step 1; lock: a mark: skip R; unlock; the UPDATE as
 *     above; then lock, look again: a mark (added meanwhile): roll the
 *     UPDATE back (its subtransaction), skip R; else h holds R; unlock.
 *     And a claim in memory's S2 then also fails when R has a write of an
 *     open transaction (its xmax in progress: the table claim's UPDATE, or
 *     an answer's DELETE), since no marker shows that UPDATE
 *   lease expiry (-DEXPIRY): time: LEASED(N) -> EXPIRED(N), and a table
 *     lease runs out (ready_at <= now again).  Backend c at its step 2
 *     finds EXPIRED(N): materializes it: UPDATE R SET attempts = N + 2,
 *     ready_at = lease end WHERE attempts = N, FOR UPDATE SKIP LOCKED (the
 *     answerer's delete holds the row lock: skip; R deleted, or attempts
 *     != N: nothing, skip); c holds R; c's commit: the row's lease
 *     visible, then in the commit callback EXPIRED(N) -> none (only that
 *     mark); c's abort: the mark stays EXPIRED(N).  The expired holder may
 *     still be working and answer: at least once, not exactly once
 *
 * Why each step: the mark keeps a second claim in memory off R, which
 * writes nothing to the row; S2 is what catches a claimer whose S1 saw R
 * before the answer's deletion or a table claim's UPDATE committed, and
 * whose step 2 came after that transaction's callback removed its mark:
 * so S2 must be a snapshot taken after the mark is in, and every mark
 * that stands for an uncommitted change of R (the holder's own, an
 * answer's, a table claim's) must stay until that change is visible.
 * An answer's callback removes R's mark whatever it is (R is gone: any
 * mark left would be kept for ever; see CALLBACK_OWN_ONLY).  A worker's
 * removal of its own mark (step 3, its claim's end) removes it only if it
 * is still its own: with table claims or expiry, an answer's callback may
 * have removed it and another claim put its own (spin finds no harm in
 * step 3 removing by key either, but the check costs nothing).
 *
 * The model: P rows, W workers that loop: pick a candidate R (S1; a
 * worker that skipped R for a mark waits until R's mark is removed or
 * expires, the model's stand-in for its next look), claim it (steps 1-3,
 * or by UPDATE), end the claim (commit, abort, or answer inside it), then
 * answer in transactions that may abort and be tried again; with EXPIRY a
 * worker may also die holding R after its claim committed (DEATHS times),
 * and a running lease may run out while its holder lives (RACES times;
 * always, if its holder died).  What must hold: (a) when a worker's claim
 * of R succeeds (step 3, or its UPDATE), no other worker holds R (from its
 * claim's success to its answer's commit, its claim's abort, or its
 * "already answered"), unless that one's lease ran out (EXPIRY only); (b)
 * no claim of R succeeds after R's deletion committed; without expiry an
 * answer never finds R gone, and a worker's removal of its own mark always
 * finds it; (c) when nothing can move, every request was answered exactly
 * once (its deletion committed once) and every worker stopped; (d) no mark
 * and no row lock is left over.
 *
 * Mutants that test/model_test.sh checks spin finds wrong: NO_RECHECK
 * (step 3 skipped); RECHECK_OLD_SNAPSHOT (step 3 rereads S1's view, e.g.
 * SPI with read_only = true, which keeps the statement's snapshot: the
 * same as no recheck); SNAPSHOT_BEFORE_MARK (S2 taken between steps 1 and
 * 2); REMOVE_BEFORE_COMMIT (the answer removes the mark before its
 * deletion is visible, e.g. at XACT_EVENT_PRE_COMMIT); ANSWER_ABORT_REMOVES
 * (an answer's abort removes the mark while its worker still holds R);
 * CLAIM_ABORT_KEEPS (a claim's abort leaves its PENDING mark: R is never
 * claimed again); with -DTABLE, TABLE_IGNORES_MARKS (the UPDATE claim of
 * before marks, store.c's claim_in_row, which sees a row claimed in memory
 * as claimable: ready_at did not move); with -DTABLE_FULL, NO_CHECK_AFTER
 * (no look for a mark after the UPDATE) and NO_LOCK_RECHECK (S2 blind to
 * the UPDATE of an open transaction); with -DEXPIRY,
 * UPDATE_UNMARKS_EARLY (a materialization removes the mark when its UPDATE
 * is done, before it commits), NO_BASE_CHECK (its UPDATE does not
 * requalify the row by attempts = N, so a second materializer between the
 * first's commit and its callback claims R again) and CALLBACK_OWN_ONLY
 * (an answer's callback removes only a mark its own claim made: when a
 * table lease ran out while its holder's DELETE was open, a claim in
 * memory that saw R before that commit keeps its mark for a row that is
 * gone, for ever).
 *
 * The granularity: a statement's snapshot is one step; an abort's
 * rollback and its abort callback are one step (between the two, nothing
 * sees a difference but a mark still there); a commit and its commit
 * callback are two.
 */

#ifndef W
#define W 2
#endif
#ifndef P
#define P 2
#endif
#ifndef RACES
#define RACES 1		/* leases that run out while their holder lives */
#endif
#ifndef DEATHS
#define DEATHS 1	/* workers that die holding a request */
#endif
#define NONE 255
#ifdef TABLE_FULL
#define TABLE
#endif

/* What a worker's step 2 did. */
#define SKIPPED 0
#define MARKED 1		/* its PENDING mark in: a claim in memory */
#define TABLE_CLAIM 2	/* its PENDING mark in, as a marker: a claim by UPDATE */
#define MATERIALIZE 3	/* an EXPIRED mark found: a claim by UPDATE */

/* The table, as committed (what a new snapshot sees), and its row locks. */
bool deleted[P];		/* R's deletion committed */
byte att[P];			/* R's attempts */
byte tlease[P] = NONE;	/* whose lease in the table (ready_at > now) */
bool tl_over[P];		/* that lease ran out (ready_at <= now again) */
byte rowlock[P] = NONE;	/* the worker whose open transaction wrote R */

/* R's mark in shared memory. */
bool has_mark[P];
byte mholder[P] = NONE;	/* PENDING: its backend; NONE: LEASED or EXPIRED */
byte mbase[P];
bool mover[P];			/* EXPIRED */
byte mowner[P] = NONE;	/* who made it (not in the mark: for the checks) */

/* The model's own. */
byte skipped[P];		/* bit per worker: skipped R for its mark, waits */
byte hold[W] = NONE;	/* the request a worker holds */
bool lost[W];			/* its lease ran out */
bool abandoned[P];		/* R's running lease is a dead worker's */
byte answered[P];		/* R's deletion committed */
byte ndeleted = 0;
byte races = 0;
byte deaths = 0;

#define BIT (1 << me)
#define TL_FREE(x) (tlease[x] == NONE || tl_over[x])
#define CAND(x) (!deleted[x] && TL_FREE(x) && (skipped[x] & BIT) == 0)
#define MINE_PENDING(x) (has_mark[x] && mholder[x] == me)
#define MARK(x, b) has_mark[x] = true; mholder[x] = me; mbase[x] = b; mover[x] = false; mowner[x] = me
#define UNMARK(x) has_mark[x] = false; mholder[x] = NONE; mbase[x] = 0; mover[x] = false; \
	mowner[x] = NONE; skipped[x] = 0
#define DROP hold[me] = NONE; lost[me] = false

/* What holds when no lease runs out; and with claims in memory only. */
#ifdef EXPIRY
#define HELD_ALONE(c) skip
#else
#define HELD_ALONE(c) assert(c)
#endif
#if defined(EXPIRY) || defined(TABLE)
#define ONLY_MARKS(c) skip
#else
#define ONLY_MARKS(c) assert(c)
#endif

#ifdef NO_BASE_CHECK
#define BASE_QUAL true
#else
#define BASE_QUAL (att[r] == base)
#endif
/* The claim's UPDATE ... WHERE */
#define UPDATE_QUAL ((act == TABLE_CLAIM && TL_FREE(r)) || (act == MATERIALIZE && BASE_QUAL))
/* Its commit callback: its marker, or the EXPIRED mark it materialized. */
#define UNMARK_CLAIMED \
	if \
	:: (act == TABLE_CLAIM && MINE_PENDING(r)) || \
	   (act == MATERIALIZE && has_mark[r] && mholder[r] == NONE && mover[r] && mbase[r] == base) -> \
		UNMARK(r) \
	:: else \
	fi

/* put_result's DELETE: waits for R's row lock; finds nothing if R is gone. */
#define DELETE atomic { rowlock[r] == NONE -> \
	if \
	:: deleted[r] -> gone = true \
	:: else -> gone = false; rowlock[r] = me \
	fi }
/* Its transaction's commit: the deletion visible. */
#define COMMIT_DELETE atomic { assert(rowlock[r] == me && !deleted[r]); \
	deleted[r] = true; ndeleted++; answered[r]++; rowlock[r] = NONE; \
	tlease[r] = NONE; tl_over[r] = false; abandoned[r] = false; DROP }
/* Then its commit callback removes R's mark, whatever it is. */
#ifdef CALLBACK_OWN_ONLY
#define UNMARK_ANSWERED if :: has_mark[r] && mowner[r] == me -> UNMARK(r) :: else fi
#else
#define UNMARK_ANSWERED UNMARK(r)
#endif
#ifdef REMOVE_BEFORE_COMMIT
#define ANSWER_COMMIT atomic { UNMARK_ANSWERED }; COMMIT_DELETE
#else
#define ANSWER_COMMIT COMMIT_DELETE; atomic { UNMARK_ANSWERED }
#endif

/* A claim of R succeeds: (a) and (b). */
inline claimed()
{
	assert(!deleted[r]);
	i = 0;
	do
	:: i < W -> assert(i == me || hold[i] != r || lost[i]); i++
	:: else -> break
	od;
	i = 0;
	hold[me] = r; lost[me] = false
}

/* Step 1's candidate: one whose row S1 sees, and not skipped for its mark. */
inline pick()
{
	if
	:: CAND(0) -> r = 0
#if P > 1
	:: CAND(1) -> r = 1
#endif
#if P > 2
	:: CAND(2) -> r = 2
#endif
	fi
}

/* Answers, each in its own transaction, after the claim committed. */
inline answer()
{
	do
	:: DELETE;
		if
		:: gone -> atomic { HELD_ALONE(false); DROP }; break	/* "already answered" */
		:: else ->
			if
			:: ANSWER_COMMIT; break
			:: atomic { rowlock[r] = NONE	/* abort: the mark stays */
#ifdef ANSWER_ABORT_REMOVES
				; UNMARK(r)
#endif
				}	/* and again */
			fi
		fi
#ifdef EXPIRY
	:: atomic { deaths < DEATHS ->	/* its backend dies: the lease runs out alone */
			deaths++;
			if :: !lost[me] -> abandoned[r] = true :: else fi;
			DROP };
		break
#endif
	od
}

/* Steps 3 and 4 of a claim in memory, its PENDING mark in. */
inline mark_claim()
{
	atomic {
#if defined(NO_RECHECK)
		ok = true;
#elif defined(RECHECK_OLD_SNAPSHOT)
		ok = true;	/* S1 saw R visible with attempts n */
#elif defined(SNAPSHOT_BEFORE_MARK)
		ok = (!sdel && satt == n);
#elif defined(TABLE_FULL) && !defined(NO_LOCK_RECHECK)
		ok = (!deleted[r] && att[r] == n && rowlock[r] == NONE);	/* S2, and no open write */
#else
		ok = (!deleted[r] && att[r] == n);	/* S2 */
#endif
		if
		:: ok -> claimed()
		:: else
		fi
	};
	if
	:: !ok -> atomic { if :: MINE_PENDING(r) -> UNMARK(r) :: else -> ONLY_MARKS(false) fi }
	:: ok ->
		if
		:: atomic { true ->	/* the claim commits: LEASED */
				if :: MINE_PENDING(r) -> mholder[r] = NONE :: else -> HELD_ALONE(false) fi };
			answer()
		:: atomic { true ->	/* the claim aborts */
#ifndef CLAIM_ABORT_KEEPS
				if :: MINE_PENDING(r) -> UNMARK(r) :: else -> HELD_ALONE(false) fi;
#endif
				DROP }
		:: DELETE;	/* the answer in the claim's own transaction */
			if
			:: gone -> atomic { HELD_ALONE(false);	/* its error aborts the claim */
					if :: MINE_PENDING(r) -> UNMARK(r) :: else fi; DROP }
			:: else ->
				if
				:: ANSWER_COMMIT
				:: atomic { rowlock[r] = NONE;	/* the abort, of the claim too */
						if :: MINE_PENDING(r) -> UNMARK(r) :: else -> HELD_ALONE(false) fi; DROP }
				fi
			fi
		fi
	fi
}

/* A claim by UPDATE: a table claim (its marker in) or a materialization. */
inline table_claim()
{
	atomic {	/* UPDATE ... FOR UPDATE SKIP LOCKED */
		if
		:: rowlock[r] == NONE && !deleted[r] && UPDATE_QUAL ->
			rowlock[r] = me;
			newatt = att[r] + (act == MATERIALIZE -> 2 : 1);
#ifdef TABLE_FULL
			if :: act == MATERIALIZE -> claimed() :: else fi;	/* a table claim: below */
#else
			claimed();
#endif
			ok = true
		:: else -> ok = false
		fi
	};
#ifdef TABLE_FULL
	if
	:: ok && act == TABLE_CLAIM ->
		atomic {	/* lock: R's mark, looked up after the UPDATE */
#ifndef NO_CHECK_AFTER
			if
			:: has_mark[r] -> ok = false
			:: else -> claimed()
			fi
#else
			claimed()
#endif
		};
		if :: !ok -> atomic { rowlock[r] = NONE } :: else fi	/* its subtransaction rolled back */
	:: else
	fi;
#endif
#ifdef UPDATE_UNMARKS_EARLY
	if :: ok -> atomic { UNMARK_CLAIMED } :: else fi;
#endif
	if
	:: !ok -> atomic { if :: act == TABLE_CLAIM && MINE_PENDING(r) -> UNMARK(r) :: else fi }
	:: ok ->
		if
		:: atomic {	/* commit: the row's lease visible */
				att[r] = newatt; tlease[r] = me; tl_over[r] = false; abandoned[r] = false;
				rowlock[r] = NONE };
			atomic { UNMARK_CLAIMED };	/* then its commit callback */
			answer()
		:: atomic {	/* abort: the UPDATE undone; a materialized mark stays EXPIRED */
				rowlock[r] = NONE;
				if :: act == TABLE_CLAIM && MINE_PENDING(r) -> UNMARK(r) :: else fi;
				DROP }
		fi
	fi
}

proctype worker(byte me)
{
	byte r;			/* the row it looks at, or holds */
	byte n;			/* R's attempts as S1 saw them */
	byte base;		/* for a claim by UPDATE: the attempts it requalifies on */
	byte newatt;	/* the attempts its UPDATE writes */
	byte act;		/* what its step 2 did */
	byte i;
	bool sdel;		/* -DSNAPSHOT_BEFORE_MARK's S2 */
	byte satt;
	bool ok;
	bool gone;

end:
	do
	:: ndeleted == P -> break
	:: atomic { pick(); n = att[r] };	/* step 1: S1 */
#ifdef SNAPSHOT_BEFORE_MARK
		atomic { sdel = deleted[r]; satt = att[r] };
#endif
		atomic {	/* step 2 */
			if
#ifdef EXPIRY
			:: has_mark[r] && mholder[r] == NONE && mover[r] -> act = MATERIALIZE; base = mbase[r]
			:: has_mark[r] && !(mholder[r] == NONE && mover[r]) -> act = SKIPPED; skipped[r] = skipped[r] | BIT
#else
			:: has_mark[r] -> act = SKIPPED; skipped[r] = skipped[r] | BIT
#endif
			:: !has_mark[r] -> act = MARKED; MARK(r, n)
#if defined(TABLE) && !defined(TABLE_IGNORES_MARKS) && !defined(TABLE_FULL)
			:: !has_mark[r] -> act = TABLE_CLAIM; base = n; MARK(r, n)
#endif
#ifdef TABLE_FULL
			:: !has_mark[r] -> act = TABLE_CLAIM; base = n	/* no room for its marker */
#endif
#ifdef TABLE_IGNORES_MARKS
			:: true -> act = TABLE_CLAIM; base = n
#endif
			fi
		};
		if
		:: act == SKIPPED
		:: act == MARKED -> mark_claim()
		:: act == TABLE_CLAIM || act == MATERIALIZE -> table_claim()
		fi;
		atomic { r = 0; n = 0; base = 0; newatt = 0; act = 0; sdel = false; satt = 0;
			ok = false; gone = false }
	od
}

#ifdef EXPIRY
/* A running lease, in memory or in the table, runs out. */
#define EXPIRE(x) \
	:: atomic { has_mark[x] && mholder[x] == NONE && !mover[x] && (races < RACES || abandoned[x]) -> \
		if :: !abandoned[x] -> races++ :: else fi; \
		abandoned[x] = false; mover[x] = true; skipped[x] = 0; \
		if :: hold[mowner[x]] == x -> lost[mowner[x]] = true :: else fi } \
	:: atomic { !deleted[x] && tlease[x] != NONE && !tl_over[x] && (races < RACES || abandoned[x]) -> \
		if :: !abandoned[x] -> races++ :: else fi; \
		abandoned[x] = false; tl_over[x] = true; \
		if :: hold[tlease[x]] == x -> lost[tlease[x]] = true :: else fi }

active proctype time()
{
end:
	do
	EXPIRE(0)
#if P > 1
	EXPIRE(1)
#endif
#if P > 2
	EXPIRE(2)
#endif
	od
}
#endif

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

/* When nothing can move: (c) and (d). */
active proctype check()
{
	byte x = 0;

	timeout ->
	assert(ndeleted == P);
	do
	:: x < P ->
		assert(deleted[x] && answered[x] == 1 && !has_mark[x] && rowlock[x] == NONE);
		x++
	:: else -> break
	od;
	x = 0;
	do
	:: x < W -> assert(hold[x] == NONE); x++
	:: else -> break
	od
}
