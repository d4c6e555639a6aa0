import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/stack.js';

/** How the console's files are served: cached by name, revalidated by ETag, locked to this origin. */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ requireAuth: true });
});
afterAll(async () => {
  await app.close();
});

const page = async () => {
  const res = await fetch(`${app.url}/console`);
  return { res, html: await res.text() };
};

it('serves the page without a key, revalidated by its ETag, and allowed to load only this origin\'s files', async () => {
  const { res, html } = await page();
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.headers.get('cache-control')).toBe('no-cache');
  expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
  expect(res.headers.get('content-security-policy')).toContain("connect-src 'self'");
  expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(html).toContain('<title>Agents console</title>');
  const again = await fetch(`${app.url}/console`, { headers: { 'if-none-match': res.headers.get('etag')! } });
  expect([again.status, await again.text()]).toEqual([304, '']);
});

it('names its script and stylesheet by their content, cached for a year, and compresses them when asked', async () => {
  const { html } = await page();
  const names = [...html.matchAll(/(?:src|href)="(\/console\/app-[\w-]+\.(?:js|css))"/g)].map((m) => m[1]!);
  expect(names).toHaveLength(2);
  for (const name of names) {
    const res = await fetch(`${app.url}${name}`);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(res.headers.get('vary')).toBe('Accept-Encoding');
    const plain = await fetch(`${app.url}${name}`, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(await plain.text()).toBe(await res.text());
  }
});

it('answers an unknown file, another method and a missing key on the API in the API\'s envelope', async () => {
  const missing = await fetch(`${app.url}/console/app-nothere.js`);
  expect(missing.status).toBe(404);
  expect(await missing.json()).toMatchObject({ success: false, code: 'ROUTE_NOT_FOUND' });
  // Anything but GET is the $default route's, which checks the key first, as every API route does.
  const { key } = await app.keys!.create('console-files');
  const posted = await fetch(`${app.url}/console`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  expect(posted.status).toBe(405);
  expect(posted.headers.get('allow')).toBe('GET');
  // The page is public; what it shows is not.
  expect((await fetch(`${app.url}/agents/counts`)).status).toBe(401);
});

it('leads from / to the console', async () => {
  const root = await fetch(`${app.url}/`, { redirect: 'manual' });
  expect([root.status, root.headers.get('location')]).toEqual([302, '/console']);
});

it('has an icon, named by the page and answered at /favicon.ico where browsers look for one', async () => {
  const { html } = await page();
  expect(html).toContain('<link rel="icon" href="/console/favicon.svg" type="image/svg+xml">');
  for (const path of ['/console/favicon.svg', '/favicon.ico']) {
    const res = await fetch(`${app.url}${path}`);
    expect(res.status, path).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/svg+xml');
    expect(await res.text()).toMatch(/^<svg /);
  }
});
