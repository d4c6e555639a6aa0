import type { Config } from '../functions/agents/config.js';
import { startLocalApp, type LocalAppOptions } from '../local/app.js';
import { ensureTables, startDynamoDbLocal } from '../local/dynamodb.js';
import { apiClient, testConfig } from '../test/support/api.js';


/** DynamoDB Local in memory plus the whole local stack, for a benchmark run. */
export async function benchStack(opts: { config?: Partial<Config> } & Partial<Omit<LocalAppOptions, 'config' | 'endpoint'>> = {}) {
  const dynamo = await startDynamoDbLocal();
  const config = testConfig({ maxInFlight: 98, stopWaitWindowMs: 25_000, stopPollMs: 100, ...opts.config });
  await ensureTables(dynamo.endpoint, { agents: config.agentsTable, records: config.recordsTable });
  const { config: _ignored, ...rest } = opts;
  const app = await startLocalApp({ endpoint: dynamo.endpoint, config, ...rest });
  return {
    app,
    dynamo,
    api: apiClient(app.url),
    async close() {
      await app.close();
      await dynamo.stop();
    },
  };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

export function summary(label: string, values: number[]): string {
  return `${label.padEnd(48)} n=${String(values.length).padStart(3)}  p50 ${fmt(percentile(values, 50)).padStart(10)}  p95 ${fmt(percentile(values, 95)).padStart(10)}`;
}
