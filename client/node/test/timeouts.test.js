'use strict';
/* Timeouts, waits in slices, statement_timeout. */
const test = require('node:test');
const assert = require('node:assert/strict');
const syrpc = require('..');
const { later, appName, closeAdmin, queueState, waitFor } = require('./helpers');

test.after(closeAdmin);

test('getResult and getRequest time out with TimeoutError', async () => {
  const app = appName('to');
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  try {
    const id = await client.putRequest('nobody', {});
    let t0 = Date.now();
    await assert.rejects(client.getResult(id, 300), (e) => {
      assert.ok(e instanceof syrpc.TimeoutError, String(e));
      assert.equal(e.resultId, id);
      return true;
    });
    assert.ok(Date.now() - t0 < 5000, 'a generous upper bound');
    /* timeout 0 looks once, in one statement that does not wait */
    const sent = [];
    client.pool.on('acquire', (pgClient) => {
      const query = pgClient.query;
      pgClient.query = function spy(config, ...rest) {
        sent.push(config.values);
        pgClient.query = query;
        return query.call(this, config, ...rest);
      };
    });
    await assert.rejects(client.getResult(id, 0), syrpc.TimeoutError);
    assert.deepEqual(sent, [[app, id, '0.000']]);
    /* a short timeout is the slice's timeout in the server */
    await assert.rejects(client.getResult(id, 250), syrpc.TimeoutError);
    assert.ok(Number(sent[1][2]) <= 0.25, `sent ${sent[1][2]}`);

    const other = new syrpc.Server({ app_name: appName('to_empty') });
    t0 = Date.now();
    await assert.rejects(other.getRequest(200), syrpc.TimeoutError);
    assert.ok(Date.now() - t0 < 5000);
    await other.close();
    /* the request is still there, and a timeout left it unclaimed */
    assert.deepEqual((await server.getRequest(0)).result_id, id);
  } finally {
    await client.close();
    await server.close();
  }
});

test('call times out with the resultId, and getResult waits on for the answer', async () => {
  const app = appName('callto');
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  try {
    const err = await client.call('echo', { v: 1 }, { timeoutMs: 200 }).then(() => null, (e) => e);
    assert.ok(err instanceof syrpc.TimeoutError, String(err));
    assert.match(err.resultId, /^[0-9a-f-]{36}$/);
    const waiting = later(client.getResult(err.resultId, 10000));
    const req = await server.getRequest(5000);
    assert.equal(req.result_id, err.resultId);
    await server.putResult(req.result_id, { late: true });
    assert.deepEqual((await waiting).data, { late: true });
  } finally {
    await client.close();
    await server.close();
  }
});

test('the default timeout comes from the settings (null: none); bad timeouts are refused', async () => {
  const app = appName('deft');
  const client = new syrpc.Client({ app_name: app, timeout: 150 });
  try {
    const id = await client.putRequest('x', 1);
    await assert.rejects(client.getResult(id), syrpc.TimeoutError);
    await assert.rejects(client.call('x', 1), syrpc.TimeoutError);
    for (const bad of [-1, NaN, '100', -Infinity])
      await assert.rejects(client.getResult(id, bad), syrpc.BadInputError);
    await assert.rejects(client.call('x', 1, { timeoutMs: -5 }), syrpc.BadInputError);
    assert.throws(() => new syrpc.Client({ app_name: app, timeout: -1 }), syrpc.BadInputError);
  } finally {
    await client.close();
  }
});

test('a long wait goes in slices, each on a pool client of its own, and gets the result', async () => {
  const app = appName('slice');
  const client = new syrpc.Client({ app_name: app, waitSliceMs: 100, max: 2 });
  const server = new syrpc.Server({ app_name: app });
  let acquired = 0;
  client.pool.on('acquire', () => { acquired++; });
  try {
    const id = await client.putRequest('echo', { s: 1 });
    const before = acquired;
    const waiting = later(client.getResult(id, 30000));
    await waitFor('three slices', () => acquired - before >= 3);
    /* between slices the client goes back to the pool */
    assert.ok(client.pool.totalCount <= 2);
    const req = await server.getRequest(5000);
    await server.putResult(req.result_id, { s: 2 });
    assert.deepEqual((await waiting).data, { s: 2 });
    /* call waits on past its first slice too */
    const slow = new syrpc.Server({ app_name: app });
    const callP = later(client.call('echo', { c: 1 }, { timeoutMs: 30000 }));
    const before2 = acquired;
    await waitFor('slices of the call', () => acquired - before2 >= 3);
    const r2 = await slow.getRequest(5000);
    await slow.putResult(r2.result_id, r2.data);
    assert.deepEqual(await callP, { c: 1 });
    await slow.close();
  } finally {
    await client.close();
    await server.close();
  }
});

test('statement_timeout shorter than a slice: the wait goes on to its own timeout, and a result still arrives', async () => {
  const app = appName('stmt');
  const client = new syrpc.Client({ app_name: app, options: '-c statement_timeout=200' });
  const server = new syrpc.Server({ app_name: app, options: '-c statement_timeout=200' });
  try {
    let slices = 0;
    client.pool.on('acquire', () => { slices++; });
    const id = await client.putRequest('x', { q: 1 });
    slices = 0;
    /* not a 57014 error: each wait ends (NULLs) just before the statement_timeout, and the next follows */
    await assert.rejects(client.getResult(id, 700), syrpc.TimeoutError);
    assert.ok(slices >= 3, `waited on past the statement_timeout, in ${slices} slices`);
    const served = server.serve({ x: async (d) => ({ ...d, done: true }) });
    assert.deepEqual((await client.getResult(id, 10000)).data, { q: 1, done: true });
    assert.deepEqual(await client.call('x', { q: 2 }, { timeoutMs: 10000 }), { q: 2, done: true });
    await server.close();
    await served;
    assert.equal((await queueState(app)).requests, 0);
  } finally {
    await client.close();
    await server.close();
  }
});
