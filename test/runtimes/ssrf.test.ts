import { afterAll, beforeAll, expect, it } from 'vitest';
import { refusalOf } from '../../functions/adapters/runtimes/http.js';
import { startTestApp, type TestApp } from '../support/stack.js';
import { forbiddenTarget } from '../support/target.js';

/**
 * Deployed (`RUNTIME_URLS=public`, the default), the `http` runtime never calls a loopback,
 * private or link-local address, whether the URL names it or a host name resolves to it; the
 * check is made on the address connected to, so a name that re-resolves cannot slip through.
 */
let app: TestApp;
let target: Awaited<ReturnType<typeof forbiddenTarget>>;
beforeAll(async () => {
  target = await forbiddenTarget();
  app = await startTestApp({ config: { runtimeUrls: 'public' } });
});
afterAll(async () => {
  await app.close();
  await target.close();
});

it.each([
  ['a loopback IP', (port: number) => `http://127.0.0.1:${port}/agent`, '127.0.0.1 is a loopback address'],
  // What the name resolves to is not told (the caller would learn the network's names).
  ['a name resolving to loopback', (port: number) => `http://localhost:${port}/agent`, 'refused to call localhost: it resolves to an address that is not public'],
  ['IPv6 loopback', (port: number) => `http://[::1]:${port}/agent`, '::1 is a loopback address'],
  ['IPv4-mapped IPv6 loopback', (port: number) => `http://[::ffff:127.0.0.1]:${port}/agent`, 'is a loopback address'],
  ['the instance metadata address', () => 'http://169.254.169.254/latest/meta-data/', 'link-local address (the instance metadata service lives there)'],
  ['a private network address', () => 'http://10.0.0.7/agent', '10.0.0.7 is not a public address'],
  ['IPv4-compatible IPv6 loopback', (port: number) => `http://[::127.0.0.1]:${port}/agent`, 'is not a public address'],
  ['IPv4-translated IPv6 loopback', (port: number) => `http://[::ffff:0:127.0.0.1]:${port}/agent`, 'is not a public address'],
  ['site-local IPv6', () => 'http://[fec0::1]/agent', 'fec0::1 is not a public address'],
  ['6to4 around loopback', (port: number) => `http://[2002:7f00:1::1]:${port}/agent`, 'is not a public address'],
  ['Teredo', () => 'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/agent', 'is not a public address'],
  ['NAT64 around a private address', () => 'http://[64:ff9b::a00:7]/agent', 'is not a public address'],
])('refuses %s: the message fails with the reason, nothing is sent', async (_, url, reason) => {
  const port = target.port();
  const created = await app.api('POST', '/agents', { name: 'ssrf', runtime: { type: 'http', url: url(port) } });
  const agentId = created.body.data.agentId;
  await app.api('POST', `/agents/${agentId}/start`);
  const res = await app.api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'm-1' });
  expect(res.status).toBe(502);
  const message = (await app.api('GET', `/agents/${agentId}/messages/m-1`)).body.data;
  expect(message).toMatchObject({ status: 'failed', error: expect.stringContaining(reason) });
  expect(message.error).toContain('RUNTIME_URLS=public');
  if (url(port).includes('localhost')) expect(message.error).not.toMatch(/127\.0\.0\.1|::1/);
  expect(target.hits()).toBe(0);
});

it('allows public addresses', () => {
  for (const ip of ['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111']) expect(refusalOf(ip), ip).toBeUndefined();
  for (const ip of ['172.16.3.4', '192.168.1.1', '100.64.0.1', 'fd00::1', 'fe80::1', '0.0.0.0']) expect(refusalOf(ip), ip).toBeDefined();
});

it('refuses every IPv6 form that embeds or translates an IPv4, in any spelling', () => {
  for (const ip of [
    '::127.0.0.1', '::7f00:1', '::a00:1', '0:0:0:0:0:0:a00:1', '::ffff:0:127.0.0.1', '::ffff:0:7f00:1', '::ffff:0:808:808',
    '2002:a00:1::', '2002:808:808::1', '2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '64:ff9b::a00:1', '64:ff9b::808:808', '64:ff9b:1::1',
    'fec0::1', 'feff::1', '::ffff:10.0.0.1', '::ffff:a9fe:a9fe', 'fe80::1%eth0',
  ]) {
    expect(refusalOf(ip), ip).toBeDefined();
  }
  // An IPv4-mapped public address is the public IPv4 it maps.
  expect(refusalOf('::ffff:8.8.8.8')).toBeUndefined();
  expect(refusalOf('::ffff:a9fe:a9fe')).toContain('link-local');
});
