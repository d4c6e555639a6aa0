import type { Key } from './agents-store.js';
import { ValidationError } from './errors.js';

/**
 * Opaque page cursors: the store's LastEvaluatedKey as base64url JSON. On the way back in, a
 * cursor must have exactly the key attributes of the query it continues (and the values the
 * query pins, such as the agentId of a history), else DynamoDB would reject it with a 500.
 */
export const encodeCursor = (key: Key | undefined): string | undefined =>
  key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;

export type CursorShape = Record<string, 'string' | 'number'>;

export function decodeCursor(cursor: string | undefined, shape: CursorShape, pinned: Key = {}): Key | undefined {
  if (cursor === undefined) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  const valid =
    typeof key === 'object' &&
    key !== null &&
    !Array.isArray(key) &&
    Object.keys(key).length === Object.keys(shape).length &&
    Object.entries(shape).every(([name, type]) => {
      const value = (key as Key)[name];
      return typeof value === type && (typeof value !== 'string' || (value.length > 0 && value.length <= 512));
    }) &&
    Object.entries(pinned).every(([name, value]) => (key as Key)[name] === value);
  if (!valid) throw new ValidationError('Query parameter "cursor" is not valid: pass the nextCursor of a previous page unchanged');
  return key as Key;
}
