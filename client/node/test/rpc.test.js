'use strict';
/*
 * RPC semantics of extension 1.7: remote errors (putError, a handler that
 * throws), cancel (queued, in flight, a caller already waiting), deadlines,
 * attempts, extendLease and release; and the clear client-side errors
 * against a 1.6 server.  Needs the test database at 1.7 or later.
 */
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const pg = require('pg');
const syrpc = require('..');
const { later, appName, closeAdmin, extVersion, sql, waitFor, waitingBackends } = require('./helpers');

test.after(closeAdmin);

/* A Client and a Server of a new app (with settings for syrpc_configure), closed after fn. */
async function withApp(what, settings, fn) {
  const app = appName(what);
  if (settings)
    await sql(`SELECT syrpc_configure($1, ${settings})`, [app]);
  const client = new syrpc.Client({ app_name: app, application_name: app });
  const server = new syrpc.Server({ app_name: app, application_name: app });
  try {
    await fn({ app, client, server });
  } finally {
    await client.close();
    await server.close();
  }
}

test('the test database has extension 1.7 or later', async () => {
  assert.ok(await extVersion() >= 107, 'run-tests.sh creates the default version: install extension 1.7');
});

test('error classes: RemoteError is a RequestFailedError, RequestCancelledError a CancelledError', () => {
  /* as from the server (its DETAIL text), and as a handler makes one */
  const remote = new syrpc.RemoteError('m', { sqlstate: 'SY006', detailText: '{"a": [1, 2.5]}' });
  assert.ok(remote instanceof syrpc.RequestFailedError && !(remote instanceof syrpc.BadInputError));
  assert.deepEqual(remote.detail, { a: [1, 2.5] });
  assert.equal(remote.detailText, '{"a": [1, 2.5]}');
  const made = new syrpc.RemoteError('m', { detail: { a: 'x' } });
  assert.deepEqual(made.detail, { a: 'x' });
  assert.equal(made.detailText, '{"a":"x"}');
  assert.equal(new syrpc.RemoteError('m').detail, null);
  const cancelled = new syrpc.RequestCancelledError('c', { sqlstate: 'SY007' });
  assert.ok(cancelled instanceof syrpc.CancelledError && !(cancelled instanceof syrpc.RequestFailedError));
  for (const m of ['putError', 'isCancelled', 'extendLease', 'release'])
    assert.equal(typeof syrpc.Server.prototype[m], 'function', m);
  assert.equal(typeof syrpc.Client.prototype.cancel, 'function');
});

test('a request claimed with its attempts: the data text is exactly the server\'s, in raw mode too', async () => {
  await withApp('claim', null, async ({ client, server }) => {
    /* strings holding brackets, quotes and escapes; a number with more digits than a double */
    const text = syrpc.rawJSON('{"s": "quote \\" backslash \\\\ brackets ]} {[ comma, colon: \u00fc \u2713 \\u0001 \\n",'
      + ' "n": [0, -1.5e-7, 12345678901234567890.25, 1e300], "e": {}, "a": [], "t": true, "f": false, "z": null,'
      + ' "key \\"q\\"": {"deep": [[{"x": "}"}]]}}');
    const [{ printed }] = await sql('SELECT $1::jsonb::text AS printed', [text.text]);
    const id = await client.putRequest('t', text);
    const req = await server.getRequest(5000, { raw: true });
    assert.equal(req.result_id, id);
    assert.equal(req.type, 't');
    assert.equal(req.attempts, 1);
    assert.equal(req.data, printed);
    await server.putResult(id, syrpc.rawJSON(req.data));
    assert.equal((await client.getResult(id, 5000, { raw: true })).data, printed);
    /* not raw: a number a double cannot hold is refused with the text, the request claimed */
    const id2 = await client.putRequest('t', text);
    const err = await server.getRequest(5000).then(() => null, (e) => e);
    assert.ok(err instanceof syrpc.InexactNumberError, String(err));
    assert.deepEqual(err.request, { result_id: id2, type: 't', text: printed });
    await server.putResult(id2, null);
  });
});

test('remote error round trip: putError -> RemoteError with the message and the detail, every time', async () => {
  await withApp('remote', null, async ({ client, server }) => {
    const id = await client.putRequest('lookup', { user: 7 });
    const req = await server.getRequest(5000);
    assert.equal(req.result_id, id);
    const message = 'no such user: 7 (grüße, "quoted", 100%)';
    const detail = { code: 'ENOUSER', user: 7, tried: ['a', 'b'], nested: { ok: false, n: null } };
    await server.putError(id, message, detail);
    for (let i = 0; i < 2; i++) {
      /* not taken: a later getResult raises it again */
      await assert.rejects(client.getResult(id, 5000), (e) => {
        assert.ok(e instanceof syrpc.RemoteError, `${e && e.name}: ${e && e.message}`);
        assert.equal(e.sqlstate, 'SY006');
        assert.equal(e.message, message);
        assert.deepEqual(e.detail, detail);
        assert.deepEqual(JSON.parse(e.detailText), detail);
        assert.equal(e.resultId, id);
        return true;
      });
    }
    /* answered: no longer in flight */
    await assert.rejects(server.putError(id, 'again'), (e) => e instanceof syrpc.NotInFlightError && e.sqlstate === 'SY004');
    await assert.rejects(server.putResult(id, 1), syrpc.NotInFlightError);

    /* no detail: null; a detail a double cannot hold: null, with its text kept */
    const id2 = await client.putRequest('lookup', 2);
    const id3 = await client.putRequest('lookup', 3);
    for (let i = 0; i < 2; i++) {
      const r = await server.getRequest(5000);
      if (r.result_id === id2)
        await server.putError(id2, 'plain');
      else
        await server.putError(id3, 'big', syrpc.rawJSON('{"n": 9007199254740993}'));
    }
    await assert.rejects(client.getResult(id2, 5000), (e) => e instanceof syrpc.RemoteError
      && e.message === 'plain' && e.detail === null && e.detailText === null);
    await assert.rejects(client.getResult(id3, 5000), (e) => e instanceof syrpc.RemoteError
      && e.message === 'big' && e.detail === null && e.detailText === '{"n": 9007199254740993}');

    /* bad input to putError, refused here and by the server */
    const id4 = await client.putRequest('lookup', 4);
    assert.equal((await server.getRequest(5000)).result_id, id4);
    await assert.rejects(server.putError(id4, ''), (e) => e instanceof syrpc.BadInputError && /message/.test(e.message));
    await assert.rejects(server.putError(id4, 'm'.repeat(1025)), syrpc.BadInputError);
    await assert.rejects(server.putError(id4, 'x', { n: NaN }), /NaN/);
    await assert.rejects(server.putError(id4, 'x', 'd'.repeat(1100000)), (e) => e instanceof syrpc.BadInputError && e.sqlstate === '54000');
    await assert.rejects(server.putError(crypto.randomUUID(), 'x'), syrpc.NotInFlightError);
    /* still in flight after all that: a message of exactly 1024 bytes is fine */
    await server.putError(id4, 'ü'.repeat(512), [1]);
    await assert.rejects(client.getResult(id4, 5000), (e) => e instanceof syrpc.RemoteError
      && e.message === 'ü'.repeat(512) && e.detail[0] === 1);
  });
});

test('a handler that throws: its caller gets RemoteError with the message and {exception: name}, or the RemoteError thrown', async () => {
  await withApp('hthrow', null, async ({ client, server }) => {
    const seen = [];
    const served = server.serve({
      boom: async (d) => { throw new TypeError(`bad ${d.what}`); },
      str: async () => { throw 'a string'; },       /* not an Error */
      empty: async () => { throw new RangeError(''); },
      made: async () => { throw new syrpc.RemoteError('not found', { detail: { id: 5 } }); },
      relayed: async () => { throw new syrpc.RemoteError('from upstream', { detailText: '{"n": 9007199254740993}' }); },
      echo: async (d) => d,
    }, { onError: (e) => seen.push(e) });
    await assert.rejects(client.call('boom', { what: 'thing' }, { timeoutMs: 10000 }), (e) => {
      assert.ok(e instanceof syrpc.RemoteError, `${e && e.name}: ${e && e.message}`);
      assert.equal(e.sqlstate, 'SY006');
      assert.equal(e.message, 'bad thing');
      assert.deepEqual(e.detail, { exception: 'TypeError' });
      return true;
    });
    const id = await client.putRequest('str', {});
    await assert.rejects(client.getResult(id, 10000), (e) => e instanceof syrpc.RemoteError
      && e.message === 'a string' && e.detail.exception === 'string' && e.resultId === id);
    await assert.rejects(client.call('empty', {}, { timeoutMs: 10000 }), (e) => e instanceof syrpc.RemoteError
      && e.message === 'RangeError' && e.detail.exception === 'RangeError');
    /* a RemoteError thrown by the handler goes as it is, every digit of its detail kept */
    await assert.rejects(client.call('made', {}, { timeoutMs: 10000 }), (e) => e instanceof syrpc.RemoteError
      && e.message === 'not found' && e.detail.id === 5 && Object.keys(e.detail).length === 1);
    await assert.rejects(client.call('relayed', {}, { timeoutMs: 10000 }), (e) => e instanceof syrpc.RemoteError
      && e.message === 'from upstream' && e.detail === null && e.detailText === '{"n": 9007199254740993}');
    /* serve goes on */
    assert.deepEqual(await client.call('echo', { after: 1 }, { timeoutMs: 10000 }), { after: 1 });
    assert.equal(seen.length, 5);
    assert.ok(seen[0] instanceof TypeError);
    await server.close();
    await served;
  });
});

test('cancel a queued request: withdrawn, never handed to a worker; its caller gets RequestCancelledError', async () => {
  await withApp('cancelq', null, async ({ app, client, server }) => {
    const id = await client.putRequest('work', { n: 1 });
    /* a caller already waiting is woken */
    const waiting = later(client.getResult(id, 30000));
    await waitFor('the wait in the server', async () => (await waitingBackends('%syrpc_wait_result%', app)).length === 1);
    const t0 = Date.now();
    assert.equal(await client.cancel(id), true);
    await assert.rejects(waiting, (e) => {
      assert.ok(e instanceof syrpc.RequestCancelledError, `${e && e.name}: ${e && e.message}`);
      assert.ok(e instanceof syrpc.CancelledError);
      assert.equal(e.sqlstate, 'SY007');
      assert.match(e.message, /was cancelled/);
      assert.equal(e.resultId, id);
      return true;
    });
    assert.ok(Date.now() - t0 < 9000, 'woken by the cancel, not by the end of a slice');
    /* every time; cancel again: false */
    await assert.rejects(client.getResult(id, 0), syrpc.RequestCancelledError);
    assert.equal(await client.cancel(id), false);
    /* never handed out: a request put after it is the only one a worker gets */
    const other = await client.putRequest('work', { n: 2 });
    const req = await server.getRequest(5000);
    assert.equal(req.result_id, other);
    await assert.rejects(server.getRequest(0), syrpc.TimeoutError);
    assert.equal(await server.isCancelled(id), true);
    assert.equal(await server.isCancelled(other), false);
    await server.putResult(other, 'done');
    assert.equal(await server.isCancelled(other), false, 'answered is not cancelled');
    assert.equal(await client.cancel(other), false, 'already answered');
    assert.equal((await client.getResult(other, 5000)).data, 'done');
    /* unknown, another app's, not a uuid */
    await assert.rejects(client.cancel(crypto.randomUUID()), (e) => e instanceof syrpc.UnknownResultError && e.sqlstate === 'SY008');
    const stranger = new syrpc.Client({ app_name: appName('cancel_other') });
    await assert.rejects(stranger.cancel(other), (e) => e instanceof syrpc.WrongAppError && e.sqlstate === 'SY005');
    await stranger.close();
    await assert.rejects(client.cancel(''), syrpc.BadInputError);
    await assert.rejects(client.cancel('not-a-uuid'), syrpc.BadInputError);
  });
});

test('cancel a request in flight: isCancelled, its answer dropped, extendLease refused, the caller gets RequestCancelledError', async () => {
  await withApp('cancelf', null, async ({ client, server }) => {
    const id = await client.putRequest('work', { n: 1 });
    const req = await server.getRequest(5000);
    assert.equal(req.result_id, id);
    assert.equal(await server.isCancelled(id), false, 'in flight is not cancelled');
    assert.equal(await client.cancel(id), true);
    assert.equal(await server.isCancelled(id), true);
    await assert.rejects(server.extendLease(id, 10000), (e) => e instanceof syrpc.RequestCancelledError && e.sqlstate === 'SY007');
    /* accepted and dropped */
    await server.putResult(id, { late: true });
    await server.putError(id, 'late');
    await server.failRequest(id, 'late');
    await server.release(id);
    await assert.rejects(client.getResult(id, 5000), (e) => e instanceof syrpc.RequestCancelledError && e.sqlstate === 'SY007');
    await assert.rejects(server.getRequest(0), syrpc.TimeoutError);
  });
});

test('serve: a handler sees its request cancelled, its answer is dropped, the caller gets RequestCancelledError', async () => {
  await withApp('cancels', null, async ({ client, server }) => {
    const started = [];
    const served = server.serve({
      slow: async (d, req) => {
        started.push(req.result_id);
        await waitFor('the cancel, in the handler', () => req.isCancelled(), 20000);
        return { answered: d };
      },
      echo: async (d) => d,
    });
    /* a request put and waited on */
    const id = await client.putRequest('slow', 1);
    const waiting = later(client.getResult(id, 30000));
    await waitFor('the handler to start', () => started.length === 1);
    assert.equal(started[0], id);
    assert.equal(await client.cancel(id), true);
    await assert.rejects(waiting, (e) => e instanceof syrpc.RequestCancelledError && e.sqlstate === 'SY007');
    /* one loop: the echo is answered after the handler has returned, and its answer went nowhere */
    assert.deepEqual(await client.call('echo', { next: true }, { timeoutMs: 10000 }), { next: true });
    await assert.rejects(client.getResult(id, 0), syrpc.RequestCancelledError);
    /* a call that timed out has the resultId to cancel */
    const err = await client.call('slow', 2, { timeoutMs: 300 }).then(() => null, (e) => e);
    assert.ok(err instanceof syrpc.TimeoutError, String(err));
    await waitFor('the handler to start', () => started.length === 2);
    assert.equal(started[1], err.resultId);
    assert.equal(await client.cancel(err.resultId), true);
    await assert.rejects(client.getResult(err.resultId, 5000), syrpc.RequestCancelledError);
    assert.deepEqual(await client.call('echo', { after: 2 }, { timeoutMs: 10000 }), { after: 2 });
    await assert.rejects(client.getResult(err.resultId, 0), syrpc.RequestCancelledError);
    await server.close();
    await served;
  });
});

test('a deadline: the worker sees it; once passed, no worker gets the request and its caller gets RequestExpiredError', async () => {
  await withApp('deadline', "request_ttl => '1 hour'", async ({ client, server }) => {
    /* the worker sees the deadline, or created_at + request_ttl if earlier, and attempts */
    const soon = new Date(Date.now() + 600000);
    const id1 = await client.putRequest('t', 1, { deadline: soon });
    const r1 = await server.getRequest(5000);
    assert.equal(r1.result_id, id1);
    assert.equal(r1.attempts, 1);
    assert.equal(r1.deadline.getTime(), soon.getTime());
    await server.putResult(id1, 1);
    /* in any time zone of the session (the JSON text has its offset) */
    for (const tz of ['Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham']) {
      const zoned = new syrpc.Server({ app_name: server.app_name, options: `-c TimeZone=${tz}` });
      const idz = await client.putRequest('t', tz, { deadline: soon });
      const rz = await zoned.getRequest(5000);
      assert.equal(rz.result_id, idz);
      assert.equal(rz.deadline.getTime(), soon.getTime(), tz);
      await zoned.putResult(idz, 0);
      await zoned.close();
    }
    const t1 = Date.now();
    const id2 = await client.putRequest('t', 2, { deadline: new Date(Date.now() + 86400000) });
    const r2 = await server.getRequest(5000);
    assert.equal(r2.result_id, id2);
    const ttlEnd = r2.deadline.getTime() - t1;
    assert.ok(ttlEnd > 3500000 && ttlEnd < 3700000, `request_ttl is earlier: ${r2.deadline.toISOString()}`);
    await server.putResult(id2, 2);
    const id3 = await client.putRequest('t', 3, { deadline: null });
    assert.ok((await server.getRequest(5000)).deadline instanceof Date);
    await server.putResult(id3, 3);

    /* a deadline that passes while the caller waits */
    const deadline = new Date(Date.now() + 1500);
    const id = await client.putRequest('t', { x: 1 }, { deadline });
    await assert.rejects(client.getResult(id, 20000), (e) => {
      assert.ok(e instanceof syrpc.RequestExpiredError, `${e && e.name}: ${e && e.message}`);
      assert.equal(e.sqlstate, 'SY002');
      assert.equal(e.resultId, id);
      return true;
    });
    assert.ok(Date.now() >= deadline.getTime() - 50, 'not before the deadline');
    await assert.rejects(server.getRequest(0), syrpc.TimeoutError);
    /* bad deadlines: refused here */
    for (const bad of ['tomorrow', Date.now() + 1000, new Date(NaN)])
      await assert.rejects(client.putRequest('t', 1, { deadline: bad }), (e) => e instanceof syrpc.BadInputError && /deadline/.test(e.message));
    await assert.rejects(client.putRequest('t', 1, 5), syrpc.BadInputError);
  });
});

test('a deadline already past: accepted, never handed out, its caller gets RequestExpiredError', async () => {
  await withApp('pastdl', null, async ({ client, server }) => {
    const past = await client.putRequest('t', { x: 2 }, { deadline: new Date(Date.now() - 1000) });
    await assert.rejects(server.getRequest(0), syrpc.TimeoutError);
    await assert.rejects(client.getResult(past, 5000), (e) => {
      assert.ok(e instanceof syrpc.RequestExpiredError, `${e && e.name}: ${e && e.message}`);
      assert.equal(e.sqlstate, 'SY002');
      return true;
    });
  });
});

test('syrpc.call_deadline on (a pool option): the timeout of a call is its deadline', async () => {
  await withApp('calldl', null, async ({ app, server }) => {
    const client = new syrpc.Client({ app_name: app, options: '-c syrpc.call_deadline=on' });
    try {
      const err = await client.call('t', 1, { timeoutMs: 500 }).then(() => null, (e) => e);
      /* the wait and the request end together: either the call says so, or getResult does */
      if (!(err instanceof syrpc.RequestExpiredError)) {
        assert.ok(err instanceof syrpc.TimeoutError, String(err));
        assert.match(err.resultId, /^[0-9a-f-]{36}$/);
        await assert.rejects(client.getResult(err.resultId, 5000), syrpc.RequestExpiredError);
      }
      await assert.rejects(server.getRequest(0), syrpc.TimeoutError);
      /* off (the default): a call that times out leaves its request queued */
      const plain = new syrpc.Client({ app_name: app });
      const err2 = await plain.call('t', 2, { timeoutMs: 300 }).then(() => null, (e) => e);
      await plain.close();
      assert.ok(err2 instanceof syrpc.TimeoutError, String(err2));
      const req = await server.getRequest(5000);
      assert.equal(req.result_id, err2.resultId);
      await server.putResult(req.result_id, 'late');
    } finally {
      await client.close();
    }
  });
});

test('extendLease keeps a second worker off past the first lease', async () => {
  await withApp('extend', "lease_time => '2 seconds', max_attempts => 5", async ({ app, client, server }) => {
    const second = new syrpc.Server({ app_name: app });
    try {
      /* without an extension the second worker gets it after the lease, as its attempt 2 */
      const plain = await client.putRequest('t', 'plain');
      assert.equal((await server.getRequest(5000)).result_id, plain);
      const again = await second.getRequest(30000);
      assert.equal(again.result_id, plain);
      assert.equal(again.attempts, 2);
      /* the first worker, saying its attempt, cannot extend or release the second's lease */
      await assert.rejects(server.extendLease(plain, 10000, 1), (e) => e instanceof syrpc.NotInFlightError && e.sqlstate === 'SY004');
      await assert.rejects(server.release(plain, 0, 1), (e) => e instanceof syrpc.NotInFlightError && e.sqlstate === 'SY004');
      await second.putResult(plain, 'by second');
      assert.equal((await client.getResult(plain, 5000)).data, 'by second');
      /* answered: no lease to extend */
      await assert.rejects(server.extendLease(plain, 10000), (e) => e instanceof syrpc.NotInFlightError && e.sqlstate === 'SY004');

      const id = await client.putRequest('t', 'extended');
      const req = await server.getRequest(5000);
      assert.equal(req.result_id, id);
      const t0 = Date.now();
      const until = await server.extendLease(id, 30000);
      assert.ok(until instanceof Date);
      assert.ok(Math.abs(until.getTime() - (t0 + 30000)) < 5000, `lease until ${until.toISOString()}`);
      /* well past the 2 s lease: still ours */
      await assert.rejects(second.getRequest(5000), syrpc.TimeoutError);
      await assert.rejects(server.extendLease(id, 200 * 365 * 86400000), (e) => e instanceof syrpc.BadInputError && e.sqlstate === '22023');
      await server.putResult(id, 'by first');
      assert.equal((await client.getResult(id, 5000)).data, 'by first');
      /* bad leases */
      for (const bad of [0, -1, NaN, Infinity, '1000'])
        await assert.rejects(server.extendLease(id, bad), (e) => e instanceof syrpc.BadInputError && /leaseMs/.test(e.message));
      await assert.rejects(server.extendLease(crypto.randomUUID(), 1000), syrpc.NotInFlightError);
    } finally {
      await second.close();
    }
  });
});

test('serve: a handler extends its own lease while it runs', async () => {
  await withApp('extends', "lease_time => '2 seconds', max_attempts => 5", async ({ app, client, server }) => {
    const second = new syrpc.Server({ app_name: app });
    let started, release;
    const inHandler = new Promise((r) => { started = r; });
    const gate = new Promise((r) => { release = r; });
    const served = server.serve({
      long: async (d, req) => {
        const until = await req.extendLease(30000);
        started(until);
        await gate;
        return { d, attempts: req.attempts, deadline: req.deadline instanceof Date };
      },
    });
    try {
      const callP = later(client.call('long', 'x', { timeoutMs: 30000 }));
      assert.ok((await inHandler) instanceof Date);
      await assert.rejects(second.getRequest(5000), syrpc.TimeoutError);
      release();
      assert.deepEqual(await callP, { d: 'x', attempts: 1, deadline: true });
    } finally {
      release();
      await server.close();
      await served;
      await second.close();
    }
  });
});

test('release hands a request back without counting an attempt, at once or after a delay', async () => {
  await withApp('release', "max_attempts => 1", async ({ client, server }) => {
    const id = await client.putRequest('t', { r: 1 });
    /* max_attempts 1: a counted attempt would fail it; three releases do not */
    for (let i = 0; i < 3; i++) {
      const req = await server.getRequest(5000);
      assert.equal(req.result_id, id);
      assert.equal(req.attempts, 1, `delivery ${i + 1}`);
      await server.release(id);
    }
    const req = await server.getRequest(5000);
    assert.equal(req.result_id, id);
    /* a delay: not claimable before it */
    const t0 = Date.now();
    await server.release(id, 1500);
    await assert.rejects(server.getRequest(0), syrpc.TimeoutError);
    const later1 = await server.getRequest(30000);
    assert.equal(later1.result_id, id);
    assert.ok(Date.now() - t0 >= 1400, `claimed again after ${Date.now() - t0} ms`);
    assert.equal(later1.attempts, 1);
    await server.putResult(id, 'released and answered');
    assert.equal((await client.getResult(id, 5000)).data, 'released and answered');
    /* not in flight; bad delays */
    await assert.rejects(server.release(id), (e) => e instanceof syrpc.NotInFlightError && e.sqlstate === 'SY004');
    for (const bad of [-1, NaN, Infinity, '0'])
      await assert.rejects(server.release(id, bad), (e) => e instanceof syrpc.BadInputError && /delayMs/.test(e.message));
  });
});

test('a request that ends while its handler works: nothing breaks for the next one', async () => {
  await withApp('lost', "lease_time => '1 second', max_attempts => 1", async ({ client, server }) => {
    /* the handler outlives its lease: its extendLease is refused, and serve goes on */
    let release;
    const gate = new Promise((r) => { release = r; });
    const outcomes = [];
    const served = server.serve({
      slow: async (d, req) => {
        await gate;
        try {
          await req.extendLease(1000);
          outcomes.push('extended');
        } catch (e) {
          outcomes.push(e.name);
          throw e;
        }
        return d;
      },
      echo: async (d) => d,
    }, { concurrency: 2 });
    const id = await client.putRequest('slow', 1);
    await assert.rejects(client.getResult(id, 20000), (e) => e instanceof syrpc.RequestFailedError && e.sqlstate === 'SY001');
    release();
    await waitFor('the handler to finish', () => outcomes.length === 1);
    assert.deepEqual(outcomes, ['NotInFlightError']);
    assert.deepEqual(await client.call('echo', 2, { timeoutMs: 10000 }), 2);
    await server.close();
    await served;
  });
});

test('extension 1.6: the new calls fail here, naming 1.7; the old ones and serve work as before', async () => {
  const db = `syrpc_node_v16_${crypto.randomBytes(3).toString('hex')}`;
  await sql(`CREATE DATABASE ${db}`);
  try {
    const p = new pg.Pool({ database: db, max: 1 });
    await p.query("CREATE EXTENSION syrpc VERSION '1.6'");
    await p.end();
    const client = new syrpc.Client({ app_name: 'v16', database: db });
    const server = new syrpc.Server({ app_name: 'v16', database: db });
    try {
      const id = await client.putRequest('t', { v: 16 });
      const req = await server.getRequest(5000);
      assert.deepEqual(req, { result_id: id, type: 't', data: { v: 16 } }, 'no attempts or deadline before 1.7');
      const refused = (what) => (e) => {
        assert.ok(e instanceof syrpc.ServerError, `${what}: ${e && e.name}: ${e && e.message}`);
        assert.equal(e.message, `${what} needs extension 1.7 or later (the database has 1.6)`);
        assert.match(e.hint, /ALTER EXTENSION syrpc UPDATE/);
        return true;
      };
      await assert.rejects(server.putError(id, 'm', { d: 1 }), refused('putError'));
      await assert.rejects(server.isCancelled(id), refused('isCancelled'));
      await assert.rejects(server.extendLease(id, 1000), refused('extendLease'));
      await assert.rejects(server.release(id), refused('release'));
      await assert.rejects(client.cancel(id), refused('cancel'));
      await assert.rejects(client.putRequest('t', 1, { deadline: new Date(Date.now() + 1000) }),
        refused('putRequest with a deadline'));
      await server.putResult(id, 'still in flight');
      assert.equal((await client.getResult(id, 5000)).data, 'still in flight');
      const id2 = await client.putRequest('t', 1, { deadline: null });
      const req2 = await server.getRequest(5000);
      assert.equal(req2.result_id, id2);
      assert.equal(req2.attempts, undefined);
      await server.putResult(id2, 2);

      /* serve: a handler that throws gives its request up as before 1.7; extendLease in a handler is refused */
      const inside = [];
      const served = server.serve({
        boom: async () => { throw new Error('old style'); },
        ext: async (d, r) => { await r.extendLease(1000).catch((e) => inside.push(e.message)); return { attempts: r.attempts }; },
      });
      await assert.rejects(client.call('boom', {}, { timeoutMs: 10000 }), (e) => e instanceof syrpc.RequestFailedError
        && !(e instanceof syrpc.RemoteError) && e.sqlstate === 'SY001' && /handler failed: old style/.test(e.message));
      assert.deepEqual(await client.call('ext', {}, { timeoutMs: 10000 }), {});
      assert.deepEqual(inside, ['extendLease needs extension 1.7 or later (the database has 1.6)']);
      await server.close();
      await served;
    } finally {
      await client.close();
      await server.close();
    }
  } finally {
    await sql(`DROP DATABASE ${db} WITH (FORCE)`);
  }
});
