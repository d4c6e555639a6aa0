import type { SQSEvent } from 'aws-lambda';
import type { Deps } from '../functions/adapters/deps.js';
import { invokeLocally } from './invoke.js';
import type { CloseJob, MessageJob, MessageQueue } from '../functions/agents/ports.js';

type Job = MessageJob | CloseJob;
import { handler } from '../functions/worker/process-message.js';

export interface LocalQueueOptions {
  /** Deliveries of one job before it is dead-lettered (SQS's maxReceiveCount in the stack). */
  maxReceives?: number;
  /** Wait before a job that failed is delivered again (SQS's visibility timeout, shortened). */
  redeliverAfterMs?: number;
  /** Each delivery's time, as the worker function's timeout gives it in AWS (default 15 minutes). */
  invocationTimeoutMs?: number;
  log?: (line: string) => void;
  /** The worker function's own dependencies (its grants). */
  deps?: () => Deps;
}

/**
 * The local stand-in for the SQS queue and its Lambda event source mapping: each job is given to
 * the very worker handler the stack deploys, in an SQS event, at once and concurrently; a job
 * the handler reports failed is delivered again, and dead-lettered after `maxReceives`. Jobs live
 * in memory: a job of a killed process is lost with it, and its lease then expires and is settled
 * `failed`, as a crashed worker's is in AWS.
 */
export class LocalMessageQueue implements MessageQueue {
  readonly deadLetters: Job[] = [];
  /** Deliveries that ended (ran, skipped or failed). */
  finished = 0;
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  private sequence = 0;

  constructor(private readonly opts: LocalQueueOptions = {}) {}

  async send(job: Job): Promise<void> {
    if (this.closed) throw new Error('the local message queue is closed');
    this.deliver(job, 1);
  }

  /** Resolves once no delivery is running. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Stop taking jobs and wait for the deliveries running now (their work was told to stop). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running]);
  }

  private deliver(job: Job, receiveCount: number): void {
    const run = this.invoke(job, receiveCount).finally(() => {
      this.finished++;
      this.running.delete(run);
    });
    this.running.add(run);
  }

  private async invoke(job: Job, receiveCount: number): Promise<void> {
    const event = sqsEvent(job, receiveCount, `local-${++this.sequence}`);
    const { batchItemFailures } = await invokeLocally(
      'MessageWorker',
      { deps: this.opts.deps?.(), timeoutMs: this.opts.invocationTimeoutMs ?? 900_000 },
      (context) => handler(event, context),
    );
    if (batchItemFailures.length === 0 || this.closed) return;
    if (receiveCount >= (this.opts.maxReceives ?? 3)) {
      this.deadLetters.push(job);
      this.opts.log?.(`${job.kind ?? 'message'} job dead-lettered after ${receiveCount} deliveries: ${job.agentId}/${job.kind === 'close' ? job.stopId : job.messageId}`);
      return;
    }
    setTimeout(() => this.deliver(job, receiveCount + 1), this.opts.redeliverAfterMs ?? 1000).unref();
  }
}

/** An SQS event of one record, as the Lambda event source mapping delivers it. */
export function sqsEvent(job: Job | string, receiveCount: number, messageId: string): SQSEvent {
  const now = String(Date.now());
  return {
    Records: [
      {
        messageId,
        receiptHandle: messageId,
        body: typeof job === 'string' ? job : JSON.stringify(job),
        attributes: {
          ApproximateReceiveCount: String(receiveCount),
          SentTimestamp: now,
          SenderId: 'local',
          ApproximateFirstReceiveTimestamp: now,
        },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:local:000000000000:agent-messages',
        awsRegion: 'local',
      },
    ],
  };
}
