#!/usr/bin/env node
/**
 * Maintenance window: stop every running agent, gracefully, and wait until all are stopped.
 *
 *   AGENTS_URL=http://localhost:3000 [AGENTS_API_KEY=...] [IDEMPOTENCY_KEY=...] node examples/maintenance-window.mjs [timeoutMs]
 *
 * One fleet stop (POST /agents/stop), made safe to repeat with an Idempotency-Key: each run takes
 * a fresh key and prints it; run again with IDEMPOTENCY_KEY set to it after a crash or a lost
 * answer and it follows the same operation instead of starting another.
 * Then it follows the operation (GET /fleet-stops/{operationId}) until `done`, and checks the
 * result the way a client must list agents: following `nextCursor` until it is null.
 * No dependencies (Node 20+ fetch). Exits 1 if any agent is left running or failed to stop.
 */
import { randomUUID } from 'node:crypto';

const base = process.env.AGENTS_URL ?? 'http://localhost:3000';
const timeout = Number(process.argv[2] ?? 30000);
const key = process.env.IDEMPOTENCY_KEY || `maintenance-${randomUUID()}`;
const headers = {
  'content-type': 'application/json',
  ...(process.env.AGENTS_API_KEY && { authorization: `Bearer ${process.env.AGENTS_API_KEY}` }),
};

async function api(method, path, body, extra = {}) {
  const res = await fetch(`${base}${path}`, { method, headers: { ...headers, ...extra }, body: body && JSON.stringify(body) });
  const json = await res.json();
  if (!json.success) throw new Error(`${method} ${path}: ${res.status} ${json.error}`);
  return json;
}

const started = await api('POST', '/agents/stop', { status: 'active', graceful: true, timeout }, { 'idempotency-key': key });
const { operationId } = started.data;
console.log(`fleet stop ${operationId} (${started.message}); to follow it again after a crash: IDEMPOTENCY_KEY=${key}`);

let op = started.data;
while (!op.done) {
  await new Promise((r) => setTimeout(r, 1000));
  op = (await api('GET', `/fleet-stops/${operationId}`)).data;
  const c = op.counts;
  console.log(`selected ${c.selected}, stopped ${c.stopped} (drained ${c.drained}, timed out ${c.timed_out}, forced ${c.forced}), in progress ${c.inProgress}, failed ${c.failed}, skipped ${c.skipped}`);
}
for (const f of op.failures) console.log(`failed: ${f.agentId}: ${f.error}`);

// The list ends when nextCursor is null; a page may hold fewer than `limit` agents and not be the last.
let running = 0;
let cursor = null;
do {
  const page = await api('GET', `/agents?status=active${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
  running += page.data.length;
  cursor = page.nextCursor;
} while (cursor);

console.log(`${op.status}: ${op.counts.stopped} stopped, ${op.counts.failed} failed, ${running} active now`);
process.exit(op.status === 'completed' && op.counts.failed === 0 && running === 0 ? 0 : 1);
