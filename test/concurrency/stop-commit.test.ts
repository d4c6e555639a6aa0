import { randomUUID } from 'node:crypto';
import { beforeAll, expect, it } from 'vitest';
import { patchAgentsStore } from '../support/patch.js';
import { createAgent, eventually, gatedTestApp, type TestApp } from '../support/stack.js';

/** What a stop's commit writes onto the messages it ends: only records that exist, and one ending each. */
const stack = gatedTestApp();
const { gated } = stack;
let app: TestApp;
beforeAll(() => {
  app = stack.app();
});

it('a lease without a message record (its admission half done) is cleared by the stop, and no record is made up for it', async () => {
  const agentId = await createAgent(app.api, {}, true);
  // A lease whose record never came: as a crash between an admission's writes can leave it.
  const now = Date.now();
  const { configVersion } = (await app.deps.agents.get(agentId))!;
  await app.deps.agents.admitLease({ agentId, messageId: 'orphan', lease: { token: randomUUID(), expiresAt: now + 60_000 }, maxInFlight: 50, now, moveDueAt: true, notStoppedAfter: now, configVersion });

  const res = await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
  expect(res).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
  expect((await app.deps.agents.get(agentId))!.leases).toEqual({});
  // No phantom: no record without text, createdAt or retention, listed or stored.
  expect(await app.deps.records.getMessage(agentId, 'orphan')).toBeUndefined();
  expect((await app.api('GET', `/agents/${agentId}/messages`)).body.data).toEqual([]);
  const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
  expect(record).toMatchObject({ outcome: 'forced', interrupted: 0, interruptedMessageIds: [] });
});

it('a stop that lands between a completion\'s two writes: the message is interrupted, without the reply it had recorded', async () => {
  const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
  const sent = app.api('POST', `/agents/${agentId}/messages`, { messageId: 'between', text: 'cut after its reply' });
  await gated.waitForHeld(1, agentId);
  // The reply is recorded; the lease's release waits until the stop has committed.
  let committed!: () => void;
  const stopCommitted = new Promise<void>((resolve) => (committed = resolve));
  const undo = patchAgentsStore(app, 'releaseLease', (release) => async (a) => {
    if (a.agentId === agentId) await stopCommitted;
    return release(a);
  });
  try {
    const stop = app.api('POST', `/agents/${agentId}/stop`, { timeout: 300 });
    await eventually(async () => (await app.deps.agents.get(agentId))!.status === 'stopping');
    gated.release('between');
    await eventually(async () => (await app.deps.records.getMessage(agentId, 'between'))!.status === 'completed');
    expect((await stop).status).toBe(408);
    committed();
    expect((await sent).body.code).toBe('MESSAGE_INTERRUPTED');
  } finally {
    undo();
  }
  const stored = (await app.deps.records.getMessage(agentId, 'between'))!;
  expect(stored.status).toBe('interrupted');
  expect(stored).not.toHaveProperty('reply');
  expect((await app.api('GET', `/agents/${agentId}/messages/between`)).body.data).toEqual(expect.not.objectContaining({ reply: expect.anything() }));
});
