import type { Context, ScheduledEvent } from 'aws-lambda';
import { deps } from '../adapters/deps.js';
import { logger } from '../adapters/logger.js';
import { lambdaHandler } from '../adapters/observability.js';
import { runReaper } from '../agents/reaper.js';

/** EventBridge schedule -> one reaper run, leaving 10 s of the function's time unused. */
export const handler = lambdaHandler(
  // Each run is its own correlation id (its request id): the stops it begins carry it.
  () => undefined,
  async (_event: ScheduledEvent, context: Context) => {
    const summary = await runReaper(deps(), { budgetMs: Math.max(1000, context.getRemainingTimeInMillis() - 10_000) });
    logger.info('reaper run', { ...summary });
    return summary;
  },
);
