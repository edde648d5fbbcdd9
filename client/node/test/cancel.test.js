'use strict';
/* Cancel: an AbortSignal, pg_cancel_backend, and a connection terminated mid-wait. */
const test = require('node:test');
const assert = require('node:assert/strict');
const syrpc = require('..');
const { later, appName, closeAdmin, queueState, queuedOf, sql, waitFor, waitingBackends } = require('./helpers');

test.after(closeAdmin);

test('an AbortSignal cancels a waiting getResult at once; the result is not lost', async () => {
  const app = appName('abort');
  const client = new syrpc.Client({ app_name: app, max: 1, application_name: app });
  const server = new syrpc.Server({ app_name: app, application_name: app });
  try {
    const id = await client.putRequest('echo', { a: 1 });
    const ctl = new AbortController();
    const waiting = later(client.getResult(id, 60000, { signal: ctl.signal }));
    await waitFor('the wait in the server', async () => (await waitingBackends('%syrpc_wait_result%', app)).length === 1);
    const t0 = Date.now();
    ctl.abort();
    await assert.rejects(waiting, syrpc.CancelledError);
    assert.ok(Date.now() - t0 < 5000);
    /* the one pool client is free again and usable */
    assert.equal(client.pool.totalCount - client.pool.idleCount, 0);
    const req = await server.getRequest(5000);
    await server.putResult(req.result_id, { a: 2 });
    assert.deepEqual((await client.getResult(id, 5000)).data, { a: 2 });
    /* an aborted signal refuses at once */
    await assert.rejects(client.getResult(id, 1000, { signal: AbortSignal.abort() }), syrpc.CancelledError);
  } finally {
    await client.close();
    await server.close();
  }
});

test('an AbortSignal cancels a waiting call and getRequest', async () => {
  const app = appName('abort2');
  const client = new syrpc.Client({ app_name: app, application_name: app });
  const server = new syrpc.Server({ app_name: app, application_name: app });
  try {
    const ctl = new AbortController();
    const callP = later(client.call('nobody', {}, { timeoutMs: 60000, signal: ctl.signal }));
    /* the call has put its request (in the table, or in memory when preloaded) and waits */
    await waitFor('the call waiting', async () => (await waitingBackends('%syrpc_call%', app)).length === 1
      && (await queuedOf(app)) === 1);
    ctl.abort();
    await assert.rejects(callP, syrpc.CancelledError);

    const empty = new syrpc.Server({ app_name: appName('abort_empty'), application_name: app });
    const ctl2 = new AbortController();
    const getP = later(empty.getRequest(null, { signal: ctl2.signal }));
    await waitFor('the wait in the server', async () => (await waitingBackends('%syrpc_wait_request%', app)).length === 1);
    ctl2.abort();
    await assert.rejects(getP, syrpc.CancelledError);
    await empty.close();
    /*
     * On the table path the request of the cancelled call stays queued (it
     * had committed); in memory it is withdrawn: either way, all that is
     * queued is in the table.
     */
    assert.equal(await queuedOf(app), (await queueState(app)).requests);
  } finally {
    await client.close();
    await server.close();
  }
});

test('pg_cancel_backend on a waiting call: CancelledError (57014)', async () => {
  const app = appName('pgcancel');
  const client = new syrpc.Client({ app_name: app, application_name: app });
  try {
    const id = await client.putRequest('x', 1);
    const waiting = later(client.getResult(id, 60000));
    const [b] = await waitFor('the wait in the server', async () => {
      const rows = await waitingBackends('%syrpc_wait_result%', app);
      return rows.length === 1 ? rows : null;
    });
    await sql('SELECT pg_cancel_backend($1)', [b.pid]);
    await assert.rejects(waiting, (e) => e instanceof syrpc.CancelledError && e.sqlstate === '57014');
    assert.equal((await queueState(app)).requests, 1);
  } finally {
    await client.close();
  }
});

test('pg_terminate_backend on a waiting call: ConnectionError, and the pool goes on with a new connection', async () => {
  const app = appName('term');
  const client = new syrpc.Client({ app_name: app, max: 1, application_name: app });
  const server = new syrpc.Server({ app_name: app, application_name: app });
  try {
    const id = await client.putRequest('x', { t: 1 });
    const waiting = later(client.getResult(id, 60000));
    const [b] = await waitFor('the wait in the server', async () => {
      const rows = await waitingBackends('%syrpc_wait_result%', app);
      return rows.length === 1 ? rows : null;
    });
    await sql('SELECT pg_terminate_backend($1)', [b.pid]);
    await assert.rejects(waiting, (e) => e instanceof syrpc.ConnectionError);
    const req = await server.getRequest(5000);
    await server.putResult(req.result_id, { t: 2 });
    assert.deepEqual((await client.getResult(id, 5000)).data, { t: 2 });
  } finally {
    await client.close();
    await server.close();
  }
});

test("serve goes on after its connection is terminated", async () => {
  const app = appName('serveterm');
  const client = new syrpc.Client({ app_name: app, application_name: app });
  const server = new syrpc.Server({ app_name: app, application_name: app });
  try {
    const lost = [];
    const served = server.serve({ echo: async (d) => d }, { onError: (e) => lost.push(e) });
    const [b] = await waitFor('the worker waiting', async () => {
      const rows = await waitingBackends('%syrpc_wait_request%', app);
      return rows.length === 1 ? rows : null;
    });
    await sql('SELECT pg_terminate_backend($1)', [b.pid]);
    await waitFor('the loss reported', () => lost.length > 0);
    assert.ok(lost[0] instanceof syrpc.ConnectionError, String(lost[0]));
    assert.deepEqual(await client.call('echo', { after: 1 }, { timeoutMs: 20000 }), { after: 1 });
    await server.close();
    await served;
  } finally {
    await client.close();
    await server.close();
  }
});

test('serve goes on after pg_cancel_backend on its wait', async () => {
  const app = appName('servecancel');
  const client = new syrpc.Client({ app_name: app, application_name: app });
  const server = new syrpc.Server({ app_name: app, application_name: app });
  try {
    const seen = [];
    const served = server.serve({ echo: async (d) => d }, { onError: (e) => seen.push(e) });
    const [b] = await waitFor('the worker waiting', async () => {
      const rows = await waitingBackends('%syrpc_wait_request%', app);
      return rows.length === 1 ? rows : null;
    });
    await sql('SELECT pg_cancel_backend($1)', [b.pid]);
    await waitFor('the cancel reported', () => seen.length > 0);
    assert.ok(seen[0] instanceof syrpc.CancelledError, String(seen[0]));
    assert.deepEqual(await client.call('echo', { after: 'cancel' }, { timeoutMs: 20000 }), { after: 'cancel' });
    await server.close();
    await served;
  } finally {
    await client.close();
    await server.close();
  }
});
