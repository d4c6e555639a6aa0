#!/usr/bin/env node
/**
 * Maintenance window: stop every running agent, gracefully, and wait until all are stopped.
 *
 *   AGENTS_API_URL=http://localhost:3000 [AGENTS_API_KEY=...] [IDEMPOTENCY_KEY=...] node examples/maintenance-window.mjs [timeoutMs]
 *
 * One fleet stop, made safe to repeat with an Idempotency-Key: each run takes a fresh key and
 * prints it; run again with IDEMPOTENCY_KEY set to it after a crash or a lost answer and it
 * follows the same operation instead of starting another. The client follows the operation until
 * it is done, then the check lists every agent still active, across pages.
 * `npx agentctl stop --all --watch` does the same from a terminal.
 * Exits 1 if any agent is left running or failed to stop.
 */
import { randomUUID } from 'node:crypto';
import { AgentsClient } from '@agents-lifecycle/client';

const client = new AgentsClient({ pollMs: 1000 });
const timeout = Number(process.argv[2] ?? 30000);
const idempotencyKey = process.env.IDEMPOTENCY_KEY || `maintenance-${randomUUID()}`;

const op = await client.fleetStop(
  { status: 'active', graceful: true, timeout },
  {
    idempotencyKey,
    onStart: (started, { message }) =>
      console.log(`fleet stop ${started.operationId} (${message}); to follow it again after a crash: IDEMPOTENCY_KEY=${idempotencyKey}`),
    onProgress: ({ counts: c }) =>
      console.log(`selected ${c.selected}, stopped ${c.stopped} (drained ${c.drained}, timed out ${c.timed_out}, forced ${c.forced}), in progress ${c.inProgress}, failed ${c.failed}, skipped ${c.skipped}`),
  },
);
for (const f of op.failures) console.log(`failed: ${f.agentId}: ${f.error}`);

let running = 0;
for await (const _ of client.agents({ status: 'active' })) running++;

console.log(`${op.status}: ${op.counts.stopped} stopped, ${op.counts.failed} failed, ${running} active now`);
process.exit(op.status === 'completed' && op.counts.failed === 0 && running === 0 ? 0 : 1);
