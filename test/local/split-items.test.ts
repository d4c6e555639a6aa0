import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { splitCombinedItems } from '../../functions/adapters/dynamodb/split-items.js';
import { afterAll, afterEach, expect, it } from 'vitest';
import { eventually, startTestApp, type TestApp } from '../support/stack.js';

/** Agents stored as one item each (state and configuration together) still work once the stack starts over them. */
const apps: TestApp[] = [];
afterEach(() => apps.forEach((app) => app.faults.clear()));
afterAll(async () => {
  for (const app of apps) await app.close();
});

/** A stack of its own, with one agent stored as a single item (state and configuration together). */
async function stackWithSingleItem(fields: Record<string, unknown>) {
  const app = await startTestApp();
  apps.push(app);
  const now = Date.now();
  const agentId = crypto.randomUUID();
  const item = { agentId, status: 'inactive', settings: {}, runtime: { type: 'echo' }, idleTimeoutMs: null, leases: {}, version: 1, createdAt: now, updatedAt: now, dueAt: now, ...fields };
  await app.db.send(new PutCommand({ TableName: app.deps.config.agentsTable, Item: item }));
  return { app, agentId, now, tables: { agents: app.deps.config.agentsTable!, records: app.deps.config.recordsTable! } };
}

it('splits an agent stored as one item at start: it keeps its configuration, starts, answers and stops', async () => {
  const { agentId, tables } = await stackWithSingleItem({ name: 'one item', description: 'kept', settings: { tone: 'dry' }, version: 3, signingSecret: 'secret' });
  const app = await startTestApp({ config: { agentsTable: tables.agents, recordsTable: tables.records } });
  apps.push(app);

  expect((await app.api('GET', `/agents/${agentId}`)).body.data).toMatchObject({ name: 'one item', description: 'kept', settings: { tone: 'dry' }, version: 3, status: 'inactive' });
  const hot = (await app.deps.agents.get(agentId)) as unknown as Record<string, unknown>;
  expect(hot.settings).toBeUndefined();
  expect((await app.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
  expect((await app.api('POST', `/agents/${agentId}/messages`, { text: 'still here' })).body.data).toMatchObject({ reply: 'still here' });
  expect((await app.api('POST', `/agents/${agentId}/stop`, {})).status).toBe(200);
});

it('a single item changed while it is split: the configuration kept is the one it holds after the change', async () => {
  const { app, agentId, now, tables } = await stackWithSingleItem({ name: 'old name' });
  // The split's write waits until a rename of the single item (as a process still on that layout would make it) has landed.
  let renamed!: () => void;
  app.faults.add({ fault: { until: new Promise<void>((resolve) => (renamed = resolve)) }, operations: ['TransactWriteItems'], times: 1 });
  const splitting = splitCombinedItems(app.db, tables);
  await eventually(async () => app.faults.injected.hold === 1);
  await app.db.send(
    new UpdateCommand({
      TableName: tables.agents,
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
