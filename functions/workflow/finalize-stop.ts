import { deps } from '../adapters/deps.js';
import { carried, lambdaHandler } from '../adapters/observability.js';
import type { StopWorkflowInput } from '../agents/ports.js';
import { finalizeStop } from '../agents/stop-commit.js';

/** Another finalizer is closing the runtime for this stop; the workflow retries (ASL Retry). */
class StopClosingElsewhere extends Error {
  override readonly name = 'StopClosingElsewhere';
}

/** Finalize task: drained or timed_out, idempotent per stopId. */
export const handler = lambdaHandler(carried, async (input: StopWorkflowInput) => {
  const { agentId, stopId, correlationId } = input;
  const { stopped, closingElsewhere } = await finalizeStop(deps(), agentId, stopId);
  if (closingElsewhere) throw new StopClosingElsewhere(`Stop ${stopId} is being closed by another finalizer; retrying`);
  return { agentId, stopId, correlationId, outcome: stopped?.outcome ?? 'superseded' };
});
