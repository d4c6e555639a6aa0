import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../functions/http/routes.js';
import { createAgent, startTestApp, type TestApp } from '../support/stack.js';

let app: TestApp;
let valid: string;
let revoked: string;
let agentId: string;
/** What the server said while no key existed yet. */
const whileOff: { withKey?: { status: number; body: unknown }; docsSecurity?: unknown } = {};
beforeAll(async () => {
  app = await startTestApp({ authRecheckMs: 0 }); // auth, while off, looks for a first key at every request
  // No key yet: auth is off, so set-up goes through; the first key turns it on.
  agentId = await createAgent(app.api, {}, true);
  const withKey = await app.api('GET', '/agents', undefined, { authorization: 'Bearer agk_from_another_server' });
  whileOff.withKey = { status: withKey.status, body: withKey.body };
  whileOff.docsSecurity = ((await (await fetch(`${app.url}/openapi.json`)).json()) as { security: unknown }).security;
  valid = (await app.keys!.create('ci')).key;
  const old = await app.keys!.create('old laptop');
  revoked = old.key;
  await app.keys!.revoke(old.info.keyId);
});
afterAll(async () => {
  await app.close();
});

const pathOf = (template: string) => template.replace('{agentId}', agentId).replace('{messageId}', 'm-1');
const bodyOf = (method: string, path: string) =>
  method === 'GET' || method === 'DELETE' ? undefined : path.endsWith('/messages') ? { text: 'hi' } : path === '/agents' ? { name: 'x' } : {};
const wrongSecret = () => `${valid.slice(0, -4)}AAAA`;

describe('while no key exists (auth off)', () => {
  it('says so to a request that sends a key, rather than let it pass unchecked', () => {
    expect(whileOff.withKey).toEqual({
      status: 401,
      body: { success: false, code: 'UNAUTHORIZED', error: expect.stringMatching(/^This server has no API keys yet \(auth is off until the first key is created\)/) },
    });
  });

  it('serves a document without the lock; with a key, the lock is on every operation but the health check', async () => {
    expect(whileOff.docsSecurity).toEqual([]);
    const served = (await (await fetch(`${app.url}/openapi.json`)).json()) as { security: unknown; paths: Record<string, Record<string, { security?: unknown }>> };
    expect(served.security).toEqual([{ bearerKey: [] }]);
    expect(served.paths['/health']!.get!.security).toEqual([]);
  });
});

describe('every route behind the Bearer key', () => {
  const cases: [string, Record<string, string>][] = [
    ['no Authorization header', {}],
    ['a wrong key', { authorization: `Bearer ${'agk_0123456789abcdef_' + 'x'.repeat(43)}` }],
    ['a malformed header', { authorization: 'Basic dXNlcjpwYXNz' }],
  ];
  it('but the health check, which answers without a key and holds no data', async () => {
    const res = await app.api('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true, data: { status: 'ok' } });
  });

  for (const route of routes.filter((r) => !r.public)) {
    it.each(cases)(`${route.method} ${route.path} answers 401 for %s`, async (_label, headers) => {
      const res = await app.api(route.method, pathOf(route.path), bodyOf(route.method, route.path), headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.body).toEqual({ success: false, error: 'A valid API key is required: send it as "Authorization: Bearer <key>"', code: 'UNAUTHORIZED' });
    });
    it(`${route.method} ${route.path} answers 401 for a revoked key and for a key with a wrong secret`, async () => {
      for (const key of [revoked, wrongSecret()]) {
        const res = await app.api(route.method, pathOf(route.path), bodyOf(route.method, route.path), { authorization: `Bearer ${key}` });
        expect(res.status).toBe(401);
      }
    });
    it(`${route.method} ${route.path} works with a valid key`, async () => {
      const res = await app.api(route.method, pathOf(route.path), bodyOf(route.method, route.path), { authorization: `Bearer ${valid}` });
      expect(res.status).not.toBe(401);
      expect(res.status).toBeLessThan(500);
    });
  }

  it('answers 401 on unknown routes too, before revealing what exists', async () => {
    expect((await app.api('GET', '/admin')).status).toBe(401);
    expect((await app.api('GET', '/admin', undefined, { authorization: `Bearer ${valid}` })).status).toBe(404);
  });
});

describe('key storage', () => {
  it('stores only a hash of the secret, with name and creation time', async () => {
    const { Items = [] } = await app.db.send(new ScanCommand({ TableName: app.keys!.tableName }));
    expect(Items).toHaveLength(2);
    expect(valid).toMatch(/^agk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    // The secret is everything after the keyId: base64url, so it may itself contain '_'.
    const secret = valid.slice('agk_'.length + 16 + 1);
    expect(secret).toHaveLength(43);
    for (const item of Items) {
      expect(Object.keys(item).sort()).toEqual(expect.arrayContaining(['createdAt', 'hash', 'keyId', 'name']));
      expect(JSON.stringify(item)).not.toContain(secret);
      expect(item.hash).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('lists keys without their hashes and marks revoked ones', async () => {
    const list = await app.keys!.list();
    expect(list.map((k) => k.name).sort()).toEqual(['ci', 'old laptop']);
    expect(list.find((k) => k.name === 'old laptop')!.revokedAt).toEqual(expect.any(Number));
    for (const k of list) expect(k).not.toHaveProperty('hash');
  });
});

describe('an open event stream', () => {
  it('ends, saying why, once its key is revoked: no event after it', async () => {
    const { key, info } = await app.keys!.create('watcher');
    const res = await fetch(`${app.url}/events`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const received = (async () => {
      let text = '';
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) text += chunk;
      return text;
    })();
    const auth = { authorization: `Bearer ${valid}` };
    const watched = (await app.api('POST', '/agents', { name: 'watched' }, auth)).body.data.agentId as string;
    await app.keys!.revoke(info.keyId);
    expect((await app.api('POST', `/agents/${watched}/start`, undefined, auth)).status).toBe(200);
    const text = await received;
    expect(text).not.toContain('Agent Started');
    const error = /event: error\ndata: (.*)\n\n$/.exec(text)?.[1];
    expect(JSON.parse(error ?? 'null')).toMatchObject({ success: false, code: 'UNAUTHORIZED' });
  });
});
