import { beforeAll, expect, it } from 'vitest';
import { finalizeStop } from '../../functions/agents/stop-commit.js';
import { createAgent, eventually, gatedTestApp, type TestApp } from '../support/stack.js';

/**
 * Race finalize vs finalize: at a graceful stop's deadline the workflow and the completion that
 * drains the last lease (or a reaper) may finalize at once. Each tells the runtime the same stop
 * (its `close` is idempotent by stopId, so it acts once) and exactly one commit lands.
 */
const stack = gatedTestApp();
const { gated } = stack;
let app: TestApp;
beforeAll(() => {
  app = stack.app();
});

it('tells the runtime one stop, and commits it once, when several finalizers race at the deadline', async () => {
  const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
  // Closing is slow (a worker saving its state): whoever closes first holds it while the others arrive.
  let openGate!: () => void;
  gated.closeGates.set(agentId, new Promise<void>((resolve) => (openGate = resolve)));
  void app.api('POST', `/agents/${agentId}/messages`, { text: 'held' }, { prefer: 'respond-async' });
  await gated.waitForHeld(1, agentId);
  const stop = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 300 }, { prefer: 'respond-async' });
  const { stopId } = stop.body.data;
  await new Promise((r) => setTimeout(r, 400));

  // Past the deadline: three more finalizers besides the stop's own workflow.
  const racing = [finalizeStop(app.deps, agentId, stopId), finalizeStop(app.deps, agentId, stopId), finalizeStop(app.deps, agentId, stopId)];
  await new Promise((r) => setTimeout(r, 300));
  openGate();
  const results = await Promise.all(racing);
  expect(results.filter((r) => r !== undefined).length).toBeLessThanOrEqual(1);
  const calls = gated.closeCalls.filter((c) => c.agentId === agentId);
  expect(calls.length).toBeGreaterThanOrEqual(1);
  expect(calls.every((c) => c.stopId === stopId && c.outcome === 'timed_out')).toBe(true);
  await eventually(async () => (await app.api('GET', `/agents/${agentId}`)).body.data.status === 'inactive');
  expect(gated.closed.filter((id) => id === agentId)).toHaveLength(1);
  expect((await app.api('GET', `/agents/${agentId}`)).body.data.lastStop).toMatchObject({ stopId, outcome: 'timed_out' });
});
