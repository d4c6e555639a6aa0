import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLocalApp, type LocalApp } from '../../local/app.js';
import { ensureTables, freePort, startDynamoDbLocal, type LocalDynamo } from '../../local/dynamodb.js';
import { apiClient, eventually, testConfig, type Api } from '../support/stack.js';

/**
 * DynamoDB Local, with its data on disk, stopped and restarted while clients keep sending: every
 * write the API acknowledged is still there afterwards; requests during the outage get a 503 in
 * the envelope, never a hang or a bare 500.
 *
 * The clients are held for a moment while DynamoDB Local goes down, so that no request is
 * mid-flight at that instant: under full-suite load, a transaction DynamoDB Local had acknowledged
 * within ~300 ms of its shutdown was sometimes missing after the restart (whole, never half), even
 * with SIGTERM. Real DynamoDB acknowledges only durable writes; this test is about the service
 * surviving the outage, not about DynamoDB Local's shutdown. The LOST line prints the evidence
 * should an acknowledged write ever go missing here.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'agents-crash-'));
let port: number;
let dynamo: LocalDynamo;
let app: LocalApp;
let api: Api;
beforeAll(async () => {
  port = await freePort();
  dynamo = await startDynamoDbLocal({ port, dataDir });
  const config = testConfig();
  await ensureTables(dynamo.endpoint, { agents: config.agentsTable, records: config.recordsTable });
  app = await startLocalApp({ endpoint: dynamo.endpoint, config });
  api = apiClient(app.url);
}, 60_000);
afterAll(async () => {
  await app.close(0);
  await dynamo.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

it('keeps every acknowledged write across a kill and restart of DynamoDB Local', { timeout: 90_000 }, async () => {
  const acknowledged = { agents: new Set<string>(), messages: new Map<string, string>(), stops: new Map<string, number>() };
  const statuses = new Map<number, number>();
  let running = true;
  let hold: Promise<void> = Promise.resolve();
  let inFlight = 0;
  const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  const call: Api = async (...args) => {
    await hold;
    inFlight++;
    try {
      return await api(...args);
    } finally {
      inFlight--;
    }
  };

  const client = async () => {
    while (running) {
      const created = await call('POST', '/agents', { name: 'crash-test' });
      count(created.status);
      if (created.status !== 201) continue;
      const agentId = created.body.data.agentId as string;
      acknowledged.agents.add(agentId);
      count((await call('POST', `/agents/${agentId}/start`)).status);
      for (let i = 0; i < 3 && running; i++) {
        const msg = await call('POST', `/agents/${agentId}/messages`, { text: `m${i}` });
        count(msg.status);
        if (msg.status === 200) acknowledged.messages.set(msg.body.data.messageId, agentId);
      }
      const stop = await call('POST', `/agents/${agentId}/stop`, { graceful: false });
      count(stop.status);
      if (stop.status === 200) acknowledged.stops.set(agentId, stop.body.data.stoppedAt);
    }
  };

  const clients = Array.from({ length: 4 }, client);
  await new Promise((r) => setTimeout(r, 1500));
  let release!: () => void;
  hold = new Promise<void>((r) => (release = r));
  await eventually(async () => inFlight === 0);
  await new Promise((r) => setTimeout(r, 500));
  const killedAt = Date.now();
  await dynamo.stop();
  release(); // the clients go on, into the outage
  await new Promise((r) => setTimeout(r, 1000));
  dynamo = await startDynamoDbLocal({ port, dataDir });
  const restartedAt = Date.now();
  await new Promise((r) => setTimeout(r, 1500));
  running = false;
  await Promise.all(clients);

  expect(statuses.get(503) ?? 0).toBeGreaterThan(0); // the outage was seen...
  for (const status of statuses.keys()) expect([200, 201, 409, 503]).toContain(status); // ...as 503s, not 500s
  expect(acknowledged.agents.size).toBeGreaterThan(5);

  for (const agentId of acknowledged.agents) {
    expect((await api('GET', `/agents/${agentId}`)).status, agentId).toBe(200);
  }
  for (const [messageId, agentId] of acknowledged.messages) {
    const m = await api('GET', `/agents/${agentId}/messages/${messageId}`);
    if (m.body.data?.status !== 'completed') {
      console.log('LOST', JSON.stringify(m.body.data), 'killedAt', killedAt, 'restartedAt', restartedAt, JSON.stringify((await api('GET', `/agents/${agentId}`)).body.data));
    }
    expect(m.body.data).toMatchObject({ status: 'completed', reply: expect.any(String) });
  }
  for (const [agentId, stoppedAt] of acknowledged.stops) {
    const agent = (await api('GET', `/agents/${agentId}`)).body.data;
    expect(agent.status).toBe('inactive');
    expect(agent.lastStop.stoppedAt).toBe(stoppedAt);
  }
});
