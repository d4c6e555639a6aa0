import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, sleep, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Races the design closes with conditional writes. Each test would fail if its guard were
 * removed: without `#status = :inactive` two starts both succeed; without `#status = :active` on
 * admission a message slips in after `stopping`; without the stopId condition a stop is recorded
 * twice.
 */
const gated = new GatedRuntime();
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ runtimes: gated.registry, config: { leaseTtlMs: 60_000 } });
});
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

const times = <T>(n: number, fn: (i: number) => Promise<T>) => Promise.all(Array.from({ length: n }, (_, i) => fn(i)));
const agent = async (agentId: string) => (await app.api('GET', `/agents/${agentId}`)).body.data;

describe('lifecycle races', () => {
  it('20 simultaneous starts of one agent: exactly one 200, the rest 409', async () => {
    const agentId = await createAgent(app.api);
    const results = await times(20, () => app.api('POST', `/agents/${agentId}/start`));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    expect(app.bus.published.filter((e) => e.type === 'Agent Started' && e.detail.agentId === agentId)).toHaveLength(1);
  });

  it('20 simultaneous stops: each 200 or 409, never 5xx; the agent ends inactive with exactly one stop record', async () => {
    const agentId = await createAgent(app.api, {}, true);
    const results = await times(20, (i) => app.api('POST', `/agents/${agentId}/stop`, i % 3 === 0 ? { graceful: false } : {}));
    for (const r of results) expect([200, 409]).toContain(r.status);
    expect(results.some((r) => r.status === 200)).toBe(true);
    expect((await agent(agentId)).status).toBe('inactive');
    expect((await app.api('GET', `/agents/${agentId}/stops`)).body.data).toHaveLength(1);
  });

  it('stop racing delete: either the stop or the delete wins, never both half-done', async () => {
    for (let round = 0; round < 5; round++) {
      const agentId = await createAgent(app.api, {}, true);
      const [stopRes, deleteRes] = await Promise.all([
        app.api('POST', `/agents/${agentId}/stop`, {}),
        app.api('DELETE', `/agents/${agentId}`),
      ]);
      expect(stopRes.status).toBe(200);
      expect([200, 409]).toContain(deleteRes.status);
      const after = await app.api('GET', `/agents/${agentId}`);
      if (deleteRes.status === 200) expect(after.status).toBe(404);
      else expect(after.body.data.status).toBe('inactive');
    }
  });

  it('update of the runtime racing start: the runtime changes only if it won while inactive', async () => {
    for (let round = 0; round < 5; round++) {
      const agentId = await createAgent(app.api);
      const [patch, start] = await Promise.all([
        app.api('PATCH', `/agents/${agentId}`, { runtime: { type: 'echo', delayMs: 5 } }),
        app.api('POST', `/agents/${agentId}/start`),
      ]);
      expect(start.status).toBe(200);
      expect([200, 409]).toContain(patch.status);
      const after = await agent(agentId);
      expect(after.status).toBe('active');
      expect(after.runtime).toEqual(patch.status === 200 ? { type: 'echo', delayMs: 5 } : { type: 'echo' });
      expect(after.version).toBe(patch.status === 200 ? 3 : 2);
    }
  });
});

describe('drain races', () => {
  const send = (agentId: string, text: string) => app.api('POST', `/agents/${agentId}/messages`, { text });

  it('admission vs stop: no message is admitted once stopping is written, and none is lost', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const burst = times(20, (i) => send(agentId, `burst-${i}`));
    // One message held in the runtime keeps the stop draining (an agent with nothing in flight
    // would stop at once); the rest of the burst races the stopping write.
    await gated.waitForHeld(1, agentId);
    const stopping = app.api('POST', `/agents/${agentId}/stop`, { timeout: 20_000 });
    await eventually(async () => (await agent(agentId)).status === 'stopping', 10_000, 2);

    const after = await times(10, (i) => send(agentId, `after-${i}`));
    for (const r of after) expect(r.body).toMatchObject({ success: false, error: 'Agent is stopping' });

    // Let every admitted message finish (some may still be between admission and the runtime).
    let stopRes: Awaited<typeof stopping> | undefined;
    void stopping.then((r) => (stopRes = r));
    while (!stopRes) {
      gated.releaseAll();
      await sleep(10);
    }
    expect(stopRes.status).toBe(200);
    const results = await burst;
    const admitted = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 409);
    expect(admitted.length + refused.length).toBe(20);
    for (const r of refused) expect(r.body.error).toBe('Agent is stopping');

    const history = (await app.api('GET', `/agents/${agentId}/messages?limit=100`)).body.data;
    expect(history).toHaveLength(admitted.length);
    for (const m of history) expect(m.status).toBe('completed');
    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'drained', drained: admitted.length, interrupted: 0 });
  });

  it('force vs drain vs late completions: every admitted message ends completed or interrupted, one stop record', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const messages = times(6, (i) => send(agentId, `m-${i}`));
    const held = await gated.waitForHeld(6, agentId);
    const graceful = app.api('POST', `/agents/${agentId}/stop`, { timeout: 20_000 });
    await eventually(async () => (await agent(agentId)).status === 'stopping');
    // Three complete as the force stop lands; the others complete after it.
    held.slice(0, 3).forEach((id) => gated.release(id));
    const forced = await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    held.slice(3).forEach((id) => gated.release(id));
    const answers = await messages;
    expect([200, 409]).toContain(forced.status);
    expect((await graceful).status).toBe(200);

    const history = (await app.api('GET', `/agents/${agentId}/messages?limit=100`)).body.data as { messageId: string; status: string }[];
    expect(history).toHaveLength(6);
    const stops = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(stops).toHaveLength(1);
    const interrupted = history.filter((m) => m.status === 'interrupted').map((m) => m.messageId).sort();
    expect(history.every((m) => m.status === 'completed' || m.status === 'interrupted')).toBe(true);
    expect([...stops[0].interruptedMessageIds].sort()).toEqual(interrupted);
    // A message answered 200 is completed; one answered 409 was interrupted (fenced).
    expect(answers.filter((r) => r.status === 200)).toHaveLength(6 - interrupted.length);
    expect(held.slice(3).every((id) => interrupted.includes(id))).toBe(true);
  });
});

describe('contention on one agent', () => {
  it('60 simultaneous messages to one agent: each 200 or 429 with Retry-After, never 5xx, none left processing', async () => {
    const agentId = await createAgent(app.api, {}, true);
    const results = await times(60, (i) => app.api('POST', `/agents/${agentId}/messages`, { text: `m${i}` }));
    for (const r of results) {
      expect([200, 429]).toContain(r.status);
      if (r.status === 429) expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    }
    const history = (await app.api('GET', `/agents/${agentId}/messages?limit=100`)).body.data as { status: string }[];
    expect(history).toHaveLength(results.filter((r) => r.status === 200).length);
    expect(history.every((m) => m.status === 'completed')).toBe(true);
    expect((await agent(agentId)).inFlight).toBe(0);
  });
});
