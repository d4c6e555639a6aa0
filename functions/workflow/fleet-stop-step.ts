import type { Context } from 'aws-lambda';
import { deps } from '../adapters/deps.js';
import { carried, lambdaHandler } from '../adapters/observability.js';
import { advanceFleetStop, failFleetStop } from '../agents/fleet.js';
import type { FleetWorkflowInput } from '../agents/ports.js';

export type FleetStepInput = FleetWorkflowInput & { step: 'advance' } | FleetWorkflowInput & { step: 'fail'; error?: string; cause?: string };

/**
 * The fleet stop workflow's one task function: `advance` (select, stop, settle, count; leaving
 * 10 s of the invocation unused) and `fail` (its Catch target: the operation ends failed).
 */
export const handler = lambdaHandler(carried, async (input: FleetStepInput, context: Context) => {
  const d = deps();
  if (input.step === 'fail') {
    await failFleetStop(d, input.operationId, input.error ?? 'Unknown', input.cause ?? '');
    return { operationId: input.operationId, correlationId: input.correlationId, state: 'failed' };
  }
  const budgetMs = Math.max(1000, context.getRemainingTimeInMillis() - 10_000);
  return { operationId: input.operationId, correlationId: input.correlationId, ...(await advanceFleetStop(d, input.operationId, budgetMs)) };
});
