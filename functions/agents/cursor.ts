import * as z from 'zod/mini';
import type { Key } from './ports.js';
import { ValidationError } from './errors.js';
import { AGENT_STATUSES, NEVER, messageIdSchema, type AgentStatus } from './model.js';

/**
 * Opaque page cursors: the store's LastEvaluatedKey as base64url JSON. On the way back in, a
 * cursor is validated completely against the query it continues: exactly its key attributes,
 * each of the right form (a number DynamoDB can store, a sort key of the right record kind), and
 * the values the query pins (the status of a filtered list, the agentId of a history). Anything
 * else would reach DynamoDB and come back as a 500.
 */
export const encodeCursor = (key: Key | undefined): string | undefined =>
  key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;

const agentId = z.guid();
/** Stop ids are ULIDs (Crockford base32, 26 characters). */
const ulid = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export const cursorShapes = {
  agents: () => z.strictObject({ agentId }),
  agentsByStatus: (status: AgentStatus) =>
    z.strictObject({ agentId, status: z.enum(AGENT_STATUSES).check(z.refine((s) => s === status)), dueAt: z.int().check(z.minimum(0), z.maximum(NEVER)) }),
  messages: (owner: string) =>
    z.strictObject({
      agentId: z.literal(owner),
      sk: z.string().check(z.refine((sk) => sk.startsWith('MSG#') && messageIdSchema.safeParse(sk.slice(4)).success)),
    }),
  stops: (owner: string) =>
    z.strictObject({ agentId: z.literal(owner), sk: z.string().check(z.refine((sk) => sk.startsWith('STOP#') && ulid.test(sk.slice(5)))) }),
};

export function decodeCursor(cursor: string | undefined, shape: z.ZodMiniType<Key>): Key | undefined {
  if (cursor === undefined) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  const parsed = shape.safeParse(key);
  if (!parsed.success) throw new ValidationError('Query parameter "cursor" is not valid: pass the nextCursor of a previous page unchanged');
  return parsed.data;
}
