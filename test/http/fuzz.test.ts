import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { routes } from '../../functions/http/routes.js';
import { createAgent, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Arbitrary bodies, headers and path segments at every route: never a 5xx, always the JSON
 * envelope. Real DynamoDB Local behind it, so a bad expression or an unmapped SDK error shows.
 */
let app: TestApp;
let agentIds: string[];
beforeAll(async () => {
  app = await startTestApp({ config: { stopWaitWindowMs: 2000 } });
  agentIds = [await createAgent(app.api), await createAgent(app.api, {}, true)];
});
afterAll(async () => {
  await app.close();
});

const segment = fc.oneof(
  fc.constantFrom('4b9c3c49-4c5a-4e7b-9d2f-2f1b7f0e7c11', '..', '%', '%E0%A4%A', '%00', 'agents', 'x'.repeat(300)),
  fc.uuid(),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
);
const jsonValue = fc.jsonValue({ maxDepth: 3 });
const body = fc.oneof(
  jsonValue.map((v) => JSON.stringify(v)),
  fc.record(
    {
      name: fc.oneof(fc.string(), jsonValue),
      graceful: fc.oneof(fc.boolean(), jsonValue),
      timeout: fc.oneof(fc.integer({ min: -10, max: 100_000_000 }), jsonValue),
      text: fc.oneof(fc.string(), jsonValue),
      runtime: fc.oneof(fc.constant({ type: 'echo', delayMs: 0 }), jsonValue),
      settings: jsonValue,
      messageId: fc.string(),
      idleTimeoutMs: fc.oneof(fc.integer(), fc.constant(null), jsonValue),
    },
    { requiredKeys: [] },
  ).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.constant(undefined),
);
const headers = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8', 'application/vnd.api+json', '', 'multipart/form-data'),
    'if-match': fc.oneof(fc.constantFrom('"1"', '*', 'W/"2"'), fc.string({ maxLength: 20 }).filter((s) => /^[\x20-\x7e]*$/.test(s))),
    prefer: fc.constantFrom('respond-async', 'wait=1', 'wait=abc', 'handling=lenient'),
  },
  { requiredKeys: [] },
);

it('answers every route with a JSON envelope and never a 5xx, whatever it is sent', async () => {
  const method = fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT');
  const path = fc.oneof(
    fc.constantFrom(...routes.map((r) => r.path)).chain((template) =>
      fc
        .tuple(fc.oneof(fc.constantFrom(...agentIds), segment), segment)
        .map(([agentId, other]) => template.replace('{agentId}', agentId).replace('{messageId}', other)),
    ),
    fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`),
  );
  const query = fc.constantFrom('', '?status=active', '?limit=0', '?limit=abc', '?cursor=%%%', '?cursor=e30', '?status=x&status=y');
  await fc.assert(
    fc.asyncProperty(method, path, query, body, headers, async (m, p, q, b, h) => {
      // The server's own answer, not a page a redirect leads to (`/` leads to the console).
      const res = await fetch(`${app.url}${p}${q}`, { method: m, headers: h, body: m === 'GET' ? undefined : b, redirect: 'manual' });
      const text = await res.text();
      expect(res.status, `${m} ${p}${q} ${b} -> ${text}`).toBeLessThan(500);
      const parsed = JSON.parse(text);
      expect(typeof parsed.success).toBe('boolean');
      if (!parsed.success) expect(typeof parsed.error).toBe('string');
    }),
    { numRuns: 300 },
  );
});
