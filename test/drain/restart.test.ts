import { expect, it } from 'vitest';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, startTestApp } from '../support/stack.js';

it('a restart resumes the workflow of an agent left stopping, so its stop still ends by the deadline', async () => {
  const gated = new GatedRuntime();
  const first = await startTestApp({ runtimes: gated.registry });
  const agentId = await createAgent(first.api, { settings: { gated: true } }, true);
  void first.api('POST', `/agents/${agentId}/messages`, { text: 'in flight at the crash' }).catch(() => undefined);
  await gated.waitForHeld(1, agentId);
  const stop = await first.api('POST', `/agents/${agentId}/stop`, { timeout: 4000 }, { prefer: 'respond-async' });
  expect(stop.status).toBe(202);
  await first.close(0); // the process "dies": its local executions are gone, the agent stays stopping

  const second = await startTestApp({ runtimes: gated.registry, config: first.deps.config });
  try {
    expect(second.resumed).toBe(1);
    const agent = await eventually(async () => {
      const a = (await second.api('GET', `/agents/${agentId}`)).body.data;
      return a.status === 'inactive' && a;
    });
    expect(agent.lastStop).toMatchObject({ stopId: stop.body.data.stopId, outcome: 'timed_out', interrupted: 1 });
    expect(agent.lastStop.stoppedAt).toBeLessThan(stop.body.data.deadline + 2500);
    expect(agent.lastStop.stoppedAt).toBeGreaterThanOrEqual(stop.body.data.deadline);
  } finally {
    gated.releaseAll();
    await second.close();
  }
});
