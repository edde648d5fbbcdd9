/*-------------------------------------------------------------------------
 *
 * store_direct.c
 *	  Rows of the syrpc tables read, inserted and updated by their primary
 *	  key without the planner or the executor: the statements that touch one
 *	  result in its partition (store_result.c).
 *
 * Why: through SPI, each such statement needed a saved plan per result
 * partition and backend (64 of each, each planned and kept), and a plan's
 * start and end (ExecutorStart, ExecInitNode) cost more than the work of
 * an index lookup of one row.  Here a lookup is an index scan of the
 * primary key with a fresh snapshot, as a statement would take; an insert
 * forms the tuple and adds its index entries, as the catalogs' own
 * CatalogTupleInsert does; an update waits for a concurrent writer and
 * says what it found, for the caller to look again or give up, as
 * ExecUpdate does.
 *
 * What the executor would also do and these do not: fire triggers, check
 * constraints and row-level security.  The tables are the extension's,
 * written only through it, with no triggers, and the values are checked
 * before they get here (the partition is the one PostgreSQL would route
 * the row to).  Privileges are checked by the entry points (access.c).
 * Columns are found by name, so tables of every version work alike.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "syrpc_internal.h"

/*
 * Open table syrpc.name and its index index_name (NULL: its primary key),
 * both in lock mode mode.
 */
void
direct_open_on(SyrpcDirect *d, const char *name, const char *index_name, LOCKMODE mode)
{
	Oid			index;

	d->rel = table_openrv(makeRangeVar("syrpc", (char *) name, -1), mode);
	if (index_name == NULL)
		index = RelationGetPrimaryKeyIndex(d->rel);
	else
		index = get_relname_relid(index_name, RelationGetNamespace(d->rel));
	if (!OidIsValid(index))
		elog(ERROR, "syrpc: table syrpc.%s has no index %s", name,
			 index_name ? index_name : "for its primary key");
	d->index = index_open(index, mode);
	d->slot = table_slot_create(d->rel, NULL);
	d->snapshot = NULL;
	d->scan = NULL;
}

/* Open table syrpc.name and its primary key, both in lock mode mode. */
void
direct_open(SyrpcDirect *d, const char *name, LOCKMODE mode)
{
	direct_open_on(d, name, NULL, mode);
}

/* Close what direct_open opened; the locks are kept to the end of the transaction. */
void
direct_close(SyrpcDirect *d)
{
	direct_done(d);
	ExecDropSingleTupleTableSlot(d->slot);
	index_close(d->index, NoLock);
	table_close(d->rel, NoLock);
}

/* Column name of the table, or InvalidAttrNumber if its version has none. */
AttrNumber
direct_attnum(SyrpcDirect *d, const char *name)
{
	return (AttrNumber) attnameAttNum(d->rel, name, false);
}

/* A row to insert: every column NULL until direct_set gives it a value. */
void
direct_row(SyrpcDirect *d, SyrpcRow *row)
{
	row->natts = RelationGetDescr(d->rel)->natts;
	row->values = palloc0(row->natts * sizeof(Datum));
	row->nulls = palloc(row->natts * sizeof(bool));
	memset(row->nulls, true, row->natts * sizeof(bool));
}

/* Set column name of row to v; false if the table's version has no such column. */
bool
direct_set(SyrpcDirect *d, SyrpcRow *row, const char *name, Datum v)
{
	AttrNumber	n = direct_attnum(d, name);

	if (n == InvalidAttrNumber)
		return false;
	row->values[n - 1] = v;
	row->nulls[n - 1] = false;
	return true;
}

/* The same for a column every version has. */
void
direct_set_required(SyrpcDirect *d, SyrpcRow *row, const char *name, Datum v)
{
	if (!direct_set(d, row, name, v))
		elog(ERROR, "syrpc: table %s has no column %s", RelationGetRelationName(d->rel), name);
}

/* Column name of the row direct_find found; *isnull also when the table has no such column. */
Datum
direct_get(SyrpcDirect *d, const char *name, bool *isnull)
{
	AttrNumber	n = direct_attnum(d, name);

	if (n == InvalidAttrNumber)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return slot_getattr(d->slot, n, isnull);
}

/* A column that is never NULL. */
Datum
direct_get_notnull(SyrpcDirect *d, const char *name)
{
	bool		isnull;
	Datum		v = direct_get(d, name, &isnull);

	if (isnull)
		elog(ERROR, "syrpc: unexpected NULL in column %s of %s", name,
			 RelationGetRelationName(d->rel));
	return v;
}

/* A varlena column, detoasted into the memory of SPI's caller. */
Datum
direct_get_out(SyrpcDirect *d, const char *name)
{
	return datum_out(direct_get_notnull(d, name));
}

/*
 * Scan the index for the rows whose first column equals key (eqproc: its
 * equality function), in the index's order, as a statement starting now
 * would see them (the transaction's snapshot in REPEATABLE READ, a fresh
 * one in READ COMMITTED, after this transaction's own earlier writes).
 * Each direct_scan_next puts the next row in d->slot; d->snapshot is held
 * until direct_done, so that the rows' TOASTed values can be read.
 */
void
direct_scan_begin(SyrpcDirect *d, Datum key, RegProcedure eqproc)
{
	ScanKeyData skey;

	direct_done(d);
	CommandCounterIncrement();
	d->snapshot = RegisterSnapshot(GetTransactionSnapshot());
	ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   d->index->rd_indcollation[0], eqproc, key);
	d->scan = index_beginscan(d->rel, d->index, d->snapshot, 1, 0);
	index_rescan(d->scan, &skey, 1, NULL, 0);
}

bool
direct_scan_next(SyrpcDirect *d)
{
	if (index_getnext_slot(d->scan, ForwardScanDirection, d->slot))
		return true;
	ExecClearTuple(d->slot);
	return false;
}

/*
 * Find the row whose uuid key is id (the first column of the index: the
 * primary key), as direct_scan_begin sees rows.  It is in d->slot until
 * direct_done.
 */
bool
direct_find(SyrpcDirect *d, const pg_uuid_t *id)
{
	bool		found;

	direct_scan_begin(d, UUIDPGetDatum(id), F_UUID_EQ);
	found = direct_scan_next(d);
	index_endscan(d->scan);
	d->scan = NULL;
	return found;
}

/*
 * Has the row direct_find found a write (or a row lock) of another
 * transaction that is still open?  Its snapshot shows the row as it was
 * before: an UPDATE or DELETE in progress is not in it, and waiting for
 * it is what a claim must not do.
 */
bool
direct_being_written(SyrpcDirect *d)
{
	BufferHeapTupleTableSlot *bslot = (BufferHeapTupleTableSlot *) d->slot;
	HeapTupleHeader tuple;
	TransactionId xmax;
	uint16		infomask;
	bool		open = false;

	Assert(TTS_IS_BUFFERTUPLE(d->slot) && BufferIsValid(bslot->buffer));
	LockBuffer(bslot->buffer, BUFFER_LOCK_SHARE);
	tuple = bslot->base.tuple->t_data;
	infomask = tuple->t_infomask;
	xmax = HeapTupleHeaderGetRawXmax(tuple);
	LockBuffer(bslot->buffer, BUFFER_LOCK_UNLOCK);
	if ((infomask & HEAP_XMAX_INVALID) || !TransactionIdIsValid(xmax))
		open = false;
	else if (infomask & HEAP_XMAX_IS_MULTI)
		open = MultiXactIdIsRunning(xmax, false);
	else
		open = !TransactionIdIsCurrentTransactionId(xmax) &&
			TransactionIdIsInProgress(xmax);
	return open;
}

/* Let go of the row found, the scan and its snapshot. */
void
direct_done(SyrpcDirect *d)
{
	if (d->scan != NULL)
		index_endscan(d->scan);
	d->scan = NULL;
	ExecClearTuple(d->slot);
	if (d->snapshot != NULL)
		UnregisterSnapshot(d->snapshot);
	d->snapshot = NULL;
}

/*
 * Add the index entries of tuple, just written to the table: all of them
 * for an insert, none for an update that stayed on its page (HOT).
 */
static void
insert_index_entries(SyrpcDirect *d, HeapTuple tuple)
{
	List	   *indexes;
	ListCell   *lc;
	TupleTableSlot *slot;
	EState	   *estate = NULL;

	if (HeapTupleIsHeapOnly(tuple))
		return;
	indexes = RelationGetIndexList(d->rel);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(d->rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tuple, slot, false);
	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *info = BuildIndexInfo(index);
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		/* an index of a user's with expressions, or partial, needs an executor */
		if ((info->ii_Expressions != NIL || info->ii_Predicate != NIL) && estate == NULL)
		{
			estate = CreateExecutorState();
			GetPerTupleExprContext(estate)->ecxt_scantuple = slot;
		}
		if (info->ii_Predicate != NIL &&
			!ExecQual(ExecPrepareQual(info->ii_Predicate, estate),
					  GetPerTupleExprContext(estate)))
		{
			index_close(index, NoLock);
			continue;
		}
		FormIndexDatum(info, slot, estate, values, isnull);
		(void) index_insert(index, values, isnull, &tuple->t_self, d->rel,
							index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
							false, info);
		index_close(index, NoLock);
	}
	if (estate != NULL)
		FreeExecutorState(estate);
	ExecDropSingleTupleTableSlot(slot);
	list_free(indexes);
}

/*
 * Insert a row of values (nulls[i]: column i + 1 is NULL).  A second row
 * with the same key fails as an INSERT would (unique_violation), after
 * waiting for a transaction that inserted it and is still open.
 */
void
direct_insert(SyrpcDirect *d, SyrpcRow *row)
{
	HeapTuple	tuple = heap_form_tuple(RelationGetDescr(d->rel), row->values, row->nulls);

	CommandCounterIncrement();
	heap_insert(d->rel, tuple, GetCurrentCommandId(true), 0, NULL);
	insert_index_entries(d, tuple);
	heap_freetuple(tuple);
	pfree(row->values);
	pfree(row->nulls);
}

/*
 * What a write of the row direct_find found met: true if it was done; false
 * if another transaction changed the row first and committed (after a
 * wait, if it was open), or this command did: the caller looks again.  In
 * REPEATABLE READ or SERIALIZABLE that is a serialization failure, as for
 * an UPDATE or DELETE.
 */
static bool
write_done(TM_Result r, const char *what)
{
	switch (r)
	{
		case TM_Ok:
			return true;
		case TM_SelfModified:
			return false;
		case TM_Updated:
		case TM_Deleted:
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
			return false;
		default:
			elog(ERROR, "syrpc: unexpected result %d of %s", (int) r, what);
	}
	return false;
}

/*
 * Replace the row direct_find found by one with values and nulls (all
 * columns), waiting for a transaction that changed it and is still open;
 * false if it was changed first (write_done).
 */
bool
direct_update(SyrpcDirect *d, Datum *values, bool *nulls)
{
	HeapTuple	tuple = heap_form_tuple(RelationGetDescr(d->rel), values, nulls);
	ItemPointerData tid = d->slot->tts_tid;
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		done;

	direct_done(d);
	done = write_done(heap_update(d->rel, &tid, tuple, GetCurrentCommandId(true),
								  InvalidSnapshot, true, &tmfd, &lockmode),
					  "heap_update");
	if (done)
		insert_index_entries(d, tuple);
	heap_freetuple(tuple);
	return done;
}

/*
 * Delete the row direct_find found, waiting for a transaction that changed
 * it and is still open; false if it was changed first (write_done).
 */
bool
direct_delete(SyrpcDirect *d)
{
	ItemPointerData tid = d->slot->tts_tid;
	TM_FailureData tmfd;

	direct_done(d);
	return write_done(heap_delete(d->rel, &tid, GetCurrentCommandId(true),
								  InvalidSnapshot, true, &tmfd, false),
					  "heap_delete");
}
