import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/stack.js';
import { forbiddenTarget } from '../support/target.js';

/**
 * Deployed, runtimes are called over https only (an http reply could be read or forged on the
 * way) unless the operator allows plain http (RUNTIME_ALLOW_HTTP=1): refused at create and PATCH
 * with the field named, and again at the call for an agent stored before the policy changed.
 */
let app: TestApp;
let target: Awaited<ReturnType<typeof forbiddenTarget>>;
beforeAll(async () => {
  target = await forbiddenTarget();
  app = await startTestApp({ config: { runtimeAllowHttp: false } });
});
afterAll(async () => {
  await app.close();
  await target.close();
});

const url = () => `http://127.0.0.1:${target.port()}/agent`;

it('refuses an http:// worker URL or model base URL at create and PATCH, naming the field', async () => {
  const worker = await app.api('POST', '/agents', { name: 'plain', runtime: { type: 'http', url: url() } });
  expect(worker.status).toBe(400);
  expect(worker.body.error).toBe('Field "runtime.url" must be an https:// URL: plain http is refused here (the operator allows it with RUNTIME_ALLOW_HTTP=1)');
  const model = await app.api('POST', '/agents', { name: 'plain', runtime: { type: 'llm', baseUrl: url(), model: 'm' } });
  expect(model.status).toBe(400);
  expect(model.body.error).toMatch(/^Field "runtime.baseUrl" must be an https:\/\/ URL/);
  const created = await app.api('POST', '/agents', { name: 'echo' });
  const patched = await app.api('PATCH', `/agents/${created.body.data.agentId}`, { runtime: { type: 'http', url: url() } });
  expect(patched.status).toBe(400);
  expect(patched.body.error).toMatch(/^Field "runtime.url" must be an https:\/\/ URL/);
  expect((await app.api('POST', '/agents', { name: 'tls', runtime: { type: 'http', url: 'https://agents.example.com/hook' } })).status).toBe(201);
});

it('neither starts nor calls an http:// URL stored before the policy changed', async () => {
  const stopped = (await app.api('POST', '/agents', { name: 'stored' })).body.data.agentId;
  // As if written while the operator allowed plain http.
  await app.deps.agents.update(stopped, { set: { runtime: { type: 'http', url: url() } }, remove: [] }, { requireInactive: true, now: Date.now() });
  const start = await app.api('POST', `/agents/${stopped}/start`);
  expect(start.status).toBe(409);
  expect(start.body).toMatchObject({ code: 'RUNTIME_NOT_ALLOWED', error: expect.stringMatching(/^Agent cannot start: its "runtime.url" must be an https:\/\/ URL/) });

  // One already running when the policy changed: its messages fail, nothing is sent.
  const agentId = (await app.api('POST', '/agents', { name: 'running' })).body.data.agentId;
  await app.api('POST', `/agents/${agentId}/start`);
  await app.deps.agents.update(agentId, { set: { runtime: { type: 'http', url: url() } }, remove: [] }, { requireInactive: false, now: Date.now() });
  const res = await app.api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'plain-1' });
  expect(res.status).toBe(502);
  expect((await app.api('GET', `/agents/${agentId}/messages/plain-1`)).body.data.error).toContain('only https:// is allowed');
  expect(target.hits()).toBe(0);
});
