import { deps } from '../adapters/deps.js';
import { carried, lambdaHandler } from '../adapters/observability.js';
import type { StopWorkflowInput } from '../agents/ports.js';
import { finalizeStop } from '../agents/stop-commit.js';

/** Finalize task: drained, timed out or forced, idempotent per stopId ('superseded': another caller ended it). */
export const handler = lambdaHandler(carried, async (input: StopWorkflowInput) => {
  const { agentId, stopId, correlationId } = input;
  const stopped = await finalizeStop(deps(), agentId, stopId);
  return { agentId, stopId, correlationId, outcome: stopped?.outcome ?? 'superseded' };
});
