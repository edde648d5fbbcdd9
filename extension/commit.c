/*-------------------------------------------------------------------------
 *
 * commit.c
 *	  How the commit of a syrpc call is flushed.
 *
 * A claim, a taken result and (if the user says so) a put result may
 * commit without waiting for the WAL flush: losing one in a crash only
 * hands a request out again or makes a result readable again, which
 * at-least-once delivery allows.  But only when the call is the whole
 * transaction, so that no other write of the caller's loses durability,
 * and only for the commit of that transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "utils/guc.h"

#include "syrpc_internal.h"

/*
 * Is this call the whole transaction, with nothing written before it?
 * Then it may decide how its commit is flushed (see relax_commit).
 * Call before writing anything.
 */
bool
owns_transaction(void)
{
	return !IsTransactionBlock() &&
		!TransactionIdIsValid(GetTopTransactionIdIfAny());
}

/*
 * Commit without the flush, decided at pre-commit.  Setting
 * synchronous_commit at once would leak into user code that runs later in
 * the same statement or transaction (SELECT audit() FROM
 * syrpc_get_request(...)), and commit its writes without the flush too.
 * So a call only notes how far the WAL of this transaction reached when
 * its own writes were done; at pre-commit, if nothing has been written
 * since, the commit may skip the flush, and synchronous_commit is set for
 * the commit alone.  Any later write (one of the user's) keeps the
 * session's setting.
 */
static bool relax_wanted = false;
static bool flush_required = false;
static XLogRecPtr relax_upto = InvalidXLogRecPtr;

/* Let the current transaction commit without the WAL flush, if nothing else writes. */
void
commit_without_flush(void)
{
	relax_wanted = true;
	relax_upto = XactLastRecEnd;
}

/*
 * This transaction's commit must be flushed, whatever calls in it asked
 * for: a claim of a request that the last crash may have lost a lease of
 * (store.c) must count its attempt durably.
 */
void
commit_with_flush(void)
{
	flush_required = true;
}

static void
commit_mode_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PRE_PREPARE)
		flush_required = false;
	if (!relax_wanted)
		return;
	if (event == XACT_EVENT_PRE_COMMIT)
	{
		if (XactLastRecEnd == relax_upto && !flush_required)
			(void) set_config_option("synchronous_commit", "off",
									 PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_LOCAL, true, 0, false);
		relax_wanted = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
			 event == XACT_EVENT_PREPARE || event == XACT_EVENT_PRE_PREPARE)
		relax_wanted = false;
}

void
commit_init(void)
{
	RegisterXactCallback(commit_mode_callback, NULL);
}

/*
 * A claim or a taken result (syrpc.async_acks, on by default), when the
 * call owns its transaction.
 */
void
relax_commit(bool owned)
{
	if (owned && syrpc_async_acks)
		commit_without_flush();
}

/*
 * A put result, if the user says so (syrpc.async_results): losing it in a
 * crash loses the deletion of its request too, which is then answered
 * again.  Off by default, because the work is then done twice.
 */
void
relax_result_commit(bool owned)
{
	if (owned && syrpc_async_results)
		commit_without_flush();
}
