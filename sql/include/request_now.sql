-- request_now: syrpc.request as a caller sees it, with the lease that a
-- claim keeps in shared memory when syrpc is preloaded (marks.c): such a
-- claim leaves the row as it is, so attempts and ready_at come from the
-- mark.  The same output with and without preload.  Not a test itself.
CREATE TEMP VIEW request_now AS
SELECT r.result_id, r.app, r.type, r.data, r.created_at, r.expires_at, r.failure,
       r.attempts + (m.lease_end IS NOT NULL)::int AS attempts,
       GREATEST(r.ready_at, m.lease_end) AS ready_at
  FROM syrpc.request r,
       LATERAL (SELECT syrpc.memory_lease(r.result_id, r.attempts) AS lease_end) m;
-- syrpc.result the same way: taken in shared memory, or in the row.
CREATE TEMP VIEW result_now AS
SELECT s.result_id, s.app, s.data, s.created_at, s.expires_at, s.requested_at,
       COALESCE(s.consumed_at,
                CASE WHEN syrpc.memory_taken(s.result_id) THEN '-infinity'::timestamptz END)
           IS NOT NULL AS taken
  FROM syrpc.result s;
