/*-------------------------------------------------------------------------
 *
 * store_spi.c
 *	  What the store_*.c files share: saved SPI plans, prepared once per
 *	  backend, run with a fresh snapshot, and the columns of their result.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "executor/spi.h"
#include "utils/guc.h"
#include "utils/plancache.h"

#include "syrpc_internal.h"

/*
 * Prepare sql once per backend and keep the plan in *slot.
 *
 * Plans are generic, planned once (and again after an invalidation, when
 * autovacuum has changed the statistics, say): each statement looks up
 * one row by its key, or the oldest of one app, and a custom plan for its
 * values buys nothing over the index scan; planning each of them afresh
 * for its first five runs, in every backend and for every partition, was
 * a fifth of the CPU of a busy server.
 */
SPIPlanPtr
plan_prepare(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "syrpc: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "syrpc: could not save plan for \"%s\"", sql);
		*slot = plan;
	}
	return *slot;
}

/*
 * Will running plan plan it first?  Its generic plan is missing, or an
 * invalidation has made it stale.
 */
static bool
needs_planning(SPIPlanPtr plan)
{
	ListCell   *lc;

	foreach(lc, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *ps = lfirst(lc);

		if (!ps->is_valid || ps->gplan == NULL || !ps->gplan->is_valid)
			return true;
	}
	return false;
}

/* Statements run by this backend (every one goes through plan_run). */
uint64		store_statements = 0;

/*
 * When a saved plan is to be planned before it runs, the planner is held
 * to index scans in their order (no sequential or bitmap scan, no sort),
 * whatever the statistics say at that moment: planned while the tables were empty (as they are
 * most of the time), a lookup of one request by its result_id was a
 * sequential scan, which a backlog of requests then paid on every answer;
 * planned just after a burst, the claim became a bitmap scan and a sort
 * of every index entry of the app.  A statement with no index to use (a
 * cleanup) gets its sequential scan all the same.
 */
static int
planning_begin(SPIPlanPtr plan)
{
	int			level;

	if (!needs_planning(plan))
		return -1;
	level = NewGUCNestLevel();
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* a disabled scan's cost would make the cleanup's plan JIT-compiled: a second */
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

static void
planning_end(int level)
{
	if (level >= 0)
		AtEOXact_GUC(true, level);
}

/* Run a saved plan with a fresh snapshot; return the number of rows. */
uint64
plan_run(SPIPlanPtr plan, Datum *values, const char *nulls, long count)
{
	int			rc;
	int			level;

	store_statements++;
	level = planning_begin(plan);
	rc = SPI_execute_plan(plan, values, nulls, false, count);
	planning_end(level);
	if (rc < 0)
		elog(ERROR, "syrpc: SPI_execute_plan failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/* Column n (1-based) of row 0 of the last result; *isnull is set. */
Datum
result_col(int n, bool *isnull)
{
	return result_row_col(0, n, isnull);
}

/* Column n (1-based) of row row of the last result; *isnull is set. */
Datum
result_row_col(uint64 row, int n, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, n, isnull);
}

/* Column n of row 0, which the query guarantees is not NULL. */
Datum
result_col_notnull(int n)
{
	bool		isnull;
	Datum		d = result_col(n, &isnull);

	if (isnull)
		elog(ERROR, "syrpc: unexpected NULL in column %d", n);
	return d;
}

/*
 * Column n of row 0, a varlena, copied out of SPI's memory and detoasted:
 * a procedure holds no snapshot that would keep TOAST data from going.
 */
Datum
result_col_out(int n)
{
	return datum_out(result_col_notnull(n));
}

/* A varlena, detoasted and copied into the memory of SPI's caller. */
Datum
datum_out(Datum d)
{
	if (VARATT_IS_EXTENDED(DatumGetPointer(d)))
		d = PointerGetDatum(detoast_attr((struct varlena *) DatumGetPointer(d)));
	return SPI_datumTransfer(d, false, -1);
}

/* Are two texts the same bytes? */
bool
same_text(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}
