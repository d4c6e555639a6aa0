import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import { deps } from '../adapters/deps.js';
import { logger } from '../adapters/logger.js';
import { carried, lambdaHandler } from '../adapters/observability.js';
import { runQueuedMessage } from '../agents/running.js';
import { messageIdSchema, uuidSchema } from '../agents/model.js';
import { closeForcedStop } from '../agents/stop-commit.js';

const messageJob = z.strictObject({ kind: z.optional(z.literal('message')), agentId: uuidSchema, messageId: messageIdSchema, token: z.uuid(), correlationId: z.optional(z.string()) });
const closeJob = z.strictObject({
  kind: z.literal('close'),
  agentId: uuidSchema,
  stopId: z.string().check(z.minLength(1), z.maxLength(64)),
  configVersion: z.string().check(z.minLength(1), z.maxLength(64)),
  interrupted: z.array(messageIdSchema),
  correlationId: z.optional(z.string()),
});
const jobSchema = z.union([closeJob, messageJob]);

/** One job: a message to run (its time limit from the invocation's), or a forced stop's runtime to tell. */
async function runJob(job: z.infer<typeof jobSchema>, context: Context): Promise<string> {
  if (job.kind === 'close') return closeForcedStop(deps(), job);
  // The work may use the invocation's time but the last seconds, kept to record its outcome.
  const d = deps();
  const timeLimitMs = Math.max(1000, context.getRemainingTimeInMillis() - d.config.workerWrapUpMs);
  return runQueuedMessage(d, job, timeLimitMs);
}

const parsed = (body: string): unknown => {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
};

/**
 * The message worker: runs asynchronous messages (up to the function's 15 minutes) and tells the
 * runtimes of forced stops (after their commit, so a force stop never waits on one), fed by SQS in
 * AWS and by the in-process queue locally (local/queue.ts), the same handler either way. A job
 * that failed for a transient reason (the store unreachable) is reported back for redelivery;
 * after the queue's receive limit it goes to the dead-letter queue, and its lease, no longer
 * renewed, expires and is settled `failed`. A malformed job is logged and dropped (a retry
 * cannot fix it). Work still running near the invocation's timeout is stopped and recorded
 * `failed` with that reason.
 */
export const handler = lambdaHandler(
  (event: SQSEvent) => carried(parsed(event.Records[0]?.body ?? '')),
  async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const record of event.Records) {
      const body = parsed(record.body);
      logger.setCorrelationId(carried(body) ?? context.awsRequestId);
      const job = jobSchema.safeParse(body);
      if (!job.success) {
        logger.error('malformed message job dropped', { sqsMessageId: record.messageId });
        continue;
      }
      const about = job.data.kind === 'close' ? { agentId: job.data.agentId, stopId: job.data.stopId } : { agentId: job.data.agentId, messageId: job.data.messageId };
      try {
        const outcome = await runJob(job.data, context);
        logger.info(`${job.data.kind ?? 'message'} job done`, { ...about, outcome });
      } catch (err) {
        logger.warn(`${job.data.kind ?? 'message'} job failed; it will be delivered again`, { ...about, error: err as Error });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures };
  },
);
