import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapBounded } from '../../functions/agents/selection.js';
import { createFleet, listAll, untilDone } from '../support/fleet.js';
import { startNode } from '../support/processes.js';
import { eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Fleet stop against the real local stack: DynamoDB Local, the fleet stop ASL through the local
 * interpreter, each agent stopped by the one-agent stop code (its own drain workflow when busy).
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

describe('POST /agents/stop', () => {
  it('stops 300 started agents, some with messages in flight, and its counts match the stored stop records', { timeout: 120_000 }, async () => {
    const idle = await createFleet(app.api, 270);
    const draining = await createFleet(app.api, 25, { runtime: { type: 'echo', delayMs: 1500 } });
    const stuck = await createFleet(app.api, 5, { runtime: { type: 'echo', delayMs: 60_000 } });
    for (const agentId of [...draining, ...stuck]) {
      const sent = await app.api('POST', `/agents/${agentId}/messages`, { text: 'in flight' }, { prefer: 'respond-async' });
      expect(sent.status).toBe(202);
    }

    const started = await app.api('POST', '/agents/stop', { status: 'active', timeout: 5000, concurrency: 20 });
    expect(started.status).toBe(202);
    expect(started.headers.get('location')).toBe(`/fleet-stops/${started.body.data.operationId}`);
    expect(started.body.data).toMatchObject({ status: 'running', done: false, selector: { status: 'active' } });
    const op = await untilDone(app.api, started.body.data.operationId);

    expect(op.status).toBe('completed');
    expect(op.counts).toEqual({ selected: 300, inProgress: 0, stopped: 300, drained: 295, timed_out: 5, forced: 0, failed: 0, skipped: 0 });
    expect(await listAll(app.api, 'active')).toEqual([]);
    expect(await listAll(app.api, 'stopping')).toEqual([]);
    expect(await listAll(app.api, 'inactive')).toHaveLength(300);

    // The counts are the stop records: one per agent, each carrying the operation's id.
    const outcomes: Record<string, number> = {};
    await mapBounded([...idle, ...draining, ...stuck], 10, async (agentId) => {
      const stops = (await app.api('GET', `/agents/${agentId}/stops`)).body.data as { operationId?: string; outcome: string; reason: string }[];
      expect(stops).toHaveLength(1);
      expect(stops[0]).toMatchObject({ operationId: op.operationId, reason: 'fleet' });
      outcomes[stops[0]!.outcome] = (outcomes[stops[0]!.outcome] ?? 0) + 1;
    });
    expect(outcomes).toEqual({ drained: op.counts.drained, timed_out: op.counts.timed_out });
    // The messages in flight were drained, not cut (the five 60 s ones were, by the timeout).
    const message = (await app.api('GET', `/agents/${draining[0]}/messages`)).body.data[0];
    expect(message.status).toBe('completed');

    // The operation is ended first, then its event published (by the workflow's step, not this request).
    const published = () => app.bus.published.filter((e) => e.type === 'Fleet Stop Completed' && e.detail.operationId === op.operationId);
    await eventually(async () => published().length > 0);
    const completed = published();
    expect(completed).toHaveLength(1);
    expect(completed[0]!.detail.counts).toEqual(op.counts);
  });

  it('force-stops a list of agents at once, and reports those not running as skipped with the reason', async () => {
    const [busy, idle] = await createFleet(app.api, 2, { runtime: { type: 'echo', delayMs: 60_000 } });
    const [inactive] = await createFleet(app.api, 1, {}, false);
    const missing = '00000000-0000-4000-8000-000000000000';
    expect((await app.api('POST', `/agents/${busy}/messages`, { text: 'long' }, { prefer: 'respond-async' })).status).toBe(202);

    const started = await app.api('POST', '/agents/stop', { agentIds: [busy, idle, inactive, missing, busy], graceful: false });
    expect(started.status).toBe(202);
    const op = await untilDone(app.api, started.body.data.operationId);
    expect(op.counts).toMatchObject({ selected: 4, stopped: 2, forced: 2, skipped: 2, failed: 0, inProgress: 0 });
    expect((await app.api('GET', `/agents/${busy}`)).body.data).toMatchObject({ status: 'inactive', lastStop: { outcome: 'forced', interrupted: 1 } });
    expect((await app.api('GET', `/agents/${inactive}`)).body.data.status).toBe('inactive');
  });

  it('stops only the listed agents in the given status when both are given', async () => {
    const [a, b] = await createFleet(app.api, 2);
    const [other] = await createFleet(app.api, 1);
    const [off] = await createFleet(app.api, 1, {}, false);
    const op = await untilDone(app.api, (await app.api('POST', '/agents/stop', { agentIds: [a, b, off], status: 'active' })).body.data.operationId);
    expect(op.counts).toMatchObject({ selected: 3, stopped: 2, drained: 2, skipped: 1 });
    expect((await app.api('GET', `/agents/${other}`)).body.data.status).toBe('active');
    await app.api('POST', `/agents/${other}/stop`, { graceful: false });
  });

  it('a selector that matches nothing completes at once, with zero counts', async () => {
    expect(await listAll(app.api, 'stopping')).toEqual([]);
    const started = await app.api('POST', '/agents/stop', { status: 'stopping', graceful: false });
    expect(started.status).toBe(202);
    const op = await untilDone(app.api, started.body.data.operationId, 3000);
    expect(op).toMatchObject({ status: 'completed', counts: { selected: 0, stopped: 0, inProgress: 0 } });
  });

  it('a repeated request with the same Idempotency-Key returns the same operation and starts nothing new', async () => {
    const agents = await createFleet(app.api, 3);
    const key = `maintenance-${Date.now()}`;
    const body = { agentIds: agents, timeout: 1000 };
    const [first, second] = await Promise.all([
      app.api('POST', '/agents/stop', body, { 'idempotency-key': key }),
      app.api('POST', '/agents/stop', body, { 'idempotency-key': key }),
    ]);
    expect(first.body.data.operationId).toBe(second.body.data.operationId);
    expect([first, second].filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(1);
    const op = await untilDone(app.api, first.body.data.operationId);
    expect(op.counts).toMatchObject({ selected: 3, stopped: 3 });

    // Later, with the agents running again: the key still names that (ended) operation; nothing is stopped.
    for (const agentId of agents) expect((await app.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
    const again = await app.api('POST', '/agents/stop', body, { 'idempotency-key': key });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.data).toMatchObject({ operationId: op.operationId, done: true });
    for (const agentId of agents) {
      expect((await app.api('GET', `/agents/${agentId}`)).body.data.status).toBe('active');
      expect((await app.api('GET', `/agents/${agentId}/stops`)).body.data).toHaveLength(1);
    }

    const reused = await app.api('POST', '/agents/stop', { ...body, graceful: false }, { 'idempotency-key': key });
    expect(reused.status).toBe(422);
    expect(reused.body).toMatchObject({ success: false, code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(reused.body.error).toContain(op.operationId);
    await app.api('POST', '/agents/stop', { agentIds: agents, graceful: false });
  });

  it('a workflow that does not start: 503, nothing stopped, and the same Idempotency-Key works on the retry', async () => {
    const [agentId] = await createFleet(app.api, 1);
    const start = app.fleetWorkflow.start;
    app.fleetWorkflow.start = async () => {
      throw new Error('Step Functions unreachable');
    };
    const key = `retry-${agentId}`;
    try {
      const refused = await app.api('POST', '/agents/stop', { agentIds: [agentId] }, { 'idempotency-key': key });
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ success: false, code: 'UNAVAILABLE' });
    } finally {
      app.fleetWorkflow.start = start;
    }
    expect((await app.api('GET', `/agents/${agentId}`)).body.data.status).toBe('active');
    const retried = await app.api('POST', '/agents/stop', { agentIds: [agentId] }, { 'idempotency-key': key });
    expect(retried.status).toBe(202);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect((await untilDone(app.api, retried.body.data.operationId)).counts).toMatchObject({ stopped: 1 });
  });

  it('a start reported failed that did happen is not rolled back: the operation stands and is answered with it', async () => {
    const [agentId] = await createFleet(app.api, 1);
    const start = app.fleetWorkflow.start.bind(app.fleetWorkflow);
    app.fleetWorkflow.start = async (input) => {
      await start(input);
      await eventually(async () => (await app.api('GET', `/fleet-stops/${input.operationId}`)).body.data.done);
      throw new Error('timed out waiting for StartExecution'); // it started all the same
    };
    try {
      const res = await app.api('POST', '/agents/stop', { agentIds: [agentId] });
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({ status: 'completed', counts: { stopped: 1 } });
      expect((await app.api('GET', `/fleet-stops/${res.body.data.operationId}`)).status).toBe(200);
    } finally {
      app.fleetWorkflow.start = start;
    }
  });

  it('refuses bad requests with a 400 that says what to fix', async () => {
    const cases: [unknown, Record<string, string>, string][] = [
      [{}, {}, 'must select agents'],
      [{ status: 'inactive' }, {}, 'status'],
      [{ agentIds: [] }, {}, 'agentIds'],
      [{ agentIds: ['nope'] }, {}, 'UUID'],
      [{ status: 'active', concurrency: 0 }, {}, 'concurrency'],
      [{ status: 'active', concurrency: 101 }, {}, 'concurrency'],
      [{ status: 'active', timeout: -1 }, {}, 'timeout'],
      [{ status: 'active', extra: 1 }, {}, 'extra'],
      [{ status: 'active' }, { 'idempotency-key': 'has space' }, 'Idempotency-Key'],
      [{ status: 'active' }, { 'idempotency-key': 'x'.repeat(256) }, 'Idempotency-Key'],
    ];
    for (const [body, headers, sentence] of cases) {
      const res = await app.api('POST', '/agents/stop', body, headers);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body).toMatchObject({ success: false, code: 'VALIDATION_ERROR' });
      expect(res.body.error).toContain(sentence);
    }
    const unknown = await app.api('GET', '/fleet-stops/01JQ8Z7C0D1E2F3G4H5J6K7M8N');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('OPERATION_NOT_FOUND');
    const malformed = await app.api('GET', '/fleet-stops/not-an-id');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toContain('operationId');
  });
});

describe('examples/maintenance-window.mjs', () => {
  it('stops every running agent with one fleet stop and exits 0; run again with its key, it follows the same operation', { timeout: 60_000 }, async () => {
    await createFleet(app.api, 12);
    const env = { AGENTS_API_URL: app.url };
    const first = startNode(['examples/maintenance-window.mjs', '5000'], env);
    expect(await first.exited, first.output()).toBe(0);
    expect(first.output()).toMatch(/completed: 12 stopped, 0 failed, 0 active now/);
    const [, operationId, key] = /fleet stop (\w+) \(Fleet stop started\); to follow it again after a crash: IDEMPOTENCY_KEY=(\S+)/.exec(first.output())!;

    const again = startNode(['examples/maintenance-window.mjs', '5000'], { ...env, IDEMPOTENCY_KEY: key! });
    expect(await again.exited, again.output()).toBe(0);
    expect(again.output()).toContain(`fleet stop ${operationId} (Fleet stop already requested with this Idempotency-Key)`);
  });

  it('takes a fresh key on each run: the next maintenance window in the same hour stops the agents started since', { timeout: 60_000 }, async () => {
    await createFleet(app.api, 3);
    const first = startNode(['examples/maintenance-window.mjs', '5000'], { AGENTS_API_URL: app.url });
    expect(await first.exited, first.output()).toBe(0);
    await createFleet(app.api, 4);
    const second = startNode(['examples/maintenance-window.mjs', '5000'], { AGENTS_API_URL: app.url });
    expect(await second.exited, second.output()).toBe(0);
    expect(second.output()).toMatch(/\(Fleet stop started\)/);
    expect(second.output()).toMatch(/completed: 4 stopped, 0 failed, 0 active now/);
  });
});

describe('GET /agents', () => {
  it('answers 100 agents per page by default and ends the list with nextCursor null', async () => {
    // Tables of its own, so the count is exact (the last test of the file: the handlers now use its wiring).
    const fresh = await startTestApp();
    try {
      await createFleet(fresh.api, 101, {}, false);
      const first = await fresh.api('GET', '/agents');
      expect(first.body.data).toHaveLength(100);
      expect(typeof first.body.nextCursor).toBe('string');
      const second = await fresh.api('GET', `/agents?cursor=${encodeURIComponent(first.body.nextCursor)}`);
      expect(second.body.data.length).toBeGreaterThanOrEqual(1);
      const ids = new Set([...first.body.data, ...second.body.data].map((a: { agentId: string }) => a.agentId));
      // A scan page may end early; following nextCursor to null always reaches every agent.
      let cursor = second.body.nextCursor;
      while (cursor) {
        const next = await fresh.api('GET', `/agents?cursor=${encodeURIComponent(cursor)}`);
        next.body.data.forEach((a: { agentId: string }) => ids.add(a.agentId));
        cursor = next.body.nextCursor;
      }
      expect(cursor).toBeNull();
      expect(ids.size).toBe(101);
    } finally {
      await fresh.close();
    }
  });
});
