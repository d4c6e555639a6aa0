import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { refusalOf } from '../../functions/adapters/runtimes/http.js';
import { startTestApp, type TestApp } from '../support/stack.js';

/**
 * Deployed (`RUNTIME_URLS=public`, the default), the `http` runtime never calls a loopback,
 * private or link-local address, whether the URL names it or a host name resolves to it; the
 * check is made on the address connected to, so a name that re-resolves cannot slip through.
 */
let app: TestApp;
let target: Server;
let hits = 0;
beforeAll(async () => {
  target = createServer((_, res) => {
    hits++;
    res.end('{"reply":"should never be asked"}');
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  app = await startTestApp({ config: { runtimeUrls: 'public' } });
});
afterAll(async () => {
  await app.close();
  target.close();
});

it.each([
  ['a loopback IP', (port: number) => `http://127.0.0.1:${port}/agent`, '127.0.0.1 is a loopback address'],
  ['a name resolving to loopback', (port: number) => `http://localhost:${port}/agent`, 'is a loopback address'],
  ['IPv6 loopback', (port: number) => `http://[::1]:${port}/agent`, '::1 is a loopback address'],
  ['IPv4-mapped IPv6 loopback', (port: number) => `http://[::ffff:127.0.0.1]:${port}/agent`, 'is a loopback address'],
  ['the instance metadata address', () => 'http://169.254.169.254/latest/meta-data/', 'link-local address (the instance metadata service lives there)'],
  ['a private network address', () => 'http://10.0.0.7/agent', '10.0.0.7 is not a public address'],
])('refuses %s: the message fails with the reason, nothing is sent', async (_, url, reason) => {
  const { port } = target.address() as AddressInfo;
  const created = await app.api('POST', '/agents', { name: 'ssrf', runtime: { type: 'http', url: url(port) } });
  const agentId = created.body.data.agentId;
  await app.api('POST', `/agents/${agentId}/start`);
  const res = await app.api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'm-1' });
  expect(res.status).toBe(502);
  const message = (await app.api('GET', `/agents/${agentId}/messages/m-1`)).body.data;
  expect(message).toMatchObject({ status: 'failed', error: expect.stringContaining(reason) });
  expect(message.error).toContain('RUNTIME_URLS=public');
  expect(hits).toBe(0);
});

it('allows public addresses', () => {
  for (const ip of ['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111']) expect(refusalOf(ip), ip).toBeUndefined();
  for (const ip of ['172.16.3.4', '192.168.1.1', '100.64.0.1', 'fd00::1', 'fe80::1', '0.0.0.0']) expect(refusalOf(ip), ip).toBeDefined();
});
