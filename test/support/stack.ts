import { inject } from 'vitest';
import type { Config } from '../../functions/agents/config.js';
import { apiClient, testConfig, type Api } from './api.js';
import { startLocalApp, type LocalApp, type LocalAppOptions } from '../../local/app.js';
import { ensureTables } from '../../local/dynamodb.js';

export interface TestApp extends LocalApp {
  api: Api;
}

export { apiClient, eventually, sleep, testConfig, type Api, type ApiResponse } from './api.js';

/** The whole local stack over the shared DynamoDB Local, with fresh tables for this test file. */
export async function startTestApp(
  opts: { config?: Partial<Config>; requireAuth?: boolean } & Partial<Omit<LocalAppOptions, 'config' | 'endpoint'>> = {},
): Promise<TestApp> {
  const endpoint = inject('dynamoEndpoint');
  const { config: overrides, requireAuth, ...rest } = opts;
  const config = testConfig(overrides);
  const keysTable = `keys-${config.agentsTable.slice('agents-'.length)}`;
  await ensureTables(endpoint, { agents: config.agentsTable, records: config.recordsTable, apiKeys: keysTable });
  const app = await startLocalApp({ endpoint, config, auth: { keysTable, require: requireAuth ? 'always' : 'auto' }, ...rest });
  return { ...app, api: apiClient(app.url) };
}

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

