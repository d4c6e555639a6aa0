import { deps } from '../adapters/deps.js';
import type { StopWorkflowInput } from '../agents/ports.js';
import { recordStopFailure } from '../agents/stop-commit.js';

/** The workflow's Catch target: record the failure on the agent so the API can answer 500. */
export const handler = async (input: StopWorkflowInput & { error?: string; cause?: string }) => {
  const { agentId, stopId } = input;
  await recordStopFailure(deps(), agentId, stopId, input.error ?? 'Unknown', input.cause ?? '');
  return { agentId, stopId, recorded: true };
};
