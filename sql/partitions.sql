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

-- A put_result lands in its bucket's partition.
SELECT syrpc_put_request('part', 't', '{}') AS rid \gset
SELECT count(*) FROM syrpc_get_request('part', 0);
SELECT syrpc_put_result('part', :'rid', '{}');
SELECT tableoid::regclass::text = 'syrpc.result_' || lpad(syrpc_bucket(:'rid')::text, 2, '0')
       AS in_its_partition
  FROM syrpc.result WHERE result_id = :'rid';

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

-- syrpc's own statements address the partition directly: this is the
-- statement syrpc_get_result runs to take a result (bucket 45 shown).
EXPLAIN (COSTS OFF)
UPDATE syrpc.result_45 SET consumed_at = now()
 WHERE result_id = '00000000-0000-0000-0000-000000000001' AND app = 'part'
   AND consumed_at IS NULL AND expires_at > now()
RETURNING data;
