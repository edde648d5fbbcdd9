'use strict';
/* The package's surface: what index.js exports is what index.d.ts declares, and package.json's promises. */
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const syrpc = require('..');

const ROOT = path.join(__dirname, '..');

test('index.d.ts declares every export of index.js, and nothing else', () => {
  const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:declare )?(?:class|function|const) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(syrpc).sort());
});

test('package.json: name syrpc, engines, pg the only runtime dependency, a lockfile', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'syrpc');
  assert.ok(pkg.engines && pkg.engines.node);
  assert.deepEqual(Object.keys(pkg.dependencies), ['pg']);
  assert.equal(pkg.types, 'index.d.ts');
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  assert.equal(lock.packages[''].name, 'syrpc');
});

test('the original syrpc-js names are there, returning Promises', () => {
  for (const m of ['putRequest', 'getResult', 'call', 'init', 'close'])
    assert.equal(typeof syrpc.Client.prototype[m], 'function', m);
  for (const m of ['getRequest', 'putResult', 'failRequest', 'serve', 'init', 'close'])
    assert.equal(typeof syrpc.Server.prototype[m], 'function', m);
  const c = new syrpc.Client({ app_name: 'names', host: '/nonexistent-dir' });
  const p = c.putRequest('', 1);
  assert.ok(p instanceof Promise);
  return assert.rejects(p, syrpc.BadInputError).then(() => c.close());
});
