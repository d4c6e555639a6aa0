import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Real, long work: asynchronous echo messages of 45 s on the worker, far past the API's 29 s and
 * the lease TTL, kept in flight by heartbeats alone. The two stops run side by side.
 */
const HEARTBEAT_MS = 1000;
const WORK_MS = 45_000;
/** Watches every message's signal (the real echo runtime runs the work). */
const runtime = new GatedRuntime();
let app: TestApp;
beforeAll(async () => {
  // The stop window as deployed (25 s): a request waiting on the 10 s stop sees the workflow end it.
  app = await startTestApp({ runtimes: runtime.registry, config: { heartbeatMs: HEARTBEAT_MS, leaseTtlMs: 4 * HEARTBEAT_MS, stopWaitWindowMs: 25_000 } });
});
afterAll(async () => {
  await app.close();
});

const message = async (agentId: string, id: string) => (await app.api('GET', `/agents/${agentId}/messages/${id}`)).body.data;
const agent = async (agentId: string) => (await app.api('GET', `/agents/${agentId}`)).body.data;

async function busyAgent(): Promise<{ agentId: string; messageId: string }> {
  const agentId = await createAgent(app.api, { runtime: { type: 'echo', delayMs: WORK_MS } }, true);
  const sent = await app.api('POST', `/agents/${agentId}/messages`, { text: '45 s of work' }, { prefer: 'respond-async' });
  expect(sent.status).toBe(202);
  await eventually(async () => runtime.started.includes(sent.body.data.messageId));
  return { agentId, messageId: sent.body.data.messageId };
}

describe.concurrent('a graceful stop over 45 s of running work', { timeout: 90_000 }, () => {
  it('with timeout 60000 waits for it: 202 + Location while it drains, then drained and completed', async () => {
    const { agentId, messageId } = await busyAgent();
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { graceful: true, timeout: 60_000 });
    // The drain outlasts the stop window (10 s here): the request answers 202 and where to look.
    expect(stop.status).toBe(202);
    expect(stop.headers.get('location')).toBe(`/agents/${agentId}`);
    expect(stop.body.data).toMatchObject({ status: 'stopping', stopId: expect.any(String) });
    expect((await agent(agentId)).inFlight).toBe(1);

    const stopped = await eventually(async () => {
      const a = await agent(agentId);
      return a.status === 'inactive' && a;
    }, 60_000, 250);
    expect(stopped.lastStop).toMatchObject({ stopId: stop.body.data.stopId, outcome: 'drained', interrupted: 0 });
    expect(await message(agentId, messageId)).toMatchObject({ status: 'completed', reply: '45 s of work' });
    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'drained', drained: 1, interrupted: 0 });
    expect(runtime.aborted.has(messageId)).toBe(false);
  });

  it('with timeout 10000 ends timed_out at the deadline, and the work observed its abort within a heartbeat', async () => {
    const { agentId, messageId } = await busyAgent();
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { graceful: true, timeout: 10_000 }, { prefer: 'wait=20' });
    expect(stop.status).toBe(408);
    expect(stop.body.data).toMatchObject({ status: 'inactive', interrupted: 1 });
    const abortedAt = await eventually(async () => runtime.aborted.get(messageId), 5000, 10);
    expect(abortedAt - stop.body.data.stoppedAt).toBeLessThanOrEqual(HEARTBEAT_MS + 250);
    expect(await message(agentId, messageId)).toMatchObject({ status: 'interrupted', stopId: stop.body.data.stopId });
  });
});
