/*-------------------------------------------------------------------------
 *
 * apps.c
 *	  The per-backend cache of app settings and grants, so that a call need
 *	  not read syrpc.app and syrpc.app_grant (the statements that read and
 *	  create apps are in store.c).
 *
 * syrpc_configure, syrpc_grant, syrpc_revoke and syrpc_drop_app send a
 * relcache invalidation for syrpc.app at commit (app_changed), which
 * empties the cache of every backend; so does
 * dropping the table, a change to any role (grants name roles, the cache
 * holds their oids), and so does the abort of a transaction that created
 * an app (its settings were cached, its row is gone).  Each emptying of
 * the settings counts a generation, so that answers computed from them
 * (the next look time of store.c) can tell that they are stale.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "syrpc_internal.h"

typedef struct AppCacheEntry
{
	char		name[NAMEDATALEN];	/* app names are at most 63 bytes */
	SyrpcApp	settings;
} AppCacheEntry;

typedef struct AccessCacheEntry
{
	char		name[NAMEDATALEN];	/* an app, or "*" */
	SyrpcAccess access;
} AccessCacheEntry;

static HTAB *app_cache = NULL;
static HTAB *access_cache = NULL;
static MemoryContext access_cxt = NULL; /* the lists of access_cache */
static Oid	app_relid = InvalidOid; /* syrpc.app, while a cache is there */
static uint64 generation = 1;

/* Did this transaction create an app?  Then an abort empties the cache. */
static bool created = false;

/* Forget the cached grants. */
static void
forget_access(void)
{
	if (access_cache != NULL)
	{
		hash_destroy(access_cache);
		access_cache = NULL;
		MemoryContextReset(access_cxt);
	}
}

static void
app_cache_invalidate(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != app_relid)
		return;
	generation++;
	if (app_cache != NULL)
	{
		hash_destroy(app_cache);
		app_cache = NULL;
	}
	forget_access();
	app_relid = InvalidOid;
}

/*
 * A role changed (made, dropped, renamed): grants name roles, and the
 * cache holds the oids they named, so it is made again.
 */
static void
access_roles_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	forget_access();
}

static void
apps_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT && created)
		app_cache_invalidate((Datum) 0, InvalidOid);
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT)
		created = false;
}

void
apps_init(void)
{
	CacheRegisterRelcacheCallback(app_cache_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, access_roles_invalidate, (Datum) 0);
	RegisterXactCallback(apps_xact_callback, NULL);
}

/* The cached settings of app name, if there are any. */
bool
app_cache_get(const char *name, SyrpcApp *settings)
{
	AppCacheEntry *e;

	if (app_cache == NULL)
		return false;
	e = hash_search(app_cache, name, HASH_FIND, NULL);
	if (e == NULL)
		return false;
	*settings = e->settings;
	return true;
}

void
app_cache_put(const char *name, const SyrpcApp *settings)
{
	AppCacheEntry *e;
	bool		found;

	if (app_cache == NULL)
	{
		HASHCTL		ctl;

		if (app_relid == InvalidOid)
			app_relid = get_relname_relid("app", get_namespace_oid("syrpc", false));
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(AppCacheEntry);
		app_cache = hash_create("syrpc app settings", 16, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	e = hash_search(app_cache, name, HASH_ENTER, &found);
	e->settings = *settings;
}

/* The cached grants of app name (or "*"), if there are any. */
const SyrpcAccess *
app_access_get(const char *name)
{
	AccessCacheEntry *e;

	if (access_cache == NULL)
		return NULL;
	e = hash_search(access_cache, name, HASH_FIND, NULL);
	return e != NULL ? &e->access : NULL;
}

/* Cache the grants of app name; the lists are copied. */
const SyrpcAccess *
app_access_put(const char *name, bool has_grants, List *callers, List *workers)
{
	AccessCacheEntry *e;
	MemoryContext old;

	if (access_cache == NULL)
	{
		HASHCTL		ctl;

		if (access_cxt == NULL)
			access_cxt = AllocSetContextCreate(CacheMemoryContext, "syrpc grants",
											   ALLOCSET_SMALL_SIZES);
		if (app_relid == InvalidOid)
			app_relid = get_relname_relid("app", get_namespace_oid("syrpc", false));
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(AccessCacheEntry);
		access_cache = hash_create("syrpc grants", 16, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	e = hash_search(access_cache, name, HASH_ENTER, NULL);
	old = MemoryContextSwitchTo(access_cxt);
	e->access.has_grants = has_grants;
	e->access.callers = list_copy(callers);
	e->access.workers = list_copy(workers);
	MemoryContextSwitchTo(old);
	return &e->access;
}

/* This transaction creates an app: if it aborts, forget what was cached. */
void
app_created(void)
{
	created = true;
}

/* Make every backend forget cached app settings when this transaction commits. */
void
app_changed(void)
{
	Oid			relid = get_relname_relid("app", get_namespace_oid("syrpc", false));

	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
}

/* Changes each time cached settings are forgotten. */
uint64
app_generation(void)
{
	return generation;
}
