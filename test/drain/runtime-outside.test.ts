import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodb.js';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * The runtime is outside the service's control: a worker that holds its `stop` call, or one that
 * is gone. Neither may keep an agent from stopping: a force stop commits without waiting on it,
 * and a graceful stop that cannot reach it ends by its deadline plus the close grace.
 */
const gated = new GatedRuntime();
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({
    runtimes: gated.registry,
    config: { closeGraceMs: 1_000, leaseTtlMs: 4_000 },
    // The workflow's wait before it tries a failed close again, shortened for the test.
    workflow: { waitTimeOverrides: { WaitToRetryClose: 100 } },
  });
});
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

const stored = async (agentId: string) => (await app.deps.agents.get(agentId))!;

describe('a force stop', () => {
  it('commits while the runtime still holds its close call: inactive, the message interrupted, the runtime told after', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const sent = app.api('POST', `/agents/${agentId}/messages`, { messageId: 'cut', text: 'in flight' });
    await gated.waitForHeld(1, agentId);
    let closeNow!: () => void;
    gated.closeGates.set(agentId, new Promise<void>((resolve) => (closeNow = resolve)));
    try {
      const forced = app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
      // The commit has landed while the runtime's close is still held.
      await eventually(async () => (await stored(agentId)).status === 'inactive');
      expect(gated.closed).not.toContain(agentId);
      expect((await app.api('GET', `/agents/${agentId}/messages/cut`)).body.data.status).toBe('interrupted');
      expect((await sent).body.code).toBe('MESSAGE_INTERRUPTED');
      closeNow();
      expect((await forced).status).toBe(200);
      await eventually(async () => gated.closed.includes(agentId));
      const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
      expect(record).toMatchObject({ outcome: 'forced', interruptedMessageIds: ['cut'], stateSaved: false });
    } finally {
      gated.closeGates.delete(agentId);
    }
  });
});

describe('a graceful stop whose runtime cannot be reached', () => {
  it('of an idle http agent whose worker is gone: ends by its deadline plus the grace, the close recorded as failed', async () => {
    const gone = `http://127.0.0.1:${await freePort()}/agent`;
    const agentId = await createAgent(app.api, { runtime: { type: 'http', url: gone } }, true);
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 500 }, { prefer: 'wait=1' });
    // Not a 500 and not stuck: still stopping while the close is retried, then inactive.
    expect(stop.status).toBe(202);
    const { deadline } = stop.body.data;
    const after = await eventually(async () => {
      const agent = await stored(agentId);
      return agent.status === 'inactive' && agent;
    }, 15_000);
    expect(after.stoppedAt).toBeGreaterThanOrEqual(deadline + app.deps.config.closeGraceMs);
    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'drained', stateSaved: false, closeError: expect.stringMatching(/ECONNREFUSED|fetch failed|connect/i) });
  });

  it('with a message in flight: the drain completes, the close fails, and the stop still ends drained', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const sent = app.api('POST', `/agents/${agentId}/messages`, { messageId: 'done', text: 'finishes' });
    await gated.waitForHeld(1, agentId);
    gated.closeFailures.set(agentId, 1_000);
    try {
      const stop = app.api('POST', `/agents/${agentId}/stop`, { timeout: 300 }, { prefer: 'respond-async' });
      expect((await stop).status).toBe(202);
      gated.release('done');
      expect((await sent).status).toBe(200);
      await eventually(async () => (await stored(agentId)).status === 'inactive', 15_000);
    } finally {
      gated.closeFailures.delete(agentId);
    }
    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'drained', drainedMessageIds: ['done'], closeError: 'runtime did not close its connections' });
  });
});
