import { deps } from '../adapters/deps.js';
import { carried, lambdaHandler } from '../adapters/observability.js';
import type { StopWorkflowInput } from '../agents/ports.js';
import { finalizeStop } from '../agents/stop-commit.js';

/**
 * Finalize task: drained, timed out or forced, idempotent per stopId. `superseded`: another caller
 * ended it; `pending`: still this stop but not due on this function's read (its clock behind
 * CheckDrain's, or a lease renewed since), so the workflow looks again rather than end with it.
 */
export const handler = lambdaHandler(carried, async (input: StopWorkflowInput) => {
  const { agentId, stopId, correlationId } = input;
  const d = deps();
  const stopped = await finalizeStop(d, agentId, stopId);
  if (stopped) return { agentId, stopId, correlationId, outcome: stopped.outcome };
  const agent = await d.agents.get(agentId);
  const pending = agent?.status === 'stopping' && agent.stop?.stopId === stopId;
  return { agentId, stopId, correlationId, outcome: pending ? 'pending' : 'superseded' };
});
