import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAgent, startTestApp, type TestApp } from '../support/stack.js';

/** The event bus refuses every event: lifecycle transitions still complete, and the failures are counted. */
let app: TestApp;
let attempts = 0;
beforeAll(async () => {
  app = await startTestApp({
    events: {
      publish: async () => {
        attempts++;
        throw new Error('EventBridge: service unavailable');
      },
    },
  });
});
afterAll(async () => {
  await app.close();
});

it('starts and stops agents while the event bus is down, counting each failed publish', async () => {
  const agentId = await createAgent(app.api, {}, true);
  const stop = await app.api('POST', `/agents/${agentId}/stop`, {});
  expect(stop.status).toBe(200);
  expect((await app.api('GET', `/agents/${agentId}`)).body.data.status).toBe('inactive');
  // Agent Started, Agent Stopping, Agent Stopped: each tried once, each failure counted.
  expect(attempts).toBe(3);
  expect(app.metrics.total('EventPublishFailures')).toBe(3);
});
