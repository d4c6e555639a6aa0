import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloseJob, MessageJob } from '../../functions/agents/ports.js';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Asynchronous messages: handed to the worker (the deployed worker handler, fed by the local
 * queue), heartbeat-renewed leases, and cancellation that reaches the work.
 */
const HEARTBEAT_MS = 100;
const gated = new GatedRuntime();
/** Jobs this app's queue was asked to hand off; `mode` makes the hand-off fail or deliver twice. */
const handOff = { mode: 'normal' as 'normal' | 'fail' | 'twice', jobs: [] as (MessageJob | CloseJob)[] };
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({
    runtimes: gated.registry,
    config: { heartbeatMs: HEARTBEAT_MS, leaseTtlMs: 2000 },
    queue: (local) => ({
      async send(job) {
        handOff.jobs.push(job);
        if (handOff.mode === 'fail') throw new Error('queue unreachable');
        await local.send(job);
        if (handOff.mode === 'twice') await local.send(job);
      },
    }),
  });
});
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

const message = async (agentId: string, id: string) => (await app.api('GET', `/agents/${agentId}/messages/${id}`)).body.data;
const agent = async (agentId: string) => (await app.api('GET', `/agents/${agentId}`)).body.data;
const events = (messageId: string) => app.bus.published.filter((e) => e.detail.messageId === messageId).map((e) => e.type);
const async = { prefer: 'respond-async' };

describe('Prefer: respond-async', () => {
  it('answers 202 at once with Location; the worker runs it and publishes Message Completed', async () => {
    const agentId = await createAgent(app.api, { runtime: { type: 'echo', delayMs: 300 } }, true);
    const res = await app.api('POST', `/agents/${agentId}/messages`, { text: 'later' }, async);
    expect(res.status).toBe(202);
    expect(res.headers.get('preference-applied')).toBe('respond-async');
    expect(res.body).toMatchObject({ success: true, message: 'Message accepted', data: { status: 'processing', text: 'later' } });
    const { messageId } = res.body.data;
    expect(res.headers.get('location')).toBe(`/agents/${agentId}/messages/${messageId}`);
    expect((await agent(agentId)).inFlight).toBe(1);

    const done = await eventually(async () => {
      const m = await message(agentId, messageId);
      return m.status === 'completed' && m;
    });
    expect(done).toMatchObject({ reply: 'later', completedAt: expect.any(Number) });
    // The record takes the reply first; the worker then releases the lease and publishes the
    // event (the event follows the state it announces): wait for the worker's job to end.
    await app.queue.idle();
    expect(events(messageId)).toEqual(['Message Completed']);
    expect((await agent(agentId)).inFlight).toBe(0);
  });

  it('a repeated asynchronous request with the same messageId answers the same 202, and runs once', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const first = await app.api('POST', `/agents/${agentId}/messages`, { text: 'once', messageId: 'retry-1' }, async);
    await gated.waitForHeld(1, agentId);
    const again = await app.api('POST', `/agents/${agentId}/messages`, { text: 'once', messageId: 'retry-1' }, async);
    expect([first.status, again.status]).toEqual([202, 202]);
    expect(again.body.message).toBe('Message already accepted');
    gated.release('retry-1');
    await eventually(async () => (await message(agentId, 'retry-1')).status === 'completed');
    expect(gated.started.filter((id) => id === 'retry-1')).toHaveLength(1);
  });

  it('Prefer: wait=N answers 200 with the reply when it ends in time, 202 when it does not', async () => {
    const fast = await createAgent(app.api, {}, true);
    const quick = await app.api('POST', `/agents/${fast}/messages`, { text: 'quick' }, { prefer: 'wait=5' });
    expect(quick.status).toBe(200);
    expect(quick.body.data).toMatchObject({ status: 'completed', reply: 'quick' });
    expect(quick.headers.get('preference-applied')).toBe('wait=5');

    const slow = await createAgent(app.api, { runtime: { type: 'echo', delayMs: 3000 } }, true);
    const started = Date.now();
    const waited = await app.api('POST', `/agents/${slow}/messages`, { text: 'slow' }, { prefer: 'wait=1' });
    expect(waited.status).toBe(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(waited.body.data.status).toBe('processing');
  });

  it('refuses a synchronous message whose work cannot fit the request, saying to send it asynchronously', async () => {
    const agentId = await createAgent(app.api, { runtime: { type: 'echo', delayMs: 60_000 } }, true);
    const res = await app.api('POST', `/agents/${agentId}/messages`, { text: 'long' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, code: 'ASYNC_REQUIRED', error: expect.stringContaining('Prefer: respond-async') });
    expect((await agent(agentId)).inFlight).toBe(0);
  });
});

describe('the hand-off', () => {
  it('a failed hand-off loses nothing: 503, the message recorded failed with the reason, its lease released', async () => {
    const agentId = await createAgent(app.api, {}, true);
    handOff.mode = 'fail';
    let res;
    try {
      res = await app.api('POST', `/agents/${agentId}/messages`, { text: 'lost?', messageId: 'handoff-1' }, async);
    } finally {
      handOff.mode = 'normal';
    }
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.body).toMatchObject({ success: false, code: 'UNAVAILABLE', error: expect.stringContaining('recorded as failed') });
    expect(await message(agentId, 'handoff-1')).toMatchObject({ status: 'failed', error: 'the message could not be handed to a worker' });
    expect(events('handoff-1')).toEqual(['Message Failed']);
    expect((await agent(agentId)).inFlight).toBe(0);
    expect((await app.api('POST', `/agents/${agentId}/messages`, { text: 'next' }, async)).status).toBe(202);
  });

  it('a job delivered twice runs once: the first claim takes it, the second delivery is skipped', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const ran = gated.started.length;
    const finished = app.queue.finished;
    handOff.mode = 'twice';
    try {
      expect((await app.api('POST', `/agents/${agentId}/messages`, { text: 'twice', messageId: 'dup-1' }, async)).status).toBe(202);
    } finally {
      handOff.mode = 'normal';
    }
    await gated.waitForHeld(1, agentId);
    // The second delivery ends (skipped) while the first still runs.
    await eventually(async () => app.queue.finished > finished);
    gated.release('dup-1');
    await eventually(async () => (await message(agentId, 'dup-1')).status === 'completed');
    await app.queue.idle();
    expect(gated.started.slice(ran).filter((id) => id === 'dup-1')).toHaveLength(1);
    expect(events('dup-1')).toEqual(['Message Completed']);
  });
});

describe('cancellation reaches the work', () => {
  it('a force stop aborts running asynchronous work within a heartbeat; the message ends interrupted', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const sent = await app.api('POST', `/agents/${agentId}/messages`, { text: 'cut' }, async);
    const { messageId } = sent.body.data;
    await gated.waitForHeld(1, agentId);
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    expect(stop.status).toBe(200);
    const stoppedAt = Date.now();
    const abortedAt = await eventually(async () => gated.aborted.get(messageId), 5000, 5);
    // Within one heartbeat (plus a write); the lease TTL (2 s) would be the bound without the guard.
    expect(abortedAt - stoppedAt).toBeLessThan(HEARTBEAT_MS * 5);
    const { lastStop } = await agent(agentId);
    expect(await message(agentId, messageId)).toMatchObject({ status: 'interrupted', stopId: lastStop.stopId });
    expect(events(messageId)).toEqual(['Message Interrupted']);
  });

  it('a graceful stop that times out aborts the running work at its deadline: timed_out, interrupted', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const { messageId } = (await app.api('POST', `/agents/${agentId}/messages`, { text: 'too long' }, async)).body.data;
    await gated.waitForHeld(1, agentId);
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 1000 });
    expect(stop.status).toBe(408);
    const abortedAt = await eventually(async () => gated.aborted.get(messageId), 5000, 5);
    expect(abortedAt - stop.body.data.stoppedAt).toBeLessThan(HEARTBEAT_MS * 5);
    expect(await message(agentId, messageId)).toMatchObject({ status: 'interrupted', stopId: stop.body.data.stopId });
  });

  it('a graceful stop drains running asynchronous work that keeps its lease alive past the lease TTL', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const { messageId } = (await app.api('POST', `/agents/${agentId}/messages`, { text: 'long' }, async)).body.data;
    await gated.waitForHeld(1, agentId);
    const stop = app.api('POST', `/agents/${agentId}/stop`, { timeout: 20_000 });
    // Three lease TTLs: only heartbeats keep it in flight.
    await new Promise((r) => setTimeout(r, 6000));
    expect(await agent(agentId)).toMatchObject({ status: 'stopping', inFlight: 1 });
    gated.release(messageId);
    expect((await stop).status).toBe(200);
    expect(await message(agentId, messageId)).toMatchObject({ status: 'completed' });
    expect((await app.api('GET', `/agents/${agentId}/stops`)).body.data[0]).toMatchObject({ outcome: 'drained', drained: 1, interrupted: 0 });
  });
});
