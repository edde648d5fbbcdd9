'use strict';
/* Older extension versions: 1.2 works without failRequest; 1.1 is refused with a hint. */
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const pg = require('pg');
const syrpc = require('..');
const { sql, closeAdmin } = require('./helpers');

test.after(closeAdmin);

async function withDatabase(version, fn) {
  const db = `syrpc_node_v${version.replace('.', '')}_${crypto.randomBytes(3).toString('hex')}`;
  await sql(`CREATE DATABASE ${db}`);
  try {
    const p = new pg.Pool({ database: db, max: 1 });
    await p.query(`CREATE EXTENSION syrpc VERSION '${version}'`);
    await p.end();
    await fn(db);
  } finally {
    await sql(`DROP DATABASE ${db} WITH (FORCE)`);
  }
}

test('extension 1.2: calls and serve work; a handler that throws is answered with an error object', async () => {
  await withDatabase('1.2', async (db) => {
    const client = new syrpc.Client({ app_name: 'v12', database: db });
    const server = new syrpc.Server({ app_name: 'v12', database: db });
    try {
      const served = server.serve({ echo: async (d) => d, boom: async () => { throw new Error('bad luck'); } });
      assert.deepEqual(await client.call('echo', { v: 12 }, { timeoutMs: 10000 }), { v: 12 });
      assert.deepEqual(await client.call('boom', {}, { timeoutMs: 10000 }),
        { error: 'request failed', type: 'boom', reason: 'handler failed: bad luck' });
      await server.close();
      await served;
      const other = new syrpc.Server({ app_name: 'v12', database: db });
      await assert.rejects(other.failRequest(crypto.randomUUID(), 'x'),
        (e) => e instanceof syrpc.ServerError && /needs extension 1.3/.test(e.message) && /ALTER EXTENSION/.test(e.hint));
      await other.close();
    } finally {
      await client.close();
      await server.close();
    }
  });
});

test('extension 1.1: refused with a hint to update', async () => {
  await withDatabase('1.1', async (db) => {
    const client = new syrpc.Client({ app_name: 'v11', database: db });
    try {
      await assert.rejects(client.call('echo', 1, { timeoutMs: 100 }),
        (e) => e instanceof syrpc.ServerError && /needs extension 1.2 or later \(the database has 1.1\)/.test(e.message));
    } finally {
      await client.close();
    }
  });
});
