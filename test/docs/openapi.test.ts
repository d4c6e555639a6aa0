import { readFileSync } from 'node:fs';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../functions/http/routes.js';
import { OPENAPI_FILE, renderOpenApi } from '../../local/generate-docs.js';
import { startTestApp, type TestApp } from '../support/stack.js';

const committed = readFileSync(OPENAPI_FILE, 'utf8');
const doc = JSON.parse(committed);

describe('the OpenAPI document', () => {
  it('is committed exactly as generated from the zod schemas (run `npm run docs` after changing them)', () => {
    expect(committed).toBe(renderOpenApi());
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
    expect(doc.security).toEqual([{ bearerKey: [] }]);
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
    expect(stop.parameters.map((p: { name: string }) => p.name)).toEqual(['agentId', 'Prefer']);
    expect(Object.keys(stop.responses).sort()).toEqual(['200', '202', '400', '401', '404', '408', '409', '415', '500']);
    const example = (status: number) => stop.responses[status].content['application/json'].example;
    expect(example(200)).toEqual({ success: true, message: 'Agent stopped successfully', data: { agentId: expect.any(String), status: 'inactive', stoppedAt: 1709683200000 } });
    expect(example(408).error).toBe('Graceful shutdown timed out');
    expect(example(409).error).toBe('Agent is not running');
    expect(example(404).error).toBe('Agent not found');
    expect(example(500).error).toBe('Failed to stop agent runtime');
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

  it('serves the document at /openapi.json and the reference page at /docs', async () => {
    const json = await fetch(`${app.url}/openapi.json`);
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual(doc);
    const page = await fetch(`${app.url}/docs`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain("url: '/openapi.json'");
    const bundle = await fetch(`${app.url}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });
});
