import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatedRuntime } from '../support/runtimes.js';
import { createAgent, eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Input the store cannot keep as given, framing Node refuses before a route runs, and internal
 * state that must not leave the service: each a 4xx in the envelope with a sentence naming what
 * is wrong, never a 5xx; and no response shows the stop's claim token or fencing flag.
 */
const gated = new GatedRuntime();
let app: TestApp;
let running: string;
beforeAll(async () => {
  app = await startTestApp({ runtimes: gated.registry });
  running = await createAgent(app.api, {}, true);
});
afterAll(async () => {
  gated.releaseAll();
  await app.close();
});

/** Raw JSON text, so numbers and nesting reach the server exactly as written. */
const raw = (method: string, path: string, text: string) => app.api(method, path, text, { 'content-type': 'application/json' });
const nested = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

describe('values the store cannot keep as given', () => {
  const cases: [string, string, RegExp][] = [
    ['an empty key', '{"": 1}', /^Field "(settings|metadata)" has an empty key/],
    ['an integer beyond 2^53', '{"n": 9007199254740993}', /^Field "(settings|metadata)\.n" is a number too large to keep exactly/],
    ['a large negative whole number', '{"n": -1e17}', /^Field "(settings|metadata)\.n" is a number too large/],
    ['a number beyond range', '{"n": 1e300}', /^Field "(settings|metadata)\.n" is a number too large/],
    ['a number that overflows to infinity', '{"n": 1e400}', /^Field "(settings|metadata)\.n" is a number too large/],
    ['a number too close to zero', '{"n": 1e-200}', /^Field "(settings|metadata)\.n" is a number too close to 0/],
    ['a lone surrogate', '{"s": "\\ud800"}', /^Field "(settings|metadata)\.s" is not valid Unicode text/],
    ['deep nesting', nested(31), /^Field "(settings|metadata)(\.a)+" is nested too deeply: a request body may nest at most 16 levels/],
  ];

  it.each(cases)('refuses %s in settings (create and PATCH) and metadata with 400 naming the field', async (_, value, sentence) => {
    const created = await raw('POST', '/agents', `{"name": "x", "settings": ${value}}`);
    expect(created.status, created.text).toBe(400);
    expect(created.body).toMatchObject({ success: false, code: 'VALIDATION_ERROR', error: expect.stringMatching(sentence) });
    const idle = await createAgent(app.api);
    const patched = await raw('PATCH', `/agents/${idle}`, `{"settings": ${value}}`);
    expect(patched.status, patched.text).toBe(400);
    expect(patched.body.error).toMatch(sentence);
    const sent = await raw('POST', `/agents/${running}/messages`, `{"text": "hi", "metadata": ${value}}`);
    expect(sent.status, sent.text).toBe(400);
    expect(sent.body.error).toMatch(sentence);
  });

  it('keeps every value at the edges it accepts, exactly as sent', async () => {
    const settings = { big: 9007199254740991, small: -9007199254740991, tiny: 1e-130, frac: 0.1, zero: 0, text: '', emoji: '😀', deep: JSON.parse(nested(14)) };
    const created = await app.api('POST', '/agents', { name: 'edges', settings });
    expect(created.status, created.text).toBe(201);
    expect((await app.api('GET', `/agents/${created.body.data.agentId}`)).body.data.settings).toEqual(settings);
  });

  it.each([
    ['empty', ''],
    ['not a URL', 'not a url'],
    ['a bare scheme', 'http://'],
  ])('refuses an http runtime whose url is %s with 400', async (_, url) => {
    const res = await app.api('POST', '/agents', { name: 'x', runtime: { type: 'http', url } });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error).toBe('Field "runtime.url" must be an http(s) URL');
  });

  it('says why a "__proto__" key is refused', async () => {
    const res = await raw('POST', '/agents', '{"name": "x", "settings": {"__proto__": {"admin": true}}}');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('Request body has a "__proto__" key, which is refused: it could change the prototype of the objects that read it; rename the key');
  });
});

describe('what Node refuses before a route runs', () => {
  /** A raw HTTP/1.1 exchange: the answer's status, content type and body. */
  const exchange = (headers: Record<string, string>, path = '/agents') =>
    new Promise<{ status: number; type?: string; body: string }>((resolve, reject) => {
      const url = new URL(app.url);
      const req = request({ host: url.hostname, port: url.port, path, headers }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('answers headers over the limit with 431 in the envelope', async () => {
    const res = await exchange({ 'x-padding': 'a'.repeat(20_000) });
    expect(res.status).toBe(431);
    expect(res.type).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toEqual({ success: false, code: 'HEADERS_TOO_LARGE', error: expect.stringMatching(/^Request headers are too large/) });
  });

  it('answers a request that is not HTTP with 400 in the envelope', async () => {
    const { connect } = await import('node:net');
    const url = new URL(app.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => socket.write('GET /agents HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'));
      let text = '';
      socket.on('data', (c) => (text += c.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ success: false, code: 'BAD_REQUEST' });
  });
});

describe('internal state', () => {
  it("never shows a stop's forced flag", async () => {
    const agentId = await createAgent(app.api, { settings: { gated: true } }, true);
    let openGate!: () => void;
    gated.closeGates.set(agentId, new Promise<void>((resolve) => (openGate = resolve)));
    try {
      void app.api('POST', `/agents/${agentId}/messages`, { text: 'held' }, { prefer: 'respond-async' });
      await gated.waitForHeld(1, agentId);
      const { stopId } = (await app.api('POST', `/agents/${agentId}/stop`, { timeout: 60_000 }, { prefer: 'respond-async' })).body.data;
      // The flag a force stop sets, written alone: the stop is held `stopping` and forced while it is read.
      await app.deps.agents.forceStopInProgress(agentId, stopId, Date.now());
      expect((await app.deps.agents.get(agentId))?.stop?.forced).toBe(true);
      const shown = (await app.api('GET', `/agents/${agentId}`)).body.data;
      expect(shown.status).toBe('stopping');
      expect(Object.keys(shown.stop).sort()).toEqual(['correlationId', 'deadline', 'graceful', 'reason', 'requestedAt', 'stopId', 'timeoutMs']);
      const listed = (await app.api('GET', '/agents?status=stopping')).body.data.find((a: { agentId: string }) => a.agentId === agentId);
      expect(listed.stop).not.toHaveProperty('forced');
    } finally {
      openGate();
    }
    await eventually(async () => (await app.api('GET', `/agents/${agentId}`)).body.data.status === 'inactive');
  });
});
