import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AgentState, MessageRecord, StopRecord } from '../../functions/agents/model.js';
import type { LifecycleEvent } from '../../functions/agents/ports.js';
import { WRITE_OPERATIONS } from '../../local/faults.js';
import { startAppOn } from '../support/local-stack.js';
import { createAgent, eventually, sleep, startTestApp, testConfig, type TestApp } from '../support/stack.js';

/**
 * Many clients, for a bounded time, mixing start, graceful stop, force stop, messages and reads
 * over a few agents; afterwards the stored data must satisfy the design's invariants. Three ways:
 * as the local stack runs; with DynamoDB failing as AWS does (answers lost after their write
 * landed, throttling), below the SDK's retries; and on two instances whose clocks disagree.
 */
/** Each mix runs until it has made this many operations, however long that takes on this machine. */
const MIX_OPERATIONS = 1_750;
const CLIENTS = 32;
const REAPER_MS = 500;
/** What a mix must have met to have proven anything: each kind of operation answered 2xx at least once. */
const KINDS = ['message', 'start', 'graceful', 'force', 'read'];

const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;

type Answer = { data?: unknown; kind: string; agentId: string; status: number; retryAfter?: string | null; messageId?: string; error?: string; code?: string; reply?: string; text?: string };
const ENDINGS: LifecycleEvent['type'][] = ['Message Completed', 'Message Failed', 'Message Interrupted'];

/** Run the mix against `apps` (each operation on one of them, at random); the answers and the message events. */
async function mix(apps: TestApp[], label: string) {
  const events: LifecycleEvent[] = [];
  const unsubscribe = apps.flatMap((a) => ENDINGS.map((type) => a.bus.on(type, (e) => events.push(e))));
  const agents = await Promise.all(Array.from({ length: 4 }, (_, i) => createAgent(apps[0]!.api, { name: `mix-${i}`, runtime: { type: 'echo', delayMs: 10 + i * 10 } }, true)));
  const answers: Answer[] = [];
  let operations = 0;
  const client = async (c: number) => {
    let n = 0;
    // Each client takes its turn before it sends, so the clients together make exactly MIX_OPERATIONS.
    while (operations++ < MIX_OPERATIONS) {
      const { api } = pick(apps);
      const agentId = pick(agents);
      const roll = Math.random();
      let kind: string;
      let res;
      if (roll < 0.45) {
        kind = 'message';
        const messageId = `c${c}-${n++}`;
        // A text unique to this send: a reply stored on another admission's record would show.
        const text = `${messageId}/${Math.random().toString(36).slice(2)}`;
        res = await api('POST', `/agents/${agentId}/messages`, { text, messageId });
        answers.push({ kind, agentId, status: res.status, retryAfter: res.headers.get('retry-after'), messageId, error: res.body?.error, code: res.body?.code, reply: res.body?.data?.reply, text });
      } else {
        if (roll < 0.65) [kind, res] = ['start', await api('POST', `/agents/${agentId}/start`)];
        else if (roll < 0.77) [kind, res] = ['graceful', await api('POST', `/agents/${agentId}/stop`, { timeout: pick([0, 100, 500, 2000]) }, pick<Record<string, string>>([{}, { prefer: 'respond-async' }]))];
        else if (roll < 0.82) [kind, res] = ['force', await api('POST', `/agents/${agentId}/stop`, { graceful: false })];
        else [kind, res] = ['read', await api('GET', pick([`/agents/${agentId}`, `/agents/${agentId}/stops`, `/agents/${agentId}/messages`, '/agents?status=active']))];
        answers.push({ kind, agentId, status: res.status, retryAfter: res.headers.get('retry-after'), error: res.body?.error, code: res.body?.code, ...(res.status >= 500 && { data: res.body?.data }) });
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  operations = answers.length;
  console.info(`random mix (${label}): ${operations} operations over ${agents.length} agents, statuses ${summarize(answers.map((a) => a.status))}`);
  return { agents, answers, events, operations, done: () => unsubscribe.forEach((u) => u()) };
}

/** The mix met every kind of operation succeeding (a mix of refusals only would prove nothing). */
function expectEveryKindAnswered(run: Awaited<ReturnType<typeof mix>>): void {
  expect(run.operations).toBe(MIX_OPERATIONS);
  const answered = new Set(run.answers.filter((a) => a.status >= 200 && a.status < 300).map((a) => a.kind));
  expect([...answered].sort()).toEqual([...KINDS].sort());
}

/** Once every stop has ended: the invariants, checked on what is stored and both ways. */
async function checkInvariants(app: TestApp, run: Awaited<ReturnType<typeof mix>>, opts: { faults: boolean; oneClock: boolean }) {
  const { agents, answers, events } = run;
  // Let every stop that is still draining end (deadlines are at most 2 s away, plus one poll),
  // and every lease expire past the clock tolerance (a message whose answer was a 503).
  let stuck: unknown[] = [];
  await eventually(async () => {
    const all = await Promise.all(agents.map((id) => app.deps.agents.get(id)));
    stuck = all.filter((a) => a!.status === 'stopping').map((a) => ({ agentId: a!.agentId, stop: a!.stop, leases: a!.leases }));
    return stuck.length === 0;
  }, 15_000, 50).catch((err: Error) => {
    throw new Error(`${err.message}; still stopping: ${JSON.stringify(stuck)}`);
  });
  await sleep(200);
  if (opts.faults) {
    // A completion whose lease release failed past the SDK's retries (its caller got a 503) left
    // the lease: once it is dead on any clock, the reaper settles it, and announces the ending.
    const { leaseTtlMs, clockToleranceMs } = app.deps.config;
    await sleep(leaseTtlMs + clockToleranceMs + 2 * REAPER_MS);
  }
  run.done();

  // No 5xx but a 503 that says when to retry; without injected faults, none at all.
  for (const a of answers.filter((x) => x.status >= 500)) {
    expect(opts.faults && a.status === 503 && /^\d+$/.test(a.retryAfter ?? ''), JSON.stringify(a)).toBe(true);
  }
  // A force stop of a running agent always succeeds: 200, or 409 only when the agent was not running.
  for (const a of answers.filter((x) => x.kind === 'force' && x.status !== 503)) {
    expect(a.status === 200 || (a.status === 409 && a.code === 'AGENT_NOT_RUNNING'), JSON.stringify(a)).toBe(true);
  }
  const unavailable = new Set(answers.filter((a) => a.status === 503 && a.messageId).map((a) => a.messageId));

  let completedDuringStops = 0;
  for (const agentId of agents) {
    const agent = (await app.deps.agents.get(agentId)) as AgentState;
    const messages = await all<MessageRecord>((cursor) => app.deps.records.listMessages(agentId, 100, cursor));
    const stops = await all<StopRecord>((cursor) => app.deps.records.listStops(agentId, 100, cursor));
    const byId = new Map(messages.map((m) => [m.messageId, m]));

    // Every record is whole: text, createdAt and its retention (no phantom made up by a stop).
    const raw = await app.db.send(new QueryCommand({ TableName: app.deps.config.recordsTable, KeyConditionExpression: 'agentId = :a AND begins_with(sk, :p)', ExpressionAttributeValues: { ':a': agentId, ':p': 'MSG#' } }));
    for (const item of raw.Items ?? []) {
      expect(typeof item.text === 'string' && typeof item.createdAt === 'number' && typeof item.expiresAt === 'number', JSON.stringify(item)).toBe(true);
    }

    // Every admitted message ended completed, failed or interrupted: none is left processing
    // unless it holds a lease on an agent active right now, or its admission failed with a 503
    // (it reads as failed once its lease could have expired; its next admission settles it).
    const leased = new Set(Object.keys(agent.leases ?? {}));
    for (const m of messages) {
      if (m.status === 'processing') expect(leased.has(m.messageId) || unavailable.has(m.messageId), `${m.messageId} processing without a lease`).toBe(true);
    }
    if (agent.status === 'inactive') expect(leased.size).toBe(0);

    // A message answered 200 is completed with its own reply; one refused (409/429) was never admitted;
    // one answered interrupted is stored interrupted.
    for (const a of answers.filter((x) => x.kind === 'message' && x.agentId === agentId)) {
      if (a.status === 200) {
        const why = () => JSON.stringify({ answer: a, stops: stops.filter((x) => [...x.interruptedMessageIds, ...x.drainedMessageIds].includes(a.messageId!)), events: events.filter((e) => e.detail.messageId === a.messageId) });
        expect(byId.get(a.messageId!), why()).toMatchObject({ status: 'completed', text: a.text, reply: a.text });
      }
      else if (a.error === 'Agent is not running' || a.error === 'Agent is stopping') expect(byId.has(a.messageId!)).toBe(false);
      else if (a.code === 'MESSAGE_INTERRUPTED') expect(byId.get(a.messageId!), JSON.stringify(a)).toMatchObject({ status: 'interrupted' });
    }

    // No reply is stored on a message of another admission: echo replies with the message's own text.
    for (const m of messages.filter((x) => x.status === 'completed')) expect(m.reply, m.messageId).toBe(m.text);
    // A message is completed or interrupted, never both: an interrupted one keeps no reply.
    for (const m of messages.filter((x) => x.status === 'interrupted')) expect(m.reply, m.messageId).toBeUndefined();
    // No message ends before it was created, whichever clock ended it.
    for (const m of messages.filter((x) => x.completedAt !== undefined)) expect(m.completedAt, m.messageId).toBeGreaterThanOrEqual(m.createdAt);
    // Every ending was announced, whoever settled it.
    const announced = new Set(events.filter((e) => e.detail.agentId === agentId).map((e) => `${e.type}/${e.detail.messageId}`));
    const eventOf = { completed: 'Message Completed', failed: 'Message Failed', interrupted: 'Message Interrupted' } as const;
    for (const m of messages.filter((x) => x.status !== 'processing')) {
      const why = () => `${m.messageId} ${m.status} without its event: ${JSON.stringify({ record: m, answers: answers.filter((x) => x.messageId === m.messageId) })}`;
      expect(announced.has(`${eventOf[m.status as keyof typeof eventOf]}/${m.messageId}`), why()).toBe(true);
    }

    // No completion is recorded after its stop's deadline: each message a stop drained (in flight
    // when it began, released before its commit) ended completed or failed before the deadline,
    // and `drained` counts exactly those. A completion refused by the deadline is not among them:
    // the commit recorded it interrupted.
    for (const s of stops) {
      expect(s.drained, s.stopId).toBe(s.drainedMessageIds.length);
      for (const id of s.drainedMessageIds) {
        const m = byId.get(id);
        expect(m && ['completed', 'failed'].includes(m.status) && !s.interruptedMessageIds.includes(id), `${id} drained by ${s.stopId}: ${JSON.stringify(m)}`).toBe(true);
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

    // One stop record per stop, and lastStop is one of them (on one clock: the newest).
    expect(new Set(stops.map((s) => s.stopId)).size).toBe(stops.length);
    if (agent.lastStop) {
      const last = opts.oneClock ? stops.reduce((a, b) => (a.stoppedAt >= b.stoppedAt ? a : b)) : stops.find((x) => x.stopId === agent.lastStop!.stopId);
      expect(agent.lastStop).toMatchObject({ stopId: last?.stopId, outcome: last?.outcome, interrupted: last?.interrupted });
    }
    // Each record is self-consistent whatever the clocks: no negative duration, and a timed-out
    // stop ended at or after its deadline (both on the committing clock).
    for (const s of stops) {
      expect(s.durationMs, s.stopId).toBeGreaterThanOrEqual(0);
      if (s.outcome === 'timed_out') expect(s.stoppedAt, s.stopId).toBeGreaterThanOrEqual(s.deadline);
    }
    // Each stop's interrupted count is the number of messages it actually cut short (recorded
    // interrupted by that stop), not just the length of the list it wrote.
    for (const s of stops) {
      expect(s.interrupted, s.stopId).toBe(messages.filter((m) => m.status === 'interrupted' && m.stopId === s.stopId).length);
    }
  }
  return completedDuringStops;
}

describe('invariants under a random mix of concurrent operations', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ config: { stopPollMs: 20 } });
  });
  afterAll(() => app.close());

  it('as the local stack runs', { timeout: 600_000 }, async () => {
    const run = await mix([app], 'one instance');
    await checkInvariants(app, run, { faults: false, oneClock: true });
    expectEveryKindAnswered(run);
  });

});

describe('invariants with DynamoDB failing as AWS does', () => {
  let app: TestApp;
  beforeAll(async () => {
    // Short leases and a running reaper: what a failure leaves behind is settled within seconds.
    app = await startTestApp({ config: { stopPollMs: 20, leaseTtlMs: 2_000 }, reaperIntervalMs: REAPER_MS });
  });
  afterAll(() => app.close());

  it('10% of write answers lost after the write landed and 5% of calls throttled, below the SDK retries', { timeout: 600_000 }, async () => {
    app.faults.add({ fault: 'lose-response', operations: WRITE_OPERATIONS, probability: 0.1 });
    app.faults.add({ fault: 'throttle', probability: 0.05 });
    let run;
    try {
      run = await mix([app], 'faults');
    } finally {
      console.info(`faults injected: ${JSON.stringify(app.faults.injected)}`);
      app.faults.clear();
    }
    await checkInvariants(app, run, { faults: true, oneClock: true });
    expectEveryKindAnswered(run);
  });
});

describe('invariants on two instances whose clocks are 2 s apart', () => {
  let ahead: TestApp;
  let behind: TestApp;
  beforeAll(async () => {
    const config = testConfig({ stopPollMs: 20, clockToleranceMs: 2_500 });
    ahead = await startAppOn(inject('dynamoEndpoint'), { config, clockOffsetMs: 1_000 });
    behind = await startAppOn(inject('dynamoEndpoint'), { config, clockOffsetMs: -1_000 });
  });
  afterAll(async () => {
    await Promise.all([ahead.close(), behind.close()]);
  });

  it('hold all the same', { timeout: 600_000 }, async () => {
    const run = await mix([ahead, behind], 'two clocks');
    await checkInvariants(ahead, run, { faults: false, oneClock: false });
    expectEveryKindAnswered(run);
  });
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
