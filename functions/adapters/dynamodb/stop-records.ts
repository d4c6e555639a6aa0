import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Key, Page, StopRecordStore } from '../../agents/ports.js';
import { conditionFailedItem } from './client.js';
import type { StopRecord } from '../../agents/model.js';
import { STOP, type RecordTable, type Stored, stopKey, toStop } from './record-table.js';

/** Stop records: written once by a stop's commit (alone or in its transaction), and read. */
export class StopRecords implements StopRecordStore {
  constructor(private readonly table: RecordTable) {}

  /**
   * A stop's record, written once: undefined when this wrote it, else the record already there
   * (this stop's, from an earlier attempt or another finalizer: stop ids are never reused).
   */
  async putStopRecord(record: StopRecord, now: number, commitId: string): Promise<StopRecord | undefined> {
    try {
      await this.table.db.send(new PutCommand({ ...this.stopRecordPut(record, now, commitId), ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }));
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
      TableName: this.table.tableName,
      Item: { ...stopKey(record.agentId, record.stopId), ...record, commitId, expiresAt: this.table.expiresAt(now) },
      ConditionExpression: 'attribute_not_exists(sk)',
    };
  }

  /** A stop's record as stored, with the id of the commit that wrote it (none: no record). */
  async storedStop(agentId: string, stopId: string): Promise<{ record: StopRecord; commitId?: string } | undefined> {
    const out = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: stopKey(agentId, stopId), ConsistentRead: true }));
    if (!out.Item) return undefined;
    const commitId = (out.Item as { commitId?: unknown }).commitId;
    return { record: toStop(out.Item as Stored<StopRecord>), ...(typeof commitId === 'string' && { commitId }) };
  }

  async getStop(agentId: string, stopId: string): Promise<StopRecord | undefined> {
    return (await this.storedStop(agentId, stopId))?.record;
  }

  /** Stop history, newest first (stop ids are ULIDs, so key order is time order). */
  listStops(agentId: string, limit: number, startKey?: Key): Promise<Page<StopRecord>> {
    return this.table.page(agentId, STOP, limit, startKey, false, toStop);
  }

}
