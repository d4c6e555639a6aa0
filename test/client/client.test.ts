import { describe, expect, it } from 'vitest';
import { AgentsClient, ApiError, type StopProgress } from '../../clients/typescript/src/index.js';
import { createFleet } from '../support/fleet.js';
import { eventually, gatedTestApp } from '../support/stack.js';

/** The typed client against the local stack, over HTTP, as a user's program would call it. */
const { gated, app } = gatedTestApp({ config: { stopWaitWindowMs: 300 } });
const client = () => new AgentsClient({ baseUrl: app().url, pollMs: 50 });

describe('the typed client', () => {
  it('calls every route, typed, and answers each with what the API stored', async () => {
    const c = client();
    expect(await c.health()).toMatchObject({ status: 'ok' });
    const created = await c.createAgent({ name: 'typed', runtime: { type: 'echo' }, settings: { tone: 'dry' } });
    expect(created).toMatchObject({ name: 'typed', status: 'inactive', settings: { tone: 'dry' } });
    const { agentId } = created;
    expect((await c.updateAgent(agentId, { description: 'renamed once' }, created.version)).description).toBe('renamed once');
    await expect(c.updateAgent(agentId, { description: 'stale' }, created.version)).rejects.toMatchObject({ status: 412 });
    expect((await c.getAgent(agentId)).description).toBe('renamed once');
    const page = await c.listAgents({ status: 'inactive' });
    expect(page.agents.map((a) => a.agentId)).toContain(agentId);
    expect((await c.startAgent(agentId)).status).toBe('active');
    expect(await c.sendMessage(agentId, { text: 'hello', messageId: 'sync-1' })).toMatchObject({ status: 'completed', reply: 'hello' });
    expect(await c.sendAndWait(agentId, { text: 'on the worker', messageId: 'async-1' })).toMatchObject({ messageId: 'async-1', status: 'completed', reply: 'on the worker' });
    expect(await c.getMessage(agentId, 'sync-1')).toMatchObject({ status: 'completed' });
    const history = [];
    for await (const m of c.messages(agentId)) history.push(m.messageId);
    expect(history.sort()).toEqual(['async-1', 'sync-1']);
    const stopped = await c.stop(agentId, { graceful: true, timeout: 5_000 });
    expect(stopped).toMatchObject({ agentId, outcome: 'drained', interrupted: 0 });
    const stops = [];
    for await (const s of c.stops(agentId)) stops.push(s);
    expect(stops).toMatchObject([{ stopId: stopped.stopId, outcome: 'drained' }]);
    // A route refused: the API's own sentence and code, typed as an ApiError.
    const refused = await c.stop(agentId).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 409, code: 'AGENT_NOT_RUNNING', message: 'Agent is not running' });
    expect((await c.rotateSigningSecret(agentId)).signingSecret).toMatch(/^whsec_/);
    await c.startAgent(agentId);
    const op = await c.fleetStop({ agentIds: [agentId], timeout: 1_000 });
    expect(op).toMatchObject({ done: true, status: 'completed', counts: { selected: 1, stopped: 1, failed: 0 } });
    expect(await c.getFleetStop(op.operationId)).toMatchObject({ operationId: op.operationId, done: true });
    await c.deleteAgent(agentId);
    await expect(c.getAgent(agentId)).rejects.toMatchObject({ status: 404 });
  });

  it('iterates every agent across pages: 250 agents, each once', { timeout: 90_000 }, async () => {
    const ids = await createFleet(app().api, 250, {}, false);
    const seen: string[] = [];
    for await (const a of client().agents({ status: 'inactive', pageSize: 40 })) seen.push(a.agentId);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => ids.includes(id))).toHaveLength(250);
  });

  it("answers the outcome of its own stop, not of a later one made before it could read the history", async () => {
    const base = client();
    const agent = await base.createAgent({ name: 'stopped twice' });
    await base.startAgent(agent.agentId);
    // The stop's 200 comes back; before the client reads the stop history, someone starts and force-stops the agent.
    const racing: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (input instanceof Request && input.method === 'POST' && input.url.endsWith(`/agents/${agent.agentId}/stop`) && res.status === 200) {
        expect((await app().api('POST', `/agents/${agent.agentId}/start`)).status).toBe(200);
        expect((await app().api('POST', `/agents/${agent.agentId}/stop`, { graceful: false })).status).toBe(200);
      }
      return res;
    };
    const c = new AgentsClient({ baseUrl: app().url, pollMs: 50, fetch: racing });
    const result = await c.stop(agent.agentId, { graceful: true, timeout: 1_000 });
    const history = (await app().api('GET', `/agents/${agent.agentId}/stops`)).body.data;
    expect(history.map((s: { outcome: string }) => s.outcome)).toEqual(['forced', 'drained']);
    expect(result).toMatchObject({ stopId: history[1].stopId, outcome: 'drained' });
  });

  it('polls with If-None-Match: an unchanged drain comes back as 304s, handed on as the same answer', async () => {
    const polls: number[] = [];
    const recording: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      const response = await fetch(request);
      if (request.method === 'GET' && /^\/agents\/[^/]+$/.test(new URL(request.url).pathname)) polls.push(response.status);
      return response;
    };
    const c = new AgentsClient({ baseUrl: app().url, pollMs: 50, fetch: recording });
    const agent = await c.createAgent({ name: 'revalidated', settings: { gated: true } });
    await c.startAgent(agent.agentId);
    const sending = c.sendMessage(agent.agentId, { text: 'held', messageId: 'held-304' });
    await gated.waitForHeld(1, agent.agentId);
    const progress: StopProgress[] = [];
    const stopping = c.stop(agent.agentId, { timeout: 20_000 }, { respondAsync: true, onProgress: (p) => progress.push(p) });
    await eventually(async () => progress.length >= 5, 5_000, 20);
    gated.release('held-304');
    expect(await stopping).toMatchObject({ outcome: 'drained', record: { drainedMessageIds: ['held-304'] } });
    await sending;
    // The first poll is a 200; while nothing changes the API answers 304 and the client hands on the same agent.
    expect(polls[0]).toBe(200);
    expect(polls.filter((s) => s === 304).length).toBeGreaterThanOrEqual(3);
    expect(progress.slice(0, 5).map((p) => [p.status, p.inFlight])).toEqual(Array(5).fill(['stopping', 1]));
  });

  it('stops and waits through a 202: follows the drain, then answers the outcome of that stop', async () => {
    const c = client();
    const agent = await c.createAgent({ name: 'draining', settings: { gated: true } });
    await c.startAgent(agent.agentId);
    const sending = c.sendMessage(agent.agentId, { text: 'held', messageId: 'held-1' });
    await gated.waitForHeld(1, agent.agentId);
    const progress: StopProgress[] = [];
    const stopping = c.stop(agent.agentId, { timeout: 20_000 }, { onProgress: (p) => progress.push(p) });
    // The API answers 202 after its wait window (300 ms here); the client keeps polling the agent.
    await eventually(async () => progress.length > 0, 5_000, 20);
    expect(progress[0]).toMatchObject({ agentId: agent.agentId, status: 'stopping', inFlight: 1 });
    gated.release('held-1');
    const result = await stopping;
    expect(result).toMatchObject({ agentId: agent.agentId, stopId: progress[0]!.stopId, outcome: 'drained', record: { drainedMessageIds: ['held-1'] } });
    expect((await sending).status).toBe('completed');
  });
});
