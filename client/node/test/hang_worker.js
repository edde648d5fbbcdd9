'use strict';
/* A worker that takes one request, says so on stdout, and never answers (the test kills it). */
const syrpc = require('..');

async function main() {
  const server = new syrpc.Server({ app_name: process.argv[2] });
  await server.init();
  process.stdout.write('ready\n');
  const req = await server.getRequest(null);
  process.stdout.write(`got ${req.result_id}\n`);
  await new Promise(() => {});      /* hang, holding the lease */
}

main().catch((e) => {
  process.stderr.write(`hang_worker: ${e.stack}\n`);
  process.exit(1);
});
