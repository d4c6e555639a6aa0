import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { FleetMember, FleetOperation, MemberState } from '../../agents/fleet-model.js';
import type { FleetStore as FleetStorePort, Key } from '../../agents/ports.js';
import { cancellationReasons, conditionFailedItem, untilProcessed } from './client.js';

/**
 * Fleet stop operations, in the records table beside the agents' records (its partition key is
 * `agentId`, which no agent's id can collide with here: agent ids are UUIDs):
 * - `FLEET` / `OP#<operationId>`: the operation, its selection cursor and its counts
 * - `FLEET` / `KEY#<sha256 of Idempotency-Key>`: which operation a key started
 * - `FLEET#<operationId>` / `<agentId>`: one member per selected agent, its stop and its outcome
 * All expire with the records' retention.
 */
const FLEET = 'FLEET';
const opKey = (operationId: string) => ({ agentId: FLEET, sk: `OP#${operationId}` });
const idempotencyKey = (keyHash: string) => ({ agentId: FLEET, sk: `KEY#${keyHash}` });
const memberPartition = (operationId: string) => `${FLEET}#${operationId}`;

/** An item as stored: with its storage keys and TTL. */
type Stored<T> = T & { agentId: string; sk: string; expiresAt: number };
const toOperation = ({ agentId: _pk, sk: _sk, expiresAt: _ttl, ...op }: Stored<FleetOperation>): FleetOperation => op;
const toMember = ({ agentId: _pk, sk, expiresAt: _ttl, updatedAt: _at, ...member }: Stored<FleetMember & { updatedAt: number }>): FleetMember => ({
  ...member,
  agentId: sk,
});

export class FleetStore implements FleetStorePort {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly expiresAt: (now: number) => number,
  ) {}

  /**
   * Create the operation, and with an idempotency key its key item, in one transaction. When the
   * key was used before, nothing is written and the operation it started is returned instead.
   */
  async create(op: FleetOperation, keyHash?: string): Promise<{ created: true } | { created: false; existing?: FleetOperation }> {
    const expiresAt = this.expiresAt(op.createdAt);
    const put = { TableName: this.tableName, Item: { ...opKey(op.operationId), ...op, expiresAt }, ConditionExpression: 'attribute_not_exists(sk)' };
    if (!keyHash) {
      try {
        await this.db.send(new PutCommand(put));
      } catch (err) {
        // The operationId is new: only our own first attempt (landed, its answer lost) can hold it.
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      }
      return { created: true };
    }
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: put },
            {
              Put: {
                TableName: this.tableName,
                Item: { ...idempotencyKey(keyHash), operationId: op.operationId, createdAt: op.createdAt, expiresAt },
                ConditionExpression: 'attribute_not_exists(sk)',
              },
            },
          ],
        }),
      );
      return { created: true };
    } catch (err) {
      const reasons = cancellationReasons(err);
      if (reasons?.[1]?.code !== 'ConditionalCheckFailed') throw err;
    }
    const key = await this.db.send(new GetCommand({ TableName: this.tableName, Key: idempotencyKey(keyHash), ConsistentRead: true }));
    // No operation: the key's first request is rolling it back (its workflow did not start).
    return { created: false, existing: key.Item && (await this.get(key.Item.operationId as string)) };
  }

  /**
   * Undo `create` when its workflow did not start: the operation and its key, so a retry may reuse
   * the key. Only while the operation is untouched (a start reported failed may have happened):
   * false when a step already advanced it, which then stands.
   */
  async remove(op: FleetOperation, keyHash?: string): Promise<boolean> {
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Delete: {
                TableName: this.tableName,
                Key: opKey(op.operationId),
                ConditionExpression: '#status = :running AND updatedAt = :createdAt',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':running': 'running', ':createdAt': op.createdAt },
              },
            },
            ...(keyHash ? [{ Delete: { TableName: this.tableName, Key: idempotencyKey(keyHash) } }] : []),
          ],
        }),
      );
      return true;
    } catch (err) {
      if (cancellationReasons(err)?.[0]?.code === 'ConditionalCheckFailed') return false;
      throw err;
    }
  }

  async get(operationId: string): Promise<FleetOperation | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.tableName, Key: opKey(operationId), ConsistentRead: true }));
    return out.Item ? toOperation(out.Item as Stored<FleetOperation>) : undefined;
  }

  /** Operations still running, with when each last advanced (a restarted server resumes them, the reaper heals stalled ones). */
  async listRunning(): Promise<{ operationId: string; updatedAt: number; correlationId?: string }[]> {
    return this.queryAll<{ operationId: string; updatedAt: number; correlationId?: string }>({
      KeyConditionExpression: 'agentId = :fleet AND begins_with(sk, :op)',
      FilterExpression: '#status = :running',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':fleet': FLEET, ':op': 'OP#', ':running': 'running' },
      ProjectionExpression: 'operationId, updatedAt, correlationId',
    });
  }

  /** Save progress of a running operation: its selection cursor and counts. */
  async saveProgress(operationId: string, progress: Pick<FleetOperation, 'selection' | 'counts' | 'failures'>, now: number): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: opKey(operationId),
        UpdateExpression: 'SET selection = :selection, counts = :counts, failures = :failures, updatedAt = :now',
        ConditionExpression: '#status = :running',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':selection': progress.selection, ':counts': progress.counts, ':failures': progress.failures, ':running': 'running', ':now': now },
      }),
    );
  }

  /** running -> completed or failed, once: false when it had already ended. */
  async end(
    operationId: string,
    end: Pick<FleetOperation, 'counts' | 'failures'> & { status: 'completed' | 'failed'; failure?: FleetOperation['failure'] },
    now: number,
  ): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: opKey(operationId),
          UpdateExpression: `SET #status = :status, counts = :counts, failures = :failures, completedAt = :now, updatedAt = :now${end.failure ? ', failure = :failure' : ''}`,
          ConditionExpression: '#status = :running',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':status': end.status,
            ':counts': end.counts,
            ':failures': end.failures,
            ':running': 'running',
            ':now': now,
            ...(end.failure && { ':failure': end.failure }),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return true;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      // Ended by our own first attempt (landed, its answer lost): still ours to announce.
      const current = conditionFailedItem<FleetOperation>(err);
      return current?.status === end.status && current.completedAt === now;
    }
  }

  /**
   * Add agents to the operation as `pending` members, before their stops begin (so a crash after a
   * stop never loses it); returns those that were not members yet (an earlier page or pass
   * selected the others). One BatchGet and a BatchWrite per 25, not a write per agent: one
   * execution runs an operation at a time, so the read and the write do not race.
   */
  async addMembers(operationId: string, agentIds: string[], now: number): Promise<string[]> {
    const existing = new Set<string>();
    const partition = memberPartition(operationId);
    await untilProcessed<Key>(
      agentIds.map((sk) => ({ agentId: partition, sk })),
      async (keys) => {
        const out = await this.db.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true, ProjectionExpression: 'sk' } } }));
        for (const item of out.Responses?.[this.tableName] ?? []) existing.add(item.sk as string);
        return (out.UnprocessedKeys?.[this.tableName]?.Keys ?? []) as Key[];
      },
    );
    const fresh = agentIds.filter((id) => !existing.has(id));
    await this.putMembers(operationId, fresh.map((agentId) => ({ agentId, state: 'pending' as MemberState })), now);
    return fresh;
  }

  /** Write members as they stand (their state, stop, error), 25 per BatchWrite. */
  async putMembers(operationId: string, members: FleetMember[], now: number): Promise<void> {
    const partition = memberPartition(operationId);
    const expiresAt = this.expiresAt(now);
    for (let i = 0; i < members.length; i += 25) {
      await untilProcessed(
        members.slice(i, i + 25).map(({ agentId, ...rest }) => ({ PutRequest: { Item: { agentId: partition, sk: agentId, ...rest, updatedAt: now, expiresAt } } })),
        async (requests) => {
          const out = await this.db.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: requests } }));
          return (out.UnprocessedItems?.[this.tableName] ?? []) as typeof requests;
        },
      );
    }
  }

  /** Every member of the operation, in agentId order. */
  async members(operationId: string): Promise<FleetMember[]> {
    const items = await this.queryAll<Stored<FleetMember & { updatedAt: number }>>({
      KeyConditionExpression: 'agentId = :p',
      ExpressionAttributeValues: { ':p': memberPartition(operationId) },
    });
    return items.map(toMember);
  }

  /** Every item a query of this table matches, following its pages. */
  private async queryAll<T>(query: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>): Promise<T[]> {
    const items: T[] = [];
    let startKey: Key | undefined;
    do {
      const out = await this.db.send(new QueryCommand({ ...query, TableName: this.tableName, ExclusiveStartKey: startKey }));
      items.push(...((out.Items ?? []) as T[]));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return items;
  }
}
