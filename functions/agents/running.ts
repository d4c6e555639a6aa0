/** Running a message: in the API request or on the worker, holding its lease by heartbeat; then its completion. */
import { randomUUID } from 'node:crypto';
import { AgentConditionFailed, runtimeFor, type Deps, type MessageJob } from './ports.js';
import { sleep } from './retry.js';
import { AgentConflict, RuntimeFailed, Unavailable, DomainError } from './errors.js';
import { type AgentConfig, type MessageRecord, type SendMessageInput, MAX_REPLY_BYTES, MAX_SYNC_WORK_MS, newId } from './model.js';
import { admit, duplicateOutcome } from './admission.js';
import { complete, messageInterrupted } from './completion.js';

/**
 * How a message is answered. `sync`: it runs inside the API request (work that fits the API
 * window). `async`: it is handed to the worker and the request waits up to `waitMs` for the
 * outcome (0 with `Prefer: respond-async`), answering `processing` when the wait ends first.
 */
export type Delivery = { mode: 'sync' } | { mode: 'async'; waitMs: number };

export interface Sent {
  message: MessageRecord;
  duplicate: boolean;
}

/**
 * Admit, run through the agent's runtime, complete. Admission and completion are two single-item
 * writes each (record and lease), ordered so that a message is `processing` only while it holds
 * a lease, but for the moment between admission's two writes (see `admit` and `complete`).
 */
export async function sendMessage(d: Deps, agentId: string, input: SendMessageInput, delivery: Delivery = { mode: 'sync' }): Promise<Sent> {
  const messageId = input.messageId ?? newId();
  const admitted = await admit(d, agentId, messageId, input, delivery.mode);
  if ('duplicate' in admitted) return { message: admitted.duplicate, duplicate: true };
  const { config, record, token } = admitted;
  if (delivery.mode === 'async') return handOff(d, record, token, delivery.waitMs);

  // Inside the API request: the work must end before API Gateway's limit, with a clear failure.
  const run = await runLeased(d, config, token, record, MAX_SYNC_WORK_MS);
  if (run.status === 'aborted') throw run.reason;
  const completedAt = await complete(d, agentId, messageId, token, run);
  if (run.status === 'failed') {
    throw new RuntimeFailed(`Agent runtime failed to process message ${messageId}: ${run.error}`);
  }
  return { message: { ...record, status: 'completed', reply: run.reply, completedAt }, duplicate: false };
}

/**
 * Hand an admitted message to the worker. A hand-off that fails loses nothing: the message is
 * settled `failed` with the reason (or, if even that write fails, its lease expires within the
 * TTL and the reaper or the next admission settles it), and the caller gets 503.
 */
async function handOff(d: Deps, record: MessageRecord, token: string, waitMs: number): Promise<Sent> {
  const { agentId, messageId } = record;
  try {
    const correlationId = d.correlationId();
    await d.queue.send({ agentId, messageId, token, ...(correlationId && { correlationId }) });
  } catch (err) {
    d.log.error('message not handed to the worker; settling it failed', { agentId, messageId, error: err as Error });
    const error = 'the message could not be handed to a worker';
    await complete(d, agentId, messageId, token, { status: 'failed', error }).catch((settle: Error) =>
      d.log.warn('settling a message not handed off failed; its lease expires and the reaper settles it', { agentId, messageId, error: settle }),
    );
    throw new Unavailable(`Message ${messageId} could not be handed to a worker and was recorded as failed; send it again with a new messageId`);
  }
  if (waitMs === 0) return { message: record, duplicate: false };
  // Waited for: answered as a synchronous message would be.
  return { message: duplicateOutcome(await awaitMessage(d, record, waitMs), 'async'), duplicate: false };
}

/** Wait up to `waitMs` for a handed-off message to end, re-reading its record every `stopPollMs`. */
async function awaitMessage(d: Deps, record: MessageRecord, waitMs: number): Promise<MessageRecord> {
  const until = d.now() + waitMs;
  for (;;) {
    const left = until - d.now();
    if (left <= 0) return record;
    await sleep(Math.min(d.config.stopPollMs, left));
    record = (await d.records.getMessage(record.agentId, record.messageId)) ?? record;
    if (record.status !== 'processing') return record;
  }
}

export type RunResult =
  | { status: 'completed'; reply: string }
  | { status: 'failed'; error: string }
  | { status: 'aborted'; reason: DomainError };

/**
 * Run one admitted message through the agent's runtime while holding its lease: a heartbeat
 * renews it every `heartbeatMs`, conditioned on the admission's token. When a heartbeat is
 * refused (force stop, graceful timeout, deadline passed, agent deleted) the runtime's signal
 * fires and the run stops waiting on it: the stop that took the lease records the message
 * `interrupted`. The same for a message run in the API request and one run by the worker.
 */
export async function runLeased(d: Deps, agent: AgentConfig, token: string, record: MessageRecord, timeLimitMs: number): Promise<RunResult> {
  const { agentId, messageId } = record;
  // The time this run may take (the request's window, or what the worker's invocation has left):
  // past it the work is stopped and the message recorded failed, saying so, rather than cut off
  // by the platform with its lease left to expire.
  const timeUp = AbortSignal.timeout(timeLimitMs);
  const lease = holdLease(d, agentId, messageId, token);
  const signal = AbortSignal.any([lease.lost, d.shutdown, timeUp]);
  const runtime = { runtime: agent.runtime.type };
  const started = performance.now();
  try {
    const { reply } = await untilAborted(
      runtimeFor(d.runtimes, agent).process(agent, { messageId, text: record.text, metadata: record.metadata, deadline: d.now() + timeLimitMs }, signal),
      signal,
    );
    d.metrics.add('RuntimeLatency', performance.now() - started, 'Milliseconds', runtime);
    return keepable(d, agentId, messageId, reply, runtime);
  } catch (err) {
    if (timeUp.aborted && !lease.lost.aborted && !d.shutdown.aborted) {
      d.metrics.add('RuntimeFailures', 1, 'Count', runtime, { cause: 'time_limit' });
      d.log.warn('message work stopped at its time limit', { agentId, messageId, timeLimitMs });
      return { status: 'failed', error: `the work did not finish within its time limit of ${timeLimitMs} ms` };
    }
    if (signal.aborted) {
      const reason = lease.lost.aborted ? (lease.lost.reason as DomainError) : new Unavailable('The service is shutting down; get the message later');
      d.log.info('message work aborted', { agentId, messageId, reason: reason.message });
      return { status: 'aborted', reason };
    }
    d.log.warn('runtime failed to process a message', { agentId, messageId, error: err as Error });
    d.metrics.add('RuntimeLatency', performance.now() - started, 'Milliseconds', runtime);
    d.metrics.add('RuntimeFailures', 1, 'Count', runtime, { cause: 'error' });
    return { status: 'failed', error: keepableError(err instanceof Error ? err.message : String(err)) };
  } finally {
    lease.release();
  }
}

/** How much of a failure's reason a message keeps (the runtime's words may be a whole answer): its record and its event stay small. */
const MAX_ERROR_CHARS = 2_000;
const keepableError = (error: string) => (error.length > MAX_ERROR_CHARS ? `${error.slice(0, MAX_ERROR_CHARS)}… (${error.length} characters in all)` : error);

/** A reply the record can keep is the outcome; a larger one fails the message, saying so (never a store error, never retried). */
function keepable(d: Deps, agentId: string, messageId: string, reply: string, runtime: Record<string, string>): RunResult {
  const bytes = Buffer.byteLength(reply, 'utf8');
  if (bytes <= MAX_REPLY_BYTES) return { status: 'completed', reply };
  d.metrics.add('RuntimeFailures', 1, 'Count', runtime, { cause: 'reply_too_large' });
  d.log.warn('reply too large to keep', { agentId, messageId, bytes });
  return { status: 'failed', error: `the agent's reply is ${bytes} bytes, more than a message keeps (${MAX_REPLY_BYTES} bytes)` };
}

/**
 * Hold a message's lease by heartbeat while its work runs: every `heartbeatMs` (timed from the
 * end of the last beat) the lease is renewed, conditioned on the admission's token. `lost` fires
 * when a beat is refused (the lease is gone, or the stop was forced or is past its deadline: the
 * stop that took it records the message), or when the store cannot be reached past the lease's
 * expiry. `release` stops the beats (the run ended).
 */
function holdLease(d: Deps, agentId: string, messageId: string, token: string): { lost: AbortSignal; release: () => void } {
  const lost = new AbortController();
  let leasedUntil = d.now() + d.config.leaseTtlMs;
  let timer: NodeJS.Timeout | undefined;
  let running = true;
  const beat = async () => {
    const now = d.now();
    try {
      await d.agents.renewLease({ agentId, messageId, token, expiresAt: now + d.config.leaseTtlMs, now });
      leasedUntil = now + d.config.leaseTtlMs;
    } catch (err) {
      if (err instanceof AgentConditionFailed) return lost.abort(messageInterrupted(messageId));
      d.log.warn('heartbeat failed; retrying at the next beat', { agentId, messageId, error: err as Error });
      // The store cannot be reached: the lease holds until its expiry, and is lost after it (its
      // message is then settled failed by whoever reaches the store next).
      if (d.now() >= leasedUntil) {
        d.metrics.add('HeartbeatsLost', 1, 'Count');
        lost.abort(new Unavailable(`Message ${messageId} lost its lease: the store could not be reached to renew it; it will be recorded as failed`));
      }
    }
  };
  const schedule = () => {
    timer = setTimeout(() => void beat().then(() => running && !lost.signal.aborted && !d.shutdown.aborted && schedule()), d.config.heartbeatMs);
  };
  schedule();
  return {
    lost: lost.signal,
    release: () => {
      running = false;
      clearTimeout(timer);
    },
  };
}

/** The runtime's answer, or a rejection as soon as the signal fires (whether or not it listens). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * The worker: run one handed-off message. Delivery is at least once, so it first claims the job
 * (one conditional write on the lease, by its token, removing `queued`): a repeated delivery, a
 * job whose message a stop or a reclaim already settled, or one for a deleted agent is skipped.
 */
export async function runQueuedMessage(
  d: Deps,
  job: MessageJob,
  timeLimitMs: number,
): Promise<'completed' | 'failed' | 'interrupted' | 'skipped'> {
  const { agentId, messageId, token } = job;
  const [agent, record] = await Promise.all([d.agents.get(agentId), d.records.getMessage(agentId, messageId)]);
  const lease = agent?.leases?.[messageId];
  // Its configuration: cached by version in a warm worker (runtime and settings do not change while the agent runs).
  const config = agent && (await d.configs.get(agentId, agent.configVersion));
  if (!agent || !config || !record || lease?.token !== token || !lease.queued) {
    d.log.info('message job skipped: already claimed or settled', { agentId, messageId });
    return 'skipped';
  }
  const now = d.now();
  try {
    await d.agents.renewLease({ agentId, messageId, token, expiresAt: now + d.config.leaseTtlMs, now, claim: randomUUID() });
  } catch (err) {
    if (!(err instanceof AgentConditionFailed)) throw err;
    d.log.info('message job skipped: claimed by another delivery, or its lease is gone', { agentId, messageId });
    return 'skipped';
  }
  try {
    const run = await runLeased(d, config, token, record, timeLimitMs);
    if (run.status === 'aborted') return 'interrupted';
    await complete(d, agentId, messageId, token, run);
    return run.status;
  } catch (err) {
    if (err instanceof AgentConflict && err.code === 'MESSAGE_INTERRUPTED') return 'interrupted';
    throw err;
  }
}
