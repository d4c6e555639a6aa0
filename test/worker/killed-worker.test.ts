import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { runReaper } from '../../functions/agents/reaper.js';
import { freePort } from '../../local/dynamodb.js';
import { startNode } from '../support/processes.js';
import { apiClient, eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * A worker process killed mid-message: `npm start`'s server (local/main.ts, its own Node process,
 * its own worker) runs a long asynchronous message and is killed with SIGKILL. Nothing of it
 * writes again; its message's lease, no longer renewed, expires within the TTL, and the next
 * process to look (here the reaper of another server on the same tables) settles it.
 */
const HEARTBEAT_MS = 200;
const LEASE_TTL_MS = 1000;
let observer: TestApp;
beforeAll(async () => {
  observer = await startTestApp({ config: { heartbeatMs: HEARTBEAT_MS, leaseTtlMs: LEASE_TTL_MS } });
});
afterAll(async () => {
  await observer.close();
});

it('a killed worker leaves a lease that expires within the TTL, and its message is settled failed', { timeout: 90_000 }, async () => {
  const { agentsTable, recordsTable } = observer.deps.config;
  const port = await freePort();
  const { proc: worker, exited, output } = startNode(['--import', 'tsx', 'local/main.ts'], {
    PORT: String(port),
    DYNAMODB_ENDPOINT: inject('dynamoEndpoint'),
    AGENTS_TABLE: agentsTable!,
    RECORDS_TABLE: recordsTable!,
    API_KEYS_TABLE: `keys-${agentsTable!.slice('agents-'.length)}`,
    HEARTBEAT_MS: String(HEARTBEAT_MS),
    LEASE_TTL_MS: String(LEASE_TTL_MS),
    // One machine, one clock: the test's own tolerance (testConfig's), not the deployed 5 s.
    CLOCK_TOLERANCE_MS: String(LEASE_TTL_MS / 4),
    AGENTS_REAPER_INTERVAL_MS: '0',
  });
  try {
    await eventually(async () => output().includes('agents API on'), 60_000, 100);
    const api = apiClient(`http://127.0.0.1:${port}`);
    const created = await api('POST', '/agents', { name: 'doomed', runtime: { type: 'echo', delayMs: 60_000 }, idleTimeoutMs: null });
    const agentId = created.body.data.agentId as string;
    expect((await api('POST', `/agents/${agentId}/start`)).status).toBe(200);
    const sent = await api('POST', `/agents/${agentId}/messages`, { text: 'mid-flight' }, { prefer: 'respond-async' });
    expect(sent.status).toBe(202);
    const { messageId } = sent.body.data;

    // Alive, the worker keeps its lease for longer than the TTL: heartbeats.
    await new Promise((r) => setTimeout(r, 3 * LEASE_TTL_MS));
    expect((await observer.api('GET', `/agents/${agentId}`)).body.data.inFlight).toBe(1);

    worker.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    await eventually(async () => (await observer.api('GET', `/agents/${agentId}`)).body.data.inFlight === 0, 10_000, 20);
    expect(Date.now() - killedAt).toBeLessThanOrEqual(LEASE_TTL_MS + 500);
    expect((await observer.api('GET', `/agents/${agentId}/messages/${messageId}`)).body.data.status).toBe('processing');

    const summary = await runReaper(observer.deps, { budgetMs: 5000 });
    expect(summary.reclaimed).toBe(1);
    expect((await observer.api('GET', `/agents/${agentId}/messages/${messageId}`)).body.data).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/lease expired/),
    });
    expect((await observer.api('GET', `/agents/${agentId}`)).body.data).toMatchObject({ status: 'active', inFlight: 0 });
  } finally {
    worker.kill('SIGKILL');
  }
});
