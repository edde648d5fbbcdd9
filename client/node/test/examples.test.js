'use strict';
/* The examples: echo_server.js answers echo_client.js, and stops cleanly on SIGTERM. */
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawn, execFile } = require('child_process');
const { appName, waitFor } = require('./helpers');

const EXAMPLES = path.join(__dirname, '..', 'examples');

test('examples: echo_server.js and echo_client.js', async () => {
  const app = appName('example');
  const server = spawn(process.execPath, [path.join(EXAMPLES, 'echo_server.js'), app], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  server.stdout.on('data', (b) => { out += b; });
  server.stderr.on('data', (b) => { err += b; });
  const exited = new Promise((r) => server.on('exit', (code, signal) => r({ code, signal })));
  try {
    await waitFor('the server to start', () => out.includes('serving'));
    const client = await new Promise((resolve) => {
      execFile(process.execPath, [path.join(EXAMPLES, 'echo_client.js'), app, '--count', '20'], { timeout: 60000 },
        (e, stdout, stderr) => resolve({ e, stdout, stderr }));
    });
    assert.equal(client.e, null, client.stderr);
    const lines = client.stdout.trim().split('\n');
    assert.equal(lines[0], '[{"foo":"bar"},{"baz":9001}]');
    assert.match(lines[1], /^20 round trips in [0-9.]+ s: [0-9]+ per second$/);
    assert.equal(out.split('\n').filter((l) => l.startsWith('Server received request: ')).length, 21);
    server.kill('SIGTERM');
    assert.deepEqual(await exited, { code: 0, signal: null }, err);
  } finally {
    server.kill('SIGKILL');
  }
});

test('a script whose call nobody answers gets TimeoutError with the resultId, and exits after close()', async () => {
  /* nothing is left open (timers, sockets) once close() has resolved: the process ends by itself */
  const r = await new Promise((resolve) => {
    execFile(process.execPath, ['-e', `
      const syrpc = require(${JSON.stringify(path.join(__dirname, '..'))});
      const c = new syrpc.Client({ app_name: ${JSON.stringify(appName('example_none'))} });
      c.call('echo', 1, { timeoutMs: 100 }).catch((e) => { console.log(e.name, !!e.resultId); return c.close(); });
    `], { timeout: 30000 }, (e, stdout) => resolve({ e, stdout }));
  });
  assert.equal(r.e, null);
  assert.equal(r.stdout.trim(), 'TimeoutError true');
});
