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

#include "syrpc_internal.h"

/*
 * Prepare sql once per backend and keep the plan in *slot.
 */
SPIPlanPtr
plan_prepare(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

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
 * Prepare a statement on result partition bucket; sql has one %02d for it.
 */
SPIPlanPtr
plan_prepare_bucket(SPIPlanPtr *slots, int bucket, const char *sql,
			   int nargs, Oid *argtypes)
{
	if (slots[bucket] == NULL)
	{
		char	   *bucket_sql = psprintf(sql, bucket);

		plan_prepare(&slots[bucket], bucket_sql, nargs, argtypes);
		pfree(bucket_sql);
	}
	return slots[bucket];
}

/*
 * Run a saved plan with fresh snapshot; return the number of rows.
 */
uint64
plan_run(SPIPlanPtr plan, Datum *values, const char *nulls, long count)
{
	int			rc;

	store_statements++;
	rc = SPI_execute_plan(plan, values, nulls, false, count);
	if (rc < 0)
		elog(ERROR, "syrpc: SPI_execute_plan failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/* Statements run by this backend (every one goes through plan_run). */
uint64		store_statements = 0;

/*
 * Run the claim with the planner held to the ordered index scan.  Planned
 * at a moment when the statistics promised many matching rows (after a
 * burst, before autovacuum), a cached plan turned into a bitmap scan and a
 * sort that read every index entry of the app, dead ones included, for
 * each claim: 40% of the server's CPU.  The index order finds the oldest
 * claimable request in a few entries.
 */
uint64
plan_run_ordered(SPIPlanPtr plan, Datum *values)
{
	int			level = NewGUCNestLevel();
	uint64		n;

	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	n = plan_run(plan, values, NULL, 0);
	AtEOXact_GUC(true, level);
	return n;
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
	Datum		d = result_col_notnull(n);

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
