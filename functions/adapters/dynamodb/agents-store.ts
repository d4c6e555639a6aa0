import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AgentStore } from '../../agents/ports.js';
import { methodsOf } from './compose.js';
import type { AgentConfigStore } from './agent-config-store.js';
import { AgentCatalog } from './agent-catalog.js';
import { AgentLeases } from './agent-leases.js';
import { AgentStops } from './agent-stops.js';
import { AgentTable } from './agent-table.js';
import type { RecordsStore } from './records-store.js';


/**
 * The agents' state store (the Agents table's hot items), composed of its parts, each given the
 * one table helper (agent-table.ts): the catalog and its index (agent-catalog.ts), the stop
 * transitions and commit (agent-stops.ts), the message leases (agent-leases.ts).
 */
export function agentsStore(db: DynamoDBDocumentClient, tableName: string, records: RecordsStore, configs: AgentConfigStore): AgentStore & { tableName: string } {
  const table = new AgentTable(db, tableName, records, configs);
  return {
    tableName,
    ...methodsOf<AgentCatalog>(new AgentCatalog(table), {
      get: true, getWhole: true, getMany: true, list: true, count: true, queryByStatus: true, create: true, update: true, delete: true, setSigningSecret: true, start: true, moveDueAt: true,
    }),
    ...methodsOf<AgentStops>(new AgentStops(table), { beginStop: true, beginForcedStop: true, forceStopInProgress: true, rollbackStop: true, recordStopFailure: true, commitStop: true }),
    ...methodsOf<AgentLeases>(new AgentLeases(table), { admitLease: true, renewLease: true, releaseLease: true, reclaimLease: true }),
  };
}
