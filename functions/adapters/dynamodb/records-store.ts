import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Key, Page, RecordStore } from '../../agents/ports.js';
import { conditionFailedItem, untilProcessed } from './client.js';
import type { A2ATask, MessageOutcome, MessageRecord, StopRecord } from '../../agents/model.js';

const MSG = 'MSG#';
const STOP = 'STOP#';
const CONVERSATION = 'STATE#conversation';
const A2A_STATE = 'STATE#a2a';

/** One turn of an llm agent's conversation. */
export interface Turn {
  role: 'user' | 'assistant';
  content: string;
}
export interface Conversation {
  turns: Turn[];
  version: number;
  savedAt?: number;
}
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
const toStop = (item: Stored<StopRecord>) => pick<StopRecord>(item, STOP_FIELDS);

/** The agent-records table: message and stop records under the agent, expired by TTL. */
export class RecordsStore implements RecordStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly retentionDays: number,
  ) {}

  /** TTL attribute (epoch seconds) for a record written at `now`. */
  expiresAt(now: number): number {
    return Math.floor(now / 1000) + this.retentionDays * 86_400;
  }

  async getMessage(agentId: string, messageId: string): Promise<MessageRecord | undefined> {
    const out = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: messageKey(agentId, messageId), ConsistentRead: true }),
    );
    return out.Item ? toMessage(out.Item as Stored<MessageRecord>) : undefined;
  }

  /**
   * Admit a message, first write: its `processing` record, carrying the admission's token.
   * Race admit vs admit (same messageId): only if no record of that id exists; otherwise the
   * stored record is returned (ALL_OLD, no read), and the caller answers with it, never a second
   * run. Undefined when written.
   */
  async createMessageRecord(record: MessageRecord, token: string, now: number): Promise<MessageRecord | undefined> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...messageKey(record.agentId, record.messageId), ...record, leaseToken: token, expiresAt: this.expiresAt(now) },
          ConditionExpression: 'attribute_not_exists(sk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return undefined;
    } catch (err) {
      const existing = conditionFailedItem<Stored<MessageRecord> & { leaseToken?: string }>(err);
      if (!existing) throw err;
      // Our own first attempt, landed and its answer lost: written.
      if (existing.leaseToken === token) return undefined;
      return toMessage(existing);
    }
  }


  /** A message refused admission: its record goes (only this admission's, still `processing`); false when it had ended instead. */
  async discardMessageRecord(agentId: string, messageId: string, token: string): Promise<boolean> {
    return this.conditionalRecord(
      new DeleteCommand({
        TableName: this.tableName,
        Key: messageKey(agentId, messageId),
        ConditionExpression: 'leaseToken = :token AND #status = :processing',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':token': token, ':processing': 'processing' },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      // Gone already: our own first attempt deleted it. Still there and ended: this admission's
      // lease had landed after all (its answer lost) and a stop ended the message.
      (current) => current === null,
    );
  }

  /**
   * A `processing` record whose lease never came (its admission died between its two writes):
   * recorded `failed`, only that record (by its createdAt) and only while still `processing`.
   */
  async settleUnleased(agentId: string, messageId: string, createdAt: number, error: string, now: number): Promise<boolean> {
    return this.conditionalRecord(new UpdateCommand(this.finishMessage(agentId, messageId, { status: 'failed', error }, now, { createdAt }).Update));
  }

  /**
   * Complete a message, first write: its record takes the outcome while its lease still holds it.
   * Race late completion vs re-admission: only the record of this admission (its token) and only
   * while `processing`: a stop that took the lease has recorded the message `interrupted`, and that
   * stands. False when refused. (A message is `processing` only while leased; the reverse may be
   * briefly untrue: between this write and `releaseLease`.)
   */
  async recordOutcome(a: {
    agentId: string;
    messageId: string;
    token: string;
    outcome: Extract<MessageOutcome, { status: 'completed' | 'failed' }>;
    now: number;
  }): Promise<boolean> {
    return this.conditionalRecord(
      new UpdateCommand(this.finishMessage(a.agentId, a.messageId, a.outcome, a.now, { token: a.token }).Update),
      (current) => current?.leaseToken === a.token && current.status === a.outcome.status && current.completedAt === a.now,
    );
  }


  /**
   * The record half of ending a message. With `fence`, it refuses a message that already ended
   * and, given the admission's token (or its createdAt), a record written by another admission of
   * the same id. A stop's commit writes only records that exist (`exists`), a failed one only
   * while still `processing`, and an interrupted one without the reply or error a completion
   * may have written first.
   */
  finishMessage(
    agentId: string,
    messageId: string,
    outcome: MessageOutcome,
    now: number,
    fence: { token?: string; createdAt?: number } | { exists: true; processing: boolean },
  ) {
    const [field, value] =
      outcome.status === 'completed' ? ['reply', outcome.reply] : outcome.status === 'failed' ? ['error', outcome.error] : ['stopId', outcome.stopId];
    const byStop = 'exists' in fence;
    const conditions = byStop
      ? ['attribute_exists(sk)', ...(fence.processing ? ['#status = :processing'] : [])]
      : ['#status = :processing', ...(fence.token ? ['leaseToken = :token'] : []), ...(fence.createdAt !== undefined ? ['createdAt = :createdAt'] : [])];
    const cut = outcome.status === 'interrupted';
    return {
      Update: {
        TableName: this.tableName,
        Key: messageKey(agentId, messageId),
        UpdateExpression: `SET #status = :status, #detail = :detail, completedAt = :now${cut ? ' REMOVE reply, #error' : ''}`,
        ConditionExpression: conditions.join(' AND '),
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
        ExpressionAttributeNames: { '#status': 'status', '#detail': field, ...(cut && { '#error': 'error' }) },
        ExpressionAttributeValues: {
          ':status': outcome.status,
          ':detail': value,
          ':now': now,
          ...(conditions.includes('#status = :processing') && { ':processing': 'processing' }),
          ...(!byStop && fence.token && { ':token': fence.token }),
          ...(!byStop && fence.createdAt !== undefined && { ':createdAt': fence.createdAt }),
        },
      },
    };
  }

  /** A conditional write to the records table: false when its condition refused it (unless `ours` recognises its own landed first attempt). */
  private async conditionalRecord(command: UpdateCommand | DeleteCommand, ours?: (current: (MessageRecord & { leaseToken?: string }) | null) => boolean): Promise<boolean> {
    try {
      await this.db.send(command as UpdateCommand);
      return true;
    } catch (err) {
      const current = conditionFailedItem<MessageRecord & { leaseToken?: string }>(err);
      if (current === undefined) throw err;
      return ours?.(current) ?? false;
    }
  }

  /**
   * An a2a agent's task for a message (its id and state as last seen; `cancel`: what a stop's
   * cancel came to), onto the message's record if it is there.
   */
  async recordTask(agentId: string, messageId: string, task: Partial<A2ATask>): Promise<void> {
    const entries = Object.entries(task).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return;
    await this.db
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: messageKey(agentId, messageId),
          // The whole map when the id is given (the first sight of the task), else its fields.
          UpdateExpression: task.id !== undefined ? 'SET #task = :task' : `SET ${entries.map((_, i) => `#task.#f${i} = :v${i}`).join(', ')}`,
          ConditionExpression: task.id !== undefined ? 'attribute_exists(agentId)' : 'attribute_exists(#task)',
          ExpressionAttributeNames: { '#task': 'task', ...(task.id === undefined && Object.fromEntries(entries.map(([k], i) => [`#f${i}`, k]))) },
          ExpressionAttributeValues: task.id !== undefined ? { ':task': Object.fromEntries(entries) } : Object.fromEntries(entries.map(([, v], i) => [`:v${i}`, v])),
        }),
      )
      .catch((err: unknown) => {
        // The record is gone (deleted with its agent) or never had a task: nothing to note.
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      });
  }

  /** An a2a agent's conversation state: the task waiting on the user that its next message continues. */
  async getA2AState(agentId: string): Promise<{ waitingTaskId?: string }> {
    const out = await this.db.send(new GetCommand({ TableName: this.tableName, Key: { agentId, sk: A2A_STATE }, ConsistentRead: true }));
    const waiting = out.Item?.waitingTaskId;
    return typeof waiting === 'string' ? { waitingTaskId: waiting } : {};
  }

  /** A task now waits on the user: the next message continues it. */
  async setA2AWaiting(agentId: string, taskId: string, now: number): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { agentId, sk: A2A_STATE },
        UpdateExpression: 'SET waitingTaskId = :t, updatedAt = :now',
        ExpressionAttributeValues: { ':t': taskId, ':now': now },
      }),
    );
  }

  /**
   * The task a message continued waits no more. Race: a continuation that ends after another
   * message left a newer task waiting would otherwise forget that one; only this task is cleared.
   */
  async clearA2AWaiting(agentId: string, taskId: string, now: number): Promise<void> {
    await this.db
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { agentId, sk: A2A_STATE },
          UpdateExpression: 'REMOVE waitingTaskId SET updatedAt = :now',
          ConditionExpression: 'waitingTaskId = :t',
          ExpressionAttributeValues: { ':t': taskId, ':now': now },
        }),
      )
      .catch((err: unknown) => {
        // Another task waits now (or none): it stays.
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      });
  }

  /** An llm agent's conversation: its state (absent: an empty one, version 0). */
  async getConversation(agentId: string): Promise<Conversation> {
    const out = await this.db.send(new GetCommand({ TableName: this.tableName, Key: { agentId, sk: CONVERSATION }, ConsistentRead: true }));
    const item = out.Item as (Conversation & { sk: string }) | undefined;
    return item ? { turns: item.turns ?? [], version: item.version ?? 0, ...(item.savedAt !== undefined && { savedAt: item.savedAt }) } : { turns: [], version: 0 };
  }

  /** Replace the conversation if it is still at `expectedVersion` (false: another reply landed first). */
  async saveConversation(agentId: string, turns: Turn[], expectedVersion: number, now: number): Promise<boolean> {
    const writeId = randomUUID();
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { agentId, sk: CONVERSATION },
          UpdateExpression: 'SET turns = :turns, version = :next, updatedAt = :now, writeId = :writeId, createdAt = if_not_exists(createdAt, :now)',
          ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(version)' : 'version = :version',
          ExpressionAttributeValues: {
            ':turns': turns,
            ':next': expectedVersion + 1,
            ':now': now,
            ':writeId': writeId,
            ...(expectedVersion > 0 && { ':version': expectedVersion }),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return true;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      // Our own first attempt landed and its answer was lost: saved (saving the turns again would repeat them).
      return conditionFailedItem<{ writeId?: string }>(err)?.writeId === writeId;
    }
  }

  /** Stamp the conversation as saved by a stop (it is written at every reply; this records the stop). */
  async markConversationSaved(agentId: string, stopId: string, now: number): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { agentId, sk: CONVERSATION },
        UpdateExpression: 'SET savedAt = :now, savedByStop = :stopId, createdAt = if_not_exists(createdAt, :now)',
        ExpressionAttributeValues: { ':now': now, ':stopId': stopId },
      }),
    );
  }

  /**
   * A stop's record, written once: undefined when this wrote it, else the record already there
   * (this stop's, from an earlier attempt or another finalizer: stop ids are never reused).
   */
  async putStopRecord(record: StopRecord, now: number, commitId: string): Promise<StopRecord | undefined> {
    try {
      await this.db.send(new PutCommand({ ...this.stopRecordPut(record, now, commitId), ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }));
      return undefined;
    } catch (err) {
      const existing = conditionFailedItem<Stored<StopRecord>>(err);
      if (!existing) throw err;
      return toStop(existing);
    }
  }

  /**
   * The write of a stop record (once: stop ids are never reused), alone or in a stop's commit
   * transaction. It carries the id of the commit that wrote it (never shown): how a commit that
   * got no answer learns whether it landed.
   */
  stopRecordPut(record: StopRecord, now: number, commitId: string) {
    return {
      TableName: this.tableName,
      Item: { ...stopKey(record.agentId, record.stopId), ...record, commitId, expiresAt: this.expiresAt(now) },
      ConditionExpression: 'attribute_not_exists(sk)',
    };
  }

  /** A stop's record as stored, with the id of the commit that wrote it (none: no record). */
  async storedStop(agentId: string, stopId: string): Promise<{ record: StopRecord; commitId?: string } | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.tableName, Key: stopKey(agentId, stopId), ConsistentRead: true }));
    if (!out.Item) return undefined;
    const commitId = (out.Item as { commitId?: unknown }).commitId;
    return { record: toStop(out.Item as Stored<StopRecord>), ...(typeof commitId === 'string' && { commitId }) };
  }

  async getStop(agentId: string, stopId: string): Promise<StopRecord | undefined> {
    return (await this.storedStop(agentId, stopId))?.record;
  }

  listMessages(agentId: string, limit: number, startKey?: Key): Promise<Page<MessageRecord>> {
    return this.page(agentId, MSG, limit, startKey, true, toMessage);
  }

  /** Stop history, newest first (stop ids are ULIDs, so key order is time order). */
  listStops(agentId: string, limit: number, startKey?: Key): Promise<Page<StopRecord>> {
    return this.page(agentId, STOP, limit, startKey, false, toStop);
  }

  /**
   * Delete the records of an agent deleted at `deletedAt`: only records that agent wrote (messages
   * created, stops requested, before then), so an agent re-created at once under the same agentId
   * keeps the records it writes while this cleanup still runs.
   */
  async deleteAll(agentId: string, deletedAt: number): Promise<number> {
    let deleted = 0;
    let startKey: Key | undefined;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'agentId = :a',
          FilterExpression: 'createdAt <= :deletedAt OR requestedAt <= :deletedAt',
          ExpressionAttributeValues: { ':a': agentId, ':deletedAt': deletedAt },
          ProjectionExpression: 'agentId, sk',
          ExclusiveStartKey: startKey,
        }),
      );
      const keys = (out.Items ?? []) as Key[];
      for (let i = 0; i < keys.length; i += 25) {
        await untilProcessed(
          keys.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } })),
          async (requests) => {
            const res = await this.db.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: requests } }));
            return (res.UnprocessedItems?.[this.tableName] ?? []) as typeof requests;
          },
        );
      }
      deleted += keys.length;
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return deleted;
  }

  private async page<T>(
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
