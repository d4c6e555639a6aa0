import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LocalApp } from '../../local/app.js';
import { freePort, startDynamoDbLocal, type LocalDynamo } from '../../local/dynamodb.js';
import { startOwnStack } from '../support/local-stack.js';
import type { Api } from '../support/stack.js';

/**
 * DynamoDB Local, with its data on disk, stopped and restarted while clients keep sending (with
 * requests in flight at the very moment it goes down): every write the API acknowledged is still
 * there afterwards; requests during the outage get a 503 in the envelope, never a hang or a bare
 * 500. `stop()` resolves only once Java itself has exited and the data folder is locked against a
 * second instance, so the restarted one never shares the files with the old one.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'agents-crash-'));
let port: number;
let dynamo: LocalDynamo;
let app: LocalApp;
let api: Api;
beforeAll(async () => {
  port = await freePort();
  ({ dynamo, app, api } = await startOwnStack({ port, dataDir }));
}, 60_000);
afterAll(async () => {
  await app.close(0);
  await dynamo.stop(); // the one restarted by the test
  rmSync(dataDir, { recursive: true, force: true });
});

it('keeps every acknowledged write across a kill and restart of DynamoDB Local', { timeout: 90_000 }, async () => {
  const acknowledged = { agents: new Set<string>(), messages: new Map<string, string>(), stops: new Map<string, number>() };
  const statuses = new Map<number, number>();
  let running = true;
  const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  const call: Api = (...args) => api(...args);

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
  const killedAt = Date.now();
  await dynamo.stop(); // the clients go on, into the outage
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
