import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { GetCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/**
 * API keys: `agk_<keyId>_<secret>`. The prefix makes a leaked key recognisable (secret scanners),
 * the keyId finds the record without a scan, and the 256-bit secret is stored only as its SHA-256
 * (a fast hash is right for a random secret of this entropy; there is nothing to brute-force).
 */
export const KEY_PREFIX = 'agk_';
const KEY_PATTERN = /^agk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface ApiKeyRecord {
  keyId: string;
  name: string;
  hash: string;
  createdAt: number;
  revokedAt?: number;
}

export type ApiKeyInfo = Omit<ApiKeyRecord, 'hash'>;

const sha256 = (secret: string) => createHash('sha256').update(secret).digest();

export function generateApiKey(): { key: string; keyId: string; hash: string } {
  const keyId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { key: `${KEY_PREFIX}${keyId}_${secret}`, keyId, hash: sha256(secret).toString('hex') };
}

export function parseApiKey(raw: string): { keyId: string; secret: string } | undefined {
  const m = KEY_PATTERN.exec(raw);
  return m ? { keyId: m[1]!, secret: m[2]! } : undefined;
}

/** The key from an `Authorization: Bearer <key>` header, or undefined. */
export function bearerKey(header: string | undefined): string | undefined {
  const m = /^Bearer +(\S+)$/i.exec(header?.trim() ?? '');
  return m?.[1];
}

/** Compared even when no record matched, so a wrong keyId and a wrong secret take the same time. */
const DUMMY_HASH = sha256('no such key');

export class ApiKeysStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  async create(name: string, now = Date.now()): Promise<{ key: string; info: ApiKeyInfo }> {
    const { key, keyId, hash } = generateApiKey();
    const record: ApiKeyRecord = { keyId, name, hash, createdAt: now };
    await this.db.send(new PutCommand({ TableName: this.tableName, Item: record, ConditionExpression: 'attribute_not_exists(keyId)' }));
    return { key, info: { keyId, name, createdAt: now } };
  }

  async list(): Promise<ApiKeyInfo[]> {
    const keys: ApiKeyInfo[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new ScanCommand({ TableName: this.tableName, ProjectionExpression: 'keyId, #n, createdAt, revokedAt', ExpressionAttributeNames: { '#n': 'name' }, ExclusiveStartKey: startKey }),
      );
      keys.push(...((out.Items ?? []) as ApiKeyInfo[]));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return keys.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Revoke by keyId; false when there is no such key. Revoking twice keeps the first time. */
  async revoke(keyId: string, now = Date.now()): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { keyId },
          UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :now)',
          ConditionExpression: 'attribute_exists(keyId)',
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  /** The key's record when the key is valid and not revoked; undefined otherwise (no hint why). */
  async verify(rawKey: string | undefined): Promise<ApiKeyInfo | undefined> {
    const parsed = rawKey ? parseApiKey(rawKey) : undefined;
    const record = parsed
      ? ((await this.db.send(new GetCommand({ TableName: this.tableName, Key: { keyId: parsed.keyId }, ConsistentRead: true }))).Item as
          | ApiKeyRecord
          | undefined)
      : undefined;
    const expected = record ? Buffer.from(record.hash, 'hex') : DUMMY_HASH;
    const given = sha256(parsed?.secret ?? '');
    const matches = expected.length === given.length && timingSafeEqual(expected, given);
    if (!record || !matches || record.revokedAt !== undefined) return undefined;
    return { keyId: record.keyId, name: record.name, createdAt: record.createdAt };
  }

  /** Whether any key was ever created, revoked ones included (locally, auth turns on with the first). */
  async anyEverCreated(): Promise<boolean> {
    const out = await this.db.send(new ScanCommand({ TableName: this.tableName, Limit: 1, ProjectionExpression: 'keyId' }));
    return (out.Items?.length ?? 0) > 0 || out.LastEvaluatedKey !== undefined;
  }
}
