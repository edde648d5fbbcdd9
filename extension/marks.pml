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
 *                 worker holds the work (1.7: it may extend it, or hand
 *                 R back)
 *   EXPIRED(N)    LEASED whose lease ran out (lease end <= now: a time,
 *                 not a stored state)
 *   RELEASED(N)   (1.7, 9ae7cdd) LEASED handed back by its holder: its
 *                 attempt does not count, its lease ends when the delay
 *                 does; until then as LEASED to claimers, then EXPIRED
 *
 *   claim in memory, by backend h, per candidate R:
 *     1. S1, a statement's snapshot, reads R: visible (its deletion not
 *        committed), not leased in the table, attempts N
 *     2. lock: none -> PENDING(h,N); any other mark: skip R (EXPIRED: the
 *        table claim below instead); unlock
 *     3. S2, a NEW snapshot taken after step 2, reads R again: deleted, or
 *        attempts != N, or leased in the table (ready_at > now: store.c
 *        still_claimable) -> lock, PENDING(h,N) -> none (only if it is
 *        still h's), unlock, skip R.  Else h holds R (the claim succeeded)
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
 *     lease end WHERE attempts = N AND ready_at <= now (the ready_at test
 *     since 08ad56d), FOR UPDATE SKIP LOCKED (store.c lease_in_row; a
 *     locked row, or one that no longer qualifies: PENDING(h,N) -> none,
 *     skip);
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
 *     finds EXPIRED(N): materializes it: UPDATE R SET attempts = N + 2
 *     (N + 1 for a mark handed back: store.c move_lease_into_row),
 *     ready_at = lease end WHERE attempts = N AND ready_at <= now (the
 *     same lease_in_row), FOR UPDATE SKIP LOCKED (the answerer's delete
 *     holds the row lock: skip; R deleted, or attempts != N, or a lease in
 *     the row running: nothing, skip); c holds R; c's commit: the row's lease
 *     visible, then in the commit callback EXPIRED(N) -> none (only that
 *     mark); c's abort: the mark stays EXPIRED(N).  The expired holder may
 *     still be working and answer: at least once, not exactly once
 *   extension (-DEXTEND, 1.7): R's holder h calls syrpc_extend_lease,
 *     naming the attempt A its claim got or none (control.c extend_lease);
 *     the call reads its clock once, "now", at its start.  E1. lock: a
 *     mark of R, committed (or h's own PENDING), with until > now
 *     (running_mark; a mark handed back too): its base N, and whether it
 *     was handed back, and the memory path; else the row path; unlock.
 *     Memory (mark_ours, then mark_change): E2. a new snapshot reads R
 *     (store_request_state, with its own look at the mark): gone, or
 *     attempts != N, or no mark of base N, or that mark or E1's copy
 *     handed back, or A named and != N + 1: it fails; E3. lock: the mark
 *     of base N, committed or h's own, not handed back, until > the clock
 *     read under the lock (08ad56d; before, the call's now): its lease
 *     ends later; else it fails; unlock.  Not transactional.  Row
 *     (store_extend_lease): UPDATE R SET ready_at WHERE ready_at > now AND
 *     attempts > 0 (AND attempts = A, if named; waits for R's row lock);
 *     its commit makes the later end visible, and h is told.  A failure
 *     (SY004, SY007): h gives R up
 *   release (-DRELEASE, RELEASES calls in all; 1.7 as of 9ae7cdd): h calls
 *     syrpc_release, naming A or not (control.c release_request): E1 as
 *     above.  Memory: E2 and E3 as above (mark_change with release), but
 *     E3 hands the mark back: until = now + delay, released, at once (not
 *     transactional), and h holds R no more.  No row is written.  The mark
 *     keeps claims off R (RUNNING) until its until; then it is EXPIRED,
 *     and the next claimer moves it into the row as any lease that ran
 *     out, its handed-back attempt not counted (UPDATE ... SET attempts =
 *     N + 1, its own lease, WHERE attempts = N); cleanup leaves it
 *     alone (08ad56d, below).
 *     Row (store_release_request): UPDATE R SET ready_at = now + delay,
 *     attempts = attempts - 1 WHERE ready_at > now AND attempts > 0 (AND
 *     attempts = A); its commit: R claimable at once or after the delay,
 *     h told, h holds R no more; its abort: nothing changed, h holds R
 *     still.  A failure: SY004 or SY007, h gives R up
 *   cancel (-DCANCEL, CANCELS tried in all, 1.7): R's caller calls
 *     syrpc_cancel: DELETE R (waits for R's row lock; nothing if R is
 *     gone) and a "cancelled" result, in one transaction T; T commits,
 *     then its commit callback removes R's mark, whatever it is; T's
 *     abort: nothing.  To the marks an answer by another party: the
 *     holder's later answer finds R gone (accepted and dropped)
 *   cleanup (-DCLEANUP, CLEANUPS runs that find a mark; store.c
 *     move_expired_leases): lock: an EXPIRED mark (committed, run out),
 *     not handed back (08ad56d, marks.c expired_fn; before, it took those
 *     too and wrote N), its base N, and the attempts to write, N + 1;
 *     unlock; UPDATE R SET attempts = that, ready_at = its until
 *     (past: R claimable) WHERE attempts = N (waits for R's row lock);
 *     commit; then its commit callback: lock, the mark of base N,
 *     committed -> none, unlock
 *   -DATTEMPT: a worker names its attempt (else it passes NULL, as
 *     before 85300be).  -DIN_TIME: a worker calls syrpc_extend_lease or
 *     syrpc_release only while its lease runs (it may still run out during
 *     the call: what E3's test is for); without it, at any time it holds R
 *     as far as it knows.  -DAGAIN: a worker that released R calls
 *     syrpc_release once more (a retry, say)
 *   Two changes spin found the C needed, made on 2026-12-02 and modelled
 *   always now, each with a mutant of its old form: step 3's S2 (store.c
 *   still_claimable) also fails while R's row has a write of an open
 *   transaction (its xmax in progress: direct_being_written), mutant
 *   -DNO_OPEN_WRITE_RECHECK (the earlier -DOPEN_WRITE_RECHECK); the row
 *   path compares ready_at with the clock when its UPDATE looks
 *   (clock_timestamp()), mutant -DROW_CALL_NOW (the earlier
 *   -DROW_FRESH_NOW).  (The earlier -DFRESH_NOW and -DROW_RECHECK held two
 *   more that 08ad56d put in the C, modelled always too: E3's clock read
 *   under the lock, and lease_in_row's ready_at <= now.)
 *
 * Time: a lease in a mark runs out at any moment (RACES times while its
 * holder lives; always, if it died), a lease in the row too; a mark handed
 * back runs out, and a release's delay in the row ends, at any moment.  A
 * backend's clock is read at its call's start and used for all its tests:
 * the model reads it at E1, and at a claim's S1 (its step 2 looks at the
 * marks with the clock then, later than the C's now: an earlier clock
 * only makes it find fewer marks EXPIRED).  E3 reads the clock again,
 * under the lock (08ad56d): its until test fails for a lease that ran out
 * since E1.  The row path's ready_at > clock_timestamp() reads the clock
 * when its UPDATE looks (with -DROW_CALL_NOW, the call's now: it holds
 * for a lease in the row that ran at E1, whether or not it ran out
 * since).  A claim's now is
 * read at its start, before S1, and still_claimable's and lease_in_row's
 * ready_at <= now use it: a ready_at that a commit wrote since, whose call
 * read its clock after the claim did, is later than that now (a lease's
 * end, a release's delay's end: at or after its writer's now; barring two
 * clock reads in the same microsecond, or a system clock that steps
 * back), so the test fails (later and stale, below); any other ready_at
 * passes once it is over when the claim looks, a little more often than
 * in the C, whose now is earlier.
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
 * step 3 removing by key either, but the check costs nothing).  A mark
 * handed back stays until its delay ends so that no claim takes R during
 * the delay (RELEASE_NO_KEEP), and is moved into the row by the next
 * claimer like a lease that ran out, so that the base of whoever moves it
 * still names it; not by cleanup, whose move, attempts unchanged, the base
 * check cannot tell from a claimer's (CLEANUP_RELEASED).  A claim by
 * UPDATE requalifies on ready_at <= now, so that it takes no row whose
 * lease runs, nor one in a release's delay (LEASE_NO_READY_CHECK).
 *
 * The model: P rows, W workers that loop: pick a candidate R (S1; a
 * worker that skipped R for a mark waits until R's mark is removed or
 * runs out, the model's stand-in for its next look), claim it (steps 1-3,
 * or by UPDATE), end the claim (commit, abort, or answer inside it), then
 * answer in transactions that may abort and be tried again; with EXPIRY a
 * worker may also die holding R after its claim committed (DEATHS times);
 * with EXTEND and RELEASE it may also extend or release the lease it
 * holds, with CANCEL a caller cancels requests, with CLEANUP cleanup moves
 * marks that ran out.  What must hold: (a) when a worker's claim of R
 * succeeds (step 3, or its UPDATE), or it is told that it holds R's lease
 * (its extension or release succeeds: E3, or the row path's commit), no
 * other worker holds R (from its claim's success to its answer's commit,
 * its claim's abort, its release, or its "already answered"), unless that
 * one's lease ran out (EXPIRY only); (b) no claim of R succeeds after R's
 * deletion committed, nor an extension or release called after it;
 * without expiry an answer never finds R gone, and a worker's removal of
 * its own mark always finds it, unless R was cancelled (or, with table
 * claims or releases, a lease in the row was answered); (c) when nothing
 * can move, every request was answered or cancelled exactly once (its
 * deletion committed once) and every worker stopped; (d) no mark and no
 * row lock is left over; (e) the attempts are counted right: a claim that
 * succeeds is attempt 1 + the claims of R that count (committed, not
 * handed back: what the row counts, and one more for a lease in a mark
 * not handed back); (f) no claim succeeds while a release's delay runs
 * (in the row, or of a mark handed back).
 *
 * Mutants that test/model_test.sh checks spin finds wrong: NO_RECHECK (step
 * 3 skipped); RECHECK_OLD_SNAPSHOT (step 3 rereads S1's view, e.g. SPI with
 * read_only = true, which keeps the statement's snapshot: the same as no
 * recheck); SNAPSHOT_BEFORE_MARK (S2 taken between steps 1 and 2);
 * REMOVE_BEFORE_COMMIT (the answer removes the mark before its deletion is
 * visible, e.g. at XACT_EVENT_PRE_COMMIT; caught with NO_OPEN_WRITE_RECHECK
 * only: the recheck of open writes alone keeps claims off R while the
 * answer's delete is open); ANSWER_ABORT_REMOVES (an
 * answer's abort removes the mark while its worker still holds R);
 * CLAIM_ABORT_KEEPS (a claim's abort leaves its PENDING mark: R is never
 * claimed again); with -DTABLE, TABLE_IGNORES_MARKS (the UPDATE claim of
 * before marks, store.c's claim_in_row, which sees a row claimed in memory
 * as claimable: ready_at did not move); with -DTABLE_FULL, NO_CHECK_AFTER
 * (no look for a mark after the UPDATE) and NO_LOCK_RECHECK (S2 blind to
 * the UPDATE of an open transaction); with -DEXPIRY, UPDATE_UNMARKS_EARLY
 * (a materialization removes the mark when its UPDATE is done, before it
 * commits), NO_BASE_CHECK (its UPDATE does not requalify the row by
 * attempts = N, only by ready_at <= now: a second materializer of a lease
 * moved into the row claims R again, its attempts counted wrong, (e)) and
 * CALLBACK_OWN_ONLY (an answer's callback removes only a mark its own claim
 * made: when a table lease ran out while its holder's DELETE was open, a
 * claim in memory that saw R before that commit keeps its mark for a row
 * that is gone, for ever).  With EXTEND, RELEASE and CANCEL:
 * EXTEND_NO_RECHECK (E2 skipped: an extension called after the cancel's
 * commit, before its callback, succeeds for a request that is gone);
 * CANCEL_NO_UNMARK (the cancel leaves R's lease mark: kept for ever);
 * RELEASE_COUNTS (a mark handed back is moved into the row with its attempt
 * counted, N + 2: (e)); RELEASE_NO_KEEP (E3 of a release removes the mark
 * at once instead of keeping it until the delay ends: a claim in memory
 * during the delay, (f)).  With RELEASE, RELEASES=2, AGAIN, W=1 P=1:
 * RELEASE_TWICE (nothing tests that a mark was handed back: not mark_ours,
 * not store_request_state's count, not mark_change: the retry during the
 * delay succeeds for a lease no longer its own).  With EXPIRY, EXTEND,
 * IN_TIME, DEATHS=0 and CANCEL: EXTEND_EXPIRED (E3 without its until test,
 * what comparing with the call's now amounted to in the C before 08ad56d: a
 * claimer that already found the mark EXPIRED moves it into the row, and
 * two leases run).  With TABLE and RELEASE: LEASE_NO_READY_CHECK
 * (lease_in_row without ready_at <= now, the C before 08ad56d: 9ae7cdd's
 * bug 3, a table claim during a release's delay in the row, (f)).  With
 * RELEASE and CLEANUP, W=2 P=1: CLEANUP_RELEASED (cleanup moves a mark
 * handed back too, writing attempts N, the C before 08ad56d: 9ae7cdd's bug
 * 4b, two holders).
 *
 * Found wrong in the C by spin.  The configurations are W=2 P=2 unless
 * said; h a worker that holds R, c another.
 *
 * Wrong in the C of 9ae7cdd, mended by 08ad56d, and run now as the C
 * (each mended part has a mutant that puts the old C back):
 *   1. (its lease in a mark) E3 compared until with the call's now, read
 *     before E1: h's E1 finds its lease in a mark of base N running, E2
 *     passes, the lease runs out, c's step 2 finds the mark EXPIRED and c
 *     moves it into the row (attempts N + 2, c holds R); h's E3 held
 *     still, so h's lease ended later (or was handed back, c's UPDATE then
 *     counting an attempt handed back, (e)) and h was told it held R with
 *     c.  08ad56d reads the clock under the lock (EXTEND_EXPIRED: without)
 *   3. -DTABLE -DRELEASE: c's S1 reads R claimable (attempts N); h claims
 *     R by UPDATE (N + 1), commits, releases it with a delay in the row
 *     (attempts N again, ready_at after the delay), commits; c's step 2
 *     finds no mark and its lease_in_row, WHERE attempts = N only, took R
 *     during the delay, (f).  08ad56d requalifies on ready_at <= now too
 *     (LEASE_NO_READY_CHECK: without)
 *   4b. -DRELEASE -DCLEANUP (W=2 P=1): cleanup moved h's mark handed back
 *     (base N) into the row, attempts N (no change), and committed; before
 *     its callback removed the mark, c found it EXPIRED and c's UPDATE
 *     (N + 1 WHERE attempts = N) qualified, not yet committed; the
 *     callback removed the mark; d's S1 and S2 read R claimable at N and d
 *     claimed R in memory; c committed: two holders.  4d. -DRELEASE
 *     -DRELEASES=2 -DCLEANUP -DEXTEND (W=1 P=1): cleanup's scan found h's
 *     mark handed back; h moved it into the row and released that lease
 *     there (attempts N) and claimed R again in memory (base N); cleanup's
 *     UPDATE found N + 1, wrote nothing, and its callback removed h's new
 *     mark, (e).  08ad56d's cleanup leaves a mark handed back to the next
 *     claimer (CLEANUP_RELEASED: it takes them, as before)
 *   4a. -DRELEASE -DRELEASES=2 (W=2 P=1; -DEXTEND -DCANCEL too): h hands
 *     its lease in a mark (base N) back with no delay; c's step 2 finds it
 *     EXPIRED and c stalls before its UPDATE; h moves it into the row
 *     (N + 1), commits, releases that lease in the row (N again, ready_at
 *     = h's now) and claims R again in memory (base N); c's UPDATE WHERE
 *     attempts = N qualified.  Now its ready_at <= now fails: c's now was
 *     read before its step 2, before h's release read its own, so h's
 *     ready_at is later (the model: later and stale).  Unless two clock
 *     reads fall in the same microsecond, or the system clock steps back
 * Wrong in the C of 08ad56d (1 and 2 mended on 2026-12-02; 4c still open):
 *   1. (its lease in the row; the mutant -DROW_CALL_NOW) The row path's
 *     WHERE ready_at > now, with the call's now.  -DEXPIRY -DEXTEND or -DRELEASE, -DATTEMPT (with
 *     -DCANCEL, -DTABLE, -DIN_TIME, -DRACES=2 -DDEATHS=2; W=3 P=1 too),
 *     with the open-write recheck and without: h holds R by a lease in the
 *     row (moved in from a mark, attempts M); h's call reads now, and E1
 *     finds no running mark; the lease runs out; c reads its clock, S1 and
 *     S2 read R claimable, c claims R in memory (a mark of base M) and
 *     commits; h's UPDATE qualifies on the old now: h's lease ends later
 *     (or is handed back: attempts M - 1 under c's mark, (e)) and h is
 *     told it holds R with c.  clock_timestamp() in the UPDATE mends it
 *   2. An open write.  The same configurations: h's row UPDATE qualifies (its lease runs) and holds R's row
 *     lock; the lease's end passes before h commits; c reads its clock,
 *     its S1 and S2 read the old row (ready_at <= now, attempts M: the
 *     UPDATE not visible), and c claims R in memory; h commits: h's lease
 *     runs again (or h is told it released a lease that c holds, attempts
 *     M - 1 under c's mark of base M).  A table claim in c's place no
 *     longer (lease_in_row waits on no lock, FOR UPDATE SKIP LOCKED, and
 *     requalifies ready_at).  The recheck of open writes mends it
 *     (-DNO_OPEN_WRITE_RECHECK: without it).  These configurations pass
 *     now, and are run.  Without a
 *     lease in the row that runs out while its holder calls (a single race
 *     and no death: -DDEATHS=0), they pass as the C
 *   4c. An attempt names no lease once releases hand attempts back
 *     (known, accepted for now): -DRELEASE -DRELEASES=2 -DAGAIN -DATTEMPT
 *     (W=2 P=1): h hands its lease back
 *     (attempt N + 1, not counted); c moves the mark into the row (its
 *     attempt N + 1 again); h's second syrpc_release, naming N + 1, finds
 *     no running mark, takes the row path and hands c's lease back
 * With no attempt named (NULL) (but -DEXPIRY -DDEATHS=0 -DEXTEND -DIN_TIME -DCANCEL passes, and
 * is run):
 *   -DEXPIRY -DEXTEND: h's lease in a mark ran out and c, who found it
 *     EXPIRED, moved it into the row; h's late syrpc_extend_lease finds no
 *     running mark and takes the row path: its UPDATE (waiting for c's
 *     row lock) extends c's lease, and h is told it holds R (a late
 *     syrpc_release takes the same row path, and would take c's attempt
 *     back and make R claimable under c).  With that row path taken out
 *     of the model, spin finds the next one: c died, its row lease ran
 *     out, c's successor leased R in a new mark; h's late call finds that
 *     committed mark, whose base the row's attempts match, and extends it:
 *     a committed mark and a row lease do not say whose lease they are
 *   -DEXPIRY -DTABLE -DEXTEND -DIN_TIME (or -DEXPIRY -DEXTEND -DIN_TIME
 *     -DRACES=2 -DDEATHS=2): h, leased in the row, calls in time, takes
 *     the row path; its lease runs out before its UPDATE and another claim
 *     writes R's row: h's UPDATE extends that lease
 *   -DEXPIRY -DRELEASE (no attempt): a lost holder's row release hands
 *     back the lease that another claim wrote into the row since
 *   -DTABLE -DEXPIRY -DEXTEND -DRELEASE -DRELEASES=2 -DAGAIN -DW=1 -DP=1:
 *     after a release with a delay the row's ready_at > now looks like a
 *     lease in the row: a second syrpc_release succeeds and takes an
 *     attempt back that nothing counted
 * Naming the attempt mends these last four: those
 * configurations with -DATTEMPT pass, and are run so.  (A stale worker
 * naming a reused attempt may still extend a release's delay in the row
 * into a lease of its own: harmless, spin finds, as nobody else holds R
 * then.)
 *
 * Not modelled: an extension or release in the claim's own transaction
 * (allowed for a mark: its PENDING mark is its own); max_attempts (a
 * lease moved into the row at its last attempt fails the request); the
 * sweep; cleanup's deletion of expired requests.
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
#ifndef RELEASES
#define RELEASES 1	/* syrpc_release calls, in all */
#endif
#ifndef CANCELS
#define CANCELS 1	/* cancels tried, in all */
#endif
#ifndef CLEANUPS
#define CLEANUPS 1	/* runs of cleanup's move_expired_leases that find a mark */
#endif
#define NONE 255
#define REL 254		/* tlease: a release's delay (ready_at > now, nobody's lease) */
#define CALLER 253	/* rowlock: a cancel's transaction */
#define CLEANER 252	/* rowlock: cleanup's transaction */
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
byte tlease[P] = NONE;	/* whose lease in the table (ready_at > now), or REL */
bool tl_over[P];		/* that lease ran out (ready_at <= now again) */
byte rowlock[P] = NONE;	/* the worker whose open transaction wrote R */

/* R's mark in shared memory. */
bool has_mark[P];
byte mholder[P] = NONE;	/* PENDING: its backend; NONE: LEASED or EXPIRED */
byte mbase[P];
bool mover[P];			/* EXPIRED */
bool mrel[P];			/* (1.7) handed back: its attempt does not count */
byte mowner[P] = NONE;	/* who made it (not in the mark: for the checks) */

/* The model's own. */
byte skipped[P];		/* bit per worker: skipped R for its mark, waits */
byte hold[W] = NONE;	/* the request a worker holds */
bool lost[W];			/* its lease ran out */
bool abandoned[P];		/* R's running lease is a dead worker's */
byte answered[P];		/* R's deletion committed */
byte counted[P];		/* R's claims whose attempt counts: committed, not released */
bool cancelled[P];		/* R's deletion was its caller's cancel */
bool delay[P];			/* a release of R's lease in a mark: its delay runs */
byte ndeleted = 0;
byte races = 0;
byte deaths = 0;
byte releases = 0;
byte cancels = 0;
byte cleanups = 0;
/*
 * The claims' clock (a claim's now, read before its S1): bit x of
 * later[w]: x read its clock (for its claim, or its call's E1) after w's
 * claim did; bit R of stale[w]: R's ready_at was written since, by a
 * commit whose clock was read after w's, so later than w's now (each
 * such write is a time at or after its writer's now: a lease's end, a
 * release's delay's end): w's ready_at <= now fails on it.
 */
byte later[W];
byte stale[W];
byte claiming;	/* bit per worker: its claim's now read, not yet used for the last time */

#define BIT (1 << me)
#define TL_FREE(x) (tlease[x] == NONE || tl_over[x])
#define CAND(x) (!deleted[x] && TL_FREE(x) && (skipped[x] & BIT) == 0)
#define MINE_PENDING(x) (has_mark[x] && mholder[x] == me)
#define MARK(x, b) has_mark[x] = true; mholder[x] = me; mbase[x] = b; mover[x] = false; \
	mrel[x] = false; mowner[x] = me
#define UNMARK(x) has_mark[x] = false; mholder[x] = NONE; mbase[x] = 0; mover[x] = false; \
	mrel[x] = false; mowner[x] = NONE; skipped[x] = 0
#define DROP hold[me] = NONE; lost[me] = false

/*
 * What holds when no lease runs out, unless R was cancelled; and with
 * claims in memory only (a lease moved into the row from a mark handed
 * back is a table lease too: its answer's callback removes any mark).
 */
#ifdef EXPIRY
#define HELD_ALONE(c) skip
#else
#define HELD_ALONE(c) assert((c) || cancelled[r])
#endif
#if defined(EXPIRY) || defined(TABLE) || defined(RELEASE)
#define ONLY_MARKS(c) skip
#else
#define ONLY_MARKS(c) assert((c) || cancelled[r])
#endif

/*
 * store.c lease_in_row's UPDATE ... WHERE attempts = N AND ready_at <= now
 * (08ad56d: the ready_at test is new), for a materialization and a table
 * claim; LEASE_NO_READY_CHECK: without it, the C before 08ad56d.  The
 * claim of before marks (claim_in_row) requalifies on ready_at only.
 */
#define NOT_STALE ((stale[me] & (1 << r)) == 0)
#ifdef LEASE_NO_READY_CHECK
#define READY_QUAL true
#else
#define READY_QUAL (TL_FREE(r) && NOT_STALE)
#endif
#ifdef NO_BASE_CHECK
#define BASE_QUAL READY_QUAL
#else
#define BASE_QUAL (att[r] == base && READY_QUAL)
#endif
#if defined(TABLE_IGNORES_MARKS) || defined(TABLE_FULL)
#define TABLE_QUAL TL_FREE(r)
#else
#define TABLE_QUAL (att[r] == base && READY_QUAL)
#endif
#define UPDATE_QUAL ((act == TABLE_CLAIM && TABLE_QUAL) || (act == MATERIALIZE && BASE_QUAL))
/*
 * A materialization's attempts (store.c move_lease_into_row): base + 1
 * for the lease that ran out, unless it was handed back, + 1 for its own.
 */
#ifdef RELEASE_COUNTS
#define MATERIALIZED 2
#else
#define MATERIALIZED (frel -> 1 : 2)
#endif
/* Its commit callback: its marker, or the EXPIRED mark it materialized. */
#define UNMARK_CLAIMED \
	if \
	:: (act == TABLE_CLAIM && MINE_PENDING(r)) || \
	   (act == MATERIALIZE && has_mark[r] && mholder[r] == NONE && mbase[r] == base) -> \
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
	tlease[r] = NONE; tl_over[r] = false; abandoned[r] = false; delay[r] = false; DROP }
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

/* (a): no other worker holds R, unless its lease ran out. */
inline alone()
{
	i = 0;
	do
	:: i < W -> assert(i == me || hold[i] != r || lost[i]); i++
	:: else -> break
	od;
	i = 0
}

/* A claim of R succeeds, as attempt a: (a), (b), (e) and (f). */
inline claimed(a)
{
	assert(!deleted[r]);
	alone();
	assert(a == counted[r] + 1);
	assert((tlease[r] != REL || tl_over[r]) && !delay[r]);
	hold[me] = r; lost[me] = false; myatt = a
}

/*
 * A worker reads its clock: after the claims' that read theirs before
 * (only where a ready_at can be over: with expiry or releases).
 */
#if defined(EXPIRY) || defined(RELEASE)
#define LATER(w) if :: (claiming & (1 << w)) != 0 && w != me -> later[w] = later[w] | BIT :: else fi
#if W > 2
#define CLOCK_READ LATER(0); LATER(1); LATER(2)
#elif W > 1
#define CLOCK_READ LATER(0); LATER(1)
#else
#define CLOCK_READ skip
#endif
#define CLAIM_CLOCK CLOCK_READ; claiming = claiming | BIT
#define CLAIM_CLOCK_DONE claiming = claiming & ~BIT; later[me] = 0; stale[me] = 0
/* Its commit writes R's ready_at: a time after the now of each claim that read its clock before. */
#define STALE(w) if :: (later[w] & BIT) != 0 -> stale[w] = stale[w] | (1 << r) :: else fi
#if W > 2
#define WROTE_READY STALE(0); STALE(1); STALE(2)
#elif W > 1
#define WROTE_READY STALE(0); STALE(1)
#else
#define WROTE_READY skip
#endif
#else
#define CLOCK_READ skip
#define CLAIM_CLOCK skip
#define CLAIM_CLOCK_DONE skip
#define WROTE_READY skip
#endif

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

/*
 * E1, control.c running_mark at the call's now (read at its start; the
 * model reads it here): a lease of R in a mark, committed or this
 * worker's own, that had not run out then (also one handed back, which
 * mark_ours refuses); else the row path.
 */
#define RUNNING_MARK (has_mark[r] && (mholder[r] == NONE || mholder[r] == me) && !mover[r])
#ifdef IN_TIME
#define CALL_OK (!lost[me])		/* its lease still runs when it calls */
#else
#define CALL_OK true
#endif
/* E2, control.c mark_ours: store_request_state's new snapshot, and its own look at the mark. */
#ifdef EXTEND_NO_RECHECK
#define RECHECK true
#elif defined(RELEASE_TWICE)
#define RECHECK (!deleted[r] && att[r] == base && has_mark[r] && mbase[r] == base)
#else
#define RECHECK (!deleted[r] && att[r] == base && has_mark[r] && mbase[r] == base && !mrel[r])
#endif
/* The attempt the worker names (-DATTEMPT: the one its claim got; else none, 0). */
#ifdef ATTEMPT
#define ATT myatt
#else
#define ATT 0
#endif
#define ATT_MARK (ATT == 0 || ATT == base + 1)	/* a lease in a mark: attempt base + 1 */
#define ATT_ROW (ATT == 0 || att[r] == ATT)		/* ... AND ($5 = 0 OR attempts = $5) */
#ifdef RELEASE_TWICE
#define NOT_RELEASED true	/* no test anywhere that the mark was handed back */
#define E1_NOT_RELEASED true
#else
#define NOT_RELEASED (!mrel[r])
#define E1_NOT_RELEASED (!brel)
#endif
#define MARK_OURS (E1_NOT_RELEASED && RECHECK && ATT_MARK)
/*
 * E3, marks.c mark_change under the lock: the mark of base, committed or
 * its own, not handed back, and until > the clock read under the lock
 * (08ad56d, as handoff_lease does).  Mutant EXTEND_EXPIRED drops the test:
 * the C before 08ad56d, which passed the call's now, read before E1, so
 * that the mark E1 found running, or one of that base added since, had
 * until > now still, whether or not its lease had run out since.
 */
#ifndef EXTEND_EXPIRED
#define NOT_RUN_OUT (!mover[r])
#else
#define NOT_RUN_OUT true
#endif
#define MARK_CHANGE (has_mark[r] && mbase[r] == base && (mholder[r] == NONE || mholder[r] == me) && \
	NOT_RELEASED && NOT_RUN_OUT)
/*
 * The row path (store_change_row_lease): UPDATE R ... WHERE ready_at >
 * clock_timestamp() AND attempts > 0 (AND attempts = A), waiting for R's
 * row lock: the clock when the UPDATE looks (again after the wait).
 * -DROW_CALL_NOW, a mutant (the C before 2026-12-02): ready_at > the
 * call's now, so that a lease in the row that was running at E1 (rowrun)
 * qualifies though it ran out since.
 */
#ifdef ROW_CALL_NOW
#define ROW_RUNS (!tl_over[r] || rowrun)
#else
#define ROW_RUNS (!tl_over[r])
#endif
#define ROW_LEASE (!deleted[r] && tlease[r] != NONE && ROW_RUNS && att[r] > 0 && ATT_ROW)

/*
 * A worker is told that it holds R's lease (its extension or release
 * succeeds): (a), and (b) R's deletion had not committed when it called.
 */
inline told_held()
{
	assert(there && hold[me] == r);
	alone()
}

/* E1 */
inline running_mark()
{
	CLOCK_READ; there = !deleted[r]; brel = mrel[r]; rowrun = (tlease[r] != NONE && !tl_over[r]);
	if
	:: RUNNING_MARK -> in_mark = true; base = mbase[r]
	:: else -> in_mark = false
	fi
}

/* syrpc_extend_lease (control.c extend_lease); ok: it did. */
inline extend()
{
	atomic { CALL_OK -> running_mark() };
	if
	:: in_mark ->
		atomic { ok = MARK_OURS };
		if
		:: ok -> atomic { ok = MARK_CHANGE;	/* until later: the lease runs */
				if :: ok -> told_held(); mover[r] = false; lost[me] = false :: else fi }
		:: else
		fi
	:: else ->
		atomic { rowlock[r] == NONE -> ok = ROW_LEASE; if :: ok -> rowlock[r] = me :: else fi };
		if
		:: ok -> atomic {	/* its commit: the row's lease ends later, and runs; the worker is told */
				rowlock[r] = NONE; tl_over[r] = false; told_held(); lost[me] = false; WROTE_READY;
				tlease[r] = me }	/* (the row says not whose: a release's delay may so become its lease) */
		:: else
		fi
	fi
}

/* syrpc_release (control.c release_request); done: the worker holds R no more. */
inline release()
{
	atomic { CALL_OK && releases < RELEASES -> releases++; done = false; running_mark() };
	if
	:: in_mark ->
		atomic { ok = MARK_OURS };
		if
		:: ok -> atomic { ok = MARK_CHANGE;	/* mark_change, release: at once, not at commit */
				if
				:: ok -> told_held(); counted[r]--; abandoned[r] = false;
#ifdef RELEASE_NO_KEEP
					UNMARK(r);	/* the mark goes at once */
					if :: true :: delay[r] = true fi;
#else
					mrel[r] = true;
					if
					:: mover[r] = true; skipped[r] = 0	/* until = now (no delay): run out */
					:: mover[r] = false; delay[r] = true	/* until = now + delay */
					fi;
#endif
					DROP; done = true
				:: else
				fi }
		:: else
		fi;
		if :: !done -> atomic { DROP; done = true } :: else fi	/* SY004 or SY007: it gives R up */
	:: else ->
		atomic { rowlock[r] == NONE -> ok = ROW_LEASE; if :: ok -> rowlock[r] = me :: else fi };
		if
		:: ok ->
			if
			:: atomic {	/* commit: claimable at once, or after the delay; the worker is told */
					told_held(); att[r] = att[r] - 1; rowlock[r] = NONE; tl_over[r] = false; WROTE_READY;
					abandoned[r] = false;
					if :: tlease[r] = NONE :: tlease[r] = REL fi;
					counted[r]--; DROP; done = true }
			:: atomic { rowlock[r] = NONE }	/* abort: the release undone, it holds R still */
			fi
		:: else -> atomic { DROP; done = true }	/* SY004 or SY007: it gives R up */
		fi
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
#ifdef EXTEND
	:: extend();
		if :: !ok -> atomic { DROP }; break :: else fi	/* SY004 or SY007: it gives R up */
#endif
#ifdef RELEASE
	:: release();
		if
		:: done ->
#ifdef AGAIN
			if :: release() :: true fi;	/* and calls syrpc_release again */
#endif
			break
		:: else
		fi
#endif
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
#elif !defined(NO_LOCK_RECHECK) && !defined(NO_OPEN_WRITE_RECHECK)
		ok = (!deleted[r] && att[r] == n && TL_FREE(r) && NOT_STALE && rowlock[r] == NONE);	/* S2, and no open write */
#else
		ok = (!deleted[r] && att[r] == n && TL_FREE(r) && NOT_STALE);	/* S2 */
#endif
		if
		:: ok -> claimed(n + 1)
		:: else
		fi;
		CLAIM_CLOCK_DONE	/* its now used for the last time */
	};
	if
	:: !ok -> atomic { if :: MINE_PENDING(r) -> UNMARK(r) :: else -> ONLY_MARKS(false) fi }
	:: ok ->
		if
		:: atomic { true ->	/* the claim commits: LEASED */
				counted[r]++;
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
			newatt = att[r] + (act == MATERIALIZE -> MATERIALIZED : 1);
#ifdef TABLE_FULL
			if :: act == MATERIALIZE -> claimed(newatt) :: else fi;	/* a table claim: below */
#else
			claimed(newatt);
#endif
			ok = true
		:: else -> ok = false
		fi;
		CLAIM_CLOCK_DONE	/* its now used for the last time */
	};
#ifdef TABLE_FULL
	if
	:: ok && act == TABLE_CLAIM ->
		atomic {	/* lock: R's mark, looked up after the UPDATE */
#ifndef NO_CHECK_AFTER
			if
			:: has_mark[r] -> ok = false
			:: else -> claimed(newatt)
			fi
#else
			claimed(newatt)
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
				att[r] = newatt; tlease[r] = me; tl_over[r] = false; abandoned[r] = false; WROTE_READY;
				rowlock[r] = NONE; counted[r]++ };
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
	byte myatt;		/* the attempt its claim got */
	byte act;		/* what its step 2 did */
	byte i;
	bool in_mark;	/* an extension or release: of a lease in a mark (else in the row) */
	bool brel;		/* ... E1's copy of the mark: handed back */
	bool rowrun;	/* ... a lease in the row ran at E1, at the call's now */
	bool frel;		/* a materialization: step 2's copy of the mark: handed back */
	bool done;		/* a release: it holds R no more */
	bool there;		/* R's deletion had not committed when it called */
	bool sdel;		/* -DSNAPSHOT_BEFORE_MARK's S2 */
	byte satt;
	bool ok;
	bool gone;

end:
	do
	:: ndeleted == P -> break
	:: atomic { pick(); n = att[r]; CLAIM_CLOCK };	/* the claim's now, and step 1: S1 */
#ifdef SNAPSHOT_BEFORE_MARK
		atomic { sdel = deleted[r]; satt = att[r] };
#endif
		atomic {	/* step 2 */
			if
#if defined(EXPIRY) || defined(RELEASE)
			:: has_mark[r] && mholder[r] == NONE && mover[r] -> act = MATERIALIZE; base = mbase[r]; frel = mrel[r]
			:: has_mark[r] && !(mholder[r] == NONE && mover[r]) -> act = SKIPPED; skipped[r] = skipped[r] | BIT; CLAIM_CLOCK_DONE
#else
			:: has_mark[r] -> act = SKIPPED; skipped[r] = skipped[r] | BIT; CLAIM_CLOCK_DONE
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
			ok = false; gone = false; in_mark = false; done = false; there = false; myatt = 0;
			brel = false; rowrun = false; frel = false }
	od
}

#if defined(EXPIRY) || defined(RELEASE)
#ifdef RELEASE
/* A release's delay ends: in the row (ready_at <= now again), or its mark runs out. */
#define DELAY_ENDS(x) \
	:: atomic { tlease[x] == REL && !tl_over[x] -> tl_over[x] = true } \
	:: atomic { delay[x] -> delay[x] = false; \
		if :: has_mark[x] && mrel[x] -> mover[x] = true; skipped[x] = 0 :: else fi }
#else
#define DELAY_ENDS(x)
#endif
#ifdef EXPIRY
/* A running lease, in memory or in the table, runs out; a release's delay ends. */
#define EXPIRE(x) \
	:: atomic { has_mark[x] && mholder[x] == NONE && !mover[x] && !mrel[x] && (races < RACES || abandoned[x]) -> \
		if :: !abandoned[x] -> races++ :: else fi; \
		abandoned[x] = false; mover[x] = true; skipped[x] = 0; \
		if :: hold[mowner[x]] == x -> lost[mowner[x]] = true :: else fi } \
	:: atomic { !deleted[x] && tlease[x] < W && !tl_over[x] && (races < RACES || abandoned[x]) -> \
		if :: !abandoned[x] -> races++ :: else fi; \
		abandoned[x] = false; tl_over[x] = true; \
		if :: hold[tlease[x]] == x -> lost[tlease[x]] = true :: else fi } \
	DELAY_ENDS(x)
#else
#define EXPIRE(x) DELAY_ENDS(x)
#endif

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

#ifdef CANCEL
/*
 * R's caller cancels it (syrpc_cancel): deletes R, if it is still there,
 * and puts a "cancelled" result, in one transaction; its commit callback
 * removes R's mark, whatever it is: an answer by another party.
 */
#define CANCEL_ONE(x) :: !deleted[x] -> c = x
active proctype caller()
{
	byte c;
	bool ok;

end:
	do
	:: atomic { cancels < CANCELS && ndeleted < P -> cancels++;
			if
			CANCEL_ONE(0)
#if P > 1
			CANCEL_ONE(1)
#endif
#if P > 2
			CANCEL_ONE(2)
#endif
			fi };
		atomic { rowlock[c] == NONE ->	/* DELETE: waits for R's row lock */
			ok = !deleted[c];
			if :: ok -> rowlock[c] = CALLER :: else fi };
		if
		:: ok ->
			if
			:: atomic {	/* commit: the deletion visible */
					deleted[c] = true; cancelled[c] = true; ndeleted++; answered[c]++;
					rowlock[c] = NONE; tlease[c] = NONE; tl_over[c] = false; abandoned[c] = false;
					delay[c] = false };
#ifndef CANCEL_NO_UNMARK
				atomic { UNMARK(c) }	/* then its commit callback */
#else
				skip
#endif
			:: atomic { rowlock[c] = NONE }	/* abort */
			fi
		:: else
		fi;
		atomic { c = 0; ok = false }
	od
}
#endif

#ifdef CLEANUP
/*
 * Cleanup's move_expired_leases (store.c), CLEANUPS times: lock: an
 * EXPIRED mark (committed, run out), not handed back (08ad56d;
 * CLEANUP_RELEASED: handed back too, as before), its base N and the
 * attempts to write (N + 1; a mark handed back, with CLEANUP_RELEASED: N,
 * or N + 1 with RELEASE_COUNTS too); unlock; UPDATE R
 * SET attempts = that, ready_at = the lease's end (past: claimable) WHERE
 * attempts = N (waits for R's row lock); commit; then its commit callback:
 * lock, the mark of base N, committed -> none, unlock.
 */
#if defined(CLEANUP_RELEASED) && !defined(RELEASE_COUNTS)
#define CLEANED(x) (mbase[x] + (mrel[x] -> 0 : 1))
#else
#define CLEANED(x) (mbase[x] + 1)
#endif
#ifdef CLEANUP_RELEASED
#define CLEAN_REL(x) true
#else
#define CLEAN_REL(x) (!mrel[x])
#endif
/* The scan finds R's EXPIRED mark, not handed back. */
#define CLEAN_ONE(x) \
	:: atomic { cleanups < CLEANUPS && has_mark[x] && mholder[x] == NONE && mover[x] && CLEAN_REL(x) -> \
		cleanups++; k = x; kbase = mbase[x]; kafter = CLEANED(x) }; \
		clean()
/* Its UPDATE, commit and callback. */
inline clean()
{
	atomic { rowlock[k] == NONE ->	/* UPDATE ... WHERE attempts = N */
		upd = (!deleted[k] && att[k] == kbase);
		if :: upd -> rowlock[k] = CLEANER :: else fi };
	if
	:: upd -> atomic {	/* commit: the row counts the lease, R claimable */
			att[k] = kafter; tlease[k] = NONE; tl_over[k] = false; abandoned[k] = false;
			rowlock[k] = NONE }
	:: else
	fi;
	atomic {	/* its commit callback */
		if :: has_mark[k] && mbase[k] == kbase && mholder[k] == NONE -> UNMARK(k) :: else fi;
		k = 0; kbase = 0; kafter = 0; upd = false }
}
active proctype cleanup()
{
	byte k;
	byte kbase;
	byte kafter;
	bool upd;

end:
	do
	CLEAN_ONE(0)
#if P > 1
	CLEAN_ONE(1)
#endif
#if P > 2
	CLEAN_ONE(2)
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
