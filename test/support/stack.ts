import { inject } from 'vitest';
import type { Api } from './api.js';
import { startAppOn, type AppOptions, type TestApp } from './local-stack.js';

export { apiClient, eventually, sleep, testConfig, type Api, type ApiResponse } from './api.js';
export type { TestApp } from './local-stack.js';

/** The whole local stack over the shared DynamoDB Local, with fresh tables for this test file. */
export const startTestApp = (opts: AppOptions = {}): Promise<TestApp> => startAppOn(inject('dynamoEndpoint'), opts);

/** Create an agent (and start it when asked) through the API. */
export async function createAgent(api: Api, body: Record<string, unknown> = {}, start = false): Promise<string> {
  const created = await api('POST', '/agents', { name: 'test-agent', ...body });
  if (created.status !== 201) throw new Error(`create failed: ${created.text}`);
  const agentId = created.body.data.agentId as string;
  if (start) {
    const started = await api('POST', `/agents/${agentId}/start`);
    if (started.status !== 200) throw new Error(`start failed: ${started.text}`);
  }
  return agentId;
}

