import { randomUUID } from 'node:crypto';
import { endingEvent, publish } from './events.js';
import { AgentConditionFailed, runtimeFor, type Deps, type MessageJob } from './ports.js';
import { RETRY_LIMITS, backoff, retriesExhausted, sleep } from './retry.js';
import {
  AgentConflict,
  AgentNotFound,
  AsyncRequired,
  MessageNotFound,
  RuntimeFailed,
  TooManyInFlight,
  Unavailable,
  agentNotRunning,
  agentStopping,
  DomainError,
} from './errors.js';
import { cursorShapes, decodeCursor, encodeCursor } from './cursor.js';
import {
  type AgentConfig,
  type AgentState,
  type Lease,
  type MessageOutcome,
  type MessageRecord,
  type SendMessageInput,
  MAX_SYNC_WORK_MS,
  deadHorizon,
  expiredLeases,
  leaseExpiredError,
  liveLeaseIds,
} from './model.js';
import { finalizeStop, newId } from './stop.js';



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
  const ran = d.signals.running(agentId, messageId);
  let completedAt: number;
  let run: RunResult;
  try {
    run = await runLeased(d, config, token, record, MAX_SYNC_WORK_MS);
    if (run.status === 'aborted') throw run.reason;
    completedAt = await complete(d, agentId, messageId, token, run);
  } finally {
    ran();
  }
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
    await d.queue.send({ agentId, messageId, token });
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
  const lost = new AbortController();
  // The time this run may take (the request's window, or what the worker's invocation has left):
  // past it the work is stopped and the message recorded failed, saying so, rather than cut off
  // by the platform with its lease left to expire.
  const timeUp = AbortSignal.timeout(timeLimitMs);
  const signal = AbortSignal.any([lost.signal, d.shutdown, timeUp]);
  let leasedUntil = d.now() + d.config.leaseTtlMs;
  let timer: NodeJS.Timeout | undefined;
  let running = true;
  const beat = async () => {
    const now = d.now();
    try {
      await d.agents.renewLease({ agentId, messageId, token, expiresAt: now + d.config.leaseTtlMs, now });
      leasedUntil = now + d.config.leaseTtlMs;
    } catch (err) {
      if (err instanceof AgentConditionFailed) {
        lost.abort(interrupted(messageId));
        // Refused while our lease is still there: the stop was forced or its deadline passed; end it now.
        const current = err.current;
        const ours = current?.leases?.[messageId];
        if (current?.status === 'stopping' && current.stop && typeof ours === 'object' && ours.token === token) {
          await finalizeStopQuietly(d, agentId, current.stop.stopId);
        }
        return;
      }
      d.log.warn('heartbeat failed; retrying at the next beat', { agentId, messageId, error: err as Error });
      // The store cannot be reached: the lease holds until its expiry, and is lost after it (its
      // message is then settled failed by whoever reaches the store next).
      if (d.now() >= leasedUntil) {
        lost.abort(new Unavailable(`Message ${messageId} lost its lease: the store could not be reached to renew it; it will be recorded as failed`));
      }
    }
  };
  const schedule = () => {
    // The next beat is timed from the end of this one, and never after the run ended.
    timer = setTimeout(() => void beat().then(() => running && !signal.aborted && schedule()), d.config.heartbeatMs);
  };
  schedule();
  try {
    const { reply } = await untilAborted(
      runtimeFor(d.runtimes, agent).process(agent, { messageId, text: record.text, metadata: record.metadata, deadline: d.now() + timeLimitMs }, signal),
      signal,
    );
    return { status: 'completed', reply };
  } catch (err) {
    if (timeUp.aborted && !lost.signal.aborted && !d.shutdown.aborted) {
      d.log.warn('message work stopped at its time limit', { agentId, messageId, timeLimitMs });
      return { status: 'failed', error: `the work did not finish within its time limit of ${timeLimitMs} ms` };
    }
    if (signal.aborted) {
      const reason = lost.signal.aborted ? (lost.signal.reason as DomainError) : new Unavailable('The service is shutting down; get the message later');
      d.log.info('message work aborted', { agentId, messageId, reason: reason.message });
      return { status: 'aborted', reason };
    }
    d.log.warn('runtime failed to process a message', { agentId, messageId, error: err as Error });
    return { status: 'failed', error: err instanceof Error ? err.message : String(err) };
  } finally {
    running = false;
    clearTimeout(timer);
  }
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

const interrupted = (messageId: string) =>
  new AgentConflict('MESSAGE_INTERRUPTED', `Agent was stopped before message ${messageId} completed; the message is recorded as interrupted`);

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
  if (!agent || !config || !record || typeof lease !== 'object' || lease.token !== token || !lease.queued) {
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
  const ran = d.signals.running(agentId, messageId);
  try {
    const run = await runLeased(d, config, token, record, timeLimitMs);
    if (run.status === 'aborted') return 'interrupted';
    await complete(d, agentId, messageId, token, run);
    return run.status;
  } catch (err) {
    if (err instanceof AgentConflict && err.code === 'MESSAGE_INTERRUPTED') return 'interrupted';
    throw err;
  } finally {
    ran();
  }
}

type Admitted = { agent: AgentState; config: AgentConfig; record: MessageRecord; token: string } | { duplicate: MessageRecord };

/**
 * Admit in two single-item writes, no read: the `processing` record (conditioned on the messageId
 * being new: a repeat is answered from the stored record), then the lease (conditioned on the
 * agent being active, the cap, and for a synchronous message on work that fits the request); the
 * lease write returns the agent, so its runtime needs no read. A refused lease deletes the record
 * (the message was never admitted). An admission that dies between its two writes leaves a
 * `processing` record with no lease: once its lease could have expired it reads as `failed`, and
 * the next admission of its messageId settles it so (`settleIfUnleased`).
 */
async function admit(d: Deps, agentId: string, messageId: string, input: SendMessageInput, mode: Delivery['mode']): Promise<Admitted> {
  // The configuration the message runs on: cached in a warm function (its version is checked by
  // the lease write), read once otherwise; a refusal is made only on one read just now.
  let config = d.configs.cached(agentId) ?? (await d.configs.read(agentId, false)) ?? (await d.configs.read(agentId, true));
  if (!config) throw new AgentNotFound();
  if (mode === 'sync' && !fitsRequest(config)) {
    config = await d.configs.read(agentId, true);
    if (!config) throw new AgentNotFound();
    assertFitsRequest(config);
  }
  const now = d.now();
  const lease: Lease = { token: randomUUID(), expiresAt: now + d.config.leaseTtlMs, ...(mode === 'async' && { queued: true as const }) };
  const record: MessageRecord = {
    agentId,
    messageId,
    status: 'processing',
    text: input.text,
    ...(input.metadata && { metadata: input.metadata }),
    createdAt: now,
  };
  const existing = await d.records.createMessageRecord(record, lease.token, now);
  if (existing) {
    // The time is taken before the agent is read: a lease written after the read is later still.
    const readAt = d.now();
    const agent = await d.agents.get(agentId);
    if (!agent) throw new AgentNotFound();
    return { duplicate: duplicateOutcome(await settleIfUnleased(d, agent, existing, readAt), mode) };
  }
  try {
    return { ...(await admitLease(d, record, lease, mode, config)), record, token: lease.token };
  } catch (err) {
    if (err instanceof AdmissionEnded) return { duplicate: duplicateOutcome(err.record, mode) };
    // Refused: never admitted, so no record. A store that failed (throttled, unreachable, its
    // answer lost) may or may not have taken the lease: one look, and the record goes unless the
    // lease is there (then the lease expires and the reaper settles both). Should the look fail
    // too, the record reads as never admitted and its next admission settles it.
    if (err instanceof DomainError && !(err instanceof Unavailable)) {
      if (!(await d.records.discardMessageRecord(agentId, messageId, lease.token))) {
        // Not refused after all: the lease write's first attempt landed (its answer lost) and a
        // stop has since ended the message. Its outcome is the answer.
        const ended = await d.records.getMessage(agentId, messageId);
        if (ended) return { duplicate: duplicateOutcome(ended, mode) };
      }
    } else if (!(err instanceof DomainError)) await discardUnlessLeased(d, agentId, messageId, lease.token);
    throw err;
  }
}

/**
 * The look after a failed lease write. A lease write still on its way may land after it: then no
 * work runs (the admission answered 503), and that lease, without a record, is released by the
 * reclaim or the next stop like any orphan.
 */
async function discardUnlessLeased(d: Deps, agentId: string, messageId: string, token: string): Promise<void> {
  try {
    const agent = await d.agents.get(agentId);
    const lease = agent?.leases?.[messageId];
    if (typeof lease !== 'object' || lease.token !== token) await d.records.discardMessageRecord(agentId, messageId, token);
  } catch (err) {
    d.log.warn('a message whose admission failed could not be cleared; it reads as never admitted', { agentId, messageId, error: err as Error });
  }
}

/** This admission's lease had landed (its answer lost) and a stop has since ended its message: the record's outcome is the answer. */
class AdmissionEnded extends Error {
  constructor(readonly record: MessageRecord) {
    super('the admission was ended by a stop');
  }
}

async function admitLease(
  d: Deps,
  record: MessageRecord,
  lease: Lease,
  mode: Delivery['mode'],
  checked: AgentConfig,
): Promise<{ agent: AgentState; config: AgentConfig }> {
  let config = checked;
  const { agentId, messageId } = record;
  // The reaper must look at this agent by the time this lease could expire (a crashed worker);
  // the index moves only when its next look is later than that: about once per lease TTL under
  // steady traffic, not per message. First guess: it is not (refused with the item if wrong).
  let moveDueAt = false;
  let reclaimTried = false;
  let notStoppedAfter = record.createdAt;
  for (let attempt = 0; ; attempt++) {
    let current: AgentState | null;
    try {
      const agent = await d.agents.admitLease({
        agentId,
        messageId,
        lease,
        maxInFlight: d.config.maxInFlight,
        now: d.now(),
        moveDueAt,
        notStoppedAfter,
        configVersion: config.configVersion,
      });
      // Admitted only after its own lease had expired (a store slower than the lease TTL): the
      // record may already be settled as never admitted. Never run work whose lease is gone: the
      // reclaim below settles and releases this lease too.
      const late = d.now() >= lease.expiresAt;
      // Crashed workers' messages are settled by the next admission (and by the reaper), so they
      // neither stay `processing` forever nor hold the in-flight cap.
      if ((!reclaimTried || late) && expiredLeases(agent, deadHorizon(d, d.now())).length > 0) await reclaimExpiredLeases(d, agent);
      if (late) {
        throw new Unavailable(`Message ${messageId} took longer to admit than its lease lasts and was recorded as failed; send it again with a new messageId`);
      }
      return { agent, config };
    } catch (err) {
      if (!(err instanceof AgentConditionFailed)) throw err;
      current = err.current;
    }
    if (!current) throw new AgentNotFound();
    if (current.status === 'inactive') throw agentNotRunning();
    if (current.status === 'stopping') throw agentStopping();
    if (current.configVersion !== config.configVersion) {
      // Changed since it was read (or a cached one is behind): the message is checked against the one the agent runs now.
      const now = await d.configs.get(agentId, current.configVersion);
      if (!now) throw new AgentNotFound();
      if (mode === 'sync') assertFitsRequest(now);
      config = now;
      continue;
    }
    if (current.leases?.[messageId] !== undefined) {
      throw new AgentConflict('MESSAGE_IN_PROGRESS', `Message ${messageId} is already being processed; get it later for its reply`);
    }
    if ((current.lastStop?.stoppedAt ?? 0) > notStoppedAfter) {
      // A stop committed since this admission began: if it ended this message, our lease had
      // landed (its answer lost) and this is the SDK's retry; if not (a clock ahead stamped the
      // stop), the admission goes on past that stop.
      const now = await d.records.getMessage(agentId, messageId);
      if (now && now.status !== 'processing') throw new AdmissionEnded(now);
      notStoppedAfter = current.lastStop!.stoppedAt;
      continue;
    }
    if (current.dueAt > lease.expiresAt !== moveDueAt) {
      // A wrong guess of where the reaper's next check is: the other shape at once, no backoff.
      moveDueAt = !moveDueAt;
      continue;
    }
    if (Object.keys(current.leases ?? {}).length >= d.config.maxInFlight) {
      if (reclaimTried || expiredLeases(current, deadHorizon(d, d.now())).length === 0) {
        throw new TooManyInFlight(d.config.maxInFlight, Math.max(1, Math.ceil(d.config.leaseTtlMs / 60_000)));
      }
      reclaimTried = true;
      await reclaimExpiredLeases(d, current);
      continue;
    }
    if (attempt >= RETRY_LIMITS.admission) throw retriesExhausted();
    await backoff(attempt);
  }
}

const NEVER_ADMITTED = 'the message was never admitted: its admission stopped between writing the message and taking its lease';

/**
 * A `processing` record whose admission never wrote its lease (it died between its two writes,
 * or its lease write was refused and the record's deletion failed): once that lease could have
 * expired, on any function's clock, it never will be admitted. Before then it may still be on
 * its way; a record whose lease is there (by its token) is in flight.
 */
function neverAdmitted(d: Deps, agent: AgentState, record: MessageRecord, now: number): boolean {
  if (record.status !== 'processing' || now < record.createdAt + d.config.leaseTtlMs + d.config.clockToleranceMs) return false;
  return agent.leases?.[record.messageId] === undefined;
}

/**
 * How a record reads: one never admitted reads as the failure it is (reads never write; a writer
 * settles it). `readAt`: the time taken before the agent was read (a lease written after that
 * read was written after it too, and then the admission itself finds it too late to run).
 */
function asRead(d: Deps, agent: AgentState, record: MessageRecord, readAt: number): MessageRecord {
  return neverAdmitted(d, agent, record, readAt) ? { ...record, status: 'failed', error: NEVER_ADMITTED } : record;
}

/** A writer's turn: a never-admitted record is settled `failed`, with the reason. Returns the record as it now stands. */
export async function settleIfUnleased(d: Deps, agent: AgentState, record: MessageRecord, readAt: number): Promise<MessageRecord> {
  const now = d.now();
  if (!neverAdmitted(d, agent, record, readAt)) return record;
  if (await d.records.settleUnleased(record.agentId, record.messageId, record.createdAt, NEVER_ADMITTED, now)) {
    await publish(d, endingEvent(record.agentId, record.messageId, { status: 'failed', error: NEVER_ADMITTED }));
    return { ...record, status: 'failed', error: NEVER_ADMITTED, completedAt: now };
  }
  return (await d.records.getMessage(record.agentId, record.messageId)) ?? record;
}

const fitsRequest = ({ runtime }: AgentConfig) => runtime.type !== 'echo' || (runtime.delayMs ?? 0) <= MAX_SYNC_WORK_MS;

/** Work that cannot end inside the API request is refused up front, with what to do instead. */
function assertFitsRequest(agent: AgentConfig): void {
  const { runtime } = agent;
  if (runtime.type === 'echo' && !fitsRequest(agent)) {
    throw new AsyncRequired(
      `This agent's work takes ${runtime.delayMs} ms, longer than a synchronous request can wait (${MAX_SYNC_WORK_MS} ms); ` +
        'send it with the header "Prefer: respond-async" and get the message later',
    );
  }
}

/** A repeated messageId: the stored outcome, never a second run. */
function duplicateOutcome(existing: MessageRecord, mode: Delivery['mode']): MessageRecord {
  switch (existing.status) {
    case 'completed':
      return existing;
    case 'processing':
      // An asynchronous retry of a message already accepted: the same answer, 202 and where to look.
      if (mode === 'async') return existing;
      throw new AgentConflict('MESSAGE_IN_PROGRESS', `Message ${existing.messageId} is already being processed; get it later for its reply`);
    case 'interrupted':
      throw new AgentConflict('MESSAGE_INTERRUPTED', `Message ${existing.messageId} was interrupted by a stop; send it again with a new messageId`);
    case 'failed':
      throw new AgentConflict('MESSAGE_FAILED', `Message ${existing.messageId} failed (${existing.error ?? 'runtime error'}); send it again with a new messageId`);
  }
}

/**
 * Complete, in two single-item writes (no transaction, so concurrent completions of one agent
 * never conflict): the record takes the outcome while the lease still holds the message, then the
 * lease is released. Both are fenced on the admission's token (race: late completion vs
 * re-admission of the same messageId) and the release, while the agent is stopping, on the stop's
 * deadline (race: completion vs graceful timeout: the deadline is a promise). A refused release
 * means a stop took the message: its commit records it `interrupted`, over the outcome written
 * first. The release returns the agent, so the completion that drained a stopping agent
 * finalizes the stop at once without a read (event-driven; the workflow's Wait loop is only the
 * guarantee). Finalizing never fails the (completed) message: the workflow retries it.
 */
async function complete(
  d: Deps,
  agentId: string,
  messageId: string,
  token: string,
  outcome: Extract<MessageOutcome, { status: 'completed' | 'failed' }>,
): Promise<number> {
  const now = d.now();
  // Refused: a stop (or a reclaim) already ended the message, or the record is another admission's.
  if (!(await d.records.recordOutcome({ agentId, messageId, token, outcome, now }))) throw interrupted(messageId);
  let agent: AgentState;
  try {
    agent = await d.agents.releaseLease({ agentId, messageId, token, now: d.now() }).catch(async (err: unknown) => {
      if (err instanceof AgentConditionFailed) throw err;
      // No answer after the SDK's retries, though the release may have landed: look once.
      const now = await d.agents.get(agentId).catch(() => undefined);
      if (now && now.leases?.[messageId] === undefined) throw new AgentConditionFailed(now);
      throw err;
    });
  } catch (err) {
    if (!(err instanceof AgentConditionFailed)) throw err;
    agent = await afterRefusedRelease(d, agentId, messageId, token, outcome.status, err.current);
  }
  await publish(d, endingEvent(agentId, messageId, outcome));
  if (agent.status === 'stopping' && agent.stop && liveLeaseIds(agent, deadHorizon(d, d.now())).length === 0) {
    await finalizeStopQuietly(d, agentId, agent.stop.stopId, agent);
  }
  return now;
}

/**
 * The release was refused: either the outcome stands (our release landed and its answer was lost,
 * a reclaim released the lease after the outcome was recorded, or the stop that took the lease
 * found the message already ended and counted it drained), and the agent is returned; or a stop
 * took the message, and it is interrupted. Still holding our lease, the agent is stopping, forced
 * or past its deadline: this request ends that stop itself first.
 */
async function afterRefusedRelease(
  d: Deps,
  agentId: string,
  messageId: string,
  token: string,
  status: 'completed' | 'failed',
  current: AgentState | null,
): Promise<AgentState> {
  if (!current) throw interrupted(messageId);
  const lease = current.leases?.[messageId];
  if (lease === undefined) {
    // A stop that took the lease would have recorded the message interrupted, in the same write.
    if ((await d.records.getMessage(agentId, messageId))?.status === status) return current;
    throw interrupted(messageId);
  }
  if (current.status !== 'stopping' || !current.stop || typeof lease !== 'object' || lease.token !== token) throw interrupted(messageId);
  await finalizeStopQuietly(d, agentId, current.stop.stopId, current);
  // The agent first: once it shows the commit, the record read after it is the commit's.
  const after = await d.agents.get(agentId);
  if (after?.lastStop?.stopId !== current.stop.stopId) throw interrupted(messageId);
  if ((await d.records.getMessage(agentId, messageId))?.status !== status) throw interrupted(messageId);
  return after;
}

async function finalizeStopQuietly(d: Deps, agentId: string, stopId: string, known?: AgentState): Promise<void> {
  await finalizeStop(d, agentId, stopId, known).catch((err: Error) =>
    d.log.warn('finalize from a message request failed; the workflow will retry it', { agentId, stopId, error: err }),
  );
}

/**
 * Settle the expired leases (crashed workers) of an active agent: each lease is released and its
 * message recorded `failed`, in one transaction fenced on that very lease (its token and expiry),
 * so a lease renewed or completed meanwhile is left alone. A message whose reply was recorded
 * before its worker died keeps it: only the lease is released.
 */
export async function reclaimExpiredLeases(d: Deps, agent: AgentState): Promise<number> {
  const now = d.now();
  let reclaimed = 0;
  for (const [messageId, lease] of expiredLeases(agent, deadHorizon(d, now))) {
    const error = leaseExpiredError(lease);
    const settled = await d.agents.reclaimLease(agent.agentId, messageId, lease, error, now).catch(async (err: unknown) => {
      // No answer after the SDK's retries, though the reclaim may have landed: if it did, it is
      // announced here (the lease is gone, so no one else will).
      const [current, record] = await Promise.all([d.agents.get(agent.agentId), d.records.getMessage(agent.agentId, messageId)]).catch(() => []);
      if (current && current.leases?.[messageId] === undefined && record?.status === 'failed' && record.error === error) return 'failed' as const;
      throw err;
    });
    if (!settled) continue;
    reclaimed++;
    // Every ending has its event, whoever settles it: a reply recorded before its worker died too.
    if (settled === 'failed') await publish(d, endingEvent(agent.agentId, messageId, { status: 'failed', error }));
    else if (settled.released === 'completed' || settled.released === 'failed') await publish(d, endingEvent(agent.agentId, messageId, { status: settled.released, error: settled.error }));
  }
  return reclaimed;
}

export async function getMessage(d: Deps, agentId: string, messageId: string): Promise<MessageRecord> {
  const readAt = d.now();
  const [agent, message] = await Promise.all([d.agents.get(agentId), d.records.getMessage(agentId, messageId)]);
  if (!agent) throw new AgentNotFound();
  if (!message) throw new MessageNotFound();
  return asRead(d, agent, message, readAt);
}

export async function listMessages(d: Deps, agentId: string, q: { limit: number; cursor?: string }) {
  const startKey = decodeCursor(q.cursor, cursorShapes.messages(agentId));
  const readAt = d.now();
  const agent = await d.agents.get(agentId);
  if (!agent) throw new AgentNotFound();
  const page = await d.records.listMessages(agentId, q.limit, startKey);
  const items = page.items.map((m) => asRead(d, agent, m, readAt));
  return { items, nextCursor: encodeCursor(page.lastKey) };
}

export async function listStops(d: Deps, agentId: string, q: { limit: number; cursor?: string }) {
  const startKey = decodeCursor(q.cursor, cursorShapes.stops(agentId));
  if (!(await d.agents.get(agentId))) throw new AgentNotFound();
  const page = await d.records.listStops(agentId, q.limit, startKey);
  return { items: page.items, nextCursor: encodeCursor(page.lastKey) };
}
