import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** One DynamoDB call as billed: the units DynamoDB reported for it (ReturnConsumedCapacity TOTAL). */
export interface MeteredCall {
  /** The DynamoDB action: GetItem, UpdateItem, TransactWriteItems, ... */
  command: string;
  /** The tables it touched (a transaction or batch may touch several). */
  tables: string[];
  /** The first table's key (single-item calls), to tell which item a write went to. */
  key?: Record<string, unknown>;
  expression?: string;
  rcu: number;
  wcu: number;
  /** Refused by its condition (DynamoDB bills it all the same; its units are estimated from the item it returned). */
  refused: boolean;
}

interface Capacity {
  TableName?: string;
  CapacityUnits?: number;
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
}

/** The DynamoDB actions that read (the client's command names, which lib-dynamodb's commands wrap). */
const READS = new Set(['GetItem', 'Query', 'BatchGetItem', 'Scan', 'TransactGetItems']);

/**
 * Meter every call through `db` (every function of one local stack shares its client): each call
 * asks for its consumed capacity, which DynamoDB Local computes as AWS bills it.
 */
export function meter(db: DynamoDBDocumentClient) {
  let calls: MeteredCall[] = [];
  db.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      const command = String(context.commandName ?? '').replace(/Command$/, '');
      input.ReturnConsumedCapacity = 'TOTAL';
      const tables = tablesOf(input);
      const call: MeteredCall = {
        command,
        tables,
        key: input.Key as Record<string, unknown> | undefined,
        expression: (input.UpdateExpression as string | undefined) ?? (input.KeyConditionExpression as string | undefined),
        rcu: 0,
        wcu: 0,
        refused: false,
      };
      try {
        const out = await next(args);
        const consumed = (out.output as { ConsumedCapacity?: Capacity | Capacity[] }).ConsumedCapacity;
        for (const c of [consumed ?? []].flat()) {
          const units = c.CapacityUnits ?? 0;
          const read = c.ReadCapacityUnits ?? (READS.has(command) ? units : 0);
          const write = c.WriteCapacityUnits ?? (READS.has(command) ? 0 : units);
          call.rcu += read;
          call.wcu += write;
        }
        return out;
      } catch (err) {
        const item = (err as { Item?: unknown }).Item;
        if ((err as { name?: string }).name === 'ConditionalCheckFailedException') {
          call.refused = true;
          // A refused write is billed by the item's size, at least 1 WCU.
          call.wcu = Math.max(1, Math.ceil(Buffer.byteLength(JSON.stringify(item ?? {})) / 1024));
        }
        throw err;
      } finally {
        calls.push(call);
      }
    },
    { step: 'initialize', name: 'capacityMeter', override: true },
  );
  return {
    reset: () => {
      calls = [];
    },
    calls: () => [...calls],
    /** Units and calls since the last reset, optionally only the calls `keep` picks. */
    totals(keep: (c: MeteredCall) => boolean = () => true) {
      const picked = calls.filter(keep);
      return {
        rcu: picked.reduce((n, c) => n + c.rcu, 0),
        wcu: picked.reduce((n, c) => n + c.wcu, 0),
        calls: picked.length,
        reads: picked.filter((c) => READS.has(c.command)).length,
        writes: picked.filter((c) => !READS.has(c.command)).length,
        refused: picked.filter((c) => c.refused).length,
      };
    },
  };
}

function tablesOf(input: Record<string, unknown>): string[] {
  if (typeof input.TableName === 'string') return [input.TableName];
  if (input.RequestItems) return Object.keys(input.RequestItems as object);
  if (Array.isArray(input.TransactItems)) {
    return (input.TransactItems as Record<string, { TableName: string }>[]).flatMap((item) => Object.values(item).map((op) => op.TableName));
  }
  return [];
}

export const isRead = (c: MeteredCall) => READS.has(c.command);
