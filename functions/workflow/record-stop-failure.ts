import { deps } from '../adapters/deps.js';
import { carried, lambdaHandler } from '../adapters/observability.js';
import type { StopWorkflowInput } from '../agents/ports.js';
import { afterStopWorkflowFailure } from '../agents/stop-commit.js';

/**
 * The workflow's Catch target: within the stop's recovery window, `recover` (the workflow waits
 * `waitSeconds` and checks the drain again); past it, the failure is recorded on the agent (the
 * API answers 500 for the stop) and the execution fails.
 */
export const handler = lambdaHandler(carried, async (input: StopWorkflowInput & { error?: string; cause?: string }) => {
  const { agentId, stopId, correlationId } = input;
  const next = await afterStopWorkflowFailure(deps(), agentId, stopId, input.error ?? 'Unknown', input.cause ?? '');
  return { agentId, stopId, correlationId, ...next };
});
