import { afterAll, expect, it, vi } from 'vitest';
import { logger } from '../../functions/adapters/logger.js';
import { createAgent, eventually, gatedTestApp } from '../support/stack.js';
import { captureOutput } from '../support/output.js';

// Set before the logger is built: each invocation starts at the level the environment gives.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
});

/**
 * One async message and its stop, followed by their correlation ids: the API function, the
 * worker, the workflow's tasks and the events each carry the id the request came with.
 */
const { gated, app } = gatedTestApp();
const out = captureOutput();
afterAll(() => {
  logger.setLogLevel('SILENT');
  out.restore();
});

type Line = { level: string; message: string; correlation_id?: string; function_name?: string; function_request_id?: string; cold_start?: boolean };
const lines = () => out.text().split('\n').flatMap((l) => {
  try {
    return [JSON.parse(l) as Line];
  } catch {
    return [];
  }
});
const functionsOf = (id: string) => new Set(lines().filter((l) => l.correlation_id === id).map((l) => l.function_name));

it('a message and its stop are followed across functions by the ids their requests gave', async () => {
  const agentId = await createAgent(app().api, { settings: { gated: true } }, true);
  const sent = await app().api('POST', `/agents/${agentId}/messages`, { text: 'work' }, { prefer: 'respond-async', 'x-request-id': 'message-7f3a' });
  expect(sent.status).toBe(202);
  expect(sent.headers.get('x-request-id')).toBe('message-7f3a');
  const [messageId] = await gated.waitForHeld(1, agentId);

  const stop = await app().api('POST', `/agents/${agentId}/stop`, { graceful: true, timeout: 20_000 }, { prefer: 'respond-async', 'x-request-id': 'stop-91c2' });
  expect(stop.status).toBe(202);
  expect(stop.headers.get('x-request-id')).toBe('stop-91c2');
  // The drain is polled by the workflow while the message runs; then the message ends and the stop with it.
  await eventually(async () => functionsOf('stop-91c2').has('CheckDrainTask')).catch((e) => { console.error(lines().slice(-30).map((l) => JSON.stringify(l)).join('\n')); throw e; });
  gated.release(messageId!);
  await eventually(async () => (await app().api('GET', `/agents/${agentId}`)).body.data.status === 'inactive');

  expect(functionsOf('message-7f3a')).toEqual(new Set(['SendMessage', 'MessageWorker']));
  expect(functionsOf('stop-91c2')).toContain('StopAgent');
  expect(functionsOf('stop-91c2')).toContain('CheckDrainTask');
  // Whoever commits the stop (the worker whose message drained it, or the workflow's Finalize) logs
  // it with the stop's id.
  expect(lines().find((l) => l.message === 'agent stopped' && (l as { agentId?: string }).agentId === agentId)).toMatchObject({ stopCorrelationId: 'stop-91c2' });
  // Every line of an invocation has the Lambda context.
  for (const l of lines().filter((x) => x.correlation_id === 'stop-91c2' || x.correlation_id === 'message-7f3a')) {
    expect(l).toMatchObject({ function_request_id: expect.any(String), cold_start: expect.any(Boolean) });
  }

  const events = app().bus.published.filter((e) => e.detail.agentId === agentId);
  expect(events.map((e) => [e.type, e.detail.correlationId])).toEqual([
    ['Agent Started', expect.any(String)],
    ['Agent Stopping', 'stop-91c2'],
    ['Message Completed', 'message-7f3a'],
    ['Agent Stopped', 'stop-91c2'],
  ]);
});

it('a request without an id, or with one that is not usable, is given API Gateway\'s request id', async () => {
  const plain = await app().api('GET', '/agents?limit=1');
  const odd = await app().api('GET', '/agents?limit=1', undefined, { 'x-request-id': 'has spaces and {braces}' });
  for (const res of [plain, odd]) expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  expect(plain.headers.get('x-request-id')).not.toBe(odd.headers.get('x-request-id'));
});

it("a force stop's events carry the id of the request that forced it", async () => {
  const agentId = await createAgent(app().api, {}, true);
  const stop = await app().api('POST', `/agents/${agentId}/stop`, { graceful: false }, { 'x-request-id': 'force-5d10' });
  expect(stop.status).toBe(200);
  const events = app().bus.published.filter((e) => e.detail.agentId === agentId && e.type !== 'Agent Started');
  expect(events.map((e) => [e.type, e.detail.correlationId])).toEqual([
    ['Agent Stopping', 'force-5d10'],
    ['Agent Stopped', 'force-5d10'],
  ]);
});
