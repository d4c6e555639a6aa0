import { deps } from '../adapters/deps.js';
import { carried, lambdaHandler } from '../adapters/observability.js';
import type { StopWorkflowInput } from '../agents/ports.js';
import { recordStopFailure } from '../agents/stop-commit.js';

/** The workflow's Catch target: record the failure on the agent so the API can answer 500. */
export const handler = lambdaHandler(carried, async (input: StopWorkflowInput & { error?: string; cause?: string }) => {
  const { agentId, stopId, correlationId } = input;
  deps().log.error('stop workflow failed', { agentId, stopId, error: input.error, cause: input.cause });
  await recordStopFailure(deps(), agentId, stopId, input.error ?? 'Unknown', input.cause ?? '');
  return { agentId, stopId, correlationId, recorded: true };
});
