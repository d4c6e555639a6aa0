import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { splitCombinedItems } from '../../functions/adapters/dynamodb/split-items.js';
import { afterAll, expect, it } from 'vitest';
import { eventually, startTestApp, type TestApp } from '../support/stack.js';

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

it('a single item changed while it is split: the configuration kept is the one it holds after the change', async () => {
  const app = await startTestApp();
  apps.push(app);
  const { agentsTable, recordsTable } = app.deps.config;
  const now = Date.now();
  const agentId = crypto.randomUUID();
  await app.db.send(
    new PutCommand({
      TableName: agentsTable,
      Item: { agentId, name: 'old name', status: 'inactive', settings: {}, runtime: { type: 'echo' }, idleTimeoutMs: null, leases: {}, version: 1, createdAt: now, updatedAt: now, dueAt: now },
    }),
  );
  // The split's write waits until a rename of the single item (as a process still on that layout would make it) has landed.
  let renamed!: () => void;
  app.faults.add({ fault: { until: new Promise<void>((resolve) => (renamed = resolve)) }, operations: ['TransactWriteItems'], times: 1 });
  const splitting = splitCombinedItems(app.db, { agents: agentsTable!, records: recordsTable! });
  await eventually(async () => app.faults.injected.hold === 1);
  await app.db.send(
    new UpdateCommand({
      TableName: agentsTable,
      Key: { agentId },
      UpdateExpression: 'SET #n = :n, version = version + :one, updatedAt = :now',
      ExpressionAttributeNames: { '#n': 'name' },
      ExpressionAttributeValues: { ':n': 'new name', ':one': 1, ':now': now + 1 },
    }),
  );
  renamed();
  expect(await splitting).toBe(1);
  expect((await app.api('GET', `/agents/${agentId}`)).body.data).toMatchObject({ name: 'new name', version: 2 });
});
