/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Counters and latency histograms per app, in shared memory when syrpc
 *	  is preloaded (syrpc.app_metrics, the view syrpc_stats_latency).
 *
 * Each app of each database that the cluster has seen (up to
 * SYRPC_STATS_APPS; later ones are not counted) has an entry in a shared
 * hash table: four counters since the server started (requests put,
 * answered, failed, expired) and, for three latencies (queue wait: put to
 * claim; service: claim to answer; round trip: put to result taken), a
 * ring of SYRPC_STATS_WINDOWS histograms of SYRPC_STATS_WINDOW_US each,
 * which together cover the last minute.
 *
 * Cheap on the hot path: a call notes what to count in its transaction
 * (stats_count, stats_latency), and the commit adds it with atomics; the
 * app's entry is looked up once per backend (under a shared LWLock held
 * for the lookup only) and its pointer kept.  An abort (or a rolled back
 * subtransaction) counts nothing, as the rows it made never were.  Entries
 * are made under the lock in exclusive mode and never move or go.
 *
 * A histogram belongs to the window named in its epoch.  The first writer
 * of a new window moves the epoch with a compare-and-swap and clears the
 * bins; a sample added by another writer meanwhile may be lost, and a
 * reader may see a window half cleared: these are statistics, and no lock
 * is worth that on every RPC.  Bins are logarithmic, four per octave of
 * microseconds (a percentile is within 10% of the true value).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "syrpc_internal.h"

#define SYRPC_STATS_APPS		1024
#define SYRPC_STATS_WINDOWS		6
#define SYRPC_STATS_WINDOW_US	(10 * USECS_PER_SEC)
#define SYRPC_STATS_BINS		112 /* 4 per octave: up to 2^28 us, 268 s */

typedef struct StatsKey
{
	Oid			dbid;
	char		app[NAMEDATALEN];
} StatsKey;

typedef struct StatsHist
{
	pg_atomic_uint64 epoch;		/* the window it counts: now / WINDOW_US */
	pg_atomic_uint32 bins[SYRPC_STATS_BINS];
} StatsHist;

typedef struct StatsEntry
{
	StatsKey	key;
	pg_atomic_uint64 counters[SYRPC_STAT_COUNTERS];
	StatsHist	hist[SYRPC_LATENCIES][SYRPC_STATS_WINDOWS];
} StatsEntry;

static HTAB *stats_hash = NULL;
static LWLock *stats_lock = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
stats_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(hash_estimate_size(SYRPC_STATS_APPS, sizeof(StatsEntry)));
	RequestNamedLWLockTranche("syrpc stats", 1);
}

static void
stats_shmem_startup(void)
{
	HASHCTL		ctl;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ctl.keysize = sizeof(StatsKey);
	ctl.entrysize = sizeof(StatsEntry);
	stats_hash = ShmemInitHash("syrpc stats", SYRPC_STATS_APPS, SYRPC_STATS_APPS,
							   &ctl, HASH_ELEM | HASH_BLOBS);
	stats_lock = &(GetNamedLWLockTranche("syrpc stats"))->lock;
	LWLockRelease(AddinShmemInitLock);
}

/* What a transaction will count when it commits. */
typedef struct PendingStat
{
	char		app[NAMEDATALEN];
	StatsEntry *entry;			/* looked up when noted: the commit only adds */
	SyrpcStatCounter counter;	/* or SYRPC_STAT_NONE */
	int64		count;
	SyrpcLatency latency;		/* or SYRPC_LAT_NONE */
	int64		us;
	TimestampTz at;
	SubTransactionId subid;
} PendingStat;

static List *pending_stats = NIL;

/*
 * Entries never move or go, and a backend stays in its database: so each
 * backend keeps the pointers it looked up, and the commit of an RPC takes
 * no lock at all once its app has been seen.
 */
typedef struct LocalEntry
{
	char		app[NAMEDATALEN];
	StatsEntry *entry;
} LocalEntry;

static HTAB *local_entries = NULL;

/* The entry of app in this database, made if need be; NULL if full. */
static StatsEntry *
entry_of(const char *app)
{
	StatsKey	key;
	StatsEntry *e;
	bool		found;
	LocalEntry *local;

	if (local_entries == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(LocalEntry);
		local_entries = hash_create("syrpc stats entries", 16, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	local = hash_search(local_entries, app, HASH_FIND, NULL);
	if (local != NULL)
		return local->entry;

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	strlcpy(key.app, app, sizeof(key.app));
	LWLockAcquire(stats_lock, LW_SHARED);
	e = hash_search(stats_hash, &key, HASH_FIND, NULL);
	LWLockRelease(stats_lock);
	if (e != NULL)
		goto remember;
	LWLockAcquire(stats_lock, LW_EXCLUSIVE);
	e = hash_search(stats_hash, &key, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
	{
		for (int i = 0; i < SYRPC_STAT_COUNTERS; i++)
			pg_atomic_init_u64(&e->counters[i], 0);
		for (int l = 0; l < SYRPC_LATENCIES; l++)
			for (int w = 0; w < SYRPC_STATS_WINDOWS; w++)
			{
				pg_atomic_init_u64(&e->hist[l][w].epoch, 0);
				for (int b = 0; b < SYRPC_STATS_BINS; b++)
					pg_atomic_init_u32(&e->hist[l][w].bins[b], 0);
			}
	}
	LWLockRelease(stats_lock);
	if (e == NULL)
		return NULL;			/* full: look again next time */
remember:
	local = hash_search(local_entries, app, HASH_ENTER, &found);
	local->entry = e;
	return e;
}

static int
bin_of(int64 us)
{
	int			b;

	if (us < 1)
		return 0;
	b = (int) (4.0 * log2((double) us));
	return Min(Max(b, 0), SYRPC_STATS_BINS - 1);
}

/* The middle of bin b, in milliseconds. */
static double
bin_ms(int b)
{
	return pow(2.0, (b + 0.5) / 4.0) / 1000.0;
}

static void
hist_add(StatsHist *ring, TimestampTz at, int64 us)
{
	uint64		epoch = (uint64) (at / SYRPC_STATS_WINDOW_US);
	StatsHist  *h = &ring[epoch % SYRPC_STATS_WINDOWS];
	uint64		seen = pg_atomic_read_u64(&h->epoch);

	if (seen != epoch && pg_atomic_compare_exchange_u64(&h->epoch, &seen, epoch))
		for (int b = 0; b < SYRPC_STATS_BINS; b++)
			pg_atomic_write_u32(&h->bins[b], 0);
	pg_atomic_fetch_add_u32(&h->bins[bin_of(us)], 1);
}

/* Add what a committed transaction counted: no lookup, no allocation, no error. */
static void
apply(PendingStat *p)
{
	StatsEntry *e = p->entry;

	if (p->counter != SYRPC_STAT_NONE)
		pg_atomic_fetch_add_u64(&e->counters[p->counter], (uint64) p->count);
	if (p->latency != SYRPC_LAT_NONE)
		hist_add(e->hist[p->latency], p->at, p->us);
}

/* The entry of app when stats are counted (NULL: not preloaded, off, or the table is full). */
static StatsEntry *
entry_to_count(text *app, char *name)
{
	if (stats_hash == NULL || !syrpc_track_stats)
		return NULL;
	text_to_cstring_buffer(app, name, NAMEDATALEN);
	return entry_of(name);
}

static void
remember(text *app, SyrpcStatCounter counter, int64 count, SyrpcLatency latency, int64 us)
{
	MemoryContext old;
	PendingStat *p;
	SubTransactionId sub = GetCurrentSubTransactionId();
	char		name[NAMEDATALEN];
	ListCell   *lc;
	StatsEntry *entry;

	if ((entry = entry_to_count(app, name)) == NULL)
		return;
	if (latency == SYRPC_LAT_NONE)
	{
		/* plain counts of one app and subtransaction add up */
		foreach(lc, pending_stats)
		{
			p = lfirst(lc);
			if (p->latency == SYRPC_LAT_NONE && p->counter == counter && p->subid == sub &&
				strcmp(p->app, name) == 0)
			{
				p->count += count;
				return;
			}
		}
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	p = palloc(sizeof(PendingStat));
	strlcpy(p->app, name, sizeof(p->app));
	p->entry = entry;
	p->counter = counter;
	p->count = count;
	p->latency = latency;
	p->us = us;
	p->at = GetCurrentTimestamp();
	p->subid = sub;
	pending_stats = lappend(pending_stats, p);
	MemoryContextSwitchTo(old);
}

/* Count n of counter for app when this transaction commits. */
void
stats_count(text *app, SyrpcStatCounter counter, int64 n)
{
	remember(app, counter, n, SYRPC_LAT_NONE, 0);
}

/* Count a sample of latency (microseconds) for app when this transaction commits. */
void
stats_latency(text *app, SyrpcLatency latency, int64 us)
{
	remember(app, SYRPC_STAT_NONE, 0, latency, us);
}

/*
 * Count n of counter for app now, whatever becomes of the transaction:
 * for an outcome reported by the error that aborts it (an in-memory call
 * that failed or expired).
 */
void
stats_count_now(text *app, SyrpcStatCounter counter, int64 n)
{
	char		name[NAMEDATALEN];
	StatsEntry *e = entry_to_count(app, name);

	if (e != NULL)
		pg_atomic_fetch_add_u64(&e->counters[counter], (uint64) n);
}

static void
stats_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (pending_stats == NIL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			foreach(lc, pending_stats)
				apply(lfirst(lc));
			pending_stats = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			pending_stats = NIL;
			break;
		default:
			break;
	}
}

static void
stats_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	List	   *keep = NIL;
	ListCell   *lc;

	if (pending_stats == NIL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		foreach(lc, pending_stats)
		{
			PendingStat *p = lfirst(lc);

			if (p->subid < mySubid)
				keep = lappend(keep, p);
		}
		list_free(pending_stats);
		pending_stats = keep;
		MemoryContextSwitchTo(old);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_stats)
		{
			PendingStat *p = lfirst(lc);

			if (p->subid >= mySubid)
				p->subid = parentSubid;
		}
	}
}

/* From _PG_init: shared memory only when preloaded; the callbacks always. */
void
stats_init(bool preloaded)
{
	if (preloaded)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = stats_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = stats_shmem_startup;
	}
	RegisterXactCallback(stats_xact_callback, NULL);
	RegisterSubXactCallback(stats_subxact_callback, NULL);
}

/* Percentile q of the windows of ring that are within the last minute. */
static Datum
percentile(StatsHist *ring, uint64 now_epoch, double q, bool *isnull)
{
	uint64		sum[SYRPC_STATS_BINS] = {0};
	uint64		total = 0;
	uint64		want;
	uint64		seen = 0;

	for (int w = 0; w < SYRPC_STATS_WINDOWS; w++)
	{
		uint64		epoch = pg_atomic_read_u64(&ring[w].epoch);

		if (epoch + SYRPC_STATS_WINDOWS <= now_epoch || epoch > now_epoch)
			continue;
		for (int b = 0; b < SYRPC_STATS_BINS; b++)
		{
			uint32		n = pg_atomic_read_u32(&ring[w].bins[b]);

			sum[b] += n;
			total += n;
		}
	}
	*isnull = total == 0;
	if (total == 0)
		return (Datum) 0;
	want = (uint64) ceil(q * (double) total);
	for (int b = 0; b < SYRPC_STATS_BINS; b++)
	{
		seen += sum[b];
		if (seen >= want)
			return Float8GetDatum(bin_ms(b));
	}
	return Float8GetDatum(bin_ms(SYRPC_STATS_BINS - 1));
}

/*
 * syrpc.app_metrics() (1.4): a row per app of this database that has an
 * entry; none when syrpc is not preloaded.
 */
SYRPC_EXPORTS_BEGIN
PG_FUNCTION_INFO_V1(syrpc_app_metrics);
SYRPC_EXPORTS_END

Datum
syrpc_app_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	StatsEntry *e;
	uint64		now_epoch = (uint64) (GetCurrentTimestamp() / SYRPC_STATS_WINDOW_US);

	InitMaterializedSRF(fcinfo, 0);
	if (stats_hash == NULL)
		return (Datum) 0;
	LWLockAcquire(stats_lock, LW_SHARED);
	hash_seq_init(&seq, stats_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[12];
		bool		nulls[12] = {0};

		if (e->key.dbid != MyDatabaseId)
			continue;
		values[0] = CStringGetTextDatum(e->key.app);
		for (int i = 0; i < SYRPC_STAT_COUNTERS; i++)
			values[1 + i] = Int64GetDatum((int64) pg_atomic_read_u64(&e->counters[i]));
		values[5] = Int32GetDatum((int32) (SYRPC_STATS_WINDOWS * SYRPC_STATS_WINDOW_US / USECS_PER_SEC));
		for (int l = 0; l < SYRPC_LATENCIES; l++)
		{
			values[6 + 2 * l] = percentile(e->hist[l], now_epoch, 0.5, &nulls[6 + 2 * l]);
			values[7 + 2 * l] = percentile(e->hist[l], now_epoch, 0.99, &nulls[7 + 2 * l]);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(stats_lock);
	return (Datum) 0;
}
