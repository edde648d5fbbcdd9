'use strict';
/*
 * Through pgbouncer in transaction pooling mode (started here, on a Unix
 * socket in a temporary directory, as test/pgbouncer_test.sh does).
 */
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');
const syrpc = require('..');
const { later, appName, closeAdmin, queueState, sql, waitFor } = require('./helpers');

const PORT = 6439;
let dir = null;

function asPostgres(cmd, args) {
  if (process.getuid && process.getuid() === 0)
    return execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'pipe' });
  return execFileSync(cmd, args, { stdio: 'pipe' });
}

function pgbouncerBinary() {
  for (const p of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'])
    if (fs.existsSync(p))
      return p;
  const r = spawnSync('sh', ['-c', 'command -v pgbouncer']);
  return r.status === 0 ? r.stdout.toString().trim() : null;
}

test.before(async () => {
  const bin = pgbouncerBinary();
  if (!bin)
    throw new Error('pgbouncer is not installed (apt-get install pgbouncer)');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'syrpc-node-pgb-'));
  fs.chmodSync(dir, 0o755);
  const db = process.env.PGDATABASE;
  fs.writeFileSync(path.join(dir, 'pgbouncer.ini'), `[databases]
${db} = host=${process.env.PGHOST} port=${process.env.PGPORT || 5432} dbname=${db} user=${process.env.PGUSER || 'postgres'}
[pgbouncer]
listen_addr =
unix_socket_dir = ${dir}
listen_port = ${PORT}
auth_type = trust
auth_file = ${dir}/users.txt
pool_mode = transaction
default_pool_size = 10
max_client_conn = 200
logfile = ${dir}/pgbouncer.log
pidfile = ${dir}/pgbouncer.pid
admin_users = ${process.env.PGUSER || 'postgres'}
`);
  fs.writeFileSync(path.join(dir, 'users.txt'), `"${process.env.PGUSER || 'postgres'}" ""\n`);
  if (process.getuid && process.getuid() === 0)
    execFileSync('chown', ['-R', 'postgres:', dir]);
  asPostgres(bin, ['-d', path.join(dir, 'pgbouncer.ini')]);
  await waitFor('pgbouncer to listen', () => fs.existsSync(path.join(dir, `.s.PGSQL.${PORT}`)), 10000);
});

test.after(async () => {
  if (dir) {
    const pidFile = path.join(dir, 'pgbouncer.pid');
    if (fs.existsSync(pidFile)) {
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      try { process.kill(pid, 'SIGTERM'); } catch (e) { /* gone */ }
      await waitFor('pgbouncer to exit', () => { try { process.kill(pid, 0); return false; } catch (e) { return true; } }, 10000)
        .catch(() => {});
    }
    if (process.env.KEEP_PGB_LOG) process.stderr.write(fs.readFileSync(path.join(dir, "pgbouncer.log"), "utf8"));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  await closeAdmin();
});

function viaBouncer(app, max) {
  return { app_name: app, host: dir, port: PORT, max, application_name: app };
}

test('through pgbouncer (transaction pooling): calls, put/get, serve, cancel', async () => {
  const app = appName('pgb');
  const client = new syrpc.Client(viaBouncer(app, 8));
  const server = new syrpc.Server(viaBouncer(app, 2));
  try {
    const served = server.serve({ echo: async (d) => d }, { concurrency: 2 });
    /*
     * A waiting call holds a server connection of the bouncer, so its pool (10) is
     * sized for the clients that wait at once: 8 callers and 2 serve loops; the 100
     * calls queue in the Node pool, not in the bouncer.
     */
    const calls = [];
    for (let i = 0; i < 100; i++)
      calls.push(client.call('echo', { i }, { timeoutMs: 60000 }));
    (await Promise.all(calls)).forEach((r, i) => assert.deepEqual(r, { i }));
    const id = await client.putRequest('echo', { pg: 'bouncer' });
    assert.deepEqual(await client.getResult(id, 20000), { result_id: id, data: { pg: 'bouncer' } });
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM pg_stat_activity
                                WHERE datname = current_database() AND backend_type = 'client backend'
                                  AND application_name = $1`, [app]);
    assert.ok(n <= 10, `the bouncer's server connections (${n}) are at most its pool size`);
    await server.close();
    await served;

    /* an AbortSignal's cancel request goes through pgbouncer to the right backend */
    const waitId = await client.putRequest('nobody', {});
    const ctl = new AbortController();
    const waiting = later(client.getResult(waitId, 60000, { signal: ctl.signal }));
    await waitFor('the wait in the server', async () => (await sql(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'
          AND query LIKE '%syrpc_wait_result%' AND pid <> pg_backend_pid()`)).length > 0);
    const t0 = Date.now();
    ctl.abort();
    await assert.rejects(waiting, syrpc.CancelledError);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal((await queueState(app)).requests, 1);
  } finally {
    await client.close();
    await server.close();
  }
});
