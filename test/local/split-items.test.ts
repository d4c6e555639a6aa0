import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/stack.js';

/** Agents stored as one item each (state and configuration together) still work once the stack starts over them. */
const apps: TestApp[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
});

it('splits an agent stored as one item at start: it keeps its configuration, starts, answers and stops', async () => {
  const first = await startTestApp();
  apps.push(first);
  const { agentsTable, recordsTable } = first.deps.config;
  const now = Date.now();
  const agentId = crypto.randomUUID();
  await first.db.send(
    new PutCommand({
      TableName: agentsTable,
      Item: {
        agentId, name: 'one item', description: 'kept', status: 'inactive', settings: { tone: 'dry' }, runtime: { type: 'echo' },
        idleTimeoutMs: null, leases: {}, version: 3, createdAt: now, updatedAt: now, dueAt: now, signingSecret: 'secret',
      },
    }),
  );
  const app = await startTestApp({ config: { agentsTable, recordsTable } });
  apps.push(app);

  expect((await app.api('GET', `/agents/${agentId}`)).body.data).toMatchObject({ name: 'one item', description: 'kept', settings: { tone: 'dry' }, version: 3, status: 'inactive' });
  const hot = (await app.deps.agents.get(agentId)) as unknown as Record<string, unknown>;
  expect(hot.settings).toBeUndefined();
  expect((await app.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
  expect((await app.api('POST', `/agents/${agentId}/messages`, { text: 'still here' })).body.data).toMatchObject({ reply: 'still here' });
  expect((await app.api('POST', `/agents/${agentId}/stop`, {})).status).toBe(200);
});
