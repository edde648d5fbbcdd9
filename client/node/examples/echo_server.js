#!/usr/bin/env node
'use strict';
/*
 * echo_server.js: the Node.js counterpart of the original SyRPC docs' echo server.
 *
 *   node examples/echo_server.js [APP]      (connection from PGHOST, PGDATABASE, ...)
 *
 * Answers every "echo" request with its data until SIGINT or SIGTERM,
 * then stops gracefully (a request being handled is answered first).
 */
const syrpc = require('..');          /* require('syrpc') in an app */

const rpcServer = new syrpc.Server({ app_name: process.argv[2] || 'syrpc' });

const serving = rpcServer.serve({
  echo: async (data, request) => {
    console.log(`Server received request: ${request.result_id}`);
    return data;
  },
});
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => { rpcServer.close(); });
serving.then(() => process.exit(0), (err) => {
  console.error(`echo_server: ${err.message}${err.hint ? `\nHINT: ${err.hint}` : ''}`);
  process.exit(1);
});
console.log('echo_server: serving (Ctrl-C to stop)');
