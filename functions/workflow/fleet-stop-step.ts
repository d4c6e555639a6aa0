import type { Context } from 'aws-lambda';
import { deps } from '../adapters/deps.js';
import { advanceFleetStop, failFleetStop } from '../agents/fleet.js';
import type { FleetWorkflowInput } from '../agents/ports.js';

/** A step's work budget when no Lambda context says how long it may run (the local interpreter). */
const LOCAL_BUDGET_MS = 20_000;

export type FleetStepInput = FleetWorkflowInput & { step: 'advance' } | FleetWorkflowInput & { step: 'fail'; error?: string; cause?: string };

/**
 * The fleet stop workflow's one task function: `advance` (select, stop, settle, count; leaving
 * 10 s of the invocation unused) and `fail` (its Catch target: the operation ends failed).
 */
export const handler = async (input: FleetStepInput, context?: Context) => {
  const d = deps();
  if (input.step === 'fail') {
    await failFleetStop(d, input.operationId, input.error ?? 'Unknown', input.cause ?? '');
    return { operationId: input.operationId, state: 'failed' };
  }
  const budgetMs = context ? Math.max(1000, context.getRemainingTimeInMillis() - 10_000) : LOCAL_BUDGET_MS;
  return { operationId: input.operationId, ...(await advanceFleetStop(d, input.operationId, budgetMs)) };
};
