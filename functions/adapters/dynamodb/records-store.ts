import { BatchWriteCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Key } from '../../agents/ports.js';
import { untilProcessed } from './client.js';
import { methodsOf } from './compose.js';
import { MessageRecords } from './message-records.js';
import { RecordTable } from './record-table.js';
import { RuntimeState } from './runtime-state.js';
import { StopRecords } from './stop-records.js';

export { messageKey, stopKey, toMessage, type Stored } from './record-table.js';
export type { Conversation, Turn } from './runtime-state.js';

/**
 * The agent-records table's store, composed of its parts, each given the one table helper
 * (record-table.ts): message records (message-records.ts), stop records (stop-records.ts), the
 * runtimes' own state (runtime-state.ts); and the deletion of an agent's records.
 */
export function recordsStore(db: DynamoDBDocumentClient, tableName: string, retentionDays: number) {
  const table = new RecordTable(db, tableName, retentionDays);
  return {
    tableName,
    expiresAt: (now: number) => table.expiresAt(now),
    deleteAll: (agentId: string, deletedAt: number) => deleteAll(table, agentId, deletedAt),
    ...methodsOf<MessageRecords>(new MessageRecords(table), { getMessage: true, createMessageRecord: true, discardMessageRecord: true, settleUnleased: true, recordOutcome: true, finishMessage: true, listMessages: true }),
    ...methodsOf<StopRecords>(new StopRecords(table), { putStopRecord: true, stopRecordPut: true, storedStop: true, getStop: true, listStops: true }),
    ...methodsOf<RuntimeState>(new RuntimeState(table), {
      recordTask: true, getA2AState: true, setA2AWaiting: true, clearA2AWaiting: true, getConversation: true, saveConversation: true, markConversationSaved: true,
    }),
  };
}

/** The records store: every part's methods, the records' expiry, and the deletion of an agent's records. */
export type RecordsStore = ReturnType<typeof recordsStore>;

/**
 * Delete the records of an agent deleted at `deletedAt`: only records that agent wrote (messages
 * created, stops requested, before then), so an agent re-created at once under the same agentId
 * keeps the records it writes while this cleanup still runs.
 */
async function deleteAll(table: RecordTable, agentId: string, deletedAt: number): Promise<number> {
  let deleted = 0;
  let startKey: Key | undefined;
  do {
    const out = await table.db.send(
      new QueryCommand({
        TableName: table.tableName,
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
          const res = await table.db.send(new BatchWriteCommand({ RequestItems: { [table.tableName]: requests } }));
          return (res.UnprocessedItems?.[table.tableName] ?? []) as typeof requests;
        },
      );
    }
    deleted += keys.length;
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  return deleted;
}
