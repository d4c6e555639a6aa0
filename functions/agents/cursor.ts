import { z } from 'zod';
import type { Key } from './agents-store.js';
import { ValidationError } from './errors.js';

/** Opaque page cursors: the store's LastEvaluatedKey, base64url JSON, shape-checked on the way back in. */
const keySchema = z.partialRecord(z.enum(['agentId', 'sk', 'status', 'dueAt']), z.union([z.string().max(512), z.number()]));

export const encodeCursor = (key: Key | undefined): string | undefined =>
  key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;

export function decodeCursor(cursor: string | undefined): Key | undefined {
  if (cursor === undefined) return undefined;
  try {
    return keySchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw new ValidationError('Query parameter "cursor" is not valid: pass the nextCursor of a previous page unchanged');
  }
}
