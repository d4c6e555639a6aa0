import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NEVER, leaseExpiry, type AgentState } from '../../functions/agents/model.js';
import { runReaper } from '../../functions/agents/reaper.js';
import { patchAgentsStore } from '../support/patch.js';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Races around the stop and the reaper's next check, each forced into the order that breaks an
 * unguarded read-then-write: a write is injected between the read and the write it decides.
 */
const gated = new GatedRuntime();
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ runtimes: gated.registry, workflow: { waitTimeOverrides: { WaitForDrain: 20_000 } } });
});
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

const stored = async (agentId: string) => (await app.deps.agents.get(agentId)) as AgentState;
const latestExpiry = (agent: AgentState) => Math.max(...Object.values(agent.leases).map(leaseExpiry));

/** Run `inject` once, right after the next read of `agentId` returns (before the caller writes). */
function afterNextRead(agentId: string, inject: () => Promise<void>): () => void {
  const store = app.deps.agents;
  const get = store.get.bind(store);
  let armed = true;
  store.get = async (id: string) => {
    const item = await get(id);
    if (armed && id === agentId) {
      armed = false;
      await inject();
    }
    return item;
  };
  return () => {
    store.get = get;
  };
}

describe("the reaper's next check of an agent", () => {
  it('is not lost when a check moves while a message is being admitted', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true }, idleTimeoutMs: 1000 }, true);
    // The admission reads a check earlier than its lease's expiry (nothing to move); before it
    // writes, a stale mover (a reaper or a PATCH that did not see this lease) pushes it to never.
    const restore = afterNextRead(agentId, () => app.deps.agents.moveDueAt(agentId, 'active', NEVER));
    try {
      void app.api('POST', `/agents/${agentId}/messages`, { text: 'will crash' });
      await gated.waitForHeld(1, agentId);
    } finally {
      restore();
    }
    const agent = await stored(agentId);
    expect(agent.dueAt).toBeLessThanOrEqual(latestExpiry(agent));
  });

  it("is not lost when a message is admitted while the reaper reschedules the agent", async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true }, idleTimeoutMs: null }, true);
    await app.deps.agents.moveDueAt(agentId, 'active', Date.now() - 1);
    // The reaper reads an agent with nothing in flight; before it moves the check to "never"
    // (idle stop is off), a message is admitted and its worker crashes.
    const restore = afterNextRead(agentId, async () => {
      void app.api('POST', `/agents/${agentId}/messages`, { text: 'will crash' });
      await gated.waitForHeld(1, agentId);
    });
    try {
      await runReaper(app.deps, { budgetMs: 5_000 });
    } finally {
      restore();
    }
    const agent = await stored(agentId);
    expect(Object.keys(agent.leases)).toHaveLength(1);
    expect(agent.dueAt).toBeLessThanOrEqual(latestExpiry(agent));
  });

  it('is not lost when a message is admitted while a PATCH of idleTimeoutMs moves it', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true }, idleTimeoutMs: 1000 }, true);
    // The PATCH reads the agent in its own write (nothing in flight); before it moves the check to
    // "never", a message is admitted and its worker crashes.
    const undo = patchAgentsStore(app, 'update', (update) => async (...args) => {
      const item = await update(...args);
      void app.api('POST', `/agents/${agentId}/messages`, { text: 'will crash' });
      await gated.waitForHeld(1, agentId);
      return item;
    });
    try {
      expect((await app.api('PATCH', `/agents/${agentId}`, { idleTimeoutMs: null })).status).toBe(200);
    } finally {
      undo();
    }
    const agent = await stored(agentId);
    expect(agent.dueAt).toBeLessThanOrEqual(latestExpiry(agent));
  });
});

describe('a graceful stop whose workflow cannot start', () => {
  it('does not roll back a stop a force stop has taken over: the force stop answers 200', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    void app.api('POST', `/agents/${agentId}/messages`, { text: 'in flight' });
    const [held] = await gated.waitForHeld(1, agentId);

    // The graceful stop's StartExecution fails, but only once the force stop has taken it over.
    let failStart!: () => void;
    const startFails = new Promise<void>((resolve) => (failStart = resolve));
    const start = app.workflow.start;
    app.workflow.start = async () => {
      await startFails;
      throw new Error('StartExecution failed');
    };
    // The force stop pauses between taking the stop over and committing; it goes on once the
    // graceful request has tried to roll its stop back.
    let tried!: () => void;
    const rollbackTried = new Promise<void>((resolve) => (tried = resolve));
    const undo = [
      patchAgentsStore(app, 'rollbackStop', (rollbackStop) => async (...args) => {
        try {
          await rollbackStop(...args);
        } finally {
          tried();
        }
      }),
      patchAgentsStore(app, 'commitStop', (commitStop) => async (c) => {
        if (c.agent.agentId === agentId) await rollbackTried;
        return commitStop(c);
      }),
    ];
    try {
      const graceful = app.api('POST', `/agents/${agentId}/stop`, { timeout: 20_000 });
      await eventually(async () => (await stored(agentId)).status === 'stopping');
      const forced = app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
      await eventually(async () => (await stored(agentId)).stop?.forced === true);

      failStart();
      await rollbackTried;

      expect((await forced).status).toBe(200);
      expect((await graceful).status).toBe(200);
    } finally {
      app.workflow.start = start;
      undo.forEach((u) => u());
    }
    const after = (await app.api('GET', `/agents/${agentId}`)).body.data;
    expect(after).toMatchObject({ status: 'inactive', lastStop: { outcome: 'forced', interrupted: 1 } });
    expect((await app.api('GET', `/agents/${agentId}/messages/${held}`)).body.data.status).toBe('interrupted');
  });
});
