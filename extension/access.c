/*-------------------------------------------------------------------------
 *
 * access.c
 *	  Who may use which app: the one check every SQL entry point goes
 *	  through, and the switch to the extension's owner that lets a call
 *	  touch syrpc's tables.
 *
 * PostgreSQL's privileges are per object and roles are per cluster; an app
 * is neither.  So syrpc keeps its own grants, per database, in
 * syrpc.app_grant (1.4): (app, role, side), side 'caller' or 'worker', app
 * '*' for every app of the database that has no grants of its own.  A
 * role may use an app on one side if it has the privileges of a role
 * granted that side of the app (or, for an app without grants, of all
 * apps), or of the extension's owner.  Membership is PostgreSQL's
 * (has_privs_of_role), so GRANT ... TO works as users expect; roles are
 * named, as in pg_hba.conf, so that grants survive pg_dump and restore
 * into another cluster.
 *
 * The entry points are not SECURITY DEFINER (since 1.4): a definer
 * function could not tell who called it.  They run as the caller until
 * become_owner, which remembers the caller, switches to the owner of the
 * function (the extension's owner) and pins search_path, as a SECURITY
 * DEFINER function with SET search_path would; an error on the way
 * restores both with the (sub)transaction.  Against the SQL objects of
 * 1.0 - 1.3, which are SECURITY DEFINER and have no grant table, the
 * caller seen here is the owner, and EXECUTE decides alone, as it did.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "syrpc_internal.h"

static const char *const side_names[] = {"caller", "worker"};

const char *
side_name(SyrpcSide side)
{
	return side_names[side];
}

/* The owner of the function being called, looked up once per call site. */
static Oid
function_owner(FunctionCallInfo fcinfo)
{
	Oid		   *cached = fcinfo->flinfo->fn_extra;
	HeapTuple	tup;
	Oid			owner;

	if (cached != NULL)
		return *cached;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);
	cached = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid));
	*cached = owner;
	fcinfo->flinfo->fn_extra = cached;
	return owner;
}

/*
 * Run as the function's owner with search_path pinned, until
 * back_to_caller; as->caller is who called.
 */
void
become_owner(FunctionCallInfo fcinfo, SyrpcAsOwner *as)
{
	as->owner = function_owner(fcinfo);
	GetUserIdAndSecContext(&as->caller, &as->save_sec);
	SetUserIdAndSecContext(as->owner, as->save_sec | SECURITY_LOCAL_USERID_CHANGE);
	as->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
back_to_caller(SyrpcAsOwner *as)
{
	AtEOXact_GUC(true, as->nestlevel);
	SetUserIdAndSecContext(as->caller, as->save_sec);
}

/*
 * How an entry point that does not commit runs its work: as the owner,
 * inside an SPI connection of its own, until leave_as_owner.
 */
void
enter_as_owner(FunctionCallInfo fcinfo, SyrpcAsOwner *as)
{
	become_owner(fcinfo, as);
	SPI_connect();
}

void
leave_as_owner(SyrpcAsOwner *as)
{
	SPI_finish();
	back_to_caller(as);
}

/* Has the caller the privileges of the extension's owner? */
static bool
is_owner(const SyrpcAsOwner *as)
{
	return has_privs_of_role(as->caller, as->owner);
}

static bool
member_of_any(Oid role, List *roles)
{
	ListCell   *lc;

	foreach(lc, roles)
	{
		if (has_privs_of_role(role, lfirst_oid(lc)))
			return true;
	}
	return false;
}

/*
 * The grants that decide for app: its own, or if it has none those of all
 * apps ("*").  NULL before 1.4 (no grant table: EXECUTE decides).
 */
static const SyrpcAccess *
grants_for(text *app, bool *own)
{
	char		name[NAMEDATALEN];
	const SyrpcAccess *acc;

	if (!store_has_grants())
		return NULL;
	text_to_cstring_buffer(app, name, sizeof(name));
	acc = store_load_access(name);
	*own = acc->has_grants;
	if (!acc->has_grants)
		acc = store_load_access("*");
	return acc;
}

/*
 * May the caller use app on side?  Inside SPI, as the owner; changes
 * nothing.
 */
bool
may_use(const SyrpcAsOwner *as, text *app, SyrpcSide side)
{
	bool		own;
	const SyrpcAccess *acc = grants_for(app, &own);

	if (acc == NULL || is_owner(as))
		return true;
	return member_of_any(as->caller, side == SYRPC_CALLER ? acc->callers : acc->workers);
}

/*
 * Raise 42501 unless the caller may use app on side: before the call has
 * done anything, so that a refused call changes nothing.
 */
void
check_access(const SyrpcAsOwner *as, text *app, SyrpcSide side)
{
	bool		own = false;
	const SyrpcAccess *acc = grants_for(app, &own);
	char	   *appname;
	char	   *role;

	if (acc == NULL || is_owner(as) ||
		member_of_any(as->caller, side == SYRPC_CALLER ? acc->callers : acc->workers))
		return;
	appname = text_to_cstring(app);
	role = GetUserNameFromId(as->caller, false);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for app \"%s\"", appname),
			 own ?
			 errdetail("Role \"%s\" is not granted the %s side of app \"%s\", which has grants of its own.",
					   role, side_name(side), appname) :
			 errdetail("App \"%s\" has no grants of its own, and role \"%s\" is not granted the %s side of all apps (\"*\").",
					   appname, role, side_name(side)),
			 errhint("The extension's owner can grant it: SELECT syrpc_grant('%s', '%s', '%s');",
					 appname, role, side_name(side))));
}

/* Raise 42501 unless the caller has the privileges of the extension's owner. */
void
check_owner(const SyrpcAsOwner *as, const char *func)
{
	if (!is_owner(as))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s", func),
				 errdetail("Only the extension's owner (role \"%s\") may call it.",
						   GetUserNameFromId(as->owner, false))));
}
