import type { Context } from 'aws-lambda';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_STOP_TIMEOUT_MS } from '../../functions/agents/model.js';
import { MAX_POLLS, nextPollSeconds } from '../../functions/agents/stop-view.js';
import { taskHandlers } from '../../local/workflow.js';
import { runAs } from '../../functions/adapters/deps.js';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * The real ASL file (infra/stop-workflow.asl.json) through aws-local-stepfunctions, its tasks the
 * real handlers. Fault injection wraps a handler per test; the path taken is read from the
 * execution's event log.
 */
const gated = new GatedRuntime();
const handlers: Record<string, (input: unknown, context: Context) => Promise<unknown>> = {};
const paths = new Map<string, string[]>();
const retries = new Map<string, number>();
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({
    runtimes: gated.registry,
    // A failure past the retries is looked at again until 1.5 s past the deadline.
    config: { stopRecoveryMs: 1_500 },
    workflow: {
      handlers,
      retryIntervalOverrides: { CheckDrain: 10, Finalize: 10, RecordFailure: 10 },
      waitTimeOverrides: { WaitToRecover: 20 },
      onEvent: (stopId, event) => {
        if (event.type === 'StateEntered') paths.set(stopId, [...(paths.get(stopId) ?? []), event.state!.name]);
        if (event.type === 'StateRetried') retries.set(stopId, (retries.get(stopId) ?? 0) + 1);
      },
    },
  });
});
afterEach(() => {
  for (const key of Object.keys(handlers)) delete handlers[key];
  gated.releaseAll();
});
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

const agent = async (agentId: string) => (await app.api('GET', `/agents/${agentId}`)).body.data;

/** An active agent with one message held in its runtime, then a graceful stop answered 202 at once. */
async function drainingAgent(timeout: number): Promise<{ agentId: string; stopId: string; messageId: string }> {
  const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
  void app.api('POST', `/agents/${agentId}/messages`, { text: 'work' });
  const [messageId] = await gated.waitForHeld(1, agentId);
  const res = await app.api('POST', `/agents/${agentId}/stop`, { timeout }, { prefer: 'respond-async' });
  expect(res.status).toBe(202);
  return { agentId, stopId: res.body.data.stopId, messageId: messageId! };
}

/** A task that fails its first `n` calls (a store throttling), then runs as deployed. */
function failingFirst(n: number, task: (input: never, context: Context) => Promise<unknown>) {
  let failures = 0;
  return async (input: unknown, context: Context) => {
    if (failures < n) {
      failures++;
      throw new Error('transient: throttled');
    }
    return task(input as never, context);
  };
}

/** Complete a lease behind the API's back (a worker in another process), so only the workflow can notice. */
async function releaseLeaseDirectly(agentId: string, messageId: string) {
  await app.db.send(
    new UpdateCommand({
      TableName: app.deps.config.agentsTable!,
      Key: { agentId },
      UpdateExpression: 'REMOVE #leases.#m',
      ExpressionAttributeNames: { '#leases': 'leases', '#m': messageId },
    }),
  );
}

describe('the stop workflow (real ASL, local interpreter)', () => {
  it('drained path: polls while a message is in flight, then finalizes drained', async () => {
    const { agentId, stopId, messageId } = await drainingAgent(30_000);
    await eventually(async () => (paths.get(stopId) ?? []).includes('WaitForDrain'));
    await releaseLeaseDirectly(agentId, messageId);
    await app.workflow.settled(stopId);
    const path = paths.get(stopId)!;
    // Polled at least once while the message was in flight (more often if this machine is slow)...
    expect(path.slice(0, 3)).toEqual(['CheckDrain', 'IsDrained', 'WaitForDrain']);
    // ...then noticed the drain and finalized.
    expect(path.slice(-5)).toEqual(['CheckDrain', 'IsDrained', 'Finalize', 'IsFinalized', 'Finalized']);
    expect((await agent(agentId)).lastStop).toMatchObject({ stopId, outcome: 'drained' });
  });

  it('timeout path: finalizes timed_out at the deadline and interrupts the message', async () => {
    const { agentId, stopId, messageId } = await drainingAgent(1000);
    await app.workflow.settled(stopId);
    expect(paths.get(stopId)!.slice(-3)).toEqual(['Finalize', 'IsFinalized', 'Finalized']);
    expect((await agent(agentId)).lastStop).toMatchObject({ stopId, outcome: 'timed_out', interrupted: 1 });
    const message = (await app.api('GET', `/agents/${agentId}/messages/${messageId}`)).body.data;
    expect(message).toMatchObject({ status: 'interrupted', stopId });
  });

  it('superseded path: a force stop meanwhile ends the workflow without a second finalize', async () => {
    const { agentId, stopId } = await drainingAgent(30_000);
    await eventually(async () => (paths.get(stopId) ?? []).includes('WaitForDrain'));
    expect((await app.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
    await app.workflow.settled(stopId);
    expect(paths.get(stopId)!.slice(-3)).toEqual(['CheckDrain', 'IsDrained', 'Superseded']);
    expect(paths.get(stopId)).not.toContain('Finalize');
    expect((await app.api('GET', `/agents/${agentId}/stops`)).body.data).toHaveLength(1);
  });

  it('a Finalize whose clock is behind CheckDrain\'s looks again, and ends the stop once it is due on its own clock', async () => {
    // Finalize runs 1.5 s behind: at the deadline on CheckDrain's clock, it is not yet due on its own.
    handlers.Finalize = (input, context) => runAs({ ...app.deps, now: () => Date.now() - 1500 }, () => taskHandlers.FinalizeStopFunctionArn(input as never, context));
    const { agentId, stopId } = await drainingAgent(1000);
    await app.workflow.settled(stopId);
    const path = paths.get(stopId)!;
    expect(path).toContain('WaitToFinalize');
    expect(path.slice(-3)).toEqual(['Finalize', 'IsFinalized', 'Finalized']);
    expect((await agent(agentId)).lastStop).toMatchObject({ stopId, outcome: 'timed_out', interrupted: 1 });
  });

  it('retry path: a task that fails twice then succeeds still finalizes', async () => {
    handlers.CheckDrain = failingFirst(2, taskHandlers.CheckDrainFunctionArn);
    const { agentId, stopId } = await drainingAgent(1000);
    await app.workflow.settled(stopId);
    expect(retries.get(stopId)).toBe(2);
    expect(paths.get(stopId)!.slice(-3)).toEqual(['Finalize', 'IsFinalized', 'Finalized']);
    expect((await agent(agentId)).lastStop.outcome).toBe('timed_out');
  });

  it('recovery path: a task failing past its retries (an overloaded store) is tried again after a wait, and the stop ends', async () => {
    // The first try and its three retries fail; the try after the recovery wait lands.
    handlers.Finalize = failingFirst(4, taskHandlers.FinalizeStopFunctionArn);
    const { agentId, stopId } = await drainingAgent(1000);
    await app.workflow.settled(stopId);
    const path = paths.get(stopId)!;
    expect(path).toEqual(expect.arrayContaining(['RecordFailure', 'Recovers', 'WaitToRecover']));
    // Counted, for the dashboard: the workflow looked again once.
    expect(await (await fetch(`${app.url}/metrics`)).text()).toMatch(/^agents_stop_recoveries_total\S* [1-9]/m);
    expect(path.slice(-3)).toEqual(['Finalize', 'IsFinalized', 'Finalized']);
    // Ended, with no failure ever recorded (a waiting request was never answered 500).
    expect((await agent(agentId))).toMatchObject({ status: 'inactive', lastStop: { stopId, outcome: 'timed_out', interrupted: 1 } });
  });

  it('a failure past the retries of a stop that ended meanwhile (forced) ends the workflow as superseded, not failed', async () => {
    let forcedAgent: string | undefined;
    let agentId = '';
    handlers.Finalize = async () => {
      if (!forcedAgent) {
        forcedAgent = agentId;
        expect((await app.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
      }
      throw new Error('runtime unreachable');
    };
    const stop = await drainingAgent(1000);
    agentId = stop.agentId;
    await app.workflow.settled(stop.stopId);
    expect(paths.get(stop.stopId)!.slice(-3)).toEqual(['RecordFailure', 'Recovers', 'Superseded']);
    expect((await agent(agentId))).toMatchObject({ status: 'inactive', lastStop: { outcome: 'forced' } });
  });

  it('failure path: past its retries and its recovery window the failure is recorded, the API answers 500, and a force stop recovers', async () => {
    handlers.Finalize = async () => {
      throw new Error('runtime unreachable');
    };
    const { agentId, stopId, messageId } = await drainingAgent(1000);
    await app.workflow.settled(stopId);
    const path = paths.get(stopId)!;
    expect(path.slice(-3)).toEqual(['RecordFailure', 'Recovers', 'StopFailed']);
    // Looked at again within the window, each Finalize retried three times.
    expect(path).toContain('WaitToRecover');
    expect(retries.get(stopId)).toBe(3 * path.filter((state) => state === 'Finalize').length);
    const stuck = await agent(agentId);
    expect(stuck.status).toBe('stopping');
    expect(stuck.stop.failure).toMatchObject({ error: 'Error', cause: 'runtime unreachable' });

    const joined = await app.api('POST', `/agents/${agentId}/stop`, {});
    expect(joined.status).toBe(500);
    expect(joined.body).toMatchObject({ success: false, error: 'Failed to stop agent runtime' });

    const forced = await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    expect(forced.status).toBe(200);
    expect((await agent(agentId)).status).toBe('inactive');
    gated.release(messageId);
  });

  it('hands an idle stop whose runtime would not close to the workflow, which retries it to success', async () => {
    const agentId = await createAgent(app.api, {}, true);
    gated.closeFailures.set(agentId, 1);
    const res = await app.api('POST', `/agents/${agentId}/stop`, {});
    expect(res.status).toBe(200);
    const { stopId } = (await agent(agentId)).lastStop;
    await app.workflow.settled(stopId);
    expect(paths.get(stopId)).toEqual(['CheckDrain', 'IsDrained', 'Finalize', 'IsFinalized', 'Finalized']);
    expect(gated.closed).toContain(agentId);
  });

  it('answers a completed message 200 even when finalizing after it fails; the workflow finishes the stop', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    const message = app.api('POST', `/agents/${agentId}/messages`, { text: 'last one' });
    const [messageId] = await gated.waitForHeld(1, agentId);
    const res = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 30_000 }, { prefer: 'respond-async' });
    gated.closeFailures.set(agentId, 1);
    gated.release(messageId!);
    expect((await message).status).toBe(200);
    await app.workflow.settled(res.body.data.stopId);
    expect((await agent(agentId)).lastStop).toMatchObject({ stopId: res.body.data.stopId, outcome: 'drained' });
  });

  it('rolls the agent back to active and answers 500 when the workflow cannot be started', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    void app.api('POST', `/agents/${agentId}/messages`, { text: 'work' });
    await gated.waitForHeld(1, agentId);
    const start = app.workflow.start;
    app.workflow.start = async () => {
      throw new Error('StartExecution failed');
    };
    try {
      const res = await app.api('POST', `/agents/${agentId}/stop`, {});
      expect(res.status).toBe(500);
      expect(res.body.error).toBe('Failed to stop agent runtime');
    } finally {
      app.workflow.start = start;
    }
    const after = await agent(agentId);
    expect(after.status).toBe('active');
    expect(after).not.toHaveProperty('stop');
  });
});

describe('the loop bound (25,000 history events)', () => {
  it('no stop takes more than ~1,000 loop iterations, even with a 24-hour timeout', () => {
    for (const timeoutMs of [1000, 30_000, 3_600_000, MAX_STOP_TIMEOUT_MS]) {
      let elapsedMs = 0;
      let iterations = 0;
      while (elapsedMs < timeoutMs) {
        elapsedMs += nextPollSeconds(timeoutMs, timeoutMs - elapsedMs) * 1000;
        iterations++;
      }
      expect(iterations).toBeLessThanOrEqual(MAX_POLLS + 1);
      // CheckDrain (5 events) + Choice (2) + Wait (2) per iteration, plus start/finalize.
      expect(iterations * 9 + 20).toBeLessThan(25_000);
    }
    expect(nextPollSeconds(MAX_STOP_TIMEOUT_MS, MAX_STOP_TIMEOUT_MS)).toBe(173);
    expect(nextPollSeconds(30_000, 30_000)).toBe(1);
  });
});
