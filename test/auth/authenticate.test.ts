import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDocumentClient } from '../../functions/adapters/dynamodb/client.js';
import { ApiKeysStore } from '../../functions/auth/api-keys.js';
import { KeyAuthenticator } from '../../functions/auth/authenticate.js';
import { errorResponse } from '../../functions/http/middleware.js';
import { startTestApp, sleep, type TestApp } from '../support/stack.js';

/**
 * The deployed check (`always`, verified keys trusted for a while per container), against the
 * keys table in DynamoDB Local; every route's function runs it before anything else.
 */
let app: TestApp;
let keys: ApiKeysStore;
beforeAll(async () => {
  app = await startTestApp();
  keys = app.keys!;
});
afterAll(async () => {
  await app.close();
});

const refusal = async (promise: Promise<unknown>) => errorResponse(await promise.then(() => undefined, (err: unknown) => err));

it('accepts a valid key, and refuses a missing, malformed, unknown or revoked one alike: 401 in the envelope', async () => {
  const auth = new KeyAuthenticator(keys, { require: 'always', cacheMs: 30_000 });
  const { key, info } = await keys.create('deploy-bot');
  expect(await auth.authenticate(`Bearer ${key}`)).toMatchObject({ keyId: info.keyId, name: 'deploy-bot' });

  const revoked = await keys.create('to-revoke');
  await keys.revoke(revoked.info.keyId);
  // The right keyId with a wrong secret: its last character changed (to one it is not).
  const wrongSecret = key.slice(0, -1) + (key.endsWith('B') ? 'C' : 'B');
  for (const header of [undefined, 'Bearer', 'Token abc', `Bearer agk_0000000000000000_${'a'.repeat(43)}`, `Bearer ${revoked.key}`, `Bearer ${wrongSecret}`]) {
    const res = await refusal(auth.authenticate(header));
    expect(res.statusCode, String(header)).toBe(401);
    expect(res.headers).toMatchObject({ 'WWW-Authenticate': 'Bearer' });
    expect(JSON.parse(res.body!)).toEqual({ success: false, error: expect.stringContaining('Authorization: Bearer <key>'), code: 'UNAUTHORIZED' });
  }
});

it('trusts a verified key for the cache window only: a revoked key stops working within it', async () => {
  const auth = new KeyAuthenticator(keys, { require: 'always', cacheMs: 800 });
  const { key, info } = await keys.create('soon revoked');
  await auth.authenticate(`Bearer ${key}`);
  await keys.revoke(info.keyId);
  // Within the window the container still trusts it (the documented bound) ...
  expect(await auth.authenticate(`Bearer ${key}`)).toMatchObject({ keyId: info.keyId });
  await sleep(900);
  // ... and after it, the store says no.
  expect((await refusal(auth.authenticate(`Bearer ${key}`))).statusCode).toBe(401);
});

it('fails closed: a key store that cannot be reached is a 503, never a request let in', async () => {
  const down = createDocumentClient('http://127.0.0.1:9', { requestTimeoutMs: 300, maxAttempts: 1 });
  const auth = new KeyAuthenticator(new ApiKeysStore(down, keys.tableName), { require: 'always', cacheMs: 30_000 });
  const { key } = await keys.create('valid');
  const res = await refusal(auth.authenticate(`Bearer ${key}`));
  expect(res.statusCode).toBe(503);
  expect(JSON.parse(res.body!)).toMatchObject({ success: false, code: 'UNAVAILABLE' });
  down.destroy();
});
