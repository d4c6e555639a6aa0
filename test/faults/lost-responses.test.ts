import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../functions/agents/ports.js';
import type { FaultRequest } from '../../local/faults.js';
import { createAgent, eventually, gatedTestApp, startTestApp, type TestApp } from '../support/stack.js';

/**
 * A write that lands and whose answer is lost: the SDK sends it again (its real retry strategy,
 * below which the fault is injected), and the second attempt meets the state the first one made.
 * Each write must know itself there and answer as landed, never as a conflict.
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterEach(() => app.faults.clear());
afterAll(() => app.close());

const expressionOf = (r: FaultRequest) => String(r.body.UpdateExpression ?? r.body.ConditionExpression ?? '');

/** Lose the answer of the first attempt of one write to this agent's item (or its records) that `match` picks. */
function loseOnce(operation: string, agentId: string, match: (r: FaultRequest) => boolean = () => true) {
  app.faults.add({ fault: 'lose-response', operations: [operation], times: 1, match: (r) => r.key?.agentId === agentId && match(r) });
}
/** Lose the answer of the first attempt of one transaction that writes this agent's items. */
function loseTransactionOnce(agentId: string) {
  app.faults.add({ fault: 'lose-response', operations: ['TransactWriteItems'], times: 1, match: (r) => JSON.stringify(r.body).includes(agentId) });
}
const events = (type: LifecycleEvent['type'], agentId: string) => app.bus.published.filter((e) => e.type === type && e.detail.agentId === agentId);
const stored = async (agentId: string) => (await app.deps.agents.get(agentId))!;
const message = async (agentId: string, id: string) => (await app.api('GET', `/agents/${agentId}/messages/${id}`)).body.data;

describe('messages', () => {
  it("the lease write: the message runs and completes, no lease left behind", async () => {
    const agentId = await createAgent(app.api, {}, true);
    loseOnce('UpdateItem', agentId, (r) => expressionOf(r).startsWith('SET #leases.#m = :lease'));
    const res = await app.api('POST', `/agents/${agentId}/messages`, { messageId: 'm1', text: 'hello' });
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'completed', reply: 'hello' } } });
    expect(app.faults.injected['lose-response']).toBe(1);
    expect((await stored(agentId)).leases).toEqual({});
    expect(await message(agentId, 'm1')).toMatchObject({ status: 'completed' });
  });

  it('the record write of an asynchronous message: it is queued and runs (202 is not an empty promise)', async () => {
    const agentId = await createAgent(app.api, {}, true);
    loseOnce('PutItem', agentId, (r) => String(r.key?.sk).startsWith('MSG#'));
    const res = await app.api('POST', `/agents/${agentId}/messages`, { messageId: 'a1', text: 'later' }, { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    await eventually(async () => (await message(agentId, 'a1')).status === 'completed');
    expect(await message(agentId, 'a1')).toMatchObject({ reply: 'later' });
  });

  it('the outcome write: 200 with the reply, not interrupted', async () => {
    const agentId = await createAgent(app.api, {}, true);
    loseOnce('UpdateItem', agentId, (r) => String(r.key?.sk) === 'MSG#o1');
    const res = await app.api('POST', `/agents/${agentId}/messages`, { messageId: 'o1', text: 'outcome' });
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'completed', reply: 'outcome' } } });
  });

  it('the lease release: 200 and its Message Completed event, not a 409 for a completed message', async () => {
    const agentId = await createAgent(app.api, {}, true);
    loseOnce('UpdateItem', agentId, (r) => expressionOf(r) === 'REMOVE #leases.#m');
    const res = await app.api('POST', `/agents/${agentId}/messages`, { messageId: 'r1', text: 'release' });
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'completed' } } });
    expect(events('Message Completed', agentId).map((e) => e.detail.messageId)).toEqual(['r1']);
    expect((await stored(agentId)).leases).toEqual({});
  });

  it("the lease release, its answer lost and the SDK's retries throttled: 200 and one Message Completed, not a 503 for a completed message", async () => {
    const agentId = await createAgent(app.api, {}, true);
    // The first attempt lands and its answer is lost; the SDK's two retries are throttled: it gives up.
    const release = (r: FaultRequest) => r.key?.agentId === agentId && expressionOf(r) === 'REMOVE #leases.#m';
    app.faults.add({ fault: 'lose-response', operations: ['UpdateItem'], times: 1, match: release });
    app.faults.add({ fault: 'throttle', operations: ['UpdateItem'], times: 2, match: (r) => release(r) && (app.faults.injected['lose-response'] ?? 0) > 0 });
    const res = await app.api('POST', `/agents/${agentId}/messages`, { messageId: 'r2', text: 'release, unanswered' });
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'completed', reply: 'release, unanswered' } } });
    expect(app.faults.injected).toMatchObject({ 'lose-response': 1, throttle: 2 });
    expect(events('Message Completed', agentId).map((e) => e.detail.messageId)).toEqual(['r2']);
    expect((await stored(agentId)).leases).toEqual({});
  });

  it("the worker's claim of a queued message: it runs, not skipped as another delivery's", async () => {
    const agentId = await createAgent(app.api, {}, true);
    loseOnce('UpdateItem', agentId, (r) => expressionOf(r).includes('REMOVE #leases.#m.queued'));
    expect((await app.api('POST', `/agents/${agentId}/messages`, { messageId: 'w1', text: 'claimed' }, { prefer: 'respond-async' })).status).toBe(202);
    await eventually(async () => (await message(agentId, 'w1')).status === 'completed');
  });
});

describe('stops', () => {
  it("a graceful stop's stopping write: 200, and its Agent Stopping event (not taken for another's stop)", async () => {
    const agentId = await createAgent(app.api, {}, true);
    loseOnce('UpdateItem', agentId, (r) => expressionOf(r).startsWith('SET #status = :stopping'));
    const res = await app.api('POST', `/agents/${agentId}/stop`, {});
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
    expect(events('Agent Stopping', agentId)).toHaveLength(1);
    expect(events('Agent Stopped', agentId)).toHaveLength(1);
  });

  it("a force stop's first write: 200 and its Agent Stopping event", async () => {
    const agentId = await createAgent(app.api, {}, true);
    loseOnce('UpdateItem', agentId, (r) => expressionOf(r).startsWith('SET #status = :stopping'));
    const res = await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
    expect(events('Agent Stopping', agentId)).toHaveLength(1);
    expect(events('Agent Stopped', agentId)).toHaveLength(1);
  });

  it("an idle stop's commit (its record, then the agent): 200, stopped once, one Agent Stopped, one record", async () => {
    const agentId = await createAgent(app.api, {}, true);
    loseOnce('PutItem', agentId, (r) => String(r.key?.sk).startsWith('STOP#'));
    loseOnce('UpdateItem', agentId, (r) => expressionOf(r).startsWith('SET #status = :inactive'));
    const res = await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
    expect(app.faults.injected['lose-response']).toBe(2);
    expect(events('Agent Stopped', agentId)).toHaveLength(1);
    expect((await app.api('GET', `/agents/${agentId}/stops`)).body.data).toMatchObject([{ outcome: 'forced', interrupted: 0 }]);
  });

});

describe('stops that interrupt work', () => {
  const { gated, app: gatedApp } = gatedTestApp();
  it('the commit transaction: 200, stopped once, one Agent Stopped, the message interrupted', async () => {
    const g = gatedApp();
    const agentId = await createAgent(g.api, { settings: { gated: true } }, true);
    const sending = g.api('POST', `/agents/${agentId}/messages`, { messageId: 'cut', text: 'held' });
    await gated.waitForHeld(1, agentId);
    g.faults.add({ fault: 'lose-response', operations: ['TransactWriteItems'], times: 1 });
    const res = await g.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
    expect(g.faults.injected['lose-response']).toBe(1);
    expect(g.bus.published.filter((e) => e.type === 'Agent Stopped' && e.detail.agentId === agentId)).toHaveLength(1);
    expect((await g.api('GET', `/agents/${agentId}/stops`)).body.data).toMatchObject([{ outcome: 'forced', interruptedMessageIds: ['cut'] }]);
    gated.releaseAll();
    expect((await sending).status).toBe(409);
  });

  it('the commit transaction, every answer lost while the agent is started and stopped again: 200, and its message announced interrupted', async () => {
    const g = gatedApp();
    const agentId = await createAgent(g.api, { settings: { gated: true } }, true);
    const sending = g.api('POST', `/agents/${agentId}/messages`, { messageId: 'cut', text: 'held' });
    await gated.waitForHeld(1, agentId);
    // Every attempt of the commit lands (the first) or is a no-op (the SDK's retries), and every
    // answer is lost; its next read of the agent's items waits until the agent has moved on.
    let asking = false;
    let moveOn!: () => void;
    const movedOn = new Promise<void>((resolve) => (moveOn = resolve));
    let asked!: () => void;
    const askedWhetherLanded = new Promise<void>((resolve) => (asked = resolve));
    g.faults.add({ fault: 'lose-response', operations: ['TransactWriteItems'], match: (r) => !asking && JSON.stringify(r.body).includes(agentId) });
    g.faults.add({
      fault: { until: movedOn },
      operations: ['GetItem'],
      times: 1,
      match: (r) => {
        if (r.key?.agentId !== agentId || !g.faults.injected['lose-response']) return false;
        asking = true;
        asked();
        return true;
      },
    });
    const stopping = g.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    await askedWhetherLanded;
    expect((await g.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
    expect((await g.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
    moveOn();
    const res = await stopping;
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(g.faults.injected['lose-response']).toBeGreaterThan(1);
    const interrupted = g.bus.published.filter((e) => e.type === 'Message Interrupted' && e.detail.agentId === agentId);
    expect(interrupted.map((e) => e.detail.messageId)).toEqual(['cut']);
    const stops = (await g.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(stops).toMatchObject([{ outcome: 'forced', interrupted: 0 }, { outcome: 'forced', interruptedMessageIds: ['cut'] }]);
    gated.releaseAll();
    expect((await sending).status).toBe(409);
  });
});

describe('agents', () => {
  it('create: 201, not 409 "already exists" for the agent this very request made', async () => {
    const agentId = crypto.randomUUID();
    loseTransactionOnce(agentId);
    const res = await app.api('POST', '/agents', { agentId, name: 'lost answer' });
    expect(res).toMatchObject({ status: 201, body: { data: { agentId, status: 'inactive' } } });
    expect(app.faults.injected['lose-response']).toBe(1);
  });

  it('start: 200 and its Agent Started event, not 409 "already running"', async () => {
    const agentId = await createAgent(app.api);
    loseOnce('UpdateItem', agentId, (r) => expressionOf(r).startsWith('SET #status = :active'));
    const res = await app.api('POST', `/agents/${agentId}/start`);
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'active' } } });
    expect(events('Agent Started', agentId)).toHaveLength(1);
  });

  it('PATCH with If-Match: 200 with the change, not 412 for the version it made', async () => {
    const agentId = await createAgent(app.api);
    loseTransactionOnce(agentId);
    const res = await app.api('PATCH', `/agents/${agentId}`, { name: 'renamed' }, { 'if-match': '1' });
    expect(res).toMatchObject({ status: 200, body: { data: { name: 'renamed', version: 2 } } });
    expect(app.faults.injected['lose-response']).toBe(1);
  });

  it('PATCH of the idle timeout alone (the agent item only): 200, not 412', async () => {
    const agentId = await createAgent(app.api);
    loseOnce('UpdateItem', agentId);
    const res = await app.api('PATCH', `/agents/${agentId}`, { idleTimeoutMs: 60_000 }, { 'if-match': '1' });
    expect(res).toMatchObject({ status: 200, body: { data: { idleTimeoutMs: 60_000, version: 2 } } });
    expect(app.faults.injected['lose-response']).toBe(1);
  });

  it('a signing secret rotation: 200 with a secret that works, not 404', async () => {
    const agentId = await createAgent(app.api);
    loseTransactionOnce(agentId);
    const res = await app.api('POST', `/agents/${agentId}/signing-secret`);
    expect(res).toMatchObject({ status: 200, body: { data: { agentId, signingSecret: expect.any(String) } } });
    expect(app.faults.injected['lose-response']).toBe(1);
  });

  it('DELETE: 200, not 404 for the agent it deleted', async () => {
    const agentId = await createAgent(app.api);
    loseTransactionOnce(agentId);
    expect((await app.api('DELETE', `/agents/${agentId}`)).status).toBe(200);
    expect(app.faults.injected['lose-response']).toBe(1);
    expect((await app.api('GET', `/agents/${agentId}`)).status).toBe(404);
  });
});

describe('a stop commit with no answer past the SDK retries, after the runtime closed', () => {
  // The finalizer that closed the runtime could not commit; the next one (the workflow's retry)
  // commits the stop, telling the runtime the same stop again: idempotent by stopId, it acts once.
  const { gated, app: gatedApp } = gatedTestApp();
  const closes = (agentId: string) => gated.closed.filter((id) => id === agentId).length;
  afterEach(() => gatedApp().faults.clear());

  it('an idle stop (its record, then the agent): 200 inactive within the wait window, the runtime told once', async () => {
    const g = gatedApp();
    const agentId = await createAgent(g.api, {}, true);
    g.faults.add({ fault: 'throttle', operations: ['UpdateItem'], times: 3, match: (r) => r.key?.agentId === agentId && expressionOf(r).startsWith('SET #status = :inactive') });
    const res = await g.api('POST', `/agents/${agentId}/stop`, {});
    expect(res).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
    expect(g.faults.injected.throttle).toBe(3);
    expect(closes(agentId)).toBe(1);
    expect((await g.api('GET', `/agents/${agentId}/stops`)).body.data).toMatchObject([{ outcome: 'drained' }]);
  });

  it('a timed-out stop (one transaction): 408 inactive within the wait window, the message interrupted, the runtime told once', async () => {
    const g = gatedApp();
    const agentId = await createAgent(g.api, { settings: { gated: true } }, true);
    const sending = g.api('POST', `/agents/${agentId}/messages`, { messageId: 'slow', text: 'held' });
    await gated.waitForHeld(1, agentId);
    g.faults.add({ fault: 'throttle', operations: ['TransactWriteItems'], times: 3, match: (r) => JSON.stringify(r.body).includes(agentId) });
    const res = await g.api('POST', `/agents/${agentId}/stop`, { timeout: 200 });
    expect(res).toMatchObject({ status: 408, body: { data: { status: 'inactive' } } });
    expect(g.faults.injected.throttle).toBe(3);
    expect(closes(agentId)).toBe(1);
    expect((await g.api('GET', `/agents/${agentId}/stops`)).body.data).toMatchObject([{ outcome: 'timed_out', interruptedMessageIds: ['slow'] }]);
    gated.releaseAll();
    expect((await sending).status).toBe(409);
  });
});

describe('throttling and 5xx past the SDK retries', () => {
  it('are answered 503 with Retry-After, on writes and reads', async () => {
    const agentId = await createAgent(app.api, {}, true);
    app.faults.add({ fault: 'throttle', match: (r) => r.key?.agentId === agentId });
    const send = await app.api('POST', `/agents/${agentId}/messages`, { text: 'throttled' });
    expect(send).toMatchObject({ status: 503, body: { success: false } });
    expect(send.headers.get('retry-after')).toMatch(/^\d+$/);
    // Tried as the SDK tries (three attempts by default), not once.
    expect(app.faults.injected.throttle).toBe(3);
    app.faults.clear();
    app.faults.add({ fault: 'internal-error', match: (r) => r.key?.agentId === agentId });
    const get = await app.api('GET', `/agents/${agentId}`);
    expect(get).toMatchObject({ status: 503, body: { success: false } });
    expect(get.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(app.faults.injected['internal-error']).toBe(3);
  });
});

describe('a retry that comes back after the stop it raced has ended', () => {
  /** Lose the answer of the first attempt that `match` picks, and hold its retry until `release` is called. */
  function loseThenHold(match: (r: FaultRequest) => boolean) {
    let release!: () => void;
    const until = new Promise<void>((resolve) => (release = resolve));
    app.faults.add({ fault: 'lose-response', times: 1, match });
    app.faults.add({ fault: { until }, times: 1, match });
    return release;
  }

  it('an admission: its lease does not land again on the restarted agent; the message is interrupted', async () => {
    const agentId = await createAgent(app.api, { runtime: { type: 'echo', delayMs: 50 } }, true);
    const release = loseThenHold((r) => r.key?.agentId === agentId && expressionOf(r).startsWith('SET #leases.#m = :lease'));
    const sent = app.api('POST', `/agents/${agentId}/messages`, { messageId: 'g1', text: 'ghost' });
    await eventually(async () => Object.keys((await stored(agentId)).leases).includes('g1'));
    // The first attempt landed; while its retry is held, a stop ends the message and the agent runs again.
    expect((await app.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
    expect((await app.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
    release();
    expect(await sent).toMatchObject({ status: 409, body: { code: 'MESSAGE_INTERRUPTED' } });
    expect((await stored(agentId)).leases).toEqual({});
    expect(await message(agentId, 'g1')).toMatchObject({ status: 'interrupted' });
  });

  it("a stop: its stopping write does not land again on the restarted agent; the agent stays active", async () => {
    const agentId = await createAgent(app.api, {}, true);
    const release = loseThenHold((r) => r.key?.agentId === agentId && expressionOf(r).startsWith('SET #status = :stopping, #stop = :stop, updatedAt = :now, dueAt = :deadline'));
    const first = app.api('POST', `/agents/${agentId}/stop`, { timeout: 60_000 }, { prefer: 'respond-async' });
    await eventually(async () => (await stored(agentId)).status === 'stopping');
    expect((await app.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
    expect((await app.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
    release();
    // The first request's stop ended (forced): it is answered with that stop, and starts nothing new.
    expect((await first).status).toBe(200);
    expect((await stored(agentId)).status).toBe('active');
  });
});
