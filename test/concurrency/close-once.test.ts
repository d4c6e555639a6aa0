import { beforeAll, expect, it } from 'vitest';
import { closeForcedStop, finalizeStop } from '../../functions/agents/stop-commit.js';
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

it("a force stop's close job tells the runtime the run it stopped, never one started or reconfigured since", async () => {
  const agentId = await createAgent(app.api, {}, true);
  const { configVersion } = (await app.deps.agents.get(agentId))!;
  expect((await app.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
  const { stopId } = (await app.api('GET', `/agents/${agentId}`)).body.data.lastStop;
  await eventually(async () => gated.closeCalls.some((c) => c.stopId === stopId));
  const job = { kind: 'close' as const, agentId, stopId, configVersion, interrupted: [] };
  const told = () => gated.closeCalls.filter((c) => c.stopId === stopId).length;
  const before = told();
  // Delivered again while nothing changed: told again (the runtime acts once: idempotent by stopId).
  expect(await closeForcedStop(app.deps, job)).toBe('closed');
  expect(told()).toBe(before + 1);
  // Reconfigured since: told on the configuration the stopped run used (this process still has
  // it), or not at all (a process that has only the new one), never on the new one.
  expect((await app.api('PATCH', `/agents/${agentId}`, { settings: { changed: true } })).status).toBe(200);
  await closeForcedStop(app.deps, job);
  expect(gated.closeCalls.filter((c) => c.stopId === stopId).every((c) => c.configVersion === configVersion)).toBe(true);
  const toldBeforeStart = told();
  // Started again since: a stop now would end the new run's state; not told.
  expect((await app.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
  expect(await closeForcedStop(app.deps, job)).toBe('skipped');
  expect(told()).toBe(toldBeforeStart);
});
