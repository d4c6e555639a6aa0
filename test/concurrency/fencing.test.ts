import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReaper } from '../../functions/agents/reaper.js';
import { finalizeStop } from '../../functions/agents/stop-commit.js';
import { patchAgentsStore } from '../support/patch.js';
import { GatedRuntime, stallHeartbeats } from '../support/runtimes.js';
import { createAgent, eventually, sleep, startTestApp, type TestApp } from '../support/stack.js';

/**
 * The fences of the stop: a force stop that cannot fail under traffic, completions fenced on the
 * admission's token and on the stop's deadline, and crashed workers' messages settled. Each test
 * fails with its guard removed (checked once by hand for each).
 */
const gated = new GatedRuntime();
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({
    runtimes: gated.registry,
    // The drain workflow waits long between checks here, so a stop past its deadline is held
    // `stopping` while a test plays the completions that meet the fence.
    workflow: { waitTimeOverrides: { WaitForDrain: 20_000 } },
    config: { leaseTtlMs: 60_000 },
  });
});
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

const agent = async (agentId: string) => (await app.api('GET', `/agents/${agentId}`)).body.data;

describe('force stop', () => {
  it('always answers 200 under 8 clients of message traffic, through stop/start churn', { timeout: 60_000 }, async () => {
    const agentId = await createAgent(app.api, { runtime: { type: 'echo', delayMs: 50 } }, true);
    const answers: number[] = [];
    for (let round = 0; round < 8; round++) {
      if (round > 0) expect((await app.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
      let sending = true;
      const clients = Array.from({ length: 8 }, async () => {
        while (sending) {
          const res = await app.api('POST', `/agents/${agentId}/messages`, { text: 'load' });
          if (res.status >= 500) throw new Error(`message answered ${res.status}: ${res.text}`);
          if (res.status !== 200) await sleep(5);
        }
      });
      await sleep(250);
      const forced = await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
      answers.push(forced.status);
      expect(forced.body).toMatchObject({ success: true, data: { status: 'inactive' } });
      sending = false;
      await Promise.all(clients);
      const after = await agent(agentId);
      expect(after).toMatchObject({ status: 'inactive', inFlight: 0, lastStop: { outcome: 'forced' } });
    }
    expect(answers).toEqual(Array(8).fill(200));
  });
});

describe('force vs completion', () => {
  it('forcing a graceful stop in progress: a reply that landed before the force is drained, within the deadline the stop records', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const sent = ['early', 'cut'].map((messageId) => app.api('POST', `/agents/${agentId}/messages`, { text: messageId, messageId }));
    await gated.waitForHeld(2, agentId);
    expect((await app.api('POST', `/agents/${agentId}/stop`, { timeout: 30_000 }, { prefer: 'respond-async' })).status).toBe(202);
    // The force reads its clock; its write is held until a reply has landed after that reading.
    const undo = patchAgentsStore(app, 'forceStopInProgress', (force) => async (id, stopId, now) => {
      if (id === agentId) {
        await sleep(2);
        gated.release('early');
        expect((await sent[0]!).status).toBe(200);
      }
      return force(id, stopId, now);
    });
    try {
      expect((await app.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
    } finally {
      undo();
    }
    // Its reply comes after the force (unless a heartbeat already told it to stop): refused.
    if (gated.held(agentId).includes('cut')) gated.release('cut');
    expect((await sent[1]!).body.code).toBe('MESSAGE_INTERRUPTED');

    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'forced', drainedMessageIds: ['early'], interruptedMessageIds: ['cut'] });
    const early = (await app.api('GET', `/agents/${agentId}/messages/early`)).body.data;
    expect(early.status).toBe('completed');
    // No completion counts after its stop's deadline, the forced one's included.
    expect(early.completedAt).toBeLessThan(record.deadline);
  });

  it('a completion whose clock read came before a force stop, but whose release lands after it, is refused: interrupted', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const sent = app.api('POST', `/agents/${agentId}/messages`, { text: 'late', messageId: 'late' });
    await gated.waitForHeld(1, agentId);
    const signal = () => {
      let done!: () => void;
      return Object.assign(new Promise<void>((resolve) => (done = resolve)), { done: () => done() });
    };
    const [releaseCalled, forceLanded, releaseSettled] = [signal(), signal(), signal()];
    // The completion reads its clock, then its release waits for the force's first write to land;
    // the force's commit waits for that release, so it lands between the force's two writes.
    const undo = [
      patchAgentsStore(app, 'releaseLease', (release) => async (a) => {
        if (a.agentId !== agentId) return release(a);
        releaseCalled.done();
        await forceLanded;
        return release(a).finally(releaseSettled.done);
      }),
      patchAgentsStore(app, 'beginForcedStop', (begin) => async (id, stop, now) => {
        const out = await begin(id, stop, now);
        if (id === agentId) forceLanded.done();
        return out;
      }),
      patchAgentsStore(app, 'commitStop', (commit) => async (c) => {
        if (c.agent.agentId === agentId) await releaseSettled;
        return commit(c);
      }),
    ];
    try {
      gated.release('late');
      await releaseCalled;
      await sleep(2);
      expect((await app.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
      expect((await sent).body.code).toBe('MESSAGE_INTERRUPTED');
    } finally {
      undo.forEach((u) => u());
    }
    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'forced', drained: 0, interrupted: 1, interruptedMessageIds: ['late'] });
    expect((await app.api('GET', `/agents/${agentId}/messages/late`)).body.data.status).toBe('interrupted');
  });
});

describe('late completions', () => {
  it('a completion of an old admission never lands on a re-admitted message with the same ids', async () => {
    const agentId = crypto.randomUUID();
    await createAgent(app.api, { agentId, runtime: { type: 'echo', delayMs: 1500 } }, true);
    const old = app.api('POST', `/agents/${agentId}/messages`, { messageId: 'X1', text: 'OLD-TEXT' });
    await eventually(async () => (await agent(agentId)).inFlight === 1);
    expect((await app.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
    expect((await app.api('DELETE', `/agents/${agentId}`)).status).toBe(200);
    await createAgent(app.api, { agentId, runtime: { type: 'echo', delayMs: 3000 } }, true);
    const renewed = app.api('POST', `/agents/${agentId}/messages`, { messageId: 'X1', text: 'NEW-TEXT' });

    const oldAnswer = await old;
    expect(oldAnswer.status).toBe(409);
    expect(oldAnswer.body.code).toBe('MESSAGE_INTERRUPTED');
    const newAnswer = await renewed;
    expect(newAnswer.status).toBe(200);
    expect(newAnswer.body.data).toMatchObject({ text: 'NEW-TEXT', reply: 'NEW-TEXT', status: 'completed' });
    const stored = (await app.api('GET', `/agents/${agentId}/messages/X1`)).body.data;
    expect(stored).toMatchObject({ text: 'NEW-TEXT', reply: 'NEW-TEXT', status: 'completed' });
  });
});

describe('graceful deadline', () => {
  it('refuses a completion after the deadline: the message is interrupted and the stop timed out', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const sent = [0, 1].map((i) => app.api('POST', `/agents/${agentId}/messages`, { text: `slow-${i}` }));
    const held = await gated.waitForHeld(2, agentId);
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 300 }, { prefer: 'respond-async' });
    expect(stop.status).toBe(202);
    const { deadline } = stop.body.data;
    await eventually(async () => Date.now() > deadline + 20);

    // The replies are ready after the deadline, and nothing else has ended the stop yet.
    expect((await agent(agentId)).status).toBe('stopping');
    held.forEach((id) => gated.release(id));
    for (const answer of await Promise.all(sent)) {
      expect(answer.status).toBe(409);
      expect(answer.body.code).toBe('MESSAGE_INTERRUPTED');
    }

    // The refused completions ended the stop (it was due) before answering; the workflow's
    // Finalize, at its next look, finds it ended.
    expect(await finalizeStop(app.deps, agentId, stop.body.data.stopId)).toBeUndefined();
    const after = await agent(agentId);
    expect(after).toMatchObject({ status: 'inactive', lastStop: { outcome: 'timed_out', interrupted: 2 } });
    const messages = (await app.api('GET', `/agents/${agentId}/messages`)).body.data as { status: string; completedAt: number }[];
    expect(messages.map((m) => m.status)).toEqual(['interrupted', 'interrupted']);
    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'timed_out', drained: 0, interrupted: 2 });
  });
});

/**
 * An agent with one message held in its runtime and a graceful stop of 60 s begun (a deadline the
 * workflow, looking every 20 s here, cannot reach during a test): the finalizers a test calls read
 * their own clocks.
 */
async function heldStop(messageId: string) {
  const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
  const sent = app.api('POST', `/agents/${agentId}/messages`, { text: messageId, messageId });
  await gated.waitForHeld(1, agentId);
  const stop = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 60_000 }, { prefer: 'respond-async' });
  expect(stop.status).toBe(202);
  return { agentId, sent, stopId: stop.body.data.stopId as string, deadline: stop.body.data.deadline as number };
}

describe('judging a stop', () => {
  it('a finalizer ends only its own stop: not another stop of the agent, nor a deleted agent\'s', async () => {
    const { agentId, sent, stopId } = await heldStop('held');
    const late = { ...app.deps, now: () => Date.now() + 120_000 };
    // Past this stop's deadline, a finalizer of an earlier stop of the same agent leaves it alone.
    expect(await finalizeStop(late, agentId, '01AAAAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
    expect(await agent(agentId)).toMatchObject({ status: 'stopping', stop: { stopId } });
    expect(await finalizeStop(late, crypto.randomUUID(), stopId)).toBeUndefined();
    expect(await finalizeStop(late, agentId, stopId)).toMatchObject({ outcome: 'timed_out' });
    gated.release('held');
    expect((await sent).status).toBe(409);
  });

  it('a graceful stop is due at its deadline to the millisecond (a completion then is already refused)', async () => {
    const { agentId, sent, stopId, deadline } = await heldStop('held');
    expect(await finalizeStop({ ...app.deps, now: () => deadline - 1 }, agentId, stopId)).toBeUndefined();
    expect(await finalizeStop({ ...app.deps, now: () => deadline }, agentId, stopId)).toMatchObject({ outcome: 'timed_out', interrupted: 1 });
    gated.release('held');
    expect((await sent).status).toBe(409);
  });
});

describe('a late commit', () => {
  it('judges a timed-out stop as it stood at its deadline: a lease live then is interrupted, though it expired before the commit', async () => {
    const { agentId, sent, stopId } = await heldStop('cut');
    // Its finalizer comes a minute past the deadline (a workflow retrying its close, a reaper's heal): by
    // its clock the message's lease (60 s) has expired, as a dead worker's would have.
    const late = { ...app.deps, now: () => Date.now() + 125_000 };
    expect(await finalizeStop(late, agentId, stopId)).toMatchObject({ outcome: 'timed_out', interrupted: 1 });
    const [record] = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'timed_out', interruptedMessageIds: ['cut'], failed: 0, drained: 0 });
    gated.release('cut');
    expect(await sent).toMatchObject({ status: 409, body: { code: 'MESSAGE_INTERRUPTED' } });
    expect((await app.api('GET', `/agents/${agentId}/messages/cut`)).body.data).toMatchObject({ status: 'interrupted' });
  });
});

describe('crashed workers', () => {
  let crashApp: TestApp;
  const crashGated = new GatedRuntime();
  beforeAll(async () => {
    crashApp = await startTestApp({ runtimes: crashGated.registry, config: { leaseTtlMs: 400 } });
  });
  afterAll(async () => {
    crashGated.releaseAll();
    await crashApp.close();
  });
  const get = async (agentId: string) => (await crashApp.api('GET', `/agents/${agentId}`)).body.data;
  const message = async (agentId: string, id: string) => (await crashApp.api('GET', `/agents/${agentId}/messages/${id}`)).body.data;

  it('the reaper settles an expired lease of an agent that stays active: failed with a reason, not in flight', async () => {
    const agentId = await createAgent(crashApp.api, { settings: { gated: true }, idleTimeoutMs: null }, true);
    stallHeartbeats(crashApp, agentId);
    const lost = crashApp.api('POST', `/agents/${agentId}/messages`, { text: 'worker crashes' });
    const [crashed] = await crashGated.waitForHeld(1, agentId);
    await eventually(async () => (await get(agentId)).inFlight === 0);
    expect((await message(agentId, crashed!)).status).toBe('processing');

    const summary = await runReaper(crashApp.deps, { budgetMs: 5_000 });
    expect(summary.reclaimed).toBeGreaterThanOrEqual(1);
    expect(await message(agentId, crashed!)).toMatchObject({ status: 'failed', error: expect.stringMatching(/lease expired/) });
    expect(await get(agentId)).toMatchObject({ status: 'active', inFlight: 0 });
    expect(Object.keys((await crashApp.deps.agents.get(agentId))!.leases)).toEqual([]);

    // The crashed worker coming back late is fenced: its reply is not stored.
    crashGated.release(crashed!);
    expect((await lost).status).toBe(409);
    expect((await message(agentId, crashed!)).status).toBe('failed');
  });

  it('a worker that dies between recording a reply and releasing its lease: the reply stands, the reaper releases the lease', async () => {
    const agentId = await createAgent(crashApp.api, { settings: { gated: true }, idleTimeoutMs: null }, true);
    stallHeartbeats(crashApp, agentId);
    patchAgentsStore(crashApp, 'releaseLease', (release) => (a) => (a.agentId === agentId ? new Promise(() => {}) : release(a)));
    // The request never ends (its process "died"); the test server's close cuts it.
    void crashApp.api('POST', `/agents/${agentId}/messages`, { text: 'answered, then the worker dies' }).catch(() => undefined);
    const [id] = await crashGated.waitForHeld(1, agentId);
    crashGated.release(id!);
    await eventually(async () => (await message(agentId, id!)).status === 'completed');
    await eventually(async () => (await get(agentId)).inFlight === 0);

    const summary = await runReaper(crashApp.deps, { budgetMs: 5_000 });
    expect(summary.reclaimed).toBeGreaterThanOrEqual(1);
    expect(Object.keys((await crashApp.deps.agents.get(agentId))!.leases)).toEqual([]);
    expect(await message(agentId, id!)).toMatchObject({ status: 'completed', reply: 'echo: answered, then the worker dies' });
    // Its ending is announced all the same, by the reaper that settled it.
    expect(crashApp.bus.published.filter((e) => e.type === 'Message Completed' && e.detail.messageId === id)).toHaveLength(1);
  });

  /**
   * A message answered in time by a worker slow between its two writes, while a graceful stop of
   * 60 s runs: no heartbeat lands (its lease dies long before the deadline), its reply is recorded,
   * and its lease release waits for `release()`, then goes out stamped past the stop's deadline. No
   * workflow runs (it would end the stop first). Nothing here waits on the deadline itself.
   */
  async function slowCompletion(messageId: string) {
    const agentId = await createAgent(crashApp.api, { settings: { gated: true }, idleTimeoutMs: null }, true);
    stallHeartbeats(crashApp, agentId);
    let deadline = 0;
    let release!: () => void;
    const releaseHeld = new Promise<void>((resolve) => (release = resolve));
    const undo = patchAgentsStore(crashApp, 'releaseLease', (releaseLease) => async (a) => {
      if (a.agentId !== agentId) return releaseLease(a);
      await releaseHeld;
      return releaseLease({ ...a, now: deadline + 1 });
    });
    const start = crashApp.workflow.start;
    crashApp.workflow.start = async () => {};
    const restore = () => {
      crashApp.workflow.start = start;
      undo();
    };
    const sent = crashApp.api('POST', `/agents/${agentId}/messages`, { messageId, text: 'answered in time' });
    await crashGated.waitForHeld(1, agentId);
    expect((await crashApp.api('POST', `/agents/${agentId}/stop`, { timeout: 60_000 }, { prefer: 'respond-async' })).status).toBe(202);
    const stop = (await crashApp.deps.agents.get(agentId))!.stop!;
    deadline = stop.deadline;
    crashGated.release(messageId);
    await eventually(async () => (await crashApp.deps.records.getMessage(agentId, messageId))?.status === 'completed');
    // Its lease is dead (no heartbeat landed): nothing is in flight any more.
    await eventually(async () => (await get(agentId)).inFlight === 0);
    return { agentId, sent, stopId: stop.stopId, release, restore };
  }

  it('a reply recorded in time whose release is refused after the deadline: the caller is told what the stop recorded, not a guess', async () => {
    const { agentId, sent, release, restore } = await slowCompletion('in-time');
    try {
      release();
      // The stop's commit, made by this completion, counts it drained: the caller hears the reply the store keeps.
      expect(await sent).toMatchObject({ status: 200, body: { data: { messageId: 'in-time', reply: 'echo: answered in time' } } });
    } finally {
      restore();
    }
    expect(await message(agentId, 'in-time')).toMatchObject({ status: 'completed', reply: 'echo: answered in time' });
    const [record] = (await crashApp.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'drained', drainedMessageIds: ['in-time'], interrupted: 0 });
    expect(crashApp.bus.published.filter((e) => e.type === 'Message Completed' && e.detail.messageId === 'in-time' && e.detail.agentId === agentId)).toHaveLength(1);
    // One finalizer (this completion; no workflow ran): the runtime told of the stop once.
    expect(crashGated.closeCalls.filter((c) => c.agentId === agentId)).toEqual([expect.objectContaining({ stopId: record.stopId, outcome: 'drained' })]);
  });

  it('a refused completion that cannot end the stop (the store failing) answers as the commit then records it', async () => {
    const { agentId, sent, stopId, release, restore } = await slowCompletion('judged');
    // Every commit of this agent's stop fails until the test lets it: the completion cannot end it.
    let failCommits = true;
    const undoCommit = patchAgentsStore(crashApp, 'commitStop', (commit) => async (c) => {
      if (failCommits && c.agent.agentId === agentId) throw new Error('store unavailable');
      return commit(c);
    });
    try {
      release();
      // The commit to come drains it (its reply recorded in time, its lease dead): the caller hears the reply.
      expect(await sent).toMatchObject({ status: 200, body: { data: { reply: 'echo: answered in time' } } });
      failCommits = false;
      expect(await finalizeStop(crashApp.deps, agentId, stopId)).toMatchObject({ outcome: 'drained', interrupted: 0 });
    } finally {
      restore();
      undoCommit();
    }
    expect(await message(agentId, 'judged')).toMatchObject({ status: 'completed', reply: 'echo: answered in time' });
    // Announced once, by the commit that settled it.
    expect(crashApp.bus.published.filter((e) => e.type === 'Message Completed' && e.detail.messageId === 'judged' && e.detail.agentId === agentId)).toHaveLength(1);
  });

  it('an admission that dies between writing the message and taking its lease: the message ends failed, never processing for good', async () => {
    const agentId = await createAgent(crashApp.api, { idleTimeoutMs: null }, true);
    const undo = patchAgentsStore(crashApp, 'admitLease', (admitLease) => (a) => (a.agentId === agentId ? new Promise(() => {}) : admitLease(a)));
    // The request never ends (its process "died"); the test server's close cuts it.
    void crashApp.api('POST', `/agents/${agentId}/messages`, { messageId: 'half', text: 'half admitted' }).catch(() => undefined);
    await eventually(async () => (await crashApp.deps.records.getMessage(agentId, 'half'))?.status === 'processing');
    expect(await get(agentId)).toMatchObject({ status: 'active', inFlight: 0 });

    // Once its lease could have expired, it reads as failed, with the reason (a read never writes).
    await eventually(async () => (await message(agentId, 'half')).status === 'failed');
    expect(await message(agentId, 'half')).toMatchObject({ status: 'failed', error: expect.stringMatching(/never admitted/) });
    const list = (await crashApp.api('GET', `/agents/${agentId}/messages`)).body.data;
    expect(list).toEqual([expect.objectContaining({ messageId: 'half', status: 'failed' })]);
    // A retry of the same messageId is told so, and runs nothing.
    undo();
    const retry = await crashApp.api('POST', `/agents/${agentId}/messages`, { messageId: 'half', text: 'half admitted' });
    expect(retry).toMatchObject({ status: 409, body: { code: 'MESSAGE_FAILED' } });
  });

  it('an admission whose lease lands after it could have expired runs nothing: 503, the message failed, no lease left', async () => {
    const agentId = await createAgent(crashApp.api, { settings: { gated: true }, idleTimeoutMs: null }, true);
    let reader: Promise<unknown> = Promise.resolve();
    const undo = patchAgentsStore(crashApp, 'admitLease', (admitLease) => async (a) => {
      if (a.agentId !== agentId) return admitLease(a);
      // A store slower than the lease TTL (400 ms here): a reader settles the record meanwhile.
      await sleep(600);
      reader = message(agentId, 'late');
      await reader;
      return admitLease(a);
    });
    const res = await crashApp.api('POST', `/agents/${agentId}/messages`, { messageId: 'late', text: 'too late' });
    await reader;
    undo();
    expect(res).toMatchObject({ status: 503, body: { success: false, error: expect.stringMatching(/send it again with a new messageId/) } });
    expect(crashGated.started.filter((id) => id === 'late')).toEqual([]);
    expect(await message(agentId, 'late')).toMatchObject({ status: 'failed' });
    expect(Object.keys((await crashApp.deps.agents.get(agentId))!.leases)).toEqual([]);
  });

  it('an admission refused by the agent leaves no message behind', async () => {
    const agentId = await createAgent(crashApp.api, {});
    const refused = await crashApp.api('POST', `/agents/${agentId}/messages`, { messageId: 'refused', text: 'not running' });
    expect(refused.status).toBe(409);
    expect(await crashApp.deps.records.getMessage(agentId, 'refused')).toBeUndefined();
    expect((await crashApp.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
    expect((await crashApp.api('POST', `/agents/${agentId}/messages`, { messageId: 'refused', text: 'now running' })).body.data).toMatchObject({ status: 'completed', reply: 'now running' });
  });

  it('the next admission settles an expired lease below the in-flight cap', async () => {
    const agentId = await createAgent(crashApp.api, { settings: { gated: true }, idleTimeoutMs: null }, true);
    stallHeartbeats(crashApp, agentId);
    void crashApp.api('POST', `/agents/${agentId}/messages`, { text: 'worker crashes' });
    const [crashed] = await crashGated.waitForHeld(1, agentId);
    await eventually(async () => (await get(agentId)).inFlight === 0);

    const next = crashApp.api('POST', `/agents/${agentId}/messages`, { text: 'next' });
    const held = await crashGated.waitForHeld(2, agentId);
    expect(await message(agentId, crashed!)).toMatchObject({ status: 'failed', error: expect.stringMatching(/lease expired/) });
    crashGated.release(held.find((id) => id !== crashed)!);
    expect((await next).status).toBe(200);
  });
});
