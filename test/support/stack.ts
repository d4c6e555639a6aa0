import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { type Config } from '../../functions/agents/config.js';
import { startLocalApp, type LocalApp, type LocalAppOptions } from '../../local/app.js';
import { ensureTables } from '../../local/dynamodb.js';

export interface TestApp extends LocalApp {
  api: Api;
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export type Api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<ApiResponse>;

export const testConfig = (overrides: Partial<Config> = {}): Config => {
  const suffix = randomUUID().slice(0, 8);
  return {
    agentsTable: `agents-${suffix}`,
    recordsTable: `records-${suffix}`,
    leaseTtlMs: 60_000,
    maxInFlight: 50,
    stopWaitWindowMs: 10_000,
    stopPollMs: 20,
    recordRetentionDays: 30,
    stuckStopGraceMs: 300_000,
    ...overrides,
  };
};

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

export function apiClient(base: string): Api {
  return async (method, path, body, headers = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${base}${path}`, init);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
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

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll until `check` returns a value (or throw after `timeoutMs`). */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
