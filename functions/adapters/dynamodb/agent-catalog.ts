import { randomUUID } from 'node:crypto';
import { BatchGetCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { AgentConditionFailed, type AgentCatalogStore, type Key, type Page } from '../../agents/ports.js';
import { untilProcessed } from './client.js';
import { type AgentConfig, type AgentState, type AgentStatus, type StoredAgent } from '../../agents/model.js';
import { BY_STATUS_INDEX } from './tables.js';
import type { AgentTable } from './agent-table.js';

/** The agents as a catalog: read, list by status, create, change, delete, start, and the reaper's place in the index. */
export class AgentCatalog implements AgentCatalogStore {
  constructor(private readonly table: AgentTable) {}

  get(agentId: string): Promise<AgentState | undefined> {
    return this.table.get(agentId);
  }

  /** The whole agent: its state, and the configuration that state names (cached by version). */
  async getWhole(agentId: string): Promise<StoredAgent | undefined> {
    for (let attempt = 0; ; attempt++) {
      const state = await this.get(agentId);
      if (!state) return undefined;
      const config = await this.table.configs.get(agentId, state.configVersion);
      // Read between the two writes of a change (or the agent is going): read the state again.
      if (config?.configVersion === state.configVersion) return { ...config, ...state };
      if (attempt >= 2) throw new Error(`agent ${agentId}: its state and configuration disagree`);
    }
  }

  /** Both items of a new agent, in one transaction. */
  async create(state: AgentState, config: AgentConfig): Promise<void> {
    const reasons = await this.table.transact([
      {
        Put: {
          TableName: this.table.tableName,
          Item: state,
          ConditionExpression: 'attribute_not_exists(agentId)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      this.table.configs.put(config, state.createdAt),
    ]);
    if (reasons) this.table.refused(reasons);
    this.table.configs.keep(config);
  }

  /** Replace the agent's signing secret (any status): the `http` runtime signs with it from now on. */
  async setSigningSecret(agentId: string, secret: string, now: number): Promise<void> {
    const configVersion = randomUUID();
    const reasons = await this.table.transact([
      {
        Update: {
          TableName: this.table.tableName,
          Key: { agentId },
          UpdateExpression: 'SET configVersion = :cv, updatedAt = :now',
          ConditionExpression: 'attribute_exists(agentId)',
          ExpressionAttributeValues: { ':cv': configVersion, ':now': now },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      this.table.configs.update(agentId, configVersion, { signingSecret: secret }, []),
    ]);
    if (reasons) this.table.refused(reasons);
  }

  /** One page of agents: by status through the index (cost grows with the page), or all by Scan. */
  async list(status: AgentStatus | undefined, limit: number, startKey?: Key): Promise<Page<StoredAgent>> {
    let states: AgentState[];
    let lastKey: Key | undefined;
    if (!status) {
      const out = await this.table.db.send(new ScanCommand({ TableName: this.table.tableName, Limit: limit, ExclusiveStartKey: startKey }));
      states = (out.Items ?? []) as AgentState[];
      lastKey = out.LastEvaluatedKey;
    } else {
      const keys = await this.queryByStatus(status, { limit, startKey });
      states = (await this.getMany(keys.items.map((k) => k.agentId))).filter((a) => a.status === status);
      lastKey = keys.lastKey;
    }
    const configs = await this.table.configs.getMany(states.map(({ agentId, configVersion }) => ({ agentId, configVersion })));
    // An agent deleted between the two reads is not listed.
    const items = states.flatMap((state) => {
      const config = configs.get(state.agentId);
      return config ? [{ ...config, ...state }] : [];
    });
    return { items, lastKey };
  }

  /**
   * Agents of one status, counted in the byStatus index (keys only): 0.5 RCU per 4 KB of keys,
   * about 1 RCU per 120 agents, up to 1 MB of keys per round trip.
   */
  async count(status: AgentStatus): Promise<number> {
    let total = 0;
    let startKey: Key | undefined;
    do {
      const out = await this.table.db.send(
        new QueryCommand({
          TableName: this.table.tableName,
          IndexName: BY_STATUS_INDEX,
          KeyConditionExpression: '#status = :status',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': status },
          Select: 'COUNT',
          ExclusiveStartKey: startKey,
        }),
      );
      total += out.Count ?? 0;
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return total;
  }

  /** Keys from the byStatus index, optionally only those due at or before `dueBy`. */
  async queryByStatus(
    status: AgentStatus,
    opts: { limit: number; startKey?: Key; dueBy?: number },
  ): Promise<Page<{ agentId: string; dueAt: number }>> {
    const due = opts.dueBy !== undefined;
    const out = await this.table.db.send(
      new QueryCommand({
        TableName: this.table.tableName,
        IndexName: BY_STATUS_INDEX,
        KeyConditionExpression: due ? '#status = :status AND dueAt <= :dueBy' : '#status = :status',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: due ? { ':status': status, ':dueBy': opts.dueBy } : { ':status': status },
        Limit: opts.limit,
        ExclusiveStartKey: opts.startKey,
      }),
    );
    return { items: (out.Items ?? []) as { agentId: string; dueAt: number }[], lastKey: out.LastEvaluatedKey };
  }

  /** Full items for ids, in the order given (BatchGet answers in any order and may leave keys unprocessed). */
  async getMany(ids: string[]): Promise<AgentState[]> {
    const found = new Map<string, AgentState>();
    await untilProcessed<Key>(
      ids.map((agentId) => ({ agentId })),
      async (pending) => {
        const out = await this.table.db.send(new BatchGetCommand({ RequestItems: { [this.table.tableName]: { Keys: pending, ConsistentRead: true } } }));
        for (const item of (out.Responses?.[this.table.tableName] ?? []) as AgentState[]) found.set(item.agentId, item);
        return (out.UnprocessedKeys?.[this.table.tableName]?.Keys ?? []) as Key[];
      },
    );
    return ids.flatMap((id) => found.get(id) ?? []);
  }

  /**
   * Change an agent: configuration fields (`set`, `remove`: names from the caller's allow-list,
   * the update schema, never raw client keys) with the hot item's version and `configVersion`, in
   * one transaction; the idle timeout is the hot item's own. `ifVersion` enforces If-Match;
   * `requireInactive` guards runtime and settings. Returns the agent as it now is.
   */
  async update(
    agentId: string,
    change: { set: Record<string, unknown>; remove: string[]; idleTimeoutMs?: number | null },
    opts: { ifVersion?: number; requireInactive: boolean; now: number },
  ): Promise<StoredAgent> {
    const writeId = randomUUID();
    const configChanges = Object.keys(change.set).length + change.remove.length > 0;
    const configVersion = randomUUID();
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':one': 1, ':now': opts.now, ':writeId': writeId };
    const sets = ['version = version + :one', 'updatedAt = :now', 'writeId = :writeId'];
    if (configChanges) {
      sets.push('configVersion = :cv');
      values[':cv'] = configVersion;
    }
    if (change.idleTimeoutMs !== undefined) {
      sets.push('idleTimeoutMs = :idle');
      values[':idle'] = change.idleTimeoutMs;
    }
    const conditions = ['attribute_exists(agentId)'];
    if (opts.ifVersion !== undefined) {
      conditions.push('version = :expected');
      values[':expected'] = opts.ifVersion;
    }
    if (opts.requireInactive) {
      conditions.push('#status = :inactive');
      names['#status'] = 'status';
      values[':inactive'] = 'inactive';
    }
    const hot = {
      TableName: this.table.tableName,
      Key: { agentId },
      UpdateExpression: `SET ${sets.join(', ')}`,
      ConditionExpression: conditions.join(' AND '),
      ...(Object.keys(names).length > 0 && { ExpressionAttributeNames: names }),
      ExpressionAttributeValues: values,
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    };
    const ours = (current: AgentState | null) => current?.writeId === writeId;
    if (!configChanges) {
      const out = await this.table.conditional(new UpdateCommand({ ...hot, ReturnValues: 'ALL_NEW' }), ours);
      const state = out.Attributes as AgentState;
      const config = await this.table.configs.get(agentId, state.configVersion);
      if (config) return { ...config, ...state };
    } else {
      const reasons = await this.table.transact([{ Update: hot }, this.table.configs.update(agentId, configVersion, change.set, change.remove)]);
      if (reasons) this.table.refused(reasons);
    }
    const agent = await this.getWhole(agentId);
    if (!agent) throw new AgentConditionFailed(null);
    return agent;
  }

  /** Delete both items, only while inactive (a running agent must be stopped first). */
  async delete(agentId: string): Promise<void> {
    const reasons = await this.table.transact([
      {
        Delete: {
          TableName: this.table.tableName,
          Key: { agentId },
          ConditionExpression: 'attribute_exists(agentId) AND #status = :inactive',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':inactive': 'inactive' },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      this.table.configs.delete(agentId),
    ]);
    this.table.configs.forget(agentId);
    if (reasons) this.table.refused(reasons);
  }

  /**
   * inactive -> active, in one conditional write. Conditioned on the version the caller read, so the
   * idle deadline it computed from that item's idleTimeoutMs is the one stored (a concurrent PATCH
   * makes this fail and the caller retries).
   */
  async start(agentId: string, now: number, expectedVersion: number, dueAt: number): Promise<AgentState> {
    const writeId = randomUUID();
    const out = await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId },
        UpdateExpression:
          'SET #status = :active, startedAt = :now, lastActivityAt = :now, updatedAt = :now, #leases = :empty, ' +
          'version = version + :one, dueAt = :dueAt, writeId = :writeId REMOVE #stop',
        ConditionExpression: 'attribute_exists(agentId) AND #status = :inactive AND version = :expected',
        ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#stop': 'stop' },
        ExpressionAttributeValues: {
          ':active': 'active',
          ':inactive': 'inactive',
          ':now': now,
          ':empty': {},
          ':one': 1,
          ':dueAt': dueAt,
          ':expected': expectedVersion,
          ':writeId': writeId,
        },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      (current) => current?.writeId === writeId,
    );
    return out.Attributes as AgentState;
  }

  /** Move an agent's place in the byStatus index, only if it is still in `status` (and matches `match`; undefined: absent). */
  async moveDueAt(agentId: string, status: AgentStatus, dueAt: number, match: Record<string, number | undefined> = {}): Promise<void> {
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ':status': status, ':dueAt': dueAt };
    const conditions = ['#status = :status'];
    Object.entries(match).forEach(([field, value], i) => {
      names[`#c${i}`] = field;
      if (value === undefined) {
        conditions.push(`attribute_not_exists(#c${i})`);
        return;
      }
      values[`:c${i}`] = value;
      conditions.push(`#c${i} = :c${i}`);
    });
    await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId },
        UpdateExpression: 'SET dueAt = :dueAt',
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  }
}
