import { DeleteCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Key, Page } from '../../agents/ports.js';
import { conditionFailedItem } from './client.js';
import type { MessageRecord, StopRecord } from '../../agents/model.js';

export const MSG = 'MSG#';
export const STOP = 'STOP#';

export const messageKey = (agentId: string, messageId: string) => ({ agentId, sk: `${MSG}${messageId}` });
export const stopKey = (agentId: string, stopId: string) => ({ agentId, sk: `${STOP}${stopId}` });

export type Stored<T> = T & { sk: string; expiresAt: number };

/** Records as the API returns them: storage keys dropped, fields in a stable order. */
const MESSAGE_FIELDS = ['agentId', 'messageId', 'status', 'text', 'metadata', 'reply', 'error', 'stopId', 'task', 'createdAt', 'completedAt'] as const;
const STOP_FIELDS = [
  'agentId', 'stopId', 'outcome', 'reason', 'operationId', 'graceful', 'timeoutMs', 'requestedAt', 'deadline', 'stoppedAt', 'durationMs', 'drained', 'drainedMessageIds', 'interrupted', 'interruptedMessageIds', 'failed', 'failedMessageIds', 'stateSaved', 'closeError',
] as const;
function pick<T>(item: object, fields: readonly string[]): T {
  const source = item as Record<string, unknown>;
  return Object.fromEntries(fields.filter((f) => source[f] !== undefined).map((f) => [f, source[f]])) as T;
}
export const toMessage = (item: Stored<MessageRecord>) => pick<MessageRecord>(item, MESSAGE_FIELDS);
export const toStop = (item: Stored<StopRecord>) => pick<StopRecord>(item, STOP_FIELDS);

/**
 * The agent-records table and what its stores share, given to each of them: the client, the
 * records' expiry (TTL), a conditional write whose refusal is an answer, and a page of one kind.
 */
export class RecordTable {
  constructor(
    readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly retentionDays: number,
  ) {}

  /** TTL attribute (epoch seconds) for a record written at `now`. */
  expiresAt(now: number): number {
    return Math.floor(now / 1000) + this.retentionDays * 86_400;
  }

  /** A conditional write to the records table: false when its condition refused it (unless `ours` recognises its own landed first attempt). */
  async conditionalRecord(command: UpdateCommand | DeleteCommand, ours?: (current: (MessageRecord & { leaseToken?: string }) | null) => boolean): Promise<boolean> {
    try {
      await this.db.send(command as UpdateCommand);
      return true;
    } catch (err) {
      const current = conditionFailedItem<MessageRecord & { leaseToken?: string }>(err);
      if (current === undefined) throw err;
      return ours?.(current) ?? false;
    }
  }

  /** One page of an agent's records of one kind (`prefix`), in key order or reversed. */
  async page<T>(
    agentId: string,
    prefix: string,
    limit: number,
    startKey: Key | undefined,
    forward: boolean,
    view: (item: Stored<T>) => T,
  ): Promise<Page<T>> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'agentId = :a AND begins_with(sk, :p)',
        ExpressionAttributeValues: { ':a': agentId, ':p': prefix },
        Limit: limit,
        ExclusiveStartKey: startKey,
        ScanIndexForward: forward,
      }),
    );
    return { items: ((out.Items ?? []) as Stored<T>[]).map(view), lastKey: out.LastEvaluatedKey };
  }
}
