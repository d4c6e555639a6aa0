import type { Config } from '../../functions/agents/config.js';
import { startLocalApp, type LocalApp, type LocalAppOptions } from '../../local/app.js';
import { ensureTables, startDynamoDbLocal, type LocalDynamo } from '../../local/dynamodb.js';
import { FaultPlan } from '../../local/faults.js';
import { apiClient, testConfig, type Api } from './api.js';

/** The whole local stack (no vitest here: the benchmarks use it too). */
export interface TestApp extends LocalApp {
  api: Api;
  /** Every test stack can have faults injected below the SDK's retries (none until a rule is added). */
  faults: FaultPlan;
}

/** `authRecheckMs`: how often auth, while off, looks for a first key (0: at every request, so a test needs not wait it out). */
export type AppOptions = { config?: Partial<Config>; requireAuth?: boolean; authRecheckMs?: number } & Partial<Omit<LocalAppOptions, 'config' | 'endpoint' | 'auth'>>;

/** The local stack over the DynamoDB at `endpoint`, with fresh tables of its own. */
export async function startAppOn(endpoint: string, opts: AppOptions = {}): Promise<TestApp> {
  const { config: overrides, requireAuth, authRecheckMs, ...rest } = opts;
  const config = testConfig(overrides);
  const keysTable = `keys-${config.agentsTable.slice('agents-'.length)}`;
  await ensureTables(endpoint, { agents: config.agentsTable, records: config.recordsTable, apiKeys: keysTable });
  const faults = rest.faults ?? new FaultPlan();
  const app = await startLocalApp({ endpoint, config, auth: { keysTable, require: requireAuth ? 'always' : 'auto', ...(authRecheckMs !== undefined && { recheckMs: authRecheckMs }) }, ...rest, faults });
  return { ...app, faults, api: apiClient(app.url) };
}

/**
 * A DynamoDB Local of its own (on `port`, data in `dataDir`, or in memory), for the tests that
 * freeze, kill or restart it and for the benchmarks, with the local stack over it.
 */
export async function startOwnStack(opts: AppOptions & { port?: number; dataDir?: string } = {}): Promise<{
  dynamo: LocalDynamo;
  app: TestApp;
  api: Api;
  close(): Promise<void>;
}> {
  const { port, dataDir, ...appOptions } = opts;
  const dynamo = await startDynamoDbLocal({ port, dataDir });
  const app = await startAppOn(dynamo.endpoint, appOptions);
  return {
    dynamo,
    app,
    api: app.api,
    async close() {
      await app.close(0);
      await dynamo.stop();
    },
  };
}
