import createClient from 'openapi-fetch';
import { expect, it } from 'vitest';
import { revalidating } from '../../clients/typescript/src/revalidate.js';

/**
 * The revalidating middleware over a server that answers 304 to a matching If-None-Match: what
 * it sends, what callers get back, and that what it holds stays within its byte budget.
 */
function server(bodies: Record<string, string>) {
  const sent: { path: string; ifNoneMatch: string | null }[] = [];
  const fetch = async (input: Request) => {
    const path = new URL(input.url).pathname;
    const body = bodies[path]!;
    const etag = `"${body.length}-${path}"`;
    const ifNoneMatch = input.headers.get('if-none-match');
    sent.push({ path, ifNoneMatch });
    if (ifNoneMatch === etag) return new Response(null, { status: 304, headers: { ETag: etag } });
    return new Response(body, { status: 200, headers: { ETag: etag, 'Content-Type': 'application/json' } });
  };
  return { sent, fetch };
}

it('hands a 304 on as the answer it revalidated', async () => {
  const s = server({ '/a': JSON.stringify({ n: 1 }) });
  const client = createClient<any>({ baseUrl: 'http://api.test', fetch: s.fetch });
  client.use(revalidating());
  const first = await client.GET('/a', {});
  const second = await client.GET('/a', {});
  expect([first.response.status, second.response.status]).toEqual([200, 200]);
  expect(second.data).toEqual({ n: 1 });
  expect(s.sent.map((r) => r.ifNoneMatch)).toEqual([null, `"7-/a"`]);
});

it('keeps at most its byte budget, dropping the least recently used, and never an answer over a quarter of it', async () => {
  const body = (n: number) => JSON.stringify({ pad: 'x'.repeat(n) });
  const paths = ['/1', '/2', '/3', '/4', '/5'];
  const s = server({ ...Object.fromEntries(paths.map((p) => [p, body(220)])), '/big': body(300) });
  const client = createClient<any>({ baseUrl: 'http://api.test', fetch: s.fetch });
  client.use(revalidating({ maxBytes: 1_000 }));
  for (const path of ['/1', '/2', '/3', '/4', '/1', '/5', '/big']) await client.GET(path, {});
  s.sent.length = 0;
  // Those held first (a 304 changes nothing held), then the others (each held answer made room for).
  for (const path of ['/1', '/3', '/4', '/5', '/2', '/big']) await client.GET(path, {});
  // Five answers of 230 bytes overflow 1 000: /2, used least recently, made room for /5; /big (310) was never held.
  expect(s.sent.map((r) => [r.path, r.ifNoneMatch !== null])).toEqual([
    ['/1', true],
    ['/3', true],
    ['/4', true],
    ['/5', true],
    ['/2', false],
    ['/big', false],
  ]);
});
