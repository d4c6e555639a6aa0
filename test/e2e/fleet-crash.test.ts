import { expect, inject, it } from 'vitest';
import { freePort } from '../../local/dynamodb.js';
import { startNode } from '../support/processes.js';
import { apiClient, eventually, startTestApp, testConfig } from '../support/stack.js';
import { createFleet, listAll, untilDone } from '../support/fleet.js';

/**
 * The server running a fleet stop dies mid-operation: `npm start`'s own process (local/main.ts),
 * killed with SIGKILL while the operation runs. Another server started on the same tables resumes
 * the operation's workflow, which picks up where its members stand and finishes it.
 */
it('a fleet stop survives a crash of the server running it: a restart finishes it, every agent stopped once', { timeout: 120_000 }, async () => {
  const config = testConfig({ heartbeatMs: 200, leaseTtlMs: 1000 });
  const port = await freePort();
  const { proc, exited, output } = startNode(['--import', 'tsx', 'local/main.ts'], {
    PORT: String(port),
    DYNAMODB_ENDPOINT: inject('dynamoEndpoint'),
    AGENTS_TABLE: config.agentsTable,
    RECORDS_TABLE: config.recordsTable,
    API_KEYS_TABLE: `keys-${config.agentsTable.slice('agents-'.length)}`,
    HEARTBEAT_MS: '200',
    LEASE_TTL_MS: '1000',
    CLOCK_TOLERANCE_MS: '250',
    AGENTS_REAPER_INTERVAL_MS: '0',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
  let restarted: Awaited<ReturnType<typeof startTestApp>> | undefined;
  try {
    await eventually(async () => output().includes('agents API on'), 60_000, 100);
    const api = apiClient(`http://127.0.0.1:${port}`);
    const idle = await createFleet(api, 200);
    const busy = await createFleet(api, 5, { runtime: { type: 'echo', delayMs: 60_000 } });
    for (const agentId of busy) expect((await api('POST', `/agents/${agentId}/messages`, { text: 'long' }, { prefer: 'respond-async' })).status).toBe(202);

    const started = await api('POST', '/agents/stop', { status: 'active', timeout: 3000, concurrency: 1 }, { 'idempotency-key': 'crash-test' });
    expect(started.status).toBe(202);
    const { operationId } = started.body.data;
    // Kill it in the middle of its second page: the first page's progress is saved, and some agents
    // of the second are stopped while their members still say `pending` (the step writes members
    // per page): the resumed operation must find those stops through the agents, not skip them.
    await eventually(async () => {
      const op = (await api('GET', `/fleet-stops/${operationId}`)).body.data;
      return op.counts.selected === 100 && (await listAll(api, 'inactive')).length >= 110;
    }, 30_000, 20);
    proc.kill('SIGKILL');
    await exited;

    restarted = await startTestApp({ config });
    expect(restarted.resumedFleetStops).toBe(1);
    const op = await untilDone(restarted.api, operationId, 60_000);
    expect(op.status).toBe('completed');
    expect(op.counts).toMatchObject({ selected: 205, stopped: 205, inProgress: 0, failed: 0, skipped: 0 });
    expect(op.counts.drained + op.counts.timed_out).toBe(205);

    // Every agent inactive, stopped exactly once, by this operation.
    for (const agentId of [...idle, ...busy]) {
      const stops = (await restarted.api('GET', `/agents/${agentId}/stops`)).body.data;
      expect(stops, agentId).toHaveLength(1);
      expect(stops[0].operationId).toBe(operationId);
    }
    // The key still names it after the restart.
    const again = await restarted.api('POST', '/agents/stop', { status: 'active', timeout: 3000, concurrency: 1 }, { 'idempotency-key': 'crash-test' });
    expect(again.body.data.operationId).toBe(operationId);
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    await restarted?.close();
  }
});
