import { afterAll, beforeAll, expect, it } from 'vitest';
import { GatedRuntime, stallHeartbeats } from '../support/runtimes.js';
import { createAgent, startTestApp, type TestApp } from '../support/stack.js';

/** A worker that froze (its heartbeats stall, its work never ends): its lease expires and must not block the drain. */
const gated = new GatedRuntime();
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ runtimes: gated.registry, config: { leaseTtlMs: 1000, maxInFlight: 2 } });
});
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

it("drains past an expired lease: the stop ends before its timeout, drained; the crashed worker's message failed, not interrupted", async () => {
  const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
  stallHeartbeats(app, agentId);
  void app.api('POST', `/agents/${agentId}/messages`, { text: 'never finishes' });
  const [messageId] = await gated.waitForHeld(1, agentId);

  const res = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 20_000 });
  expect(res.status).toBe(200);
  const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
  // Drained means nothing was cut: the one message in flight had lost its worker, so it failed.
  expect(record).toMatchObject({ outcome: 'drained', interrupted: 0, interruptedMessageIds: [], failed: 1, failedMessageIds: [messageId] });
  expect(record.durationMs).toBeLessThan(20_000);
  const message = (await app.api('GET', `/agents/${agentId}/messages/${messageId}`)).body.data;
  expect(message).toMatchObject({ status: 'failed', error: expect.stringMatching(/lease expired/) });
  expect(app.bus.published.filter((e) => e.type === 'Message Failed' && e.detail.messageId === messageId)).toHaveLength(1);
});

it('reclaims expired leases at the in-flight cap instead of refusing forever', async () => {
  const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
  stallHeartbeats(app, agentId);
  void app.api('POST', `/agents/${agentId}/messages`, { text: 'crashed 1' });
  void app.api('POST', `/agents/${agentId}/messages`, { text: 'crashed 2' });
  const crashed = await gated.waitForHeld(2, agentId);
  expect((await app.api('POST', `/agents/${agentId}/messages`, { text: 'refused' })).status).toBe(429);

  // Past the leases' expiry and the clock tolerance: dead on any function's clock.
  await new Promise((r) => setTimeout(r, app.deps.config.leaseTtlMs + app.deps.config.clockToleranceMs + 100));
  const admitted = app.api('POST', `/agents/${agentId}/messages`, { text: 'after expiry' });
  const held = await gated.waitForHeld(3, agentId);
  gated.release(held.find((id) => !crashed.includes(id))!);
  expect((await admitted).status).toBe(200);
  for (const id of crashed) {
    const m = (await app.api('GET', `/agents/${agentId}/messages/${id}`)).body.data;
    expect(m).toMatchObject({ status: 'failed', error: expect.stringMatching(/lease expired/) });
  }
});
