/*-------------------------------------------------------------------------
 *
 * module.c
 *	  The syrpc module: its magic block, _PG_init and the GUCs (syrpc.*).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "syrpc_internal.h"

SYRPC_EXPORTS_BEGIN
PG_MODULE_MAGIC;

void		_PG_init(void);
SYRPC_EXPORTS_END

int			syrpc_max_payload_kb = 1024;
int			syrpc_cleanup_interval_ms = 1000;
bool		syrpc_async_acks = true;
bool		syrpc_async_results = false;
bool		syrpc_notify = false;
bool		syrpc_create_apps = true;
bool		syrpc_track_stats = true;
bool		syrpc_call_deadline = false;
static bool syrpc_adopt_roles = false;
static char *syrpc_wakeup_registry = NULL;

/*
 * Define the GUCs and hook in.  Loaded by shared_preload_libraries, syrpc
 * keeps its waiter registry in its own shared memory; loaded by the first
 * call of a session, in the lock manager (wakeup_init).
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("syrpc.max_payload_size",
							"Largest request or result data accepted.",
							NULL,
							&syrpc_max_payload_kb,
							1024, 1, MAX_KILOBYTES / 2,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("syrpc.cleanup_interval",
							"How often a backend that puts requests or results "
							"also deletes expired ones; 0 turns that off.",
							NULL,
							&syrpc_cleanup_interval_ms,
							1000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.async_acks",
							 "Commit claims and taken results without waiting for "
							 "the WAL flush, when the call is its own transaction.",
							 "A claim lost in a crash only makes its request be "
							 "handed out again; a taken result lost in a crash "
							 "only makes it readable again.",
							 &syrpc_async_acks,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.async_results",
							 "Commit put results without waiting for the WAL flush, "
							 "when the call is its own transaction.",
							 "A result lost in a crash takes its request's "
							 "deletion with it: the request is handed out and "
							 "answered again, so nothing is lost, but the work "
							 "is done twice.",
							 &syrpc_async_results,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.notify",
							 "Also send NOTIFY syrpc_request (payload: the app) and "
							 "syrpc_result (payload: the result_id) when a put commits.",
							 "Only for clients that LISTEN instead of blocking in a "
							 "syrpc call; blocked calls are woken without it.  "
							 "NOTIFY takes a cluster-wide lock at commit.",
							 &syrpc_notify,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.create_apps",
							 "Create an app on the first request put for it.",
							 "Off: only syrpc_configure creates apps, and a request "
							 "for an unknown app is refused.",
							 &syrpc_create_apps,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.track_stats",
							 "Count requests and latencies per app (syrpc_stats_latency), "
							 "when syrpc is preloaded.",
							 NULL,
							 &syrpc_track_stats,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.adopt_roles",
							 "Let CREATE EXTENSION use existing roles syrpc_caller and "
							 "syrpc_worker that syrpc did not make.",
							 "It grants them every app of the database.",
							 &syrpc_adopt_roles,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("syrpc.wakeup_registry",
							   "Where blocked calls register to be woken: "
							   "shared_memory when syrpc is in "
							   "shared_preload_libraries, else lock_manager.",
							   NULL,
							   &syrpc_wakeup_registry,
							   process_shared_preload_libraries_in_progress ?
							   "shared_memory" : "lock_manager",
							   PGC_INTERNAL, 0,
							   NULL, NULL, NULL);
	/* the slots' size is fixed at start: only when preloaded */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("syrpc.memory_payload_limit",
								"Largest request data that syrpc_call passes to a worker "
								"through shared memory, when syrpc is preloaded; 0 turns "
								"in-memory calls off.",
								"Each backend has a slot of this size.  Larger requests, "
								"and calls without it, take the table path; an answer "
								"larger than it is stored as a result row.",
								&syrpc_memory_payload_kb,
								8, 0, 1024,
								PGC_POSTMASTER, GUC_UNIT_KB,
								NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.memory_calls",
							 "Let syrpc_call pass requests and answers through shared "
							 "memory while both sides are there, when syrpc is preloaded.",
							 "Off: every call writes its request to syrpc.request.",
							 &syrpc_memory_calls,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("syrpc.call_deadline",
							 "Make syrpc_call's timeout the deadline of its request too (1.7).",
							 "On: a request that no worker has claimed when its call times "
							 "out is never run, and a later syrpc_get_result raises SY002.",
							 &syrpc_call_deadline,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	marks_init(process_shared_preload_libraries_in_progress);
	MarkGUCPrefixReserved("syrpc");
	wakeup_init(process_shared_preload_libraries_in_progress);
	stats_init(process_shared_preload_libraries_in_progress);
	handoff_init(process_shared_preload_libraries_in_progress);
	commit_init();
	apps_init();
	store_init();
}
