import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReaper } from '../../functions/agents/reaper.js';
import { untilDone } from '../support/fleet.js';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, sleep, startTestApp, type TestApp } from '../support/stack.js';

const gated = new GatedRuntime();
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ runtimes: gated.registry, config: { stuckStopGraceMs: 0 } });
});
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

const reap = () => runReaper(app.deps, { budgetMs: 20_000 });
const agent = async (agentId: string) => (await app.api('GET', `/agents/${agentId}`)).body.data;

describe('idle reaper', () => {
  it('stops an idle agent gracefully with reason idle and a stop record, and leaves busy and disabled ones running', async () => {
    const idle = await createAgent(app.api, { idleTimeoutMs: 1000 }, true);
    const busy = await createAgent(app.api, { idleTimeoutMs: 1000 }, true);
    const disabled = await createAgent(app.api, { idleTimeoutMs: null }, true);
    await sleep(1100);
    expect((await app.api('POST', `/agents/${busy}/messages`, { text: 'still here' })).status).toBe(200);

    const summary = await reap();
    expect(summary.stopped).toBeGreaterThanOrEqual(1);
    expect(summary.complete).toBe(true);
    const stopped = await agent(idle);
    expect(stopped.status).toBe('inactive');
    expect(stopped.lastStop).toMatchObject({ reason: 'idle', outcome: 'drained' });
    const [record] = (await app.api('GET', `/agents/${idle}/stops`)).body.data;
    expect(record).toMatchObject({ reason: 'idle', outcome: 'drained', graceful: true });
    expect((await agent(busy)).status).toBe('active');
    expect((await agent(disabled)).status).toBe('active');
    expect(app.bus.published.some((e) => e.type === 'Agent Stopped' && e.detail.agentId === idle && e.detail.reason === 'idle')).toBe(true);
  });

  it('never examines an agent whose idle timeout is disabled', async () => {
    const disabled = await createAgent(app.api, { idleTimeoutMs: null }, true);
    const keys = await app.deps.agents.queryByStatus('active', { limit: 100, dueBy: Date.now() + 86_400_000 });
    expect(keys.items.map((k) => k.agentId)).not.toContain(disabled);
  });

  /** An agent stopping gracefully with a message in flight, whose drain workflow never ran. */
  const stoppingWithoutWorkflow = async (timeout: number) => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    void app.api('POST', `/agents/${agentId}/messages`, { text: 'held' });
    await gated.waitForHeld(1, agentId);
    const start = app.workflow.start;
    app.workflow.start = async () => {}; // the execution "died"
    try {
      const stop = await app.api('POST', `/agents/${agentId}/stop`, { timeout }, { prefer: 'respond-async' });
      expect(stop.status).toBe(202);
      return { agentId, stopId: stop.body.data.stopId as string };
    } finally {
      app.workflow.start = start;
    }
  };

  it('heals an agent stuck stopping past its deadline whose workflow is gone', async () => {
    const { agentId } = await stoppingWithoutWorkflow(100);
    await sleep(150);
    const summary = await reap();
    expect(summary.healed).toBe(1);
    expect((await agent(agentId)).lastStop).toMatchObject({ outcome: 'timed_out', interrupted: 1 });
  });

  it('heals a forced stop whose force request died after its first write, not waiting for the graceful deadline', async () => {
    const { agentId, stopId } = await stoppingWithoutWorkflow(3_600_000);
    // A force stop's first write lands, and its request dies before the commit.
    await app.deps.agents.forceStopInProgress(agentId, stopId, Date.now());
    const summary = await reap();
    expect(summary.healed).toBe(1);
    expect((await agent(agentId)).lastStop).toMatchObject({ stopId, outcome: 'forced', interrupted: 1 });
  });

  it('restarts a fleet stop whose workflow never started (its request died after writing it)', async () => {
    const agentId = await createAgent(app.api, { idleTimeoutMs: null }, true);
    const start = app.fleetWorkflow.start;
    app.fleetWorkflow.start = async () => {}; // the request "died" between the write and the start
    let operationId: string;
    try {
      const res = await app.api('POST', '/agents/stop', { agentIds: [agentId] });
      expect(res.status).toBe(202);
      operationId = res.body.data.operationId;
    } finally {
      app.fleetWorkflow.start = start;
    }
    await sleep(100);
    expect((await app.api('GET', `/fleet-stops/${operationId}`)).body.data).toMatchObject({ status: 'running', counts: { selected: 0 } });
    const summary = await reap();
    expect(summary.stalledFleetStops).toBe(1);
    const op = await untilDone(app.api, operationId);
    expect(op.counts).toMatchObject({ selected: 1, stopped: 1, drained: 1 });
    expect((await agent(agentId)).status).toBe('inactive');
  });

  it('stops each idle agent once when two runs overlap', async () => {
    // Only this test's agents are running: earlier ones are force-stopped first.
    for (const a of (await app.api('GET', '/agents?status=active&limit=100')).body.data) {
      await app.api('POST', `/agents/${a.agentId}/stop`, { graceful: false });
    }
    const ids = await Promise.all(Array.from({ length: 10 }, () => createAgent(app.api, { idleTimeoutMs: 1000 }, true)));
    await sleep(1100);
    const [a, b] = await Promise.all([reap(), reap()]);
    expect(a.errors + b.errors).toBe(0);
    for (const id of ids) {
      expect((await agent(id)).status).toBe('inactive');
      expect((await app.api('GET', `/agents/${id}/stops`)).body.data).toHaveLength(1);
    }
    expect(a.stopped + b.stopped).toBe(10);
  });
});
