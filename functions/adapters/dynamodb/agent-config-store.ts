import { BatchGetCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient, TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import type { AgentConfig } from '../../agents/model.js';
import type { ConfigStore } from '../../agents/ports.js';
import { untilProcessed } from './client.js';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** The configuration's key under the agent, in the records table (beside its messages, stops and conversation). */
export const configKey = (agentId: string) => ({ agentId, sk: 'CONFIG' });

const FIELDS = ['agentId', 'name', 'description', 'settings', 'runtime', 'agentCard', 'signingSecret', 'configVersion'] as const;
const toConfig = (item: Record<string, unknown>) =>
  Object.fromEntries(FIELDS.filter((f) => item[f] !== undefined).map((f) => [f, item[f]])) as unknown as AgentConfig;

/** How many configurations one process keeps (each up to about 33 KB). */
const CACHE_SIZE = 500;

/**
 * The agent's cold item: its configuration (name, description, settings, runtime, signing
 * secret), kept apart from the hot item every message writes, so those writes cost the same
 * whatever the agent holds. Every change writes a new `configVersion` here and into the hot item
 * in one transaction, so a configuration is immutable under its version: this store caches what
 * it has read by version, and a message finds its agent's configuration without a read once one
 * was read in this process. A read is eventually consistent first (half the units) and
 * consistent only when that one is behind the version asked for.
 */
export class AgentConfigStore implements ConfigStore {
  private readonly cache = new Map<string, AgentConfig>();

  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  /** What this process last read of the agent's configuration (any version). */
  cached(agentId: string): AgentConfig | undefined {
    return this.cache.get(agentId);
  }

  /** The configuration of this version; undefined when there is none (the agent is gone), or the one there is when it is not this version. */
  async get(agentId: string, configVersion: string): Promise<AgentConfig | undefined> {
    const cached = this.cache.get(agentId);
    if (cached?.configVersion === configVersion) return cached;
    const eventual = await this.read(agentId, false);
    if (eventual?.configVersion === configVersion) return eventual;
    return this.read(agentId, true);
  }

  /** Read it from the table (and keep it). */
  async read(agentId: string, consistent: boolean): Promise<AgentConfig | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.tableName, Key: configKey(agentId), ConsistentRead: consistent }));
    if (!out.Item) {
      this.cache.delete(agentId);
      return undefined;
    }
    return this.keep(toConfig(out.Item));
  }

  /** The configurations of these versions, in one BatchGet for those not cached (consistent: a list shows what it lists). */
  async getMany(wanted: { agentId: string; configVersion: string }[]): Promise<Map<string, AgentConfig>> {
    const found = new Map<string, AgentConfig>();
    const missing: string[] = [];
    for (const { agentId, configVersion } of wanted) {
      const cached = this.cache.get(agentId);
      if (cached?.configVersion === configVersion) found.set(agentId, cached);
      else missing.push(agentId);
    }
    await untilProcessed<Record<string, unknown>>(
      missing.map(configKey),
      async (pending) => {
        const out = await this.db.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: true } } }));
        for (const item of out.Responses?.[this.tableName] ?? []) found.set(String(item.agentId), this.keep(toConfig(item)));
        return (out.UnprocessedKeys?.[this.tableName]?.Keys ?? []) as Record<string, unknown>[];
      },
    );
    return found;
  }

  // Transaction items: the agent store writes the configuration with the hot item, in one transaction.

  put(config: AgentConfig, createdAt: number): TransactItem {
    return { Put: { TableName: this.tableName, Item: { ...configKey(config.agentId), ...config, createdAt }, ConditionExpression: 'attribute_not_exists(sk)' } };
  }

  /** Set and remove fields (names from the caller's allow-list) under a new version. */
  update(agentId: string, configVersion: string, set: Record<string, unknown>, remove: string[]): TransactItem {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':cv': configVersion };
    const sets = ['configVersion = :cv'];
    Object.entries(set).forEach(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:v${i}`] = value;
      sets.push(`#f${i} = :v${i}`);
    });
    const removes = remove.map((field, i) => {
      names[`#r${i}`] = field;
      return `#r${i}`;
    });
    return {
      Update: {
        TableName: this.tableName,
        Key: configKey(agentId),
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ConditionExpression: 'attribute_exists(sk)',
        ...(Object.keys(names).length > 0 && { ExpressionAttributeNames: names }),
        ExpressionAttributeValues: values,
      },
    };
  }

  delete(agentId: string): TransactItem {
    return { Delete: { TableName: this.tableName, Key: configKey(agentId) } };
  }

  /** A configuration this process wrote or read: kept (the oldest goes past CACHE_SIZE). */
  keep(config: AgentConfig): AgentConfig {
    this.cache.delete(config.agentId);
    this.cache.set(config.agentId, config);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return config;
  }

  /** Forget one (a delete). */
  forget(agentId: string): void {
    this.cache.delete(agentId);
  }
}
