/*-------------------------------------------------------------------------
 *
 * store_apps.c
 *	  The statements on apps and their grants (syrpc.app,
 *	  syrpc.app_grant): loading and creating apps, settings, grants, and
 *	  dropping an app.  The cache in front of them is apps.c.
 *
 * The callers hold an SPI connection.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "syrpc_internal.h"

static SPIPlanPtr plan_load_app;
static SPIPlanPtr plan_create_app;
static SPIPlanPtr plan_configure;
static SPIPlanPtr plan_load_access;
static SPIPlanPtr plan_grant;
static SPIPlanPtr plan_revoke;
static SPIPlanPtr plan_count_requests;
static SPIPlanPtr plan_count_grants;
static SPIPlanPtr plan_drop_app[4];

/* Fill settings from row 0 of the last result of plan_load_app. */
static void
read_settings(SyrpcApp *settings)
{
	settings->lease_us = DatumGetInt64(result_col_notnull(1));
	settings->max_attempts = DatumGetInt32(result_col_notnull(2));
	settings->result_ttl_us = DatumGetInt64(result_col_notnull(3));
	settings->request_ttl_us = DatumGetInt64(result_col_notnull(4));
}

/*
 * Load app's settings; returns whether the app exists.  An app that does
 * not exist yet is created if create is set (puts do that).  Otherwise
 * (waits) settings get stand-in values and false is returned: a wait must
 * write nothing (an uncommitted app row would block the put that creates
 * the app, and an xid would hold back the xmin horizon), and should load
 * the settings again before it uses them on a request.
 */
bool
store_load_app(text *app, bool create, SyrpcApp *settings)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {PointerGetDatum(app)};
	bool		found;
	char		name[NAMEDATALEN];

	text_to_cstring_buffer(app, name, sizeof(name));
	if (app_cache_get(name, settings))
		return true;
	plan_prepare(&plan_load_app,
				 "SELECT (extract(epoch FROM least(lease_time, " SYRPC_INTERVAL_MAX_SQL ")) * 1000000)::int8,"
				 "       max_attempts,"
				 "       (extract(epoch FROM least(result_ttl, " SYRPC_INTERVAL_MAX_SQL ")) * 1000000)::int8,"
				 "       (extract(epoch FROM least(request_ttl, " SYRPC_INTERVAL_MAX_SQL ")) * 1000000)::int8"
				 "  FROM syrpc.app WHERE app = $1",
				 1, argtypes);
	found = plan_run(plan_load_app, values, NULL, 1) == 1;
	if (found)
	{
		read_settings(settings);
		SPI_freetuptable(SPI_tuptable);
		app_cache_put(name, settings);
		return true;
	}
	SPI_freetuptable(SPI_tuptable);
	if (!create)
	{
		/* nothing of the app exists: these only pace the wait */
		settings->lease_us = 30 * USECS_PER_SEC;
		settings->max_attempts = 1;
		settings->result_ttl_us = 10 * USECS_PER_SEC;
		settings->request_ttl_us = 3 * SECS_PER_HOUR * USECS_PER_SEC;
		return false;
	}
	plan_prepare(&plan_create_app,
				 "INSERT INTO syrpc.app (app) VALUES ($1) ON CONFLICT DO NOTHING",
				 1, argtypes);
	app_created();
	plan_run(plan_create_app, values, NULL, 0);
	if (plan_run(plan_load_app, values, NULL, 1) != 1)
		elog(ERROR, "syrpc: app vanished while it was being created");
	read_settings(settings);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * Create app if need be and change the settings that change gives.
 */
void
store_configure(text *app, const SyrpcAppChange *change)
{
	Oid			argtypes[5] = {TEXTOID, INTERVALOID, INT4OID, INTERVALOID, INTERVALOID};
	const NullableDatum *args[4] = {&change->lease_time, &change->max_attempts,
	&change->result_ttl, &change->request_ttl};
	Datum		values[5];
	char		nulls[5];
	SyrpcApp	ignored;

	store_load_app(app, true, &ignored);
	values[0] = PointerGetDatum(app);
	nulls[0] = ' ';
	for (int i = 0; i < 4; i++)
	{
		values[i + 1] = args[i]->value;
		nulls[i + 1] = args[i]->isnull ? 'n' : ' ';
	}
	plan_prepare(&plan_configure,
				 "UPDATE syrpc.app SET lease_time = coalesce($2, lease_time),"
				 "       max_attempts = coalesce($3, max_attempts),"
				 "       result_ttl = coalesce($4, result_ttl),"
				 "       request_ttl = coalesce($5, request_ttl)"
				 " WHERE app = $1",
				 5, argtypes);
	plan_run(plan_configure, values, nulls, 0);
	app_changed();
}

/* Has this database's syrpc the grant table (1.4 on)? */
bool
store_has_grants(void)
{
	Oid			nsp = get_namespace_oid("syrpc", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("app_grant", nsp));
}

/*
 * The grants of app (or "*"), from the cache or syrpc.app_grant.  Roles
 * are stored by name; one that does not exist (dropped, renamed) grants
 * nothing.
 */
const SyrpcAccess *
store_load_access(const char *app)
{
	const SyrpcAccess *acc = app_access_get(app);
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	List	   *callers = NIL;
	List	   *workers = NIL;
	uint64		n;

	if (acc != NULL)
		return acc;
	values[0] = CStringGetTextDatum(app);
	plan_prepare(&plan_load_access,
				 "SELECT role::text, side = 'caller' FROM syrpc.app_grant WHERE app = $1",
				 1, argtypes);
	n = plan_run(plan_load_access, values, NULL, 0);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *role = TextDatumGetCString(result_row_col(i, 1, &isnull));
		bool		caller = DatumGetBool(result_row_col(i, 2, &isnull));
		Oid			roleid = get_role_oid(role, true);

		if (!OidIsValid(roleid))
			continue;
		if (caller)
			callers = lappend_oid(callers, roleid);
		else
			workers = lappend_oid(workers, roleid);
	}
	SPI_freetuptable(SPI_tuptable);
	acc = app_access_put(app, n > 0, callers, workers);
	list_free(callers);
	list_free(workers);
	return acc;
}

/* The parameters of a statement on one grant: app, role, side. */
static Oid	grant_argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};

static void
grant_args(Datum *values, text *app, const char *role, SyrpcSide side)
{
	values[0] = PointerGetDatum(app);
	values[1] = CStringGetTextDatum(role);
	values[2] = CStringGetTextDatum(side_name(side));
}

/* Grant role the side of app ("*": all apps without grants of their own). */
void
store_grant(text *app, const char *role, SyrpcSide side)
{
	Datum		values[3];

	grant_args(values, app, role, side);
	plan_prepare(&plan_grant,
				 "INSERT INTO syrpc.app_grant (app, role, side)"
				 " SELECT $1, $2, $3 WHERE NOT EXISTS"
				 "       (SELECT FROM syrpc.app_grant"
				 "         WHERE app = $1 AND role = $2 AND side = $3)",
				 3, grant_argtypes);
	plan_run(plan_grant, values, NULL, 0);
	app_changed();
}

/* Take back a grant; returns how many rows went (0 or 1). */
int64
store_revoke(text *app, const char *role, SyrpcSide side)
{
	Datum		values[3];
	int64		n;

	grant_args(values, app, role, side);
	plan_prepare(&plan_revoke,
				 "DELETE FROM syrpc.app_grant WHERE app = $1 AND role = $2 AND side = $3",
				 3, grant_argtypes);
	n = plan_run(plan_revoke, values, NULL, 0);
	app_changed();
	return n;
}

/* Run a saved count(*) of one app's rows. */
static int64
count_of_app(SPIPlanPtr *plan, const char *sql, text *app)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {PointerGetDatum(app)};
	int64		n;

	plan_prepare(plan, sql, 1, argtypes);
	plan_run(*plan, values, NULL, 1);
	n = DatumGetInt64(result_col_notnull(1));
	SPI_freetuptable(SPI_tuptable);
	return n;
}

/* How many grants app has of its own, read now (not from the cache). */
int64
store_count_grants(text *app)
{
	return count_of_app(&plan_count_grants,
						"SELECT count(*) FROM syrpc.app_grant WHERE app = $1", app);
}

/* How many requests of app are queued, in flight or failed. */
int64
store_count_requests(text *app)
{
	return count_of_app(&plan_count_requests,
						"SELECT count(*) FROM syrpc.request WHERE app = $1", app);
}

/*
 * Delete app: its requests, results, grants and settings; returns the
 * number of requests and results deleted.
 */
int64
store_drop_app(text *app)
{
	static const char *const sql[4] = {
		"DELETE FROM syrpc.request WHERE app = $1",
		"DELETE FROM syrpc.result WHERE app = $1",
		"DELETE FROM syrpc.app_grant WHERE app = $1",
		"DELETE FROM syrpc.app WHERE app = $1",
	};
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {PointerGetDatum(app)};
	int64		n = 0;

	for (int i = 0; i < 4; i++)
	{
		plan_prepare(&plan_drop_app[i], sql[i], 1, argtypes);
		if (i < 2)
			n += plan_run(plan_drop_app[i], values, NULL, 0);
		else
			plan_run(plan_drop_app[i], values, NULL, 0);
	}
	app_changed();
	return n;
}
