import { DynamoDBServiceException } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { errorResponse } from '../../functions/http/middleware.js';
import { startOwnStack } from '../support/local-stack.js';
import { createAgent, type Api } from '../support/stack.js';

/**
 * A store that does not answer (DynamoDB Local frozen with SIGSTOP) or refuses connections
 * (stopped): every request, the auth check included, is answered 503 with Retry-After in the
 * envelope, within the SDK's bounded timeouts; none hangs, none is a 500.
 */
let stack: Awaited<ReturnType<typeof startOwnStack>>;
let api: Api;
beforeAll(async () => {
  // Bounded, and above what DynamoDB Local takes to answer on a loaded 2-core machine (the set-up runs through it too).
  stack = await startOwnStack({ requireAuth: true, store: { requestTimeoutMs: 1_500, maxAttempts: 2 } });
  const key = (await stack.app.keys!.create('outage')).key;
  api = (method, path, body, headers) => stack.api(method, path, body, { authorization: `Bearer ${key}`, ...headers });
}, 60_000);
afterAll(() => stack.close());

const unavailable = {
  success: false,
  code: 'UNAVAILABLE',
  error: 'Service temporarily unavailable: the database did not answer in time; retry in a moment',
};

it('answers 503 with Retry-After while the store does not answer, and recovers when it does', async () => {
  const agentId = await createAgent(api, {}, true);
  process.kill(stack.dynamo.javaPid, 'SIGSTOP');
  try {
    const answers = await Promise.all([
      api('GET', `/agents/${agentId}`),
      api('POST', '/agents', { name: 'during the freeze' }),
      api('POST', `/agents/${agentId}/messages`, { text: 'hello?' }),
      api('POST', `/agents/${agentId}/stop`, {}),
      api('GET', '/agents', undefined, { authorization: 'Bearer agk_0123456789abcdef_' + 'x'.repeat(43) }),
    ]);
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.body).toEqual(unavailable);
    }
  } finally {
    process.kill(stack.dynamo.javaPid, 'SIGCONT');
  }
  expect((await api('GET', `/agents/${agentId}`)).status).toBe(200);
});

it('answers 503, never 500, when the store refuses connections, the auth check included', async () => {
  await stack.dynamo.stop();
  for (const [method, path] of [['GET', '/agents'], ['POST', '/agents']] as const) {
    const res = await api(method, path, method === 'POST' ? { name: 'x' } : undefined);
    expect(res.status).toBe(503);
    expect(res.body).toEqual(unavailable);
  }
});

it("maps the store's own failures (InternalFailure, a 5xx) to 503, a bug to 500", () => {
  const storeFault = (name: string, httpStatusCode: number) =>
    new DynamoDBServiceException({ name, $fault: 'server', $metadata: { httpStatusCode }, message: name });
  for (const err of [storeFault('InternalFailure', 500), storeFault('InternalServerError', 500), storeFault('SomethingNew', 503)]) {
    const res = errorResponse(err);
    expect(res.statusCode, err.name).toBe(503);
    expect(JSON.parse(res.body as string)).toEqual(unavailable);
  }
  expect(errorResponse(new TypeError('x is undefined')).statusCode).toBe(500);
});
