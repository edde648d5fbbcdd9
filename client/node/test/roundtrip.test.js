'use strict';
/* Round trips: putRequest/getRequest/putResult/getResult, call, and exact numbers. */
const test = require('node:test');
const assert = require('node:assert/strict');
const pg = require('pg');
const syrpc = require('..');
const { appName, closeAdmin, extVersion, queueState } = require('./helpers');

test.after(closeAdmin);

test('round trip: putRequest, getRequest, putResult, getResult (original names and shapes)', async () => {
  const app = appName('rt');
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  try {
    const data = [{ foo: 'bar' }, { baz: 9001 }, 'grüße ✓', null, true, -1.5e-7];
    const resultId = await client.putRequest('echo', data);
    assert.match(resultId, /^[0-9a-f-]{36}$/);
    const req = await server.getRequest(5000);
    if (await extVersion() >= 107) {
      /* from 1.7 a request also says its delivery and when it expires */
      const { attempts, deadline, ...rest } = req;
      assert.equal(attempts, 1);
      assert.ok(deadline instanceof Date && deadline.getTime() > Date.now(), String(deadline));
      assert.deepEqual(rest, { result_id: resultId, type: 'echo', data });
    } else {
      assert.deepEqual(req, { result_id: resultId, type: 'echo', data });
    }
    await server.putResult(req.result_id, { echoed: req.data });
    const res = await client.getResult(resultId, 5000);
    assert.deepEqual(res, { result_id: resultId, data: { echoed: data } });
    assert.deepEqual(await queueState(app), { requests: 0, results: 1 });   /* taken, kept for result_ttl */
    await assert.rejects(client.getResult(resultId, 1000), syrpc.ResultTakenError);
  } finally {
    await client.close();
    await server.close();
  }
});

test('the result is fetched by another client (stateless backends)', async () => {
  const app = appName('rt2');
  const a = new syrpc.Client({ app_name: app });
  const b = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  try {
    const id = await a.putRequest('echo', { value: 'hello' });
    const waiting = b.getResult(id, 10000);
    const req = await server.getRequest(5000);
    await server.putResult(req.result_id, req.data);
    assert.deepEqual(await waiting, { result_id: id, data: { value: 'hello' } });
  } finally {
    await Promise.all([a.close(), b.close(), server.close()]);
  }
});

test('a pool of your own, and the dsn setting', async () => {
  const app = appName('pool');
  const pool = new pg.Pool({ max: 2 });
  const client = new syrpc.Client({ app_name: app, pool });
  const dsn = `postgresql:///${encodeURIComponent(process.env.PGDATABASE)}?host=${encodeURIComponent(process.env.PGHOST)}`
    + `&port=${process.env.PGPORT || 5432}&user=${encodeURIComponent(process.env.PGUSER || 'postgres')}`;
  const server = new syrpc.Server({ app_name: app, dsn });
  try {
    await client.init();
    const served = server.serve({ echo: async (d) => d });
    assert.deepEqual(await client.call('echo', { x: 1 }, { timeoutMs: 10000 }), { x: 1 });
    await server.close();
    await served;
    await client.close();
    /* a pool you brought stays open */
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
  } finally {
    await pool.end();
  }
});

test('exact numbers: what a double holds goes through; bigint and rawJSON are sent as they are', async () => {
  const app = appName('num');
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  try {
    const served = server.serve({ echo: async (d) => d, raw: async (text) => syrpc.rawJSON(text) }, {});
    const plain = { a: 0.1, b: 1e21, c: -0, d: 9007199254740991, e: 5e-324, f: 1.7976931348623157e308 };
    assert.deepEqual(await client.call('echo', plain, { timeoutMs: 10000 }), { ...plain, c: 0 });

    /* a number a double cannot hold: refused with the text, not changed */
    const big = '{"amount": 12345678901234567.5, "id": 9007199254740993}';
    await assert.rejects(client.call('echo', syrpc.rawJSON(big), { timeoutMs: 10000 }), (e) => {
      assert.ok(e instanceof syrpc.RequestFailedError, e.message);
      assert.match(e.message, /cannot be represented exactly/);
      return true;
    });
    /* the same with raw text both ways: every digit kept */
    const raw = new syrpc.Server({ app_name: `${app}r` });
    const rawClient = new syrpc.Client({ app_name: `${app}r` });
    const rawServed = raw.serve({ echo: async (text) => syrpc.rawJSON(text) }, { raw: true });
    assert.equal(await rawClient.call('echo', syrpc.rawJSON(big), { timeoutMs: 10000, raw: true }),
      '{"id": 9007199254740993, "amount": 12345678901234567.5}');
    /* bigint goes out exactly; coming back without raw it is refused, keeping the text */
    await assert.rejects(rawClient.call('echo', { n: 123456789012345678901234567890n }, { timeoutMs: 10000 }), (e) => {
      assert.ok(e instanceof syrpc.InexactNumberError);
      assert.equal(e.text, '{"n": 123456789012345678901234567890}');
      assert.equal(e.number, '123456789012345678901234567890');
      assert.ok(e.resultId);
      return true;
    });
    /* 1e400 is beyond a double */
    await assert.rejects(rawClient.call('echo', syrpc.rawJSON('[1e400]'), { timeoutMs: 10000 }),
      /beyond the range of a double/);
    /* rawJSON nested in other data */
    assert.deepEqual(await rawClient.call('echo', { a: syrpc.rawJSON('[1, 2.50]'), b: 'x' }, { timeoutMs: 10000 }),
      { a: [1, 2.5], b: 'x' });
    await raw.close();
    await rawServed;
    await rawClient.close();
    await server.close();
    await served;
  } finally {
    await client.close();
    await server.close();
  }
});

test('getRequest of data a JavaScript value cannot hold: InexactNumberError with the request, still claimed', async () => {
  const app = appName('inexact');
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  try {
    const id = await client.putRequest('t', syrpc.rawJSON('{"n": 0.12345678901234567890123}'));
    const err = await server.getRequest(5000).then(() => null, (e) => e);
    assert.ok(err instanceof syrpc.InexactNumberError, String(err));
    assert.deepEqual(err.request, { result_id: id, type: 't', text: '{"n": 0.12345678901234567890123}' });
    await server.failRequest(err.request.result_id, 'cannot hold it');
    await assert.rejects(client.getResult(id, 5000), (e) => e instanceof syrpc.RequestFailedError
      && e.sqlstate === 'SY001' && /cannot hold it/.test(e.message));
  } finally {
    await client.close();
    await server.close();
  }
});
