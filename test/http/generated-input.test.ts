import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAgent, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Generated JSON at every field that takes free-form input (settings, metadata, text, runtime)
 * and generated strings at every query and path parameter, against DynamoDB Local: each answer
 * is a success or a 400 with a sentence, never a 5xx; whatever is accepted is stored as sent.
 * The leaves include what JSON allows and DynamoDB does not keep: empty keys, numbers beyond its
 * range or beyond 2^53, numbers too close to 0, lone surrogates, deep nesting.
 */
let app: TestApp;
let running: string;
beforeAll(async () => {
  app = await startTestApp();
  running = await createAgent(app.api, {}, true);
});
afterAll(async () => {
  await app.close();
});

/** A number written exactly as given (JSON.stringify would round 9007199254740993 first). */
class Literal {
  constructor(readonly text: string) {}
}
const toText = (v: unknown): string => {
  if (v instanceof Literal) return v.text;
  if (Array.isArray(v)) return `[${v.map(toText).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${toText(x)}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
};

const key = fc.oneof({ weight: 8, arbitrary: fc.string({ maxLength: 8 }) }, fc.constantFrom('', '\ud800', 'a.b', '#x', ':v', '__proto__', 'constructor', 'toString'));
const leaf = fc.oneof(
  { weight: 4, arbitrary: fc.oneof(fc.string({ maxLength: 12 }), fc.boolean(), fc.constant(null), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })) },
  fc.constantFrom('9007199254740993', '-1e17', '1e300', '1e-200', '1e400', '-0', '1e-130', '9.99e125', '1e126', '0.1', '123456789012345678901234567890').map((t) => new Literal(t)),
  fc.constantFrom('\ud800', '\udfff x', '😀', '\u0000', ''),
);
const { node } = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', maxDepth: 24 }, leaf, fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(key, tie('node'), { maxKeys: 3 })),
}));
const object = fc.dictionary(key, node, { maxKeys: 4 });

/** The value as the server parsed it, with -0 as JSON keeps it (0). */
const parsed = (text: string) => JSON.parse(JSON.stringify(JSON.parse(text)));
const sentence = (body: { success: boolean; error?: string }) => body.success === false && typeof body.error === 'string' && /^[A-Z].{10,}/.test(body.error);

let cases = 0;
const started = performance.now();

it('creates an agent with any settings it can store as sent, and refuses the rest with a 400', async () => {
  await fc.assert(
    fc.asyncProperty(object, fc.oneof(fc.constant(undefined), node), async (settings, runtime) => {
      cases++;
      const text = `{"name":"gen","settings":${toText(settings)}${runtime === undefined ? '' : `,"runtime":${toText(runtime)}`}}`;
      const res = await app.api('POST', '/agents', text, { 'content-type': 'application/json' });
      expect([201, 400], `${text} -> ${res.text}`).toContain(res.status);
      if (res.status === 400) {
        expect(sentence(res.body), res.text).toBe(true);
        return;
      }
      const stored = await app.api('GET', `/agents/${res.body.data.agentId}`);
      expect(JSON.parse(JSON.stringify(stored.body.data.settings))).toEqual(parsed(toText(settings)));
    }),
    { numRuns: 150 },
  );
});

it('answers any message text and metadata with its reply or a 400; what it accepts is stored as sent', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.string({ maxLength: 40 }), node), object, async (text, metadata) => {
      cases++;
      const body = `{"text":${toText(text)},"metadata":${toText(metadata)}}`;
      const res = await app.api('POST', `/agents/${running}/messages`, body, { 'content-type': 'application/json' });
      expect([200, 400], `${body} -> ${res.text}`).toContain(res.status);
      if (res.status === 400) {
        expect(sentence(res.body), res.text).toBe(true);
        return;
      }
      const stored = (await app.api('GET', `/agents/${running}/messages/${res.body.data.messageId}`)).body.data;
      expect(stored.text).toBe(JSON.parse(toText(text)));
      expect(JSON.parse(JSON.stringify(stored.metadata))).toEqual(parsed(toText(metadata)));
    }),
    { numRuns: 150 },
  );
});

it('answers any query and path parameter with a page, a 404 or a 400', async () => {
  const value = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', '-1', '1e3', '0x10', '101', 'active', 'e30', '%', '\ud800', 'x'.repeat(3000)));
  const param = fc.constantFrom('status', 'limit', 'cursor', 'other');
  const target = fc.oneof(
    fc.tuple(fc.constantFrom('/agents', `/agents/${running}/messages`, `/agents/${running}/stops`), fc.array(fc.tuple(param, value), { maxLength: 3 })).map(
      ([path, pairs]) => `${path}?${pairs.map(([k, v]) => `${k}=${encodeURIComponent(v.isWellFormed() ? v : 'x')}`).join('&')}`,
    ),
    fc.tuple(fc.constantFrom('/agents/{}', '/agents/{}/messages', '/agents/{}/stops', `/agents/${running}/messages/{}`, '/fleet-stops/{}'), value).map(([path, v]) =>
      path.replace('{}', encodeURIComponent(v.isWellFormed() ? v : 'x') || 'x'),
    ),
  );
  await fc.assert(
    fc.asyncProperty(target, async (path) => {
      cases++;
      const res = await app.api('GET', path);
      expect([200, 400, 404], `${path} -> ${res.text}`).toContain(res.status);
      if (res.status !== 200) expect(sentence(res.body), res.text).toBe(true);
    }),
    { numRuns: 200 },
  );
  // The figure for the record (npm test prints it with the file's output).
  console.info(`generated-input: ${cases} generated requests in ${((performance.now() - started) / 1000).toFixed(1)} s`);
});
