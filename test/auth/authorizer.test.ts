import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKeysStore } from '../../functions/auth/api-keys.js';
import { handler, useApiKeysStore } from '../../functions/auth/authorizer.js';
import { startTestApp, type TestApp } from '../support/stack.js';

/** The deployed authorizer's handler, given API Gateway HTTP API (payload 2.0) authorizer events. */
let app: TestApp;
let keys: ApiKeysStore;
beforeAll(async () => {
  app = await startTestApp();
  keys = app.keys!;
  useApiKeysStore(keys);
});
afterAll(async () => {
  await app.close();
});

function authorizerEvent(authorization?: string): APIGatewayRequestAuthorizerEventV2 {
  return {
    version: '2.0',
    type: 'REQUEST',
    routeArn: 'arn:aws:execute-api:eu-west-1:123456789012:abcdef123/$default/POST/agents/4b9c3c49-4c5a-4e7b-9d2f-2f1b7f0e7c11/stop',
    identitySource: authorization ? [authorization] : [],
    routeKey: 'POST /agents/{agentId}/stop',
    rawPath: '/agents/4b9c3c49-4c5a-4e7b-9d2f-2f1b7f0e7c11/stop',
    rawQueryString: '',
    cookies: [],
    headers: { 'content-type': 'application/json', ...(authorization && { authorization }) },
    queryStringParameters: {},
    requestContext: {
      accountId: '123456789012',
      apiId: 'abcdef123',
      domainName: 'abcdef123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abcdef123',
      http: { method: 'POST', path: '/agents/4b9c3c49-4c5a-4e7b-9d2f-2f1b7f0e7c11/stop', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' },
      requestId: 'Ab1cDEfGhIJKlmN=',
      routeKey: 'POST /agents/{agentId}/stop',
      stage: '$default',
      time: '24/Nov/2026:02:00:00 +0000',
      timeEpoch: 1795485600000,
    },
    pathParameters: { agentId: '4b9c3c49-4c5a-4e7b-9d2f-2f1b7f0e7c11' },
    stageVariables: {},
  } as APIGatewayRequestAuthorizerEventV2;
}

it('authorizes a valid key and passes its name in the context', async () => {
  const { key, info } = await keys.create('deploy-bot');
  const result = await handler(authorizerEvent(`Bearer ${key}`));
  expect(result).toEqual({ isAuthorized: true, context: { keyId: info.keyId, keyName: 'deploy-bot' } });
});

it('refuses a missing, malformed, unknown or revoked key alike', async () => {
  const { key, info } = await keys.create('to-revoke');
  await keys.revoke(info.keyId);
  for (const header of [undefined, 'Bearer', 'Token abc', `Bearer agk_0000000000000000_${'a'.repeat(43)}`, `Bearer ${key}`, `Bearer ${key.slice(0, -1)}B`]) {
    const result = await handler(authorizerEvent(header));
    expect(result.isAuthorized, String(header)).toBe(false);
  }
});
