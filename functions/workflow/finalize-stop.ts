import { deps } from '../adapters/deps.js';
import type { StopWorkflowInput } from '../agents/ports.js';
import { finalizeStop } from '../agents/stop.js';

/** Finalize task: drained or timed_out, idempotent per stopId. */
export const handler = async (input: StopWorkflowInput) => {
  const { agentId, stopId } = input;
  const { outcome } = await finalizeStop(deps(), agentId, stopId);
  return { agentId, stopId, outcome: outcome ?? 'superseded' };
};
