import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditionFailedItem } from './client.js';
import type { A2ATask } from '../../agents/model.js';
import { messageKey, type RecordTable } from './record-table.js';

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

/** The runtimes' own state under their agent: an a2a agent's tasks and its waiting task, an llm agent's conversation. */
export class RuntimeState {
  constructor(private readonly table: RecordTable) {}

  /**
   * An a2a agent's task for a message (its id and state as last seen; `cancel`: what a stop's
   * cancel came to), onto the message's record if it is there.
   */
  async recordTask(agentId: string, messageId: string, task: Partial<A2ATask>): Promise<void> {
    const entries = Object.entries(task).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return;
    await this.table.db
      .send(
        new UpdateCommand({
          TableName: this.table.tableName,
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
    const out = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: { agentId, sk: A2A_STATE }, ConsistentRead: true }));
    const waiting = out.Item?.waitingTaskId;
    return typeof waiting === 'string' ? { waitingTaskId: waiting } : {};
  }

  /** A task now waits on the user: the next message continues it. */
  async setA2AWaiting(agentId: string, taskId: string, now: number): Promise<void> {
    await this.table.db.send(
      new UpdateCommand({
        TableName: this.table.tableName,
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
    await this.table.db
      .send(
        new UpdateCommand({
          TableName: this.table.tableName,
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
    const out = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: { agentId, sk: CONVERSATION }, ConsistentRead: true }));
    const item = out.Item as (Conversation & { sk: string }) | undefined;
    return item ? { turns: item.turns ?? [], version: item.version ?? 0, ...(item.savedAt !== undefined && { savedAt: item.savedAt }) } : { turns: [], version: 0 };
  }

  /** Replace the conversation if it is still at `expectedVersion` (false: another reply landed first). */
  async saveConversation(agentId: string, turns: Turn[], expectedVersion: number, now: number): Promise<boolean> {
    const writeId = randomUUID();
    try {
      await this.table.db.send(
        new UpdateCommand({
          TableName: this.table.tableName,
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
    await this.table.db.send(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId, sk: CONVERSATION },
        UpdateExpression: 'SET savedAt = :now, savedByStop = :stopId, createdAt = if_not_exists(createdAt, :now)',
        ExpressionAttributeValues: { ':now': now, ':stopId': stopId },
      }),
    );
  }

}
