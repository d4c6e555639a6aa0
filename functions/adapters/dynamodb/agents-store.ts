import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AgentCatalogStore, AgentLeaseStore, AgentStopStore, AgentStore } from '../../agents/ports.js';
import type { AgentConfigStore } from './agent-config-store.js';
import { AgentCatalog } from './agent-catalog.js';
import { AgentLeases } from './agent-leases.js';
import { AgentStops } from './agent-stops.js';
import { AgentTable } from './agent-table.js';
import type { RecordsStore } from './records-store.js';

/** A part's methods of its port, bound to it; `names` lists every one (the compiler checks it against the port). */
function methodsOf<P extends object>(part: P, names: Record<keyof P, true>): P {
  return Object.fromEntries(Object.keys(names).map((name) => [name, (part[name as keyof P] as (...a: unknown[]) => unknown).bind(part)])) as P;
}

/**
 * The agents' state store (the Agents table's hot items), composed of its parts, each given the
 * one table helper (agent-table.ts): the catalog and its index (agent-catalog.ts), the stop
 * transitions and commit (agent-stops.ts), the message leases (agent-leases.ts).
 */
export function agentsStore(db: DynamoDBDocumentClient, tableName: string, records: RecordsStore, configs: AgentConfigStore): AgentStore & { tableName: string } {
  const table = new AgentTable(db, tableName, records, configs);
  return {
    tableName,
    ...methodsOf<AgentCatalogStore>(new AgentCatalog(table), {
      get: true, getWhole: true, getMany: true, list: true, count: true, queryByStatus: true, create: true, update: true, delete: true, setSigningSecret: true, start: true, moveDueAt: true,
    }),
    ...methodsOf<AgentStopStore>(new AgentStops(table), { beginStop: true, beginForcedStop: true, forceStopInProgress: true, rollbackStop: true, recordStopFailure: true, commitStop: true }),
    ...methodsOf<AgentLeaseStore>(new AgentLeases(table), { admitLease: true, renewLease: true, releaseLease: true, reclaimLease: true }),
  };
}
