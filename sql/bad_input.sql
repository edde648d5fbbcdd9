-- Bad input gets a clear error with a proper SQLSTATE, and changes nothing.

\i sql/include/try.sql
\i sql/include/request_now.sql

-- Some work in the queues: one queued request, one leased, one answered
-- and waiting, one consumed, one in another app.
SELECT syrpc_put_request('bi', 't', '{"n": 1}') AS leased \gset
SELECT result_id = :'leased' AS claimed FROM syrpc_get_request('bi', 0);
SELECT syrpc_put_request('bi', 't', '{"n": 2}') AS answered \gset
SELECT result_id = :'answered' AS claimed FROM syrpc_get_request('bi', 0);
SELECT syrpc_put_result('bi', :'answered', '{"r": 2}');
SELECT syrpc_put_request('bi', 't', '{"n": 3}') AS consumed \gset
SELECT result_id = :'consumed' AS claimed FROM syrpc_get_request('bi', 0);
SELECT syrpc_put_result('bi', :'consumed', '{"r": 3}');
SELECT syrpc_get_result('bi', :'consumed', 0);
SELECT syrpc_put_request('bi', 't', '{"n": 4}') AS queued \gset
SELECT syrpc_put_request('other', 't', '{"n": 5}') AS other \gset

CREATE TABLE before AS
SELECT 'request' AS t, to_jsonb(r) AS row FROM request_now r
UNION ALL SELECT 'result', to_jsonb(s) FROM result_now s
UNION ALL SELECT 'app', to_jsonb(a) FROM syrpc.app a;

SET syrpc.max_payload_size = '1kB';

SELECT label, try(sql) AS outcome FROM (VALUES
  ('null app',           $$SELECT syrpc_put_request(NULL, 't', '{}')$$),
  ('empty app',          $$SELECT syrpc_put_request('', 't', '{}')$$),
  ('app of 64 bytes',    $$SELECT syrpc_put_request(repeat('a', 64), 't', '{}')$$),
  ('app with space',     $$SELECT syrpc_put_request('my app', 't', '{}')$$),
  ('app with quote',     $$SELECT syrpc_put_request('a"b', 't', '{}')$$),
  ('app with apostrophe',$$SELECT syrpc_put_request('a''b', 't', '{}')$$),
  ('app with newline',   $$SELECT syrpc_put_request(E'a\nb', 't', '{}')$$),
  ('app not ascii',      $$SELECT syrpc_put_request('äpp', 't', '{}')$$),
  ('null type',          $$SELECT syrpc_put_request('bi', NULL, '{}')$$),
  ('empty type',         $$SELECT syrpc_put_request('bi', '', '{}')$$),
  ('type with semicolon',$$SELECT syrpc_put_request('bi', 'a;drop', '{}')$$),
  ('null data',          $$SELECT syrpc_put_request('bi', 't', NULL)$$),
  ('data over limit',    $$SELECT syrpc_put_request('bi', 't', jsonb_build_object('x', repeat('x', 2000)))$$),
  ('result over limit',  format($$SELECT syrpc_put_result('bi', %L, jsonb_build_object('x', repeat('x', 2000)))$$, :'leased')),
  ('negative timeout',   $$SELECT * FROM syrpc_get_request('bi', -1)$$),
  ('NaN timeout',        $$SELECT * FROM syrpc_get_request('bi', 'NaN')$$),
  ('infinite timeout',   $$SELECT * FROM syrpc_get_request('bi', 'Infinity')$$),
  ('null app (get)',     $$SELECT * FROM syrpc_get_request(NULL, 0)$$),
  ('null result_id',     $$SELECT syrpc_get_result('bi', NULL, 0)$$),
  ('negative timeout (result)', format($$SELECT syrpc_get_result('bi', %L, -0.5)$$, :'answered')),
  ('unknown result_id',  $$SELECT syrpc_put_result('bi', '00000000-0000-0000-0000-000000000001', '{}')$$),
  ('not claimed yet',    format($$SELECT syrpc_put_result('bi', %L, '{}')$$, :'queued')),
  ('double put_result',  format($$SELECT syrpc_put_result('bi', %L, '{}')$$, :'answered')),
  ('put_result after consumed', format($$SELECT syrpc_put_result('bi', %L, '{}')$$, :'consumed')),
  ('put_result wrong app', format($$SELECT syrpc_put_result('other', %L, '{}')$$, :'leased')),
  ('get_result wrong app', format($$SELECT syrpc_get_result('other', %L, 0)$$, :'answered')),
  ('get_result wrong app, queued', format($$SELECT syrpc_get_result('bi', %L, 0)$$, :'other')),
  ('double get_result',  format($$SELECT syrpc_get_result('bi', %L, 0)$$, :'consumed')),
  ('null result data',   format($$SELECT syrpc_put_result('bi', %L, NULL)$$, :'leased')),
  ('zero lease',         $$SELECT syrpc_configure('bi', lease_time => '0')$$),
  ('negative result_ttl',$$SELECT syrpc_configure('bi', result_ttl => '-1 s')$$),
  ('zero max_attempts',  $$SELECT syrpc_configure('bi', max_attempts => 0)$$),
  ('bad app (configure)',$$SELECT syrpc_configure('b i')$$)
) AS t(label, sql);

RESET syrpc.max_payload_size;

-- Nothing changed.
SELECT count(*) AS changed_rows FROM (
    (SELECT * FROM before
     EXCEPT ALL
     (SELECT 'request', to_jsonb(r) FROM request_now r
      UNION ALL SELECT 'result', to_jsonb(s) FROM result_now s
      UNION ALL SELECT 'app', to_jsonb(a) FROM syrpc.app a))
    UNION ALL
    ((SELECT 'request', to_jsonb(r) FROM request_now r
      UNION ALL SELECT 'result', to_jsonb(s) FROM result_now s
      UNION ALL SELECT 'app', to_jsonb(a) FROM syrpc.app a)
     EXCEPT ALL SELECT * FROM before)
) d;

-- The errors in full, with detail and hint, for messages that carry them.
SELECT syrpc_put_request('my app', 't', '{}');
SELECT syrpc_put_request(repeat('a', 64), 't', '{}');
SET syrpc.max_payload_size = '1kB';
SELECT syrpc_put_request('bi', 't', jsonb_build_object('x', repeat('x', 2000)));
RESET syrpc.max_payload_size;
SELECT * FROM syrpc_get_request('bi', -1);
SELECT syrpc_put_result('bi', '00000000-0000-0000-0000-000000000001', '{}');
\set VERBOSITY terse
-- The queued and answered requests are still there to be served.
SELECT data FROM syrpc_get_request('bi', 0);
SELECT syrpc_get_result('bi', :'answered', 0);
DROP FUNCTION try(text);
