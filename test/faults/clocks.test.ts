import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { configFromEnv } from '../../functions/agents/config.js';
import { runReaper } from '../../functions/agents/reaper.js';
import { NoLongerIdle, beginGracefulStop } from '../../functions/agents/stop-begin.js';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, startTestApp, testConfig, type TestApp } from '../support/stack.js';
import { startAppOn } from '../support/local-stack.js';

/**
 * Each Lambda function has its own clock. Two instances of the stack over the same tables, their
 * clocks 2 s apart (far beyond Lambda's): every record stays self-consistent, a live lease is
 * never taken for a dead one, and no fence depends on two clocks agreeing.
 */
describe('configuration', () => {
  it('refuses a lease that leaves less than the clock tolerance beyond one heartbeat', () => {
    expect(() => configFromEnv({ HEARTBEAT_MS: '500', LEASE_TTL_MS: '1000' })).toThrow(/at least one heartbeat \(HEARTBEAT_MS 500\) plus the clock tolerance \(CLOCK_TOLERANCE_MS 5000\)/);
    expect(configFromEnv({})).toMatchObject({ heartbeatMs: 5000, leaseTtlMs: 20000, clockToleranceMs: 5000 });
  });
});

describe('two instances, clocks 2 s apart', () => {
  const gated = new GatedRuntime();
  let ahead: TestApp;
  let behind: TestApp;
  beforeAll(async () => {
    const config = testConfig({ heartbeatMs: 300, leaseTtlMs: 3_000, clockToleranceMs: 2_500 });
    const shared = { config, runtimes: gated.registry };
    ahead = await startAppOn(inject('dynamoEndpoint'), { ...shared, clockOffsetMs: 1_000 });
    behind = await startAppOn(inject('dynamoEndpoint'), { ...shared, clockOffsetMs: -1_000 });
  });
  afterAll(async () => {
    gated.releaseAll();
    await Promise.all([ahead.close(), behind.close()]);
  });

  it('a stop asked on the clock ahead, drained by a completion on the clock behind: no negative duration', async () => {
    const agentId = await createAgent(behind.api, { settings: { gated: true } }, true);
    const sent = behind.api('POST', `/agents/${agentId}/messages`, { messageId: 'm', text: 'drains it' });
    await gated.waitForHeld(1, agentId);
    expect((await ahead.api('POST', `/agents/${agentId}/stop`, { timeout: 10_000 }, { prefer: 'respond-async' })).status).toBe(202);
    gated.release('m');
    expect((await sent).status).toBe(200);
    await eventually(async () => (await ahead.api('GET', `/agents/${agentId}`)).body.data.status === 'inactive');
    const [record] = (await ahead.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record.outcome).toBe('drained');
    expect(record.durationMs).toBeGreaterThanOrEqual(0);
    expect(record.stoppedAt).toBeGreaterThanOrEqual(record.requestedAt);
  });

  it('a message admitted on the clock ahead and cut by a stop on the clock behind never ends before it began', async () => {
    const agentId = await createAgent(ahead.api, { settings: { gated: true } }, true);
    const sent = ahead.api('POST', `/agents/${agentId}/messages`, { messageId: 'cut', text: 'cut at once' });
    await gated.waitForHeld(1, agentId);
    // Forced at once from the clock 2 s behind: its own time is before the message's creation.
    expect((await behind.api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
    expect((await sent).body.code).toBe('MESSAGE_INTERRUPTED');
    const message = (await ahead.api('GET', `/agents/${agentId}/messages/cut`)).body.data;
    expect(message.status).toBe('interrupted');
    expect(message.completedAt).toBeGreaterThanOrEqual(message.createdAt);
    const [record] = (await ahead.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'forced', interruptedMessageIds: ['cut'] });
    expect(record.stoppedAt).toBeGreaterThanOrEqual(message.createdAt);
    expect(record.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('a timed-out stop is never committed before its deadline on the committing clock', async () => {
    const agentId = await createAgent(ahead.api, { settings: { gated: true } }, true);
    void ahead.api('POST', `/agents/${agentId}/messages`, { text: 'too slow' }).catch(() => undefined);
    await gated.waitForHeld(1, agentId);
    // Asked on the clock behind (its deadline is early by the other's), awaited on the clock ahead.
    const stop = await behind.api('POST', `/agents/${agentId}/stop`, { timeout: 1_500 }, { prefer: 'respond-async' });
    const waited = await ahead.api('POST', `/agents/${agentId}/stop`, {}, { prefer: 'wait=10' });
    expect(waited.status).toBe(408);
    const [record] = (await ahead.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'timed_out', deadline: stop.body.data.deadline });
    expect(record.stoppedAt).toBeGreaterThanOrEqual(record.deadline);
    expect(record.durationMs).toBeGreaterThanOrEqual(record.timeoutMs);
  });

  it("the clock ahead never reclaims a lease the clock behind still renews", async () => {
    const agentId = await createAgent(behind.api, { settings: { gated: true }, idleTimeoutMs: null }, true);
    const sent = behind.api('POST', `/agents/${agentId}/messages`, { messageId: 'long', text: 'long work' });
    await gated.waitForHeld(1, agentId);
    // Several heartbeats, each stamped 2 s early as the reaper ahead sees them.
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 400));
      const summary = await runReaper(ahead.functionDeps('Reaper'), { budgetMs: 5_000 });
      expect(summary.reclaimed).toBe(0);
    }
    gated.release('long');
    expect((await sent)).toMatchObject({ status: 200, body: { data: { status: 'completed' } } });
  });
});

describe('fences count, they do not compare times', () => {
  let now = Date.now();
  const gated = new GatedRuntime();
  let app: TestApp;
  beforeAll(async () => {
    // A clock that stands still: two admissions in one millisecond.
    app = await startTestApp({ runtimes: gated.registry, now: () => now });
  });
  afterAll(async () => {
    gated.releaseAll();
    await app.close();
  });

  it('an idle stop does not take an agent that admitted a message in the same millisecond it was read', async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true }, idleTimeoutMs: null }, true);
    const first = app.api('POST', `/agents/${agentId}/messages`, { messageId: 'one', text: 'one' });
    await gated.waitForHeld(1, agentId);
    gated.release('one');
    expect((await first).status).toBe(200);
    const seen = (await app.deps.agents.get(agentId))!;
    // Another message, in the very millisecond the reaper read the agent.
    void app.api('POST', `/agents/${agentId}/messages`, { messageId: 'two', text: 'two' });
    await gated.waitForHeld(1, agentId);
    expect((await app.deps.agents.get(agentId))!.lastActivityAt).toBe(seen.lastActivityAt);

    const idleStop = beginGracefulStop(app.functionDeps('Reaper'), agentId, { timeoutMs: 30_000, reason: 'idle', idle: { admissions: seen.admissions } });
    await expect(idleStop).rejects.toBeInstanceOf(NoLongerIdle);
    expect((await app.deps.agents.get(agentId))!.status).toBe('active');
    gated.release('two');
    now += 1;
  });
});
