-- Results live in 64 hash partitions of syrpc.result; a statement on one
-- result touches one partition.

SELECT count(*) AS partitions,
       count(*) FILTER (WHERE pg_get_expr(c.relpartbound, c.oid) ILIKE '%modulus 64,%') AS modulus_64
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'syrpc.result'::regclass;

-- syrpc_bucket computes the partition the way PostgreSQL routes rows:
-- rows inserted through the parent land where syrpc_bucket says.
INSERT INTO syrpc.result (result_id, app, data, created_at, expires_at)
SELECT gen_random_uuid(), 'routing', '{}', now(), now() + '1 hour'
  FROM generate_series(1, 2000);
SELECT count(*) AS rows,
       count(*) FILTER (WHERE tableoid::regclass::text
                        <> 'syrpc.result_' || lpad(syrpc_bucket(result_id)::text, 2, '0')) AS misrouted,
       count(DISTINCT tableoid) AS partitions_used
  FROM syrpc.result WHERE app = 'routing';
DELETE FROM syrpc.result WHERE app = 'routing';

SELECT syrpc_bucket('00000000-0000-0000-0000-000000000001') AS bucket;

-- syrpc's own statements on one result go straight to its partition, not
-- through the parent: inside the transaction of a call, the only
-- partition of syrpc.result this backend has locked is the one
-- syrpc_bucket names.  The parent is not locked at all: syrpc reads and
-- writes a result's row by its primary key without a plan
-- (store_direct.c); a plan that names the partition would lock the parent
-- in AccessShareLock for its constraint, a write through the parent in
-- RowExclusiveLock.
-- (Cleanup, a DELETE through the parent, would lock all 64: it is turned
-- off here.)
SET syrpc.cleanup_interval = 0;
PREPARE result_locks(uuid) AS
SELECT count(DISTINCT relation) FILTER (WHERE relation <> 'syrpc.result'::regclass) AS partitions_locked,
       coalesce(bool_and(relation::regclass::text = 'syrpc.result_' || lpad(syrpc_bucket($1)::text, 2, '0'))
                FILTER (WHERE relation <> 'syrpc.result'::regclass), false) AS its_bucket,
       coalesce(string_agg(DISTINCT mode, ', ') FILTER (WHERE relation = 'syrpc.result'::regclass), 'none') AS parent_locked
  FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'relation'
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND (relation = 'syrpc.result'::regclass
        OR relation IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'syrpc.result'::regclass));

-- A put_result lands in its bucket's partition, and touches no other.
SELECT syrpc_put_request('part', 't', '{}') AS rid \gset
SELECT count(*) FROM syrpc_get_request('part', 0);
BEGIN;
SELECT syrpc_put_result('part', :'rid', '{"n": 1}');
EXECUTE result_locks(:'rid');
COMMIT;
SELECT tableoid::regclass::text = 'syrpc.result_' || lpad(syrpc_bucket(:'rid')::text, 2, '0')
       AS in_its_partition
  FROM syrpc.result WHERE result_id = :'rid';

-- A get_result that takes a present result touches its partition only
-- (here in its row, as without preload: a take kept in shared memory,
-- marks.c, only reads the partition, and does not lock the parent).
SET syrpc.memory_leases = off;
BEGIN;
SELECT syrpc_get_result('part', :'rid', 0);
EXECUTE result_locks(:'rid');
COMMIT;
RESET syrpc.memory_leases;

-- The check would see a statement through the parent: a generic plan on
-- syrpc.result locks the parent and all 64 partitions before it prunes,
-- a write through it the parent in RowExclusiveLock.
PREPARE through_parent(uuid) AS SELECT count(*) FROM syrpc.result WHERE result_id = $1;
BEGIN;
SET LOCAL plan_cache_mode = force_generic_plan;
EXECUTE through_parent(:'rid');
EXECUTE result_locks(:'rid');
ROLLBACK;
BEGIN;
UPDATE syrpc.result SET data = data WHERE result_id = :'rid';
EXECUTE result_locks(:'rid');
ROLLBACK;
DEALLOCATE through_parent;
DEALLOCATE result_locks;
RESET syrpc.cleanup_interval;

-- A lookup by result_id on the parent prunes to one partition, at plan
-- time with a constant ...
EXPLAIN (COSTS OFF)
SELECT data FROM syrpc.result WHERE result_id = '00000000-0000-0000-0000-000000000001';
EXPLAIN (COSTS OFF)
DELETE FROM syrpc.result WHERE result_id = '00000000-0000-0000-0000-000000000001';

-- ... and at run time in a generic plan with a parameter.
PREPARE lookup(uuid) AS SELECT data FROM syrpc.result WHERE result_id = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE lookup('00000000-0000-0000-0000-000000000001');
RESET plan_cache_mode;
DEALLOCATE lookup;
