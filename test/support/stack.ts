import { afterAll, beforeAll, inject } from 'vitest';
import { GatedRuntime } from './runtimes.js';
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


/**
 * A stack for this test file whose agents created with `settings: { gated: true }` hold their
 * messages until the test releases them (GatedRuntime); started before the file's tests, closed
 * (every held message released) after them.
 */
export function gatedTestApp(opts: AppOptions = {}): { gated: GatedRuntime; app: () => TestApp } {
  const gated = new GatedRuntime();
  let app: TestApp | undefined;
  beforeAll(async () => {
    app = await startTestApp({ runtimes: gated.registry, ...opts });
  });
  afterAll(async () => {
    gated.releaseAll();
    await app?.close();
  });
  return { gated, app: () => app! };
}
