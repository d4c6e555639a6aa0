import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAgent, startTestApp, type TestApp } from '../support/stack.js';

/**
 * A function keeps the configurations it has read, by version: messages find theirs without a
 * read. Race message vs reconfiguration: a function whose cached configuration is behind the
 * agent's must not run a message on it; its lease write is conditioned on the version it checked.
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

const send = (agentId: string, text: string) => app.api('POST', `/agents/${agentId}/messages`, { text });

it('a message runs on the runtime the agent has now, not on the one a warm function read before it was changed', async () => {
  // A short idle timeout keeps the agent's next reaper check before any lease's expiry: the lease
  // write's first shape is then the right one, and only the version can refuse it.
  const agentId = await createAgent(app.api, { idleTimeoutMs: 1000 }, true);
  // The message function reads and keeps the configuration (plain echo, no delay).
  expect(await send(agentId, 'first')).toMatchObject({ status: 200, body: { data: { reply: 'first' } } });

  // Changed by another function while the agent is stopped: its work now takes longer than a request may wait.
  await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
  expect((await app.api('PATCH', `/agents/${agentId}`, { runtime: { type: 'echo', delayMs: 60_000 } })).status).toBe(200);
  await app.api('POST', `/agents/${agentId}/start`);

  const res = await send(agentId, 'second');
  expect(res).toMatchObject({ status: 400, body: { code: 'ASYNC_REQUIRED' } });
  // Never admitted: no record of it, nothing in flight.
  expect((await app.api('GET', `/agents/${agentId}/messages`)).body.data.map((m: { text: string }) => m.text)).toEqual(['first']);
  expect((await app.api('GET', `/agents/${agentId}`)).body.data.inFlight).toBe(0);
});

it('a name changed while the agent runs: its messages go on, and the agent shows the new name', async () => {
  const agentId = await createAgent(app.api, { name: 'before' }, true);
  expect((await send(agentId, 'one')).status).toBe(200);
  expect((await app.api('PATCH', `/agents/${agentId}`, { name: 'after' })).status).toBe(200);
  expect(await send(agentId, 'two')).toMatchObject({ status: 200, body: { data: { reply: 'two' } } });
  expect((await app.api('GET', `/agents/${agentId}`)).body.data).toMatchObject({ name: 'after', status: 'active' });
  expect((await app.api('GET', '/agents?status=active')).body.data.find((a: { agentId: string }) => a.agentId === agentId)).toMatchObject({ name: 'after' });
});
