import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../functions/http/routes.js';
import { CLIENT_TYPES_FILE, OPENAPI_FILE, renderClientTypes, renderOpenApi } from '../../local/generate-docs.js';
import { requestBodyValid } from '../support/contract.js';
import { startTestApp, type TestApp } from '../support/stack.js';

const committed = readFileSync(OPENAPI_FILE, 'utf8');
const doc = JSON.parse(committed);

describe('the OpenAPI document', () => {
  it('is committed exactly as generated from the zod schemas (run `npm run docs` after changing them)', () => {
    expect(committed).toBe(renderOpenApi());
  });

  it("is what the typed client's types were generated from (run `npm run docs` after changing it)", async () => {
    expect(readFileSync(CLIENT_TYPES_FILE, 'utf8')).toBe(await renderClientTypes(committed));
    // A change to the document the client was not regenerated for shows:
    const changed = JSON.stringify({ ...doc, components: { ...doc.components, schemas: { ...doc.components.schemas, Agent: { ...doc.components.schemas.Agent, properties: { ...doc.components.schemas.Agent.properties, owner: { type: 'string' } } } } } });
    expect(readFileSync(CLIENT_TYPES_FILE, 'utf8')).not.toBe(await renderClientTypes(changed));
  });

  it('passes the Redocly recommended lint with no problem', async () => {
    // The documented server is the local one, on localhost by design.
    const config = await createConfig({ extends: ['recommended'], rules: { 'no-server-example.com': 'off' } });
    const problems = await lintFromString({ source: committed, absoluteRef: OPENAPI_FILE.pathname, config });
    expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`)).toEqual([]);
  });

  it('documents every route of the route table, behind the Bearer scheme', () => {
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(routes.map((r) => `${r.method} ${r.path}`).sort());
    expect(doc.components.securitySchemes.bearerKey).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
    // Deployed always; locally none until the first key: both are declared, and said in a sentence.
    expect(doc.security).toEqual([{ bearerKey: [] }, {}]);
    expect(doc.components.securitySchemes.bearerKey.description).toMatch(/Locally .* none until the first key is created/);
  });

  it('documents the stop operation with its body, headers, every answer and the exact sentences', () => {
    const stop = doc.paths['/agents/{agentId}/stop'].post;
    expect(stop.requestBody.content['application/json'].schema).toEqual({
      type: 'object',
      properties: {
        graceful: { type: 'boolean', default: true },
        timeout: { type: 'integer', minimum: 0, maximum: 86_400_000, default: 30_000 },
      },
      additionalProperties: false,
    });
    expect(stop.parameters.map((p: { name: string }) => p.name)).toEqual(['agentId', 'Prefer', 'X-Request-Id']);
    expect(Object.keys(stop.responses).sort()).toEqual(['200', '202', '400', '401', '404', '408', '409', '413', '415', '429', '500', '503']);
    const example = (status: number) => stop.responses[status].content['application/json'].example;
    expect(example(200)).toEqual({ success: true, message: 'Agent stopped successfully', data: { agentId: expect.any(String), status: 'inactive', stoppedAt: 1709683200000 } });
    expect(example(408).error).toBe('Graceful shutdown timed out');
    expect(example(409).error).toBe('Agent is not running');
    expect(example(404).error).toBe('Agent not found');
    expect(example(500).error).toBe('Failed to stop agent runtime');
  });
});

describe('request bodies the document describes', () => {
  it('a fleet stop must select agents: {} breaks the document, as the server refuses it', () => {
    expect(requestBodyValid('POST', '/agents/stop', {})).toBe(false);
    expect(requestBodyValid('POST', '/agents/stop', { graceful: true, timeout: 1000 })).toBe(false);
    expect(requestBodyValid('POST', '/agents/stop', { status: 'active' })).toBe(true);
    expect(requestBodyValid('POST', '/agents/stop', { agentIds: ['4b9c3c49-4c5a-4e7b-9d2f-2f1b7f0e7c11'] })).toBe(true);
  });
});

describe('the local server', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.close();
  });

  /** A request as a page on another name that resolves to this machine would send it (DNS rebinding). */
  const withHost = (host: string, path = '/agents') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL(app.url);
      const req = httpRequest({ host: url.hostname, port: url.port, path, headers: { host } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('while no API key exists, answers only the names it is reached by on this machine: another Host is a 421 that says what to do', async () => {
    for (const host of ['localhost:3000', '127.0.0.1', '[::1]:3000']) expect((await withHost(host)).status, host).toBe(200);
    for (const path of ['/agents', '/openapi.json', '/events']) {
      const refused = await withHost('rebound.attacker.example', path);
      expect(refused.status, path).toBe(421);
      expect(JSON.parse(refused.body)).toMatchObject({ success: false, code: 'MISDIRECTED_REQUEST', error: expect.stringContaining('ALLOWED_HOSTS') });
    }
  });

  it('serves the document at /openapi.json, listing its own origin as the server, and the reference page at /docs', async () => {
    const json = await fetch(`${app.url}/openapi.json`);
    expect(json.status).toBe(200);
    // Auth is off on this server: the served document shows no lock.
    expect(await json.json()).toEqual({ ...doc, security: [], servers: [{ url: app.url, description: 'this server' }] });
    const page = await fetch(`${app.url}/docs`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    // Only its own scripts (none inline), never framed.
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self';.*frame-ancestors 'none'/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).not.toMatch(/<script>/);
    expect(await (await fetch(`${app.url}/docs/init.js`)).text()).toContain("url: '/openapi.json'");
    const root = await fetch(`${app.url}/`, { redirect: 'manual' });
    expect([root.status, root.headers.get('location')]).toEqual([302, '/console']);
    expect(await root.json()).toMatchObject({ success: true, data: { console: '/console' } });
    const bundle = await fetch(`${app.url}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });

  /**
   * Drift: every status the server answers a route with must be declared for that route. Each
   * route is probed with what the error mapping turns into a 4xx (bad ids, unknown agents, bodies
   * too large, of the wrong type, not JSON, of the wrong shape, and the route's own conflicts),
   * and every answer must be a declared response whose code matches the declared example's.
   */
  it('declares, for every route, every status the server answers it with', { timeout: 60_000 }, async () => {
    const running = (await app.api('POST', '/agents', { name: 'probe' })).body.data.agentId as string;
    await app.api('POST', `/agents/${running}/start`);
    const idle = (await app.api('POST', '/agents', { name: 'idle' })).body.data.agentId as string;
    const unknown = crypto.randomUUID();
    const seen: string[] = [];
    for (const route of routes) {
      const declared = doc.paths[route.path][route.method.toLowerCase()].responses as Record<string, { content: { 'application/json': { example?: { code?: string } } } }>;
      const paths = [running, idle, unknown, 'not-a-uuid'].map((id) => route.path.replace('{agentId}', id).replace('{messageId}', 'm-1'));
      const hasBody = route.method === 'POST' || route.method === 'PATCH';
      const bodies: [unknown, Record<string, string>][] = hasBody
        ? [
            [{}, {}],
            [{ name: 'x', text: 'hi', graceful: false }, {}],
            [{ unknownField: 1 }, {}],
            ['{"not json', { 'content-type': 'application/json' }],
            ['hello', { 'content-type': 'text/plain' }],
            [`{"text":"${'x'.repeat(140_000)}"}`, { 'content-type': 'application/json' }],
          ]
        : [[undefined, {}]];
      for (const path of paths) {
        for (const [body, headers] of bodies) {
          const res = await app.api(route.method, path, body, headers);
          const where = `${route.method} ${route.path} answered ${res.status} ${res.body?.code}`;
          expect(declared[res.status], `${where}: not declared`).toBeDefined();
          seen.push(`${route.method} ${route.path} ${res.status}`);
        }
      }
      for (const status of route.public ? [] : ['401', '503']) expect(declared[status], `${route.method} ${route.path} ${status}`).toBeDefined();
    }
    // The probes reached the body checks and the domain errors, not only the happy path.
    for (const status of [400, 404, 409, 413, 415]) expect(seen.some((s) => s.endsWith(` ${status}`)), String(status)).toBe(true);

    const unmatched = await app.api('GET', '/agent');
    const wrongMethod = await app.api('PUT', '/agents', {});
    const fallback = doc['x-fallback-responses'];
    expect(unmatched.body.code).toBe(fallback[unmatched.status].content['application/json'].example.code);
    expect(wrongMethod.body.code).toBe(fallback[wrongMethod.status].content['application/json'].example.code);
    expect([unmatched.status, wrongMethod.status]).toEqual([404, 405]);
  });
});
