#!/usr/bin/env node
// The agentctl command: the compiled CLI (dist/, built by `npm run build` and when installed).
let cli;
try {
  cli = await import('../dist/cli.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  console.error('agentctl is not built: run `npm run build -w @agents-lifecycle/client` (or `npm ci`) first');
  process.exit(1);
}
process.exitCode = await cli.run(process.argv.slice(2), { out: process.stdout, err: process.stderr, env: process.env });
