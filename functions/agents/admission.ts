/** Admitting a message: its record, then its lease, each conditioned on the race it closes; a repeated messageId answered from its record. */
import { randomUUID } from 'node:crypto';
import { endingEvent, publish } from './events.js';
import { AgentConditionFailed, type Deps } from './ports.js';
import { RETRY_LIMITS, backoff, retriesExhausted } from './retry.js';
import { AgentConflict, AgentNotFound, AsyncRequired, TooManyInFlight, Unavailable, agentNotRunning, agentStopping, DomainError } from './errors.js';
import { type AgentConfig, type AgentState, type Lease, type MessageRecord, type SendMessageInput, MAX_SYNC_WORK_MS, deadHorizon, expiredLeases } from './model.js';
import { reclaimExpiredLeases } from './completion.js';
import type { Delivery } from './running.js';

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
export async function admit(d: Deps, agentId: string, messageId: string, input: SendMessageInput, mode: Delivery['mode']): Promise<Admitted> {
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
      d.metrics.add('AdmissionsRefused', 1, 'Count', { reason: err.code });
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
    if (lease?.token !== token) await d.records.discardMessageRecord(agentId, messageId, token);
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

/** What an admission's lease write has learnt from its refusals so far: its next attempt's shape. */
interface Attempt {
  config: AgentConfig;
  /** Whether this write moves the reaper's next check to the lease's expiry (a guess, held by the condition). */
  moveDueAt: boolean;
  /** No stop may have committed after this (the admission's time, or a later one it was refused for). */
  notStoppedAfter: number;
  reclaimTried: boolean;
}

async function admitLease(
  d: Deps,
  record: MessageRecord,
  lease: Lease,
  mode: Delivery['mode'],
  checked: AgentConfig,
): Promise<{ agent: AgentState; config: AgentConfig }> {
  const { agentId, messageId } = record;
  // The reaper must look at this agent by the time this lease could expire (a crashed worker);
  // the index moves only when its next look is later than that: about once per lease TTL under
  // steady traffic, not per message. First guess: it is not (refused with the item if wrong).
  const attempt: Attempt = { config: checked, moveDueAt: false, notStoppedAfter: record.createdAt, reclaimTried: false };
  for (let n = 0; ; n++) {
    let current: AgentState | null;
    try {
      const agent = await d.agents.admitLease({
        agentId,
        messageId,
        lease,
        maxInFlight: d.config.maxInFlight,
        now: d.now(),
        moveDueAt: attempt.moveDueAt,
        notStoppedAfter: attempt.notStoppedAfter,
        configVersion: attempt.config.configVersion,
      });
      // Admitted only after its own lease had expired (a store slower than the lease TTL): the
      // record may already be settled as never admitted. Never run work whose lease is gone: the
      // reclaim below settles and releases this lease too.
      const late = d.now() >= lease.expiresAt;
      // Crashed workers' messages are settled by the next admission (and by the reaper), so they
      // neither stay `processing` forever nor hold the in-flight cap.
      if ((!attempt.reclaimTried || late) && expiredLeases(agent, deadHorizon(d, d.now())).length > 0) await reclaimExpiredLeases(d, agent);
      if (late) {
        throw new Unavailable(`Message ${messageId} took longer to admit than its lease lasts and was recorded as failed; send it again with a new messageId`);
      }
      return { agent, config: attempt.config };
    } catch (err) {
      if (!(err instanceof AgentConditionFailed)) throw err;
      current = err.current;
    }
    const next = await learnFromRefusal(d, record, lease, mode, attempt, current);
    if (next === 'now') continue;
    if (n >= RETRY_LIMITS.admission) throw retriesExhausted();
    if (next === 'later') await backoff(n);
  }
}

/**
 * Why the lease write was refused, from the item it returned: a refusal the caller hears
 * (not found, not running, stopping, in progress, the cap), or what the next attempt changes:
 * 'now', tried again at once (a wrong guess, a stop since, crashed workers reclaimed: each bounded
 * by what it learns); 'counted', at once but counted against the retries (a configuration changed);
 * 'later', after a backoff (contention).
 */
async function learnFromRefusal(d: Deps, record: MessageRecord, lease: Lease, mode: Delivery['mode'], attempt: Attempt, current: AgentState | null): Promise<'now' | 'counted' | 'later'> {
  const { agentId, messageId } = record;
  if (!current) throw new AgentNotFound();
  if (current.status === 'inactive') throw agentNotRunning();
  if (current.status === 'stopping') throw agentStopping();
  if (current.configVersion !== attempt.config.configVersion) {
    // Changed since it was read (or a cached one is behind): the message is checked against the one the agent runs now.
    const now = await d.configs.get(agentId, current.configVersion);
    if (!now) throw new AgentNotFound();
    if (mode === 'sync') assertFitsRequest(now);
    attempt.config = now;
    return 'counted';
  }
  if (current.leases?.[messageId] !== undefined) {
    throw new AgentConflict('MESSAGE_IN_PROGRESS', `Message ${messageId} is already being processed; get it later for its reply`);
  }
  if ((current.lastStop?.stoppedAt ?? 0) > attempt.notStoppedAfter) {
    // A stop committed since this admission began: if it ended this message, our lease had
    // landed (its answer lost) and this is the SDK's retry; if not (a clock ahead stamped the
    // stop), the admission goes on past that stop.
    const now = await d.records.getMessage(agentId, messageId);
    if (now && now.status !== 'processing') throw new AdmissionEnded(now);
    attempt.notStoppedAfter = current.lastStop!.stoppedAt;
    return 'now';
  }
  if (current.dueAt > lease.expiresAt !== attempt.moveDueAt) {
    // A wrong guess of where the reaper's next check is: the other shape at once, no backoff.
    attempt.moveDueAt = !attempt.moveDueAt;
    return 'now';
  }
  if (Object.keys(current.leases ?? {}).length >= d.config.maxInFlight) {
    if (attempt.reclaimTried || expiredLeases(current, deadHorizon(d, d.now())).length === 0) {
      throw new TooManyInFlight(d.config.maxInFlight, Math.max(1, Math.ceil(d.config.leaseTtlMs / 60_000)));
    }
    attempt.reclaimTried = true;
    await reclaimExpiredLeases(d, current);
    return 'now';
  }
  return 'later';
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
export function asRead(d: Deps, agent: AgentState, record: MessageRecord, readAt: number): MessageRecord {
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
export function duplicateOutcome(existing: MessageRecord, mode: Delivery['mode']): MessageRecord {
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
