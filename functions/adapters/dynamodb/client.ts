import { DynamoDBClient, TransactionCanceledException, ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { intEnv } from '../../agents/config.js';
import { tracedClient } from '../tracing.js';

/**
 * Every DynamoDB call ends in bounded time: a connection must open within 1 s, an answer arrive
 * within DYNAMODB_TIMEOUT_MS (default 2000), and the SDK tries at most DYNAMODB_MAX_ATTEMPTS times
 * (default 3) with its jittered backoff. So a store that hangs costs a request about
 * attempts x timeout (~6.5 s by default) before it is answered 503, never a hang.
 */
export interface StoreTimeouts {
  requestTimeoutMs: number;
  maxAttempts: number;
}

export function storeTimeoutsFromEnv(env: NodeJS.ProcessEnv = process.env): StoreTimeouts {
  return {
    requestTimeoutMs: intEnv(env, 'DYNAMODB_TIMEOUT_MS', 2000, 100, 60_000),
    maxAttempts: intEnv(env, 'DYNAMODB_MAX_ATTEMPTS', 3, 1, 10),
  };
}

export function createDocumentClient(
  endpoint?: string,
  timeouts: StoreTimeouts = storeTimeoutsFromEnv(),
  /** Wires more into the client (the local stack's fault injection). */
  configure?: (client: DynamoDBClient) => void,
): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    maxAttempts: timeouts.maxAttempts,
    requestHandler: { connectionTimeout: 1000, requestTimeout: timeouts.requestTimeoutMs, throwOnRequestTimeout: true },
    ...(endpoint && {
      endpoint,
      region: process.env.AWS_REGION ?? 'local',
      // DynamoDB Local accepts any credentials; these keep the SDK from looking for real ones.
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }),
  });
  configure?.(client);
  return DynamoDBDocumentClient.from(tracedClient(client), {
    // The marshaller takes an object whose own "constructor" key is not the Object function for a
    // class instance: settings or metadata holding {"constructor": {...}} are plain JSON maps all the same.
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
  });
}

/** A transaction cancelled by another one on the same items (not by its conditions): transient, try again. */
export class TransactionConflict extends Error {
  override readonly name = 'TransactionConflict';
  constructor(codes: string) {
    super(`the transaction was cancelled by a concurrent one (${codes})`);
  }
}

export type CancellationCode = 'ConditionalCheckFailed' | 'TransactionConflict' | 'None' | string;

/** Reasons of a cancelled transaction, one per item, with ALL_OLD items unmarshalled. */
export function cancellationReasons(err: unknown): { code: CancellationCode; item?: Record<string, unknown> }[] | undefined {
  if (!(err instanceof TransactionCanceledException)) return undefined;
  return (err.CancellationReasons ?? []).map((r) => ({
    code: r.Code ?? 'None',
    item: r.Item ? unmarshall(r.Item as Parameters<typeof unmarshall>[0]) : undefined,
  }));
}

/** The ALL_OLD item of a failed conditional write (DynamoDB returns it raw: unmarshall it). */
export function conditionFailedItem<T>(err: unknown): T | null | undefined {
  if (!(err instanceof ConditionalCheckFailedException)) return undefined;
  return err.Item ? (unmarshall(err.Item) as T) : null;
}

/** Name placeholders for map keys that come from clients (message ids). */
export function leaseNames(ids: string[]): Record<string, string> {
  return Object.fromEntries(ids.map((id, i) => [`#m${i}`, id]));
}

/**
 * Batch calls (BatchGet, BatchWrite) may leave part of their work unprocessed under load: send the
 * rest again with exponential backoff, up to 8 times. `call` takes what is left and returns what
 * is still left.
 */
export async function untilProcessed<T>(pending: T[], call: (pending: T[]) => Promise<T[]>): Promise<void> {
  for (let attempt = 0; pending.length > 0 && attempt < 8; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 20 * 2 ** attempt));
    pending = await call(pending);
  }
  // Nothing is dropped silently: the caller fails (a transient error, retried by its caller).
  if (pending.length > 0) throw new Error(`DynamoDB left ${pending.length} batch item(s) unprocessed after 8 attempts`);
}
