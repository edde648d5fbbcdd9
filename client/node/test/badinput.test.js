'use strict';
/* Bad input: clear errors of the right class, and the queues unchanged. */
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const syrpc = require('..');
const { appName, closeAdmin, queueState, sql } = require('./helpers');

test.after(closeAdmin);

test('bad app names are refused by the constructor, without connecting', () => {
  for (const bad of [undefined, '', 'a b', 'x'.repeat(64), 'ü', 'a;drop', 42]) {
    assert.throws(() => new syrpc.Client({ app_name: bad }), (e) => e instanceof syrpc.BadInputError && e.message.startsWith('app_name'),
      `app_name ${JSON.stringify(bad)}`);
    assert.throws(() => new syrpc.Server({ app_name: bad }), syrpc.BadInputError);
  }
  assert.throws(() => new syrpc.Client(null), syrpc.BadInputError);
});

test('bad input to every call: the right error class and message, and the queue unchanged', async (t) => {
  const app = appName('bad');
  const client = new syrpc.Client({ app_name: app });
  const server = new syrpc.Server({ app_name: app });
  try {
    /* something in the queue, to see it unchanged */
    const kept = await client.putRequest('kept', { k: 1 });
    const before = await queueState(app);
    const cyclic = {};
    cyclic.self = cyclic;
    const unknownId = crypto.randomUUID();
    const cases = [
      ['putRequest with an empty type', () => client.putRequest('', 1), syrpc.BadInputError, /type must be a non-empty string/],
      ['putRequest with a type of 64 bytes', () => client.putRequest('t'.repeat(64), 1), syrpc.BadInputError, /too long/],
      ['putRequest with a bad character in type', () => client.putRequest('a/b', 1), syrpc.BadInputError, /invalid character/],
      ['putRequest with undefined data', () => client.putRequest('t', undefined), syrpc.BadInputError, /cannot be sent as JSON/],
      ['putRequest with NaN', () => client.putRequest('t', { x: NaN }), syrpc.BadInputError, /NaN \(at key "x"\) is not a finite number/],
      ['putRequest with Infinity', () => client.putRequest('t', [Infinity]), syrpc.BadInputError, /Infinity/],
      ['putRequest with a cycle', () => client.putRequest('t', cyclic), syrpc.BadInputError, /circular/i],
      ['putRequest with data over max_payload_size', () => client.putRequest('t', 'x'.repeat(1100000)), syrpc.BadInputError, /./, '54000'],
      ['putRequest with a NUL in a string (jsonb refuses it)', () => client.putRequest('t', 'a\u0000b'), syrpc.BadInputError, /./],
      ['rawJSON of text that is not JSON', async () => client.putRequest('t', syrpc.rawJSON('{nope')), syrpc.BadInputError, /not JSON text/],
      ['getResult with an empty result_id', () => client.getResult('', 10), syrpc.BadInputError, /result_id/],
      ['getResult with a result_id that is not a uuid', () => client.getResult('not-a-uuid', 10), syrpc.BadInputError, /uuid/, '22P02'],
      ['getResult of an unknown result_id: at once', () => client.getResult(unknownId, 60000), syrpc.UnknownResultError, /no request or result/, 'SY008'],
      ['getResult with a negative timeout', () => client.getResult(kept, -1), syrpc.BadInputError, /timeoutMs/],
      ['call with a bad type', () => client.call('', 1, { timeoutMs: 10 }), syrpc.BadInputError, /type/],
      ['call with NaN', () => client.call('t', NaN, { timeoutMs: 10 }), syrpc.BadInputError, /NaN/],
      ['putResult of a request that is not in flight', () => server.putResult(kept, 1), syrpc.NotInFlightError, /./, 'SY004'],
      ['putResult of an unknown result_id', () => server.putResult(unknownId, 1), syrpc.NotInFlightError, /./, 'SY004'],
      ['putResult with NaN', () => server.putResult(kept, NaN), syrpc.BadInputError, /NaN/],
      ['failRequest with an empty reason', () => server.failRequest(kept, ''), syrpc.BadInputError, /reason/],
      ['failRequest with a reason over 1024 bytes', () => server.failRequest(kept, 'r'.repeat(1025)), syrpc.BadInputError, /reason/],
      ['failRequest of a request that is not in flight', () => server.failRequest(kept, 'why'), syrpc.NotInFlightError, /./, 'SY004'],
      ['getRequest with a bad timeout', () => server.getRequest(NaN), syrpc.BadInputError, /timeoutMs/],
    ];
    for (const [name, fn, Class, message, sqlstate] of cases) {
      await t.test(name, async () => {
        await assert.rejects(fn(), (e) => {
          assert.ok(e instanceof Class, `${name}: got ${e && e.name}: ${e && e.message}`);
          assert.ok(e instanceof syrpc.SyrpcError);
          assert.match(e.message, message);
          if (sqlstate)
            assert.equal(e.sqlstate, sqlstate);
          return true;
        });
        assert.deepEqual(await queueState(app), before, 'the queue is unchanged');
      });
    }
    /* a result_id of another app */
    const otherApp = new syrpc.Client({ app_name: appName('bad_other') });
    await assert.rejects(otherApp.getResult(kept, 1000), (e) => e instanceof syrpc.WrongAppError && e.sqlstate === 'SY005');
    await otherApp.close();
    assert.deepEqual(await queueState(app), before);
    /* the kept request is still served */
    const req = await server.getRequest(5000);
    assert.equal(req.result_id, kept);
  } finally {
    await client.close();
    await server.close();
  }
});

test('a database without the extension: ServerError with a hint', async () => {
  const db = `syrpc_node_noext_${crypto.randomBytes(3).toString('hex')}`;
  await sql(`CREATE DATABASE ${db}`);
  const client = new syrpc.Client({ app_name: 'x', database: db });
  try {
    await assert.rejects(client.putRequest('t', 1), (e) => e instanceof syrpc.ServerError
      && /not installed in database/.test(e.message) && /CREATE EXTENSION syrpc/.test(e.hint));
  } finally {
    await client.close();
    await sql(`DROP DATABASE ${db} WITH (FORCE)`);
  }
});

test('a server that cannot be reached: ConnectionError', async () => {
  const client = new syrpc.Client({ app_name: 'x', host: '/nonexistent-dir', port: 1 });
  try {
    await assert.rejects(client.putRequest('t', 1), syrpc.ConnectionError);
  } finally {
    await client.close();
  }
});

test('a closed client refuses calls', async () => {
  const client = new syrpc.Client({ app_name: appName('closed') });
  await client.close();
  await assert.rejects(client.putRequest('t', 1), syrpc.BadInputError);
});

test('error classes follow the SQLSTATEs, grouped as libsyrpc groups them', () => {
  assert.ok(new syrpc.RequestExpiredError('x') instanceof syrpc.RequestFailedError);
  for (const C of [syrpc.ResultTakenError, syrpc.NotInFlightError, syrpc.WrongAppError, syrpc.UnknownResultError, syrpc.InexactNumberError])
    assert.ok(new C('x') instanceof syrpc.BadInputError);
  for (const C of [syrpc.TimeoutError, syrpc.PermissionError, syrpc.ReadOnlyError, syrpc.CancelledError, syrpc.ConnectionError, syrpc.ServerError])
    assert.ok(new C('x') instanceof syrpc.SyrpcError && !(new C('x') instanceof syrpc.BadInputError));
});

test('a read-only session: ReadOnlyError (25006)', async () => {
  const app = appName('ro');
  const client = new syrpc.Client({ app_name: app, options: '-c default_transaction_read_only=on' });
  try {
    await assert.rejects(client.putRequest('t', 1), (e) => e instanceof syrpc.ReadOnlyError && e.sqlstate === '25006');
    assert.equal((await sql('SELECT count(*)::int AS n FROM syrpc.request WHERE app = $1', [app]))[0].n, 0);
  } finally {
    await client.close();
  }
});
