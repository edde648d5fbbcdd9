#!/usr/bin/env node
'use strict';
/*
 * echo_client.js: the Node.js counterpart of the original SyRPC docs' echo client.
 *
 *   node examples/echo_client.js [APP] [--count N]   (connection from PGHOST, PGDATABASE, ...)
 *
 * Puts an "echo" request, waits for the result and prints it.  With
 * --count N it does N round trips with call() and prints how fast they went.
 */
const syrpc = require('..');          /* require('syrpc') in an app */

async function main() {
  const args = process.argv.slice(2);
  const app = args[0] && !args[0].startsWith('-') ? args[0] : 'syrpc';
  const i = args.indexOf('--count');
  const count = i >= 0 ? Number(args[i + 1]) : 0;
  const rpcClient = new syrpc.Client({ app_name: app });
  try {
    const type = 'echo';
    const data = [{ foo: 'bar' }, { baz: 9001 }];
    const resultId = await rpcClient.putRequest(type, data);
    const result = await rpcClient.getResult(resultId, 10000);
    console.log(JSON.stringify(result.data));
    if (count > 0) {
      const t0 = process.hrtime.bigint();
      for (let n = 0; n < count; n++)
        await rpcClient.call(type, { n }, { timeoutMs: 10000 });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(`${count} round trips in ${s.toFixed(3)} s: ${(count / s).toFixed(0)} per second`);
    }
  } finally {
    await rpcClient.close();
  }
}

main().catch((err) => {
  console.error(`echo_client: ${err.name}: ${err.message}${err.hint ? `\nHINT: ${err.hint}` : ''}`);
  process.exit(err instanceof syrpc.TimeoutError ? 3 : 1);
});
