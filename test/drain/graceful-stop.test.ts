import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StopWorkflowInput } from '../../functions/agents/ports.js';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, sleep, startTestApp, type TestApp } from '../support/stack.js';

const gated = new GatedRuntime();
const started: StopWorkflowInput[] = [];
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({ runtimes: gated.registry, config: { leaseTtlMs: 60_000 } });
  const start = app.workflow.start.bind(app.workflow);
  app.workflow.start = async (input) => {
    started.push(input);
    return start(input);
  };
});
afterEach(() => gated.releaseAll());
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

const send = (agentId: string, text: string, extra: Record<string, unknown> = {}) =>
  app.api('POST', `/agents/${agentId}/messages`, { text, ...extra });
const stop = (agentId: string, body: unknown = {}, headers: Record<string, string> = {}) =>
  app.api('POST', `/agents/${agentId}/stop`, body, headers);
const agent = async (agentId: string) => (await app.api('GET', `/agents/${agentId}`)).body.data;

describe('messages', () => {
  it('answers 200 with the echo reply and keeps the message in history', async () => {
    const agentId = await createAgent(app.api, {}, true);
    const res = await send(agentId, 'hello', { metadata: { from: 'test' } });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ status: 'completed', text: 'hello', reply: 'hello', metadata: { from: 'test' } });
    const one = await app.api('GET', `/agents/${agentId}/messages/${res.body.data.messageId}`);
    expect(one.body.data).toMatchObject({ status: 'completed', reply: 'hello' });
    const all = await app.api('GET', `/agents/${agentId}/messages`);
    expect(all.body.data.map((m: { messageId: string }) => m.messageId)).toEqual([res.body.data.messageId]);
    expect((await agent(agentId)).lastActivityAt).toBeGreaterThanOrEqual(res.body.data.createdAt);
  });

  it('treats a repeated messageId as the same message (no second run)', async () => {
    const agentId = await createAgent(app.api, {}, true);
    const first = await send(agentId, 'once', { messageId: 'client-1' });
    const again = await send(agentId, 'twice?', { messageId: 'client-1' });
    expect(again.status).toBe(200);
    expect(again.body.message).toBe('Message already processed');
    expect(again.body.data).toEqual(first.body.data);
    // A retry whose first answer was lost gets the stored outcome even after the agent stopped.
    expect((await stop(agentId)).status).toBe(200);
    const late = await send(agentId, 'once', { messageId: 'client-1' });
    expect(late).toMatchObject({ status: 200, body: { message: 'Message already processed', data: first.body.data } });
  });

  it('answers 409 "Agent is not running" for an inactive agent and 404 for an unknown one', async () => {
    const agentId = await createAgent(app.api);
    expect((await send(agentId, 'x')).body).toMatchObject({ success: false, error: 'Agent is not running' });
    expect((await app.api('POST', '/agents/4b9c3c49-4c5a-4e7b-9d2f-2f1b7f0e7c11/messages', { text: 'x' })).status).toBe(404);
  });

  it('answers 429 with Retry-After past the in-flight cap', async () => {
    const capped = await startCappedAgent();
    const res = await send(capped, 'one too many');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  async function startCappedAgent(): Promise<string> {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const pending = Array.from({ length: app.deps.config.maxInFlight }, (_, i) => send(agentId, `m${i}`));
    await gated.waitForHeld(app.deps.config.maxInFlight, agentId);
    void Promise.all(pending);
    return agentId;
  }
});

describe('graceful stop', () => {
  it('answers 200 only after the in-flight message completed, its reply persisted', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const message = send(agentId, 'in flight');
    const [messageId] = await gated.waitForHeld(1, agentId);
    const stopping = stop(agentId, { graceful: true, timeout: 10_000 });
    await eventually(async () => (await agent(agentId)).status === 'stopping');
    let stopAnswered = false;
    void stopping.then(() => (stopAnswered = true));
    await sleep(300);
    expect(stopAnswered).toBe(false);

    gated.release(messageId!);
    const [msgRes, stopRes] = await Promise.all([message, stopping]);
    expect(msgRes.status).toBe(200);
    expect(stopRes.status).toBe(200);
    expect(stopRes.body).toEqual({ success: true, message: 'Agent stopped successfully', data: { agentId, status: 'inactive', stoppedAt: expect.any(Number) } });
    expect(stopRes.body.data.stoppedAt).toBeGreaterThanOrEqual(msgRes.body.data.completedAt);
    const stored = await app.api('GET', `/agents/${agentId}/messages/${messageId}`);
    expect(stored.body.data).toMatchObject({ status: 'completed', reply: 'echo: in flight' });
    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'drained', drained: 1, interrupted: 0, graceful: true, timeoutMs: 10_000 });
    expect(gated.closed).toContain(agentId);
  });

  it('rejects a message sent during the drain with 409 "Agent is stopping"', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const first = send(agentId, 'first');
    const [messageId] = await gated.waitForHeld(1, agentId);
    const stopping = stop(agentId, { timeout: 10_000 });
    await eventually(async () => (await agent(agentId)).status === 'stopping');
    const late = await send(agentId, 'during drain');
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ success: false, error: 'Agent is stopping' });
    gated.release(messageId!);
    expect((await stopping).status).toBe(200);
    expect((await first).status).toBe(200);
  });

  it('times out: 408 with the agent inactive, the message interrupted and its late completion fenced', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const message = send(agentId, 'slow');
    const [messageId] = await gated.waitForHeld(1, agentId);
    const res = await stop(agentId, { graceful: true, timeout: 1000 });
    expect(res.status).toBe(408);
    expect(res.body).toMatchObject({
      success: false,
      error: 'Graceful shutdown timed out',
      data: { agentId, status: 'inactive', interrupted: 1 },
    });
    expect((await agent(agentId)).status).toBe('inactive');
    const stored = await app.api('GET', `/agents/${agentId}/messages/${messageId}`);
    expect(stored.body.data.status).toBe('interrupted');

    gated.release(messageId!);
    const late = await message;
    expect(late.status).toBe(409);
    expect(late.body.error).toMatch(/stopped before message .* completed/);
    const after = await app.api('GET', `/agents/${agentId}/messages/${messageId}`);
    expect(after.body.data.status).toBe('interrupted');
    expect(after.body.data).not.toHaveProperty('reply');
    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'timed_out', interrupted: 1, interruptedMessageIds: [messageId] });
  });

  it('force stop during a drain answers 200 at once, ends the workflow and fences the late completion', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const message = send(agentId, 'slow');
    const [messageId] = await gated.waitForHeld(1, agentId);
    const graceful = stop(agentId, { timeout: 60_000 });
    await eventually(async () => (await agent(agentId)).status === 'stopping');
    const { stopId } = (await agent(agentId)).stop;

    const forced = await stop(agentId, { graceful: false });
    expect(forced.status).toBe(200);
    expect(forced.body.data.status).toBe('inactive');
    await app.workflow.settled(stopId);
    expect(app.workflow.isRunning(stopId)).toBe(false);
    expect((await graceful).status).toBe(200);

    gated.release(messageId!);
    expect((await message).status).toBe(409);
    const stops = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(stops).toHaveLength(1);
    expect(stops[0]).toMatchObject({ stopId, outcome: 'forced', interrupted: 1 });
    expect((await agent(agentId)).lastStop).toMatchObject({ stopId, outcome: 'forced' });
  });

  it('answers 202 with Location at once for Prefer: respond-async, then finishes', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const message = send(agentId, 'slow');
    const [messageId] = await gated.waitForHeld(1, agentId);
    const res = await stop(agentId, { timeout: 30_000 }, { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/agents/${agentId}`);
    expect(res.body.data).toMatchObject({ agentId, status: 'stopping', stopId: expect.any(String), deadline: expect.any(Number) });
    gated.release(messageId!);
    await message;
    await eventually(async () => (await agent(agentId)).status === 'inactive');
  });

  it('waits at most N seconds with Prefer: wait=N, then answers 202 while the drain goes on', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const message = send(agentId, 'slow');
    const [messageId] = await gated.waitForHeld(1, agentId);
    const started = Date.now();
    const res = await stop(agentId, { timeout: 30_000 }, { prefer: 'wait=1' });
    const waited = Date.now() - started;
    expect(res.status).toBe(202);
    expect(res.headers.get('preference-applied')).toBe('wait=1');
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(waited).toBeLessThan(app.deps.config.stopWaitWindowMs);
    expect((await agent(agentId)).status).toBe('stopping');
    gated.release(messageId!);
    await message;
    await eventually(async () => (await agent(agentId)).status === 'inactive');
  });

  it('joins a running stop: two graceful stops at once run one workflow and write one stop record', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const message = send(agentId, 'slow');
    const [messageId] = await gated.waitForHeld(1, agentId);
    const before = started.length;
    const both = Promise.all([stop(agentId, { timeout: 20_000 }), stop(agentId, { timeout: 5_000 })]);
    await eventually(async () => started.length - before >= 2 && true);
    gated.release(messageId!);
    const results = await both;
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    const stopIds = new Set(started.slice(before).filter((s) => s.agentId === agentId).map((s) => s.stopId));
    expect(stopIds.size).toBe(1);
    expect((await app.api('GET', `/agents/${agentId}/stops`)).body.data).toHaveLength(1);
    await message;
  });
});
