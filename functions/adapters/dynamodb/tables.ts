/**
 * The two table designs, declared once: CDK (infra/stack.ts), the local bootstrap
 * (local/dynamodb.ts) and the tests all build their tables from these.
 */
export type KeyType = 'S' | 'N';
export interface KeyDef {
  name: string;
  type: KeyType;
}
export interface IndexDef {
  indexName: string;
  partitionKey: KeyDef;
  sortKey: KeyDef;
  /** KEYS_ONLY: writes to other attributes (leases, lastActivityAt) never touch the index. */
  projection: 'KEYS_ONLY';
}
export interface TableDef {
  partitionKey: KeyDef;
  sortKey?: KeyDef;
  indexes: IndexDef[];
  timeToLiveAttribute?: string;
}

/**
 * Agents: one item per agent. The sparse-free `byStatus` index is keyed on (status, dueAt):
 * - active:   dueAt = when the reaper should next look at the agent: its idle check, or the
 *             expiry of a lease in flight (a crashed worker to settle), whichever is first
 * - stopping: dueAt = the stop's deadline
 * - inactive: dueAt = when it became inactive (or was created)
 * dueAt changes on transitions, reaper checks, and an admission whose lease would expire before
 * the next check (about once per lease TTL under steady traffic): message traffic does not
 * rewrite the index per message (no hot index partition from messages).
 */
export const agentsTable: TableDef = {
  partitionKey: { name: 'agentId', type: 'S' },
  indexes: [
    {
      indexName: 'byStatus',
      partitionKey: { name: 'status', type: 'S' },
      sortKey: { name: 'dueAt', type: 'N' },
      projection: 'KEYS_ONLY',
    },
  ],
};

/** Agent records: `MSG#<messageId>` and `STOP#<stopId>` under the agent, expired by TTL. */
export const recordsTable: TableDef = {
  partitionKey: { name: 'agentId', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  indexes: [],
  timeToLiveAttribute: 'expiresAt',
};

export const BY_STATUS_INDEX = 'byStatus';

/** API keys: one item per key, holding only the SHA-256 of its secret (see functions/auth). */
export const apiKeysTable: TableDef = {
  partitionKey: { name: 'keyId', type: 'S' },
  indexes: [],
};
