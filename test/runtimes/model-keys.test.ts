import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoundModelKeys, within } from '../../functions/adapters/runtimes/model-keys.js';
import { ModelKeyUnavailable } from '../../functions/agents/ports.js';
import { OpenAiStandIn } from '../../local/openai-standin.js';
import { startTestApp, type TestApp } from '../support/stack.js';

/**
 * An llm agent's key goes only to the base URL the operator bound it to: an API caller who names
 * the key with another baseUrl is refused at create and PATCH, and a key rebound after create is
 * still never sent elsewhere. Two stand-ins: the operator's endpoint, and a capture server an
 * attacker controls.
 */
const KEY = 'sk-bound-0123456789abcdef';
const endpoint = new OpenAiStandIn();
const capture = new OpenAiStandIn();
let app: TestApp;
beforeAll(async () => {
  await Promise.all([endpoint.start(), capture.start()]);
  process.env.LLM_API_KEY_BOUND = KEY;
  process.env.LLM_BASE_URL_BOUND = endpoint.url;
  app = await startTestApp();
});
afterAll(async () => {
  delete process.env.LLM_API_KEY_BOUND;
  delete process.env.LLM_BASE_URL_BOUND;
  await app.close();
  await Promise.all([endpoint.stop(), capture.stop()]);
});

/** `apiKey` null: a keyless endpoint. */
const llm = (baseUrl: string, apiKey: unknown = { env: 'LLM_API_KEY_BOUND' }) => ({ type: 'llm', baseUrl, model: 'm', ...(apiKey !== null && { apiKey }) });
const UNAVAILABLE = 'Field "runtime.apiKey" cannot be used: the model key is not available for this base URL ("runtime.baseUrl"); the operator binds each key to one base URL';

describe('a key bound to one base URL', () => {
  it('is refused at create when the agent names another base URL, with one sentence whether the name exists or not', async () => {
    const elsewhere = await app.api('POST', '/agents', { name: 'thief', runtime: llm(capture.url) });
    const unset = await app.api('POST', '/agents', { name: 'prober', runtime: llm(endpoint.url, { env: 'LLM_API_KEY_NOPE' }) });
    const unbound = await app.api('POST', '/agents', { name: 'prober', runtime: llm(capture.url, { env: 'LLM_API_KEY_NOPE' }) });
    for (const res of [elsewhere, unset, unbound]) {
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ success: false, code: 'VALIDATION_ERROR', error: UNAVAILABLE });
    }
    expect(capture.received).toEqual([]);
  });

  it('is refused at PATCH when the base URL moves off the binding', async () => {
    const created = await app.api('POST', '/agents', { name: 'ok', runtime: llm(endpoint.url) });
    expect(created.status).toBe(201);
    const moved = await app.api('PATCH', `/agents/${created.body.data.agentId}`, { runtime: llm(`${capture.url}`) });
    expect(moved.status).toBe(400);
    expect(moved.body.error).toBe(UNAVAILABLE);
    expect((await app.api('GET', `/agents/${created.body.data.agentId}`)).body.data.runtime.baseUrl).toBe(endpoint.url);
  });

  it('is sent to its endpoint, and to a path under it', async () => {
    for (const baseUrl of [`${endpoint.url}/`, `${endpoint.url}/team-a`]) {
      const created = await app.api('POST', '/agents', { name: 'ok', runtime: llm(baseUrl) });
      expect(created.status, created.text).toBe(201);
      const agentId = created.body.data.agentId;
      await app.api('POST', `/agents/${agentId}/start`);
      const before = endpoint.received.length;
      expect((await app.api('POST', `/agents/${agentId}/messages`, { text: 'hi' })).status).toBe(200);
      expect(endpoint.received.length).toBe(before + 1);
      expect(endpoint.received.at(-1)!.authorization).toBe(`Bearer ${KEY}`);
    }
  });

  it('is not sent when the operator rebinds it after the agent was created: the message fails with the same sentence', async () => {
    const created = await app.api('POST', '/agents', { name: 'rebound', runtime: llm(endpoint.url) });
    const agentId = created.body.data.agentId;
    await app.api('POST', `/agents/${agentId}/start`);
    process.env.LLM_BASE_URL_BOUND = capture.url;
    try {
      const before = endpoint.received.length;
      const res = await app.api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'rebound-1' });
      expect(res.status).toBe(502);
      expect((await app.api('GET', `/agents/${agentId}/messages/rebound-1`)).body.data).toMatchObject({ status: 'failed', error: 'the model key is not available for this base URL' });
      expect(endpoint.received.length).toBe(before);
      expect(capture.received).toEqual([]);
    } finally {
      process.env.LLM_BASE_URL_BOUND = endpoint.url;
    }
  });
});

describe('starting an agent whose key is no longer available', () => {
  it('is refused with 409 and a sentence, no stack trace, nothing sent', async () => {
    const created = await app.api('POST', '/agents', { name: 'unbound-later', runtime: llm(endpoint.url) });
    const agentId = created.body.data.agentId;
    delete process.env.LLM_BASE_URL_BOUND;
    try {
      const res = await app.api('POST', `/agents/${agentId}/start`);
      expect(res.status).toBe(409);
      expect(res.body).toEqual({
        success: false,
        code: 'RUNTIME_NOT_ALLOWED',
        error: 'Agent cannot start: its "runtime.apiKey" cannot be used: the model key is not available for this base URL ("runtime.baseUrl"); the operator binds each key to one base URL; change the runtime (PATCH) or ask the operator',
      });
      expect((await app.api('GET', `/agents/${agentId}`)).body.data.status).toBe('inactive');
    } finally {
      process.env.LLM_BASE_URL_BOUND = endpoint.url;
    }
  });
});

describe('a keyless endpoint', () => {
  it('needs no key and is sent no Authorization header', async () => {
    const created = await app.api('POST', '/agents', { name: 'local-model', runtime: llm(capture.url, null) });
    expect(created.status).toBe(201);
    const agentId = created.body.data.agentId;
    await app.api('POST', `/agents/${agentId}/start`);
    expect((await app.api('POST', `/agents/${agentId}/messages`, { text: 'hi' })).status).toBe(200);
    expect(capture.received).toHaveLength(1);
    expect(capture.received[0]!.authorization).toBeUndefined();
  });
});

describe('bindings', () => {
  it('match scheme, host, port and a path prefix on a segment boundary', () => {
    const bound = 'https://api.example.com/v1';
    for (const url of ['https://api.example.com/v1', 'https://API.example.com/v1/', 'https://api.example.com:443/v1/chat']) expect(within(url, bound), url).toBe(true);
    for (const url of [
      'http://api.example.com/v1',
      'https://api.example.com.evil.io/v1',
      'https://api.example.com:8443/v1',
      'https://api.example.com/v10',
      'https://api.example.com/',
      'https://api.example.com/v1/../admin',
      'https://user@api.example.com/v1',
      'https://api.example.com/v1?to=evil',
    ]) {
      expect(within(url, bound), url).toBe(false);
    }
  });

  it('read a secret as JSON {apiKey, baseUrl}; an unreadable or malformed secret is not available', async () => {
    const values: Record<string, string> = {
      good: JSON.stringify({ apiKey: 'sk-secret', baseUrl: 'https://api.example.com/v1' }),
      plain: 'sk-just-a-key',
      partial: JSON.stringify({ apiKey: 'sk-secret' }),
    };
    const keys = new BoundModelKeys({
      readSecret: async (arn) => {
        const name = arn.split('agents-llm/')[1]!;
        if (!(name in values)) throw Object.assign(new Error('denied'), { name: 'AccessDeniedException' });
        return values[name];
      },
    });
    const arn = (name: string) => ({ secretArn: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:agents-llm/${name}` });
    expect(await keys.keyFor(arn('good'), 'https://api.example.com/v1')).toBe('sk-secret');
    for (const [name, url] of [['good', 'https://evil.example/v1'], ['plain', 'https://api.example.com/v1'], ['partial', 'https://api.example.com/v1'], ['missing', 'https://api.example.com/v1']] as const) {
      await expect(keys.keyFor(arn(name), url), name).rejects.toBeInstanceOf(ModelKeyUnavailable);
    }
    expect(await keys.keyFor(undefined, 'https://anywhere.example/v1')).toBeNull();
  });

  it('pass a Secrets Manager outage on (a 503 to retry), rather than call the key unavailable', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    const keys = new BoundModelKeys({ readSecret: () => Promise.reject(throttled) });
    const arn = { secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:agents-llm/good' };
    await expect(keys.keyFor(arn, 'https://api.example.com/v1')).rejects.toBe(throttled);
  });
});
