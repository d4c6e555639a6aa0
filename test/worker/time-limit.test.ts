import { afterAll, beforeAll, expect, it } from 'vitest';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * The worker's invocation has a timeout (15 minutes in AWS; 2.5 s here, leaving 1.5 s of work
 * after the 1 s kept to record the outcome). Work still running then is stopped and its message
 * recorded failed with the reason, at once, not left to a lease that expires.
 */
const runtime = new GatedRuntime();
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ runtimes: runtime.registry, workerTimeoutMs: 2_500, config: { heartbeatMs: 200, leaseTtlMs: 1000, workerWrapUpMs: 1_000 } });
});
afterAll(async () => {
  await app.close();
});

it('stops work that outlives the worker invocation and records the message failed, saying why', async () => {
  const agentId = await createAgent(app.api, { runtime: { type: 'echo', delayMs: 10_000 } }, true);
  const sent = await app.api('POST', `/agents/${agentId}/messages`, { text: 'too long for the worker' }, { prefer: 'respond-async' });
  expect(sent.status).toBe(202);
  const { messageId } = sent.body.data;
  const failed = await eventually(async () => {
    const m = (await app.api('GET', `/agents/${agentId}/messages/${messageId}`)).body.data;
    return m.status !== 'processing' && m;
  }, 8000);
  expect(failed).toMatchObject({ status: 'failed', error: expect.stringMatching(/^the work did not finish within its time limit of 1[45]\d\d ms$/) });
  expect(runtime.aborted.has(messageId)).toBe(true);
  // The record is settled first; the worker then releases the lease and publishes: wait for its job to end.
  await app.queue.idle();
  expect((await app.api('GET', `/agents/${agentId}`)).body.data).toMatchObject({ status: 'active', inFlight: 0 });
  expect(app.bus.published.filter((e) => e.detail.messageId === messageId).map((e) => e.type)).toEqual(['Message Failed']);
});
