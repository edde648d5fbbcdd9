'use strict';
/* serve(): handlers by type, unknown types, failing handlers, graceful close, a worker killed mid-request. */
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawn } = require('child_process');
const syrpc = require('..');
const { later, appName, closeAdmin, extVersion, queueState, sql, waitFor } = require('./helpers');

test.after(closeAdmin);

test('serve with two handlers and an unknown type', async () => {
  const app = appName('serve');
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  try {
    const seen = [];
    const served = server.serve({
      echo: async (data, req) => { seen.push(req.type); return data; },
      add: async ({ a, b }, req) => { seen.push(req.type); assert.match(req.result_id, /^[0-9a-f-]{36}$/); return a + b; },
    });
    assert.deepEqual(await client.call('echo', { value: 'hello' }, { timeoutMs: 10000 }), { value: 'hello' });
    assert.equal(await client.call('add', { a: 2, b: 40 }, { timeoutMs: 10000 }), 42);
    assert.deepEqual(await client.call('nope', { x: 1 }, { timeoutMs: 10000 }), { error: 'unknown type', type: 'nope' });
    /* put and get, as the original */
    const id = await client.putRequest('add', { a: 1, b: 1 });
    assert.deepEqual(await client.getResult(id, 10000), { result_id: id, data: 2 });
    assert.deepEqual(seen, ['echo', 'add', 'add']);
    await server.close();
    await served;
    assert.deepEqual((await queueState(app)).requests, 0);
  } finally {
    await client.close();
    await server.close();
  }
});

test("a handler that throws fails only its own request: another caller's call is not rejected", async () => {
  const app = appName('fail');
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  const errorsSeen = [];
  try {
    const served = server.serve({
      echo: async (d) => d,
      boom: async () => { throw new Error('no such thing'); },
      nan: async () => ({ x: NaN }),
      huge: async () => 'x'.repeat(1100000),
      '*': async (d, req) => ({ fallback: req.type }),
    }, { concurrency: 2, onError: (e) => errorsSeen.push(e.message) });
    const calls = [];
    for (let i = 0; i < 10; i++) {
      calls.push(client.call('echo', { i }, { timeoutMs: 10000 }));
      calls.push(client.call('boom', { i }, { timeoutMs: 10000 }));
    }
    const settled = await Promise.allSettled(calls);
    const remote = await extVersion() >= 107;
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(settled[2 * i], { status: 'fulfilled', value: { i } });
      const failure = settled[2 * i + 1];
      assert.equal(failure.status, 'rejected');
      assert.ok(failure.reason instanceof syrpc.RequestFailedError, String(failure.reason));
      if (remote) {
        /* from 1.7 the handler's error is the caller's RemoteError (rpc.test.js has more) */
        assert.ok(failure.reason instanceof syrpc.RemoteError, String(failure.reason));
        assert.equal(failure.reason.sqlstate, 'SY006');
        assert.equal(failure.reason.message, 'no such thing');
        assert.deepEqual(failure.reason.detail, { exception: 'Error' });
      } else {
        assert.equal(failure.reason.sqlstate, 'SY001');
        assert.match(failure.reason.message, /handler failed: no such thing/);
      }
    }
    await assert.rejects(client.call('nan', {}, { timeoutMs: 10000 }), /cannot be sent as JSON: NaN/);
    await assert.rejects(client.call('huge', {}, { timeoutMs: 10000 }),
      (e) => e instanceof syrpc.RequestFailedError && /the server refused the handler's result/.test(e.message));
    assert.deepEqual(await client.call('other', {}, { timeoutMs: 10000 }), { fallback: 'other' });
    assert.equal(errorsSeen.filter((m) => m === 'no such thing').length, 10);
    await server.close();
    await served;
    /* given up requests are counted as failed, none left in flight */
    const [stats] = await sql('SELECT queued, in_flight, failed FROM syrpc_stats WHERE app = $1', [app]);
    assert.equal(Number(stats.queued), 0);
    assert.equal(Number(stats.in_flight), 0);
  } finally {
    await client.close();
    await server.close();
  }
});

test('close() is graceful: idle waits end at once, a request being handled is answered', async () => {
  const app = appName('close');
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  try {
    let release, started;
    const inHandler = new Promise((r) => { started = r; });
    const gate = new Promise((r) => { release = r; });
    const served = server.serve({ slow: async (d) => { started(); await gate; return { done: d }; } }, { concurrency: 3 });
    const callP = later(client.call('slow', 7, { timeoutMs: 20000 }));
    await inHandler;
    const closing = server.close();
    let closed = false;
    closing.then(() => { closed = true; });
    /* close waits for the handler */
    await new Promise((r) => setImmediate(r));
    assert.equal(closed, false);
    release();
    const t0 = Date.now();
    await closing;
    await served;
    assert.ok(Date.now() - t0 < 5000, 'idle waits were cancelled, not waited out');
    assert.deepEqual(await callP, { done: 7 });
    /* nothing left claimed */
    assert.equal((await queueState(app)).requests, 0);
    /* a closed server refuses calls */
    await assert.rejects(server.getRequest(0), syrpc.BadInputError);
  } finally {
    await client.close();
    await server.close();
  }
});

test('a worker killed mid-request: the request is handed out again after its lease and answered', async () => {
  const app = appName('kill');
  await sql("SELECT syrpc_configure($1, lease_time => '1 second', max_attempts => 3)", [app]);
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  const child = spawn(process.execPath, [path.join(__dirname, 'hang_worker.js'), app], {
    stdio: ['ignore', 'pipe', 'inherit'], env: process.env,
  });
  let out = '';
  child.stdout.on('data', (b) => { out += b; });
  const exited = new Promise((r) => child.on('exit', (code, signal) => r(signal)));
  try {
    await waitFor('the worker to start', () => out.includes('ready'));
    const callP = later(client.call('work', { job: 1 }, { timeoutMs: 30000 }));
    await waitFor('the worker to take the request', () => /got [0-9a-f-]{36}/.test(out));
    const id = /got ([0-9a-f-]{36})/.exec(out)[1];
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const t0 = Date.now();
    const served = server.serve({ work: async (d, req) => ({ ...d, by: 'second worker', id: req.result_id }) });
    assert.deepEqual(await callP, { job: 1, by: 'second worker', id });
    assert.ok(Date.now() - t0 < 15000);
    await server.close();
    await served;
  } finally {
    child.kill('SIGKILL');
    await client.close();
    await server.close();
  }
});

test('serve refuses what it cannot serve, and rejects on an error it cannot get past', async () => {
  const server = new syrpc.Server({ app_name: appName('refuse') });
  try {
    await assert.rejects(server.serve(null), syrpc.BadInputError);
    await assert.rejects(server.serve({ 'bad type!': async () => 1 }), syrpc.BadInputError);
    await assert.rejects(server.serve({ t: 'not a function' }), syrpc.BadInputError);
    await assert.rejects(server.serve({ t: async () => 1 }, { concurrency: 0 }), syrpc.BadInputError);
  } finally {
    await server.close();
  }
  /* a role without syrpc_worker: PermissionError from serve() */
  await sql('DROP ROLE IF EXISTS syrpc_node_nobody');
  await sql('CREATE ROLE syrpc_node_nobody LOGIN');
  const nobody = new syrpc.Server({ app_name: appName('noperm'), user: 'syrpc_node_nobody' });
  try {
    await assert.rejects(nobody.serve({ t: async () => 1 }), (e) => e instanceof syrpc.PermissionError && e.sqlstate === '42501');
    const c = new syrpc.Client({ app_name: appName('noperm'), user: 'syrpc_node_nobody' });
    await assert.rejects(c.putRequest('t', 1), syrpc.PermissionError);
    await c.close();
  } finally {
    await nobody.close();
    await sql('DROP ROLE syrpc_node_nobody');
  }
});
