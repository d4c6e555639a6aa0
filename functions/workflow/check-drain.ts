import { deps } from '../adapters/deps.js';
import type { StopWorkflowInput } from '../agents/ports.js';
import { checkDrain } from '../agents/stop-view.js';

/** CheckDrain task: `state` drives the workflow's Choice; `waitSeconds` its Wait. */
export const handler = async (input: StopWorkflowInput) => {
  const { agentId, stopId } = input;
  return { agentId, stopId, ...(await checkDrain(deps(), agentId, stopId)) };
};
