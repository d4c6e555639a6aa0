import { afterAll, beforeAll, expect, it } from 'vitest';
import { runReaper } from '../../functions/agents/reaper.js';
import { handler as fleetStopStep } from '../../functions/workflow/fleet-stop-step.js';
import { createFleet } from '../support/fleet.js';
import { eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * A fleet stop whose workflow died with the operation still `running` (its step failed past its
 * retries, and so did its failure path: the store was down): Step Functions keeps the ended
 * execution's name, so starting it again is refused. The reaper resumes it in a new execution.
 */
let app: TestApp;
let storeDown = true;
beforeAll(async () => {
  app = await startTestApp({
    config: { stuckStopGraceMs: 0 },
    workflow: {
      handlers: {
        Advance: async (input, context) => {
          if (storeDown) throw new Error('the store cannot be reached');
          return fleetStopStep(input as never, context);
        },
        RecordFailure: async () => {
          throw new Error('the store cannot be reached');
        },
      },
      retryIntervalOverrides: { Advance: 0, RecordFailure: 0 },
    },
  });
});
afterAll(() => app.close());

it('is resumed by the reaper in a new execution and completes; it is not counted again once it has', async () => {
  const agents = await createFleet(app.api, 3);
  const started = await app.api('POST', '/agents/stop', { agentIds: agents, graceful: false });
  expect(started.status).toBe(202);
  const { operationId } = started.body.data;
  await eventually(async () => !app.fleetWorkflow.isRunning(operationId));
  expect((await app.api('GET', `/fleet-stops/${operationId}`)).body.data.status).toBe('running');

  storeDown = false;
  const healing = await runReaper(app.functionDeps('Reaper'), { budgetMs: 5_000 });
  expect(healing).toMatchObject({ resumedFleetStops: 1, stalledFleetStops: 0, errors: 0 });
  const done = await eventually(async () => {
    const op = (await app.api('GET', `/fleet-stops/${operationId}`)).body.data;
    return op.status === 'completed' && op;
  });
  expect(done.counts).toMatchObject({ selected: 3, stopped: 3 });
  for (const agentId of agents) expect((await app.api('GET', `/agents/${agentId}`)).body.data.status).toBe('inactive');

  const next = await runReaper(app.functionDeps('Reaper'), { budgetMs: 5_000 });
  expect(next).toMatchObject({ resumedFleetStops: 0, stalledFleetStops: 0, endedFleetStops: 0 });
});
