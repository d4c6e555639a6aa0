import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Key, MessageRecordStore, Page } from '../../agents/ports.js';
import { conditionFailedItem } from './client.js';
import type { MessageOutcome, MessageRecord } from '../../agents/model.js';
import { MSG, type RecordTable, type Stored, messageKey, toMessage } from './record-table.js';

/** Message records: admission's and completion's record writes, the record half of a stop's commit, and reads. */
export class MessageRecords implements MessageRecordStore {
  constructor(private readonly table: RecordTable) {}

  async getMessage(agentId: string, messageId: string): Promise<MessageRecord | undefined> {
    const out = await this.table.db.send(
      new GetCommand({ TableName: this.table.tableName, Key: messageKey(agentId, messageId), ConsistentRead: true }),
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
      await this.table.db.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...messageKey(record.agentId, record.messageId), ...record, leaseToken: token, expiresAt: this.table.expiresAt(now) },
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
    return this.table.conditionalRecord(
      new DeleteCommand({
        TableName: this.table.tableName,
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
    return this.table.conditionalRecord(new UpdateCommand(this.finishMessage(agentId, messageId, { status: 'failed', error }, now, { createdAt }).Update));
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
    return this.table.conditionalRecord(
      new UpdateCommand(this.finishMessage(a.agentId, a.messageId, a.outcome, a.now, { token: a.token }).Update),
      (current) => current?.leaseToken === a.token && current.status === a.outcome.status && current.completedAt === a.now,
    );
  }


  /**
   * The record half of ending a message. With `fence`, it refuses a message that already ended
   * and, given the admission's token (or its createdAt), a record written by another admission of
   * the same id. A stop's commit writes only records that exist (`exists`) and were created by
   * its time (no message ends before it began, whatever clock admitted it), a failed one only
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
      ? ['attribute_exists(sk)', 'createdAt <= :now', ...(fence.processing ? ['#status = :processing'] : [])]
      : ['#status = :processing', ...(fence.token ? ['leaseToken = :token'] : []), ...(fence.createdAt !== undefined ? ['createdAt = :createdAt'] : [])];
    const cut = outcome.status === 'interrupted';
    return {
      Update: {
        TableName: this.table.tableName,
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

  listMessages(agentId: string, limit: number, startKey?: Key): Promise<Page<MessageRecord>> {
    return this.table.page(agentId, MSG, limit, startKey, true, toMessage);
  }

}
