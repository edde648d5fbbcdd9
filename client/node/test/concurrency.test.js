'use strict';
/* Many concurrent calls on one pool. */
const test = require('node:test');
const assert = require('node:assert/strict');
const syrpc = require('..');
const { appName, closeAdmin, queueState } = require('./helpers');

test.after(closeAdmin);

test('300 concurrent calls and 100 put/get pairs on one pool of 8, 4 serve loops: each gets its own answer', async () => {
  const app = appName('many');
  const client = new syrpc.Client({ app_name: app, max: 8 });
  const server = new syrpc.Server({ app_name: app, max: 4 });
  try {
    const served = server.serve({ echo: async (d, req) => ({ d, id: req.result_id }) }, { concurrency: 4 });
    const calls = [];
    for (let i = 0; i < 300; i++)
      calls.push(client.call('echo', { i }, { timeoutMs: 60000 }));
    const pairs = [];
    for (let i = 0; i < 100; i++)
      pairs.push(client.putRequest('echo', { p: i }).then((id) => client.getResult(id, 60000)
        .then((r) => ({ id, r }))));
    const results = await Promise.all(calls);
    results.forEach((r, i) => assert.deepEqual(r.d, { i }));
    assert.equal(new Set(results.map((r) => r.id)).size, 300, 'every call has its own request');
    for (const [i, { id, r }] of (await Promise.all(pairs)).entries()) {
      assert.equal(r.result_id, id);
      assert.deepEqual(r.data, { d: { p: i }, id });
    }
    assert.ok(client.pool.totalCount <= 8);
    await server.close();
    await served;
    assert.equal((await queueState(app)).requests, 0);
  } finally {
    await client.close();
    await server.close();
  }
});
