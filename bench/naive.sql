-- The naive baseline: an RPC queue the way a team without syrpc would write
-- it: two plain tables, a SKIP LOCKED claim that deletes the request, and
-- LISTEN/NOTIFY wake-ups: one channel for requests, and 64 result channels,
-- each caller listening on one and naming it in its requests (reply-to).
DROP TABLE IF EXISTS naive_request, naive_result, floor_insert;
CREATE TABLE naive_request (id bigserial PRIMARY KEY, result_id uuid NOT NULL, reply_to int NOT NULL, data jsonb NOT NULL);
CREATE TABLE naive_result (result_id uuid PRIMARY KEY, data jsonb NOT NULL);
-- The floor: a single-row INSERT of a small jsonb.
CREATE TABLE floor_insert (id bigserial PRIMARY KEY, data jsonb NOT NULL);
