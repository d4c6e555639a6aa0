import type { AgentStore } from '../../agents/ports.js';
import { AgentLeases } from './agent-leases.js';

/**
 * The agents' state store (the Agents table's hot items), one concern per file: the table and
 * its conditional writes (agent-table.ts), the catalog and its index (agent-catalog.ts), stop
 * transitions and the stop commit (agent-stops.ts), message leases (agent-leases.ts).
 */
export class AgentsStore extends AgentLeases implements AgentStore {}
