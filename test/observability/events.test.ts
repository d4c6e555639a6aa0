import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SIGNATURE_HEADER, signRequest } from '../../functions/adapters/runtimes/http.js';
import type { EventEnvelope } from '../../local/events.js';
import { createAgent, eventually, gatedTestApp } from '../support/stack.js';

/**
 * A local subscriber to the lifecycle events: over the signed webhook (EVENTS_WEBHOOK_URL) and
 * over the server-sent events stream GET /events?agentId=, each sees one drain's events in order.
 */
const SECRET = 'whsec_local-events-test-secret';
const received: { event: EventEnvelope; signature: string; idempotencyKey: string; body: string; path: string }[] = [];
let answer = 200;
let subscriber: Server;
const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => resolve(body));
  });
beforeAll(async () => {
  subscriber = createServer(async (req, res) => {
    const body = await readBody(req);
    const status = answer;
    if (status === 200) {
      received.push({ event: JSON.parse(body) as EventEnvelope, signature: String(req.headers[SIGNATURE_HEADER]), idempotencyKey: String(req.headers['idempotency-key']), body, path: req.url ?? '' });
    }
    res.writeHead(status).end();
  });
  await new Promise<void>((resolve) => subscriber.listen(0, '127.0.0.1', resolve));
});
const { gated, app } = gatedTestApp({
  eventsWebhook: { get url() { return `http://127.0.0.1:${(subscriber.address() as AddressInfo).port}/hooks/agents?source=local`; }, secret: SECRET },
});
afterAll(() => new Promise<void>((resolve) => subscriber.close(() => resolve())));

/** The server-sent events of GET /events (of one agent), parsed as they arrive. */
async function stream(query: string) {
  const res = await fetch(`${app().url}/events${query}`);
  const events: { type: string; data: EventEnvelope }[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const field = (name: string) => block.split('\n').find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
        if (field('event')) events.push({ type: field('event')!, data: JSON.parse(field('data')!) as EventEnvelope });
      }
    }
  })();
  return { res, events, close: () => reader.cancel() };
}

const ONE_DRAIN = ['Agent Stopping', 'Message Completed', 'Agent Stopped'];

it('one drain reaches a webhook subscriber and an SSE subscriber, in order, signed, filtered by agent', async () => {
  const agentId = await createAgent(app().api, { settings: { gated: true } }, true);
  const other = await createAgent(app().api, {}, true);
  const sse = await stream(`?agentId=${agentId}`);
  expect(sse.res.status).toBe(200);
  expect(sse.res.headers.get('content-type')).toMatch(/^text\/event-stream/);

  const sent = await app().api('POST', `/agents/${agentId}/messages`, { text: 'work' }, { prefer: 'respond-async' });
  const [messageId] = await gated.waitForHeld(1, agentId);
  await app().api('POST', `/agents/${agentId}/stop`, { graceful: true, timeout: 20_000 }, { prefer: 'respond-async' });
  // Another agent's events are not this stream's.
  await app().api('POST', `/agents/${other}/stop`, { graceful: false });
  gated.release(messageId!);
  await eventually(async () => sse.events.length >= 3);
  await sse.close();

  expect(sse.events.map((e) => e.type)).toEqual(ONE_DRAIN);
  expect(sse.events.map((e) => e.data.detail.agentId)).toEqual([agentId, agentId, agentId]);
  expect(sse.events[1]!.data).toMatchObject({ 'detail-type': 'Message Completed', source: 'agents.lifecycle', detail: { agentId, messageId: sent.body.data.messageId } });
  expect(sse.events[2]!.data.detail).toMatchObject({ outcome: 'drained', reason: 'api' });

  await eventually(async () => received.filter((r) => r.event.detail.agentId === agentId && r.event['detail-type'] === 'Agent Stopped').length === 1);
  const mine = received.filter((r) => r.event.detail.agentId === agentId);
  expect(mine.map((r) => r.event['detail-type'])).toEqual(['Agent Started', ...ONE_DRAIN]);
  // The webhook got the very events the stream did.
  expect(mine.slice(1).map((r) => r.event.id)).toEqual(sse.events.map((e) => e.data.id));
  for (const r of mine) {
    expect(r.path).toBe('/hooks/agents?source=local');
    expect(r.idempotencyKey).toBe(r.event.id);
    const [t, n] = r.signature.split(',').map((part) => part.slice(2));
    expect(r.signature).toBe(signRequest(SECRET, { method: 'POST', path: r.path, idempotencyKey: r.idempotencyKey, body: r.body }, Number(t), n));
  }
});

it('a webhook subscriber that fails is tried again, and the events after it wait their turn', async () => {
  answer = 503;
  const agentId = await createAgent(app().api, {}, true);
  await app().api('POST', `/agents/${agentId}/stop`, { graceful: false });
  await new Promise((resolve) => setTimeout(resolve, 400));
  expect(received.filter((r) => r.event.detail.agentId === agentId)).toHaveLength(0);
  answer = 200;
  await eventually(async () => received.filter((r) => r.event.detail.agentId === agentId).length === 3);
  expect(received.filter((r) => r.event.detail.agentId === agentId).map((r) => r.event['detail-type'])).toEqual(['Agent Started', 'Agent Stopping', 'Agent Stopped']);
});

it('GET /events refuses an agentId that is not a UUID, in the envelope', async () => {
  const res = await fetch(`${app().url}/events?agentId=nope`);
  expect(res.status).toBe(400);
  expect(await res.json()).toMatchObject({ success: false, code: 'VALIDATION_ERROR', error: expect.stringContaining('"agentId" must be a UUID') });
});

it('GET /metrics serves the same metrics in Prometheus text format', async () => {
  const res = await fetch(`${app().url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  expect(text).toContain('# TYPE agents_stops_ended_total counter');
  expect(text).toMatch(/^agents_stops_ended_total\{outcome="drained",reason="api"\} 1$/m);
  // The other agent of the first test, and the agent of the second.
  expect(text).toMatch(/^agents_stops_ended_total\{outcome="forced",reason="api"\} 2$/m);
  expect(text).toMatch(/^agents_drain_duration_ms_count\{outcome="drained"\} 1$/m);
  expect(text).toMatch(/^agents_messages_ended_total\{outcome="completed"\} 1$/m);
});
