'use strict';
/*
 * What the tests share: an admin connection (the database in PGDATABASE,
 * as the superuser run-tests.sh uses), unique app names, and waiting for
 * a condition with a deadline (never a sleep as synchronisation).
 */
const crypto = require('crypto');
const pg = require('pg');

let admin = null;

/* A pool on the test database with the server's privileges. */
function adminPool() {
  if (admin === null) {
    admin = new pg.Pool({ max: 3 });
    admin.on('error', () => {});
  }
  return admin;
}

async function sql(text, values) {
  return (await adminPool().query(text, values)).rows;
}

/* An app name of its own for each test. */
function appName(what) {
  return `node_${what}_${crypto.randomBytes(4).toString('hex')}`;
}

/* Resolve with cond()'s value once it is truthy; reject after ms. */
async function waitFor(what, cond, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v)
      return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));     /* poll interval, not a synchronisation */
  }
}

/* Requests and unread results of app in the queue tables. */
async function queueState(app) {
  const [r] = await sql(
    `SELECT (SELECT count(*) FROM syrpc.request WHERE app = $1)::int AS requests,
            (SELECT count(*) FROM syrpc.result WHERE app = $1)::int AS results`, [app]);
  return r;
}

/* syrpc_stats.queued of app: requests queued in the table or, for syrpc_call, in memory. */
async function queuedOf(app) {
  const [r] = await sql('SELECT coalesce((SELECT queued FROM syrpc_stats WHERE app = $1), 0)::int AS n', [app]);
  return r.n;
}

/* Backends of the test database with application_name app, running a statement like like. */
async function waitingBackends(like, app) {
  return sql(`SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND state = 'active'
                 AND pid <> pg_backend_pid() AND query LIKE $1 AND application_name = $2`, [like, app]);
}

/* p, marked as handled: a rejection before the test awaits it is not an unhandled one. */
function later(p) {
  p.catch(() => {});
  return p;
}

/* The version of the extension in the test database, as major * 100 + minor (107 for 1.7). */
async function extVersion() {
  const [r] = await sql("SELECT extversion FROM pg_extension WHERE extname = 'syrpc'");
  const [major, minor] = r.extversion.split('.').map(Number);
  return major * 100 + minor;
}

async function closeAdmin() {
  if (admin !== null) {
    const a = admin;
    admin = null;
    await a.end();
  }
}

module.exports = { later, adminPool, sql, appName, waitFor, queueState, queuedOf, waitingBackends, extVersion, closeAdmin };
