import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/stack.js';

/** Auth never fails open: revoking the last key locks the API, it does not open it. */
let app: TestApp;
const lines: string[] = [];
beforeAll(async () => {
  // Auth, while off, looks for a first key at every request: the test needs not wait out the re-check.
  app = await startTestApp({ log: (line) => lines.push(line), authRecheckMs: 0 });
});
afterAll(async () => {
  await app.close();
});

it('stays on after the last key is revoked: the revoked key and anonymous requests get 401', async () => {
  expect((await app.api('GET', '/agents')).status).toBe(200); // no key was ever created: open
  const { key, info } = await app.keys!.create('only key');
  expect((await app.api('GET', '/agents')).status).toBe(401);

  await app.keys!.revoke(info.keyId);
  for (const headers of [{}, { authorization: `Bearer ${key}` }] as Record<string, string>[]) {
    expect((await app.api('GET', '/agents', undefined, headers)).status).toBe(401);
    const created = await app.api('POST', '/agents', { name: 'intruder' }, headers);
    expect(created.status).toBe(401);
  }
  expect((await app.deps.agents.list(undefined, 100)).items.filter((a) => a.name === 'intruder')).toEqual([]);
  expect(lines.filter((l) => l.startsWith('auth: ON'))).toHaveLength(1); // the change of mode is logged, once
});
