/**
 * `npm run bench:fleet` (part of `npm run bench`): stop 1,000 idle active agents
 * - with one fleet stop (`POST /agents/stop {status: "active"}`), at two concurrencies, and
 * - with a client's "maintenance window" loop: `GET /agents` following `nextCursor`, then
 *   `POST /agents/{id}/stop` for every active agent, one at a time,
 * over the same 1,000 agents (put back to active between runs), in the same run, after one
 * unmeasured round of each (DynamoDB Local runs several times slower on a cold JVM). Time to all
 * inactive, and DynamoDB calls per agent counted at the client every request goes through.
 */
import type { StoredAgent } from '../functions/agents/model.js';
import { benchStack, countCalls, putAgents } from './support.js';

const FLEET = Number(process.env.FLEET ?? 1000);
const stack = await benchStack();
const { app } = stack;
const d = app.deps;

const calls = countCalls(app.db);

const ids = Array.from({ length: FLEET }, () => crypto.randomUUID());
/** Put the fleet back: every agent active, idle, no stop history on the item. */
async function activateAll(): Promise<void> {
  const now = Date.now();
  const agents = ids.map(
    (agentId, i): Omit<StoredAgent, 'configVersion'> => ({
      agentId,
      name: `fleet-${i}`,
      status: 'active',
      settings: {},
      runtime: { type: 'echo' },
      idleTimeoutMs: null,
      leases: {},
      version: 2,
      createdAt: now,
      updatedAt: now,
      startedAt: now,
      dueAt: Number.MAX_SAFE_INTEGER,
    }),
  );
  await putAgents(app.db, { agents: d.config.agentsTable!, records: d.config.recordsTable! }, agents);
}

async function activeLeft(): Promise<number> {
  let n = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await d.agents.queryByStatus('active', { limit: 1000, startKey });
    n += page.items.length;
    startKey = page.lastKey;
  } while (startKey);
  return n;
}

type Row = { label: string; seconds: number; reads: number; writes: number; requests: number };
const rows: Row[] = [];

async function measure(label: string, run: () => Promise<number>, record = true): Promise<void> {
  await activateAll();
  calls.reset();
  const t0 = performance.now();
  const requests = await run();
  const seconds = (performance.now() - t0) / 1000;
  const { reads, writes } = calls.counts();
  const left = await activeLeft();
  if (left !== 0) throw new Error(`${label}: ${left} agents still active`);
  if (record) rows.push({ label, seconds, reads: reads / FLEET, writes: writes / FLEET, requests });
  console.log(`${record ? '' : '(warm-up) '}${label}: ${seconds.toFixed(1)} s`);
}

const fleetStop = (concurrency: number) => async () => {
  const started = await app.api('POST', '/agents/stop', { status: 'active', concurrency });
  if (started.status !== 202) throw new Error(`fleet stop: ${started.text}`);
  let requests = 1;
  for (;;) {
    requests++;
    const op = (await app.api('GET', `/fleet-stops/${started.body.data.operationId}`)).body.data;
    if (op.done) {
      if (op.counts.stopped !== FLEET) throw new Error(`fleet stop stopped ${op.counts.stopped} of ${FLEET}`);
      return requests;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** A client's loop that follows nextCursor: list every agent, stop the active ones one by one. */
const clientLoop = async () => {
  let requests = 0;
  let cursor: string | null = null;
  do {
    const page = await app.api('GET', `/agents${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
    requests++;
    for (const agent of page.body.data as { agentId: string; status: string }[]) {
      if (agent.status !== 'active') continue;
      const res = await app.api('POST', `/agents/${agent.agentId}/stop`, { graceful: true, timeout: 30_000 });
      requests++;
      if (res.status !== 200) throw new Error(`stop ${agent.agentId}: ${res.status} ${res.text}`);
    }
    cursor = page.body.nextCursor;
  } while (cursor);
  return requests;
};

try {
  console.log(`fleet of ${FLEET} idle active agents, DynamoDB Local in memory, ${new Date().toISOString()}`);
  // DynamoDB Local's JVM runs several times slower cold: both ways once unmeasured, then alternated.
  await measure('client loop', clientLoop, false);
  await measure('fleet stop', fleetStop(10), false);
  await measure('client loop (GET /agents + nextCursor, 1 stop at a time)', clientLoop);
  await measure('fleet stop, concurrency 10', fleetStop(10));
  await measure('fleet stop, concurrency 50', fleetStop(50));
  console.log('');
  console.log(`${'stop 1,000 idle agents'.padEnd(58)} ${'to all inactive'.padStart(16)} ${'HTTP requests'.padStart(14)} ${'reads/agent'.padStart(12)} ${'writes/agent'.padStart(13)}`);
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(58)} ${`${r.seconds.toFixed(1)} s`.padStart(16)} ${String(r.requests).padStart(14)} ${r.reads.toFixed(2).padStart(12)} ${r.writes.toFixed(2).padStart(13)}`,
    );
  }
  const [loop, ...fleet] = rows;
  for (const r of fleet) {
    console.log(
      `${r.label}: ${(loop!.seconds / r.seconds).toFixed(1)}x the client loop's speed, ${Math.round(loop!.requests / r.requests)}x fewer requests, ` +
        `${r.reads.toFixed(2)} vs ${loop!.reads.toFixed(2)} reads and ${r.writes.toFixed(2)} vs ${loop!.writes.toFixed(2)} writes per agent`,
    );
  }
} finally {
  await stack.close();
}
