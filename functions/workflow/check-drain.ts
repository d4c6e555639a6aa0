import { deps } from '../adapters/deps.js';
import { carried, lambdaHandler } from '../adapters/observability.js';
import type { StopWorkflowInput } from '../agents/ports.js';
import { checkDrain } from '../agents/stop-view.js';

/** CheckDrain task: `state` drives the workflow's Choice; `waitSeconds` its Wait. */
export const handler = lambdaHandler(carried, async (input: StopWorkflowInput) => {
  const { agentId, stopId, correlationId } = input;
  const drain = await checkDrain(deps(), agentId, stopId);
  deps().log.debug('drain checked', { agentId, stopId, ...drain });
  return { agentId, stopId, correlationId, ...drain };
});
