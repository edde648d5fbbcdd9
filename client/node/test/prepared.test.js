'use strict';
/*
 * The setting prepared: each statement prepared once per connection and
 * run by name, again after DEALLOCATE ALL / DISCARD ALL dropped it; the
 * probe never; off by default.  Pools of one connection (kept while idle),
 * so that the session the calls ran on is the one looked at.
 */
const test = require('node:test');
const assert = require('node:assert/strict');
const pg = require('pg');
const syrpc = require('..');
const { appName, closeAdmin } = require('./helpers');

test.after(closeAdmin);

/* A pool of one connection that stays open while idle. */
function onePool(app) {
  const pool = new pg.Pool({ max: 1, idleTimeoutMillis: 0, application_name: app });
  pool.on('error', () => {});
  return pool;
}

/* Run text on the pool's one session; resolves with its rows and the session's pid. */
async function onSession(pool, text) {
  const c = await pool.connect();
  try {
    const { rows } = await c.query(text);
    const [{ pid }] = (await c.query('SELECT pg_backend_pid() AS pid')).rows;
    assert.equal(pool.totalCount, 1, 'the pool has one connection');
    return { rows, pid };
  } finally {
    c.release();
  }
}

/* syrpc's statements prepared on the pool's session: [{name, statement}], and its pid. */
function preparedOn(pool) {
  return onSession(pool, "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'syrpc%' ORDER BY name");
}

/* A Client and a Server of a new app, each on a pool of one connection (left open by close, ended after fn). */
async function withApp(what, settings, fn) {
  const app = appName(what);
  const cpool = onePool(app), spool = onePool(app);
  const client = new syrpc.Client({ app_name: app, pool: cpool, ...settings });
  const server = new syrpc.Server({ app_name: app, pool: spool, ...settings });
  try {
    await fn({ client, server, cpool, spool });
  } finally {
    await client.close();
    await server.close();
    await cpool.end();
    await spool.end();
  }
}

/* n RPCs by putRequest, getRequest, putResult and getResult. */
async function putGet(client, server, n, tag) {
  for (let i = 0; i < n; i++) {
    const id = await client.putRequest('echo', { tag, i });
    const req = await server.getRequest(5000);
    assert.equal(req.result_id, id);
    await server.putResult(id, req.data);
    assert.deepEqual(await client.getResult(id, 5000), { result_id: id, data: { tag, i } });
  }
}

test('prepared: must be true or false', () => {
  for (const v of ['yes', 1, null])
    assert.throws(() => new syrpc.Client({ app_name: 'p', prepared: v }), (e) => e instanceof syrpc.BadInputError && /prepared/.test(e.message));
  for (const v of [true, false, undefined])
    new syrpc.Client({ app_name: 'p', prepared: v, host: '/nonexistent-dir' }).close();
});

test('prepared: put + get RPCs work, each statement prepared once per session, the probe not', async () => {
  await withApp('prep', { prepared: true }, async ({ client, server, cpool, spool }) => {
    await client.init();
    await server.init();
    assert.deepEqual((await preparedOn(cpool)).rows, [], 'the probe is not prepared');
    await putGet(client, server, 3, 'a');
    const c1 = await preparedOn(cpool), s1 = await preparedOn(spool);
    /* the client: syrpc_put_request and syrpc_wait_result; the server: its wait and syrpc_put_result */
    assert.equal(c1.rows.length, 2, JSON.stringify(c1.rows));
    assert.ok(c1.rows.some((r) => /syrpc_put_request/.test(r.statement)) && c1.rows.some((r) => /syrpc_wait_result/.test(r.statement)));
    assert.ok(s1.rows.length >= 2, JSON.stringify(s1.rows));
    assert.ok(s1.rows.some((r) => /syrpc_put_result/.test(r.statement)));
    for (const r of [...c1.rows, ...s1.rows])
      assert.match(r.name, /^syrpc_[0-9a-f]{16}$/);
    /* further calls on the same sessions prepare nothing more */
    await putGet(client, server, 5, 'b');
    const c2 = await preparedOn(cpool), s2 = await preparedOn(spool);
    assert.equal(c2.pid, c1.pid, 'the same session');
    assert.equal(s2.pid, s1.pid, 'the same session');
    assert.deepEqual(c2.rows, c1.rows);
    assert.deepEqual(s2.rows, s1.rows);
    /* call: one more statement (syrpc_call) on the client's session, once */
    const served = server.serve({ echo: async (d) => d });
    for (let i = 0; i < 3; i++)
      assert.deepEqual(await client.call('echo', { i }, { timeoutMs: 10000 }), { i });
    const c3 = await preparedOn(cpool);
    assert.equal(c3.pid, c1.pid);
    assert.equal(c3.rows.length, 3, JSON.stringify(c3.rows));
    assert.ok(c3.rows.some((r) => /syrpc_call/.test(r.statement)));
    await server.close();
    await served;
  });
});

test('prepared: after DEALLOCATE ALL or DISCARD ALL on the session the next calls prepare again and work', async () => {
  await withApp('dealloc', { prepared: true }, async ({ client, server, cpool, spool }) => {
    await putGet(client, server, 2, 'before');
    const c0 = await preparedOn(cpool), s0 = await preparedOn(spool);
    assert.ok(c0.rows.length > 0 && s0.rows.length > 0);
    for (const drop of ['DEALLOCATE ALL', 'DISCARD ALL']) {
      for (const pool of [cpool, spool]) {
        await onSession(pool, drop);
        assert.deepEqual((await preparedOn(pool)).rows, [], `${drop} dropped them`);
      }
      /* every statement meets 26000 once and is prepared again: the calls see nothing of it */
      await putGet(client, server, 2, drop);
      const c = await preparedOn(cpool), s = await preparedOn(spool);
      assert.equal(c.pid, c0.pid, 'the same session, not a new connection');
      assert.equal(s.pid, s0.pid, 'the same session, not a new connection');
      assert.deepEqual(c.rows, c0.rows);
      assert.deepEqual(s.rows, s0.rows);
    }
  });
});

test('prepared: the same statement has the same name on every connection', async () => {
  await withApp('same', { prepared: true }, async ({ client: c1, cpool: p1 }) => {
    await withApp('same', { prepared: true }, async ({ client: c2, cpool: p2 }) => {
      await c1.putRequest('x', 1);
      await c2.putRequest('x', 2);
      const a = await preparedOn(p1), b = await preparedOn(p2);
      assert.notEqual(a.pid, b.pid);
      assert.equal(a.rows.length, 1);
      assert.deepEqual(a.rows, b.rows);
    });
  });
});

test('prepared: off by default (and with prepared: false), no statement prepared', async () => {
  for (const settings of [{}, { prepared: false }]) {
    await withApp('unprep', settings, async ({ client, server, cpool, spool }) => {
      await putGet(client, server, 3, 'off');
      assert.deepEqual((await preparedOn(cpool)).rows, []);
      assert.deepEqual((await preparedOn(spool)).rows, []);
    });
  }
});
