import { BatchWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { untilProcessed } from '../functions/adapters/dynamodb/client.js';
import { configKey } from '../functions/adapters/dynamodb/agent-config-store.js';
import type { StoredAgent } from '../functions/agents/model.js';
import { startOwnStack, type AppOptions } from '../test/support/local-stack.js';
import { meter } from './meter.js';

/** DynamoDB Local in memory plus the whole local stack, for a benchmark run. */
export const benchStack = (opts: AppOptions = {}) =>
  startOwnStack({ ...opts, config: { maxInFlight: 98, stopWaitWindowMs: 25_000, stopPollMs: 100, ...opts.config } });

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

export function summary(label: string, values: number[]): string {
  return `${label.padEnd(48)} n=${String(values.length).padStart(3)}  p50 ${fmt(percentile(values, 50)).padStart(10)}  p95 ${fmt(percentile(values, 95)).padStart(10)}`;
}

/** Count the DynamoDB calls made through `db` (every store of the local stack uses this one client). */
export function countCalls(db: DynamoDBDocumentClient) {
  const metered = meter(db);
  return {
    reset: metered.reset,
    /** Reads, writes (transactions included) and transactions so far. */
    counts: () => {
      const { reads, writes } = metered.totals();
      return { reads, writes, transactions: metered.totals((c) => c.command === 'TransactWriteItems').calls };
    },
  };
}

/**
 * A figure next to its goal (at most `bound`, or at least with `atLeast`); a miss is printed and
 * makes the process exit non-zero.
 */
export function goal(label: string, value: number, bound: number, unit: string, digits = 1, atLeast = false): string {
  const met = atLeast ? value >= bound : value <= bound;
  if (!met) process.exitCode = 1;
  return `${label.padEnd(52)} ${value.toFixed(digits).padStart(8)} ${unit.padEnd(3)} goal ${atLeast ? '>=' : '<='} ${bound} ${unit}  ${met ? 'met' : 'MISSED'}`;
}

/** The yardstick: one raw single-item conditional write on an active agent, through the same client. */
export const rawConditionalWrite = (db: DynamoDBDocumentClient, tableName: string, agentId: string) =>
  db.send(
    new UpdateCommand({
      TableName: tableName,
      Key: { agentId },
      UpdateExpression: 'SET benchCounter = if_not_exists(benchCounter, :zero) + :one',
      ConditionExpression: 'attribute_exists(agentId) AND #status = :active',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':active': 'active' },
    }),
  );

/** Write agents straight into their tables (the hot item and the configuration), 25 items per BatchWrite: a fleet set up in seconds. */
export async function putAgents(db: DynamoDBDocumentClient, tables: { agents: string; records: string }, agents: Omit<StoredAgent, 'configVersion'>[]): Promise<void> {
  const items = agents.flatMap(({ name, description, settings, runtime, signingSecret, ...state }) => {
    const configVersion = 'bench';
    const config = { ...configKey(state.agentId), name, description, settings, runtime, signingSecret, configVersion, createdAt: state.createdAt };
    return [
      { table: tables.agents, Item: { ...state, configVersion } },
      { table: tables.records, Item: JSON.parse(JSON.stringify(config)) as Record<string, unknown> },
    ];
  });
  for (let i = 0; i < items.length; i += 25) {
    type Request = { table: string; Item: Record<string, unknown> };
    await untilProcessed<Request>(items.slice(i, i + 25), async (batch) => {
      const RequestItems: Record<string, { PutRequest: { Item: Record<string, unknown> } }[]> = {};
      for (const { table, Item } of batch) (RequestItems[table] ??= []).push({ PutRequest: { Item } });
      const out = await db.send(new BatchWriteCommand({ RequestItems }));
      return Object.entries(out.UnprocessedItems ?? {}).flatMap(([table, requests]) => requests.map((r) => ({ table, Item: r.PutRequest!.Item! })));
    });
  }
}
