import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AgentItem, MessageRecord, StopRecord } from '../../functions/agents/model.js';
import { createAgent, eventually, sleep, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Many clients, for a bounded time, mixing start, graceful stop, force stop, messages and reads
 * over a few agents; afterwards the stored data must satisfy the design's invariants.
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ config: { stopPollMs: 20 } });
});
afterAll(async () => {
  await app.close();
});

const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;

it('keeps the invariants under a random mix of concurrent operations', { timeout: 60_000 }, async () => {
  const agents = await Promise.all(Array.from({ length: 4 }, (_, i) => createAgent(app.api, { name: `mix-${i}`, runtime: { type: 'echo', delayMs: 40 + i * 30 } }, true)));
  const answers: { kind: string; agentId: string; status: number; messageId?: string; error?: string; code?: string; reply?: string; text?: string }[] = [];
  let operations = 0;
  const until = Date.now() + 8_000;

  const client = async (c: number) => {
    let n = 0;
    while (Date.now() < until) {
      const agentId = pick(agents);
      const roll = Math.random();
      let kind: string;
      let res;
      if (roll < 0.45) {
        kind = 'message';
        const messageId = `c${c}-${n++}`;
        // A text unique to this send: a reply stored on another admission's record would show.
        const text = `${messageId}/${Math.random().toString(36).slice(2)}`;
        res = await app.api('POST', `/agents/${agentId}/messages`, { text, messageId });
        answers.push({ kind, agentId, status: res.status, messageId, error: res.body?.error, code: res.body?.code, reply: res.body?.data?.reply, text });
      } else {
        if (roll < 0.65) [kind, res] = ['start', await app.api('POST', `/agents/${agentId}/start`)];
        else if (roll < 0.77) [kind, res] = ['graceful', await app.api('POST', `/agents/${agentId}/stop`, { timeout: pick([0, 100, 500, 2000]) }, pick<Record<string, string>>([{}, { prefer: 'respond-async' }]))];
        else if (roll < 0.82) [kind, res] = ['force', await app.api('POST', `/agents/${agentId}/stop`, { graceful: false })];
        else [kind, res] = ['read', await app.api('GET', pick([`/agents/${agentId}`, `/agents/${agentId}/stops`, '/agents?status=active']))];
        answers.push({ kind, agentId, status: res.status, error: res.body?.error, code: res.body?.code });
      }
      operations++;
    }
  };
  await Promise.all(Array.from({ length: 12 }, (_, c) => client(c)));

  // Let every stop that is still draining end (deadlines are at most 2 s away, plus one poll).
  await eventually(async () => {
    const all = await Promise.all(agents.map((id) => app.deps.agents.get(id)));
    return all.every((a) => a!.status !== 'stopping');
  }, 10_000, 50);
  await sleep(200);

  // No 5xx, ever.
  expect(answers.filter((a) => a.status >= 500)).toEqual([]);
  // A force stop of a running agent always succeeds: 200, or 409 only when the agent was not running.
  for (const a of answers.filter((x) => x.kind === 'force')) {
    expect(a.status === 200 || (a.status === 409 && a.code === 'AGENT_NOT_RUNNING'), JSON.stringify(a)).toBe(true);
  }

  let completedDuringStops = 0;
  for (const agentId of agents) {
    const agent = (await app.deps.agents.get(agentId)) as AgentItem;
    const messages = await all<MessageRecord>((cursor) => app.deps.records.listMessages(agentId, 100, cursor));
    const stops = await all<StopRecord>((cursor) => app.deps.records.listStops(agentId, 100, cursor));
    const byId = new Map(messages.map((m) => [m.messageId, m]));

    // Every admitted message ended completed, failed or interrupted: none is left processing
    // (except those still admitted on an agent that is active right now).
    const leased = new Set(Object.keys(agent.leases ?? {}));
    for (const m of messages) {
      if (m.status === 'processing') expect(leased.has(m.messageId), `${m.messageId} processing without a lease`).toBe(true);
    }
    if (agent.status === 'inactive') expect(leased.size).toBe(0);

    // A message answered 200 is completed with its own reply; one refused (409/429) was never admitted.
    for (const a of answers.filter((x) => x.kind === 'message' && x.agentId === agentId)) {
      if (a.status === 200) expect(byId.get(a.messageId!)).toMatchObject({ status: 'completed', text: a.text, reply: a.text });
      else if (a.error === 'Agent is not running' || a.error === 'Agent is stopping') expect(byId.has(a.messageId!)).toBe(false);
    }

    // No reply is stored on a message of another admission: echo replies with the message's own text.
    for (const m of messages.filter((x) => x.status === 'completed')) expect(m.reply, m.messageId).toBe(m.text);

    // No completion is recorded after its stop's deadline: each message a stop drained (in flight
    // when it began, released before its commit) ended completed or failed before the deadline,
    // and `drained` counts exactly those. A completion refused by the deadline is not among them:
    // the commit recorded it interrupted.
    for (const s of stops) {
      expect(s.drained, s.stopId).toBe(s.drainedMessageIds.length);
      for (const id of s.drainedMessageIds) {
        const m = byId.get(id);
        expect(m && ['completed', 'failed'].includes(m.status), `${id} drained by ${s.stopId}: ${JSON.stringify(m)}`).toBe(true);
        expect(m!.completedAt, `${id} drained by ${s.stopId} completed after its deadline`).toBeLessThan(s.deadline);
      }
      completedDuringStops += s.drained;
    }

    // Every interrupted message is listed by exactly one stop, which lists only interrupted ones of its own.
    const listedBy = new Map<string, string[]>();
    for (const s of stops) for (const id of s.interruptedMessageIds) listedBy.set(id, [...(listedBy.get(id) ?? []), s.stopId]);
    for (const m of messages.filter((x) => x.status === 'interrupted')) {
      expect(listedBy.get(m.messageId)).toEqual([m.stopId]);
    }
    for (const [id] of listedBy) expect(byId.get(id)?.status).toBe('interrupted');

    // One stop record per stop, and lastStop is the newest of them.
    expect(new Set(stops.map((s) => s.stopId)).size).toBe(stops.length);
    if (agent.lastStop) {
      const newest = stops.reduce((a, b) => (a.stoppedAt >= b.stoppedAt ? a : b));
      expect(agent.lastStop).toMatchObject({ stopId: newest.stopId, outcome: newest.outcome, interrupted: newest.interrupted });
    }
    // Each stop's interrupted count is the number of messages it actually cut short (recorded
    // interrupted by that stop), not just the length of the list it wrote.
    for (const s of stops) {
      expect(s.interrupted, s.stopId).toBe(messages.filter((m) => m.status === 'interrupted' && m.stopId === s.stopId).length);
    }
  }
  console.info(`random mix: ${operations} operations over ${agents.length} agents, statuses ${summarize(answers.map((a) => a.status))}, ${completedDuringStops} completions during graceful stops`);
  expect(operations).toBeGreaterThan(100);
});

async function all<T>(page: (cursor?: Record<string, unknown>) => Promise<{ items: T[]; lastKey?: Record<string, unknown> }>): Promise<T[]> {
  const items: T[] = [];
  let cursor: Record<string, unknown> | undefined;
  do {
    const p = await page(cursor);
    items.push(...p.items);
    cursor = p.lastKey;
  } while (cursor);
  return items;
}

const summarize = (xs: number[]) => JSON.stringify(xs.reduce<Record<number, number>>((acc, x) => ({ ...acc, [x]: (acc[x] ?? 0) + 1 }), {}));
