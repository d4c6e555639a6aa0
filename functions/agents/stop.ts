import { randomUUID } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import { endingEvent, publish } from './events.js';
import { AgentConditionFailed, WorkflowEnded, runtimeFor, type Deps } from './ports.js';
import { RETRY_LIMITS, backoff, retriesExhausted } from './retry.js';
import { AgentNotFound, StopFailed, agentNotRunning } from './errors.js';
import {
  type AgentConfig,
  type AgentState,
  type LastStop,
  type MessageRecord,
  type StopInfo,
  type StopOutcome,
  type StopReason,
  type StopRecord,
  deadHorizon,
  expiredLeases,
  leaseExpiredError,
  liveLeaseIds,
  lastStopOf,
  nextReaperCheck,
} from './model.js';

export const newId = monotonicFactory();
/** How long a finalizer's claim on closing the runtime holds: above the runtime's lifecycle call timeout. */
const CLOSE_CLAIM_MS = 15_000;

/**
 * Step Functions fails an execution at 25,000 history events; one CheckDrain/Choice/Wait loop
 * costs about 9 of them. The poll interval therefore grows with the timeout so that no stop takes
 * more than MAX_POLLS loop iterations (plus one for the tail), whatever its timeout.
 */
export const MAX_POLLS = 500;

/** Whole seconds to wait before the next drain check (Wait's SecondsPath takes whole seconds). */
export function nextPollSeconds(timeoutMs: number, remainingMs: number): number {
  const interval = Math.max(1, Math.ceil(timeoutMs / 1000 / MAX_POLLS));
  return Math.max(1, Math.min(interval, Math.ceil(remainingMs / 1000)));
}

/** What a caller learns about a stop. */
export type StopView =
  | { kind: 'stopped'; agentId: string; stopId: string; outcome: StopOutcome; stoppedAt: number; interrupted: number }
  | { kind: 'stopping'; agentId: string; stopId: string; deadline: number }
  | { kind: 'failed'; agentId: string; stopId: string; error: string };

/** A stop that ended, as a caller learns it, from its commit (`lastStop`) or its stop record. */
export const stoppedView = (agentId: string, s: Pick<LastStop, 'stopId' | 'outcome' | 'stoppedAt' | 'interrupted'>): Extract<StopView, { kind: 'stopped' }> => ({
  kind: 'stopped',
  agentId,
  stopId: s.stopId,
  outcome: s.outcome,
  stoppedAt: s.stoppedAt,
  interrupted: s.interrupted,
});

/**
 * Graceful stop, step 1-3 of the design: one conditional write active -> stopping (a repeat joins
 * the running stop), finalize at once when nothing is in flight, else start the drain workflow
 * (rolled back to active if it cannot start).
 */
export async function beginGracefulStop(
  d: Deps,
  agentId: string,
  opts: { timeoutMs: number; reason: StopReason; idle?: { admissions?: number }; operationId?: string },
): Promise<{ stop: StopInfo; joined: boolean; stopped?: LastStop; agent?: AgentState }> {
  const now = d.now();
  const proposed: StopInfo = {
    stopId: newId(now),
    requestedAt: now,
    deadline: now + opts.timeoutMs,
    graceful: true,
    timeoutMs: opts.timeoutMs,
    reason: opts.reason,
    ...(opts.operationId && { operationId: opts.operationId }),
  };
  // First guess: nothing in flight. Then the stopping write also claims closing the runtime for
  // this request, so an idle agent stops in two writes: this one and the commit. With work in
  // flight it is refused, and the plain stopping write follows (the drain's finalizer claims).
  const closeToken = randomUUID();
  const claimed: StopInfo = { ...proposed, closing: { token: closeToken, until: now + CLOSE_CLAIM_MS } };
  let agent: AgentState | undefined;
  let joined = false;
  for (const ifNothingInFlight of [true, false]) {
    try {
      agent = await d.agents.beginStop(agentId, ifNothingInFlight ? claimed : proposed, now, { idle: opts.idle, ifNothingInFlight });
      break;
    } catch (err) {
      if (!(err instanceof AgentConditionFailed)) throw err;
      const current = err.current;
      if (!current) throw new AgentNotFound();
      // Our stopping write landed (its answer lost), the stop ran to its end, and its retry was
      // refused: that stop is the answer.
      if (current.lastStop?.stopId === proposed.stopId) return { stop: proposed, joined: false, stopped: current.lastStop };
      const stillIdle = opts.idle === undefined || current.admissions === opts.idle.admissions;
      if (ifNothingInFlight && current.status === 'active' && stillIdle) continue;
      if (current.status === 'active' && opts.idle !== undefined) throw new NoLongerIdle();
      if (current.status !== 'stopping') throw agentNotRunning();
      agent = current;
      joined = true;
      break;
    }
  }
  if (!agent) throw agentNotRunning();
  const stop = agent.stop as StopInfo;
  if (!joined) {
    await publish(d, { type: 'Agent Stopping', detail: { agentId, stopId: stop.stopId, reason: stop.reason } });
  }
  if (liveLeaseIds(agent, deadHorizon(d, now)).length === 0) {
    // Fast path: nothing in flight, no workflow. Should finalizing fail here (the runtime did not
    // close), the workflow below takes over and retries it with backoff.
    try {
      // The item the conditional write returned serves as the finalizer's first read: the commit
      // is conditioned on it, so a stale one only costs a retry.
      const { stopped } = await finalizeStop(d, agentId, stop.stopId, agent, closeToken);
      return { stop, joined, stopped };
    } catch (err) {
      d.log.warn('finalize in the stop request failed; handing over to the workflow', { agentId, stopId: stop.stopId, error: err as Error });
    }
  }
  try {
    // Named by stopId: a joined request re-starting it is a no-op, and heals a lost start.
    await d.workflow.start({ agentId, stopId: stop.stopId });
  } catch (err) {
    // Its execution has already ended: the stop it ran is over (or, if its workflow died, the
    // waiting request ends it at the deadline and the reaper after it). Wait for its outcome.
    if (err instanceof WorkflowEnded) return { stop, joined };
    d.log.error('stop workflow did not start', { agentId, stopId: stop.stopId, error: err as Error });
    if (joined) throw new StopFailed();
    try {
      await d.agents.rollbackStop(agentId, stop.stopId, d.now(), nextReaperCheck(agent));
    } catch (rollbackErr) {
      if (!(rollbackErr instanceof AgentConditionFailed)) throw rollbackErr;
      // Not ours to roll back any more: a force stop took it over, or a completion finalized it.
      // The caller waits for that outcome like any joined request.
      return { stop, joined };
    }
    throw new StopFailed();
  }
  // The agent as the stopping write left it: a waiting request's first look.
  return { stop, joined, agent };
}

/** An idle stop found the agent active again: a message arrived after the reaper looked. */
export class NoLongerIdle extends Error {}

/** The workflow's CheckDrain: is this stop ready to finalize, still draining, or no longer ours? */
export async function checkDrain(
  d: Deps,
  agentId: string,
  stopId: string,
): Promise<{ state: 'gone' | 'ready' | 'draining'; waitSeconds: number; inFlight: number }> {
  const agent = await d.agents.get(agentId);
  if (!agent || agent.status !== 'stopping' || agent.stop?.stopId !== stopId) {
    return { state: 'gone', waitSeconds: 0, inFlight: 0 };
  }
  const now = d.now();
  const inFlight = liveLeaseIds(agent, deadHorizon(d, now)).length;
  const remainingMs = agent.stop.deadline - now;
  if (inFlight === 0 || remainingMs <= 0) return { state: 'ready', waitSeconds: 0, inFlight };
  return { state: 'draining', waitSeconds: nextPollSeconds(agent.stop.timeoutMs, remainingMs), inFlight };
}

/**
 * Finalize a stop: drained when no live lease is left, timed_out once past the deadline
 * (remaining leases cleared, their messages interrupted), forced when a force stop closed it.
 * Idempotent and conditioned on stopId: a stop that was superseded or already finalized is left
 * alone. Past the deadline no completion can land (they are fenced on it), so the lease set the
 * commit is conditioned on can only have shrunk, and a retry converges.
 *
 * The runtime is told to save its state and close (`close`, an http worker's `stop`): before a
 * graceful commit, once per stop (a finalizer claims it; one that finds the claim held leaves the
 * stop to its holder). A runtime that cannot be reached fails the finalize (RuntimeCloseFailed:
 * the workflow waits and tries again) until the deadline plus the close grace; past it the stop
 * commits without it, recording the close as failed. A forced stop commits first, waiting on
 * nothing outside the store, and tells the runtime after.
 */
export async function finalizeStop(
  d: Deps,
  agentId: string,
  stopId: string,
  /** The agent as a conditional write just returned it: used instead of the first read. */
  known?: AgentState,
  /** The close claim the caller's stopping write already made. */
  claimToken?: string,
): Promise<{ stopped?: LastStop; closingElsewhere?: true }> {
  const token = claimToken ?? randomUUID();
  let closed: { outcome: StopOutcome; stateSaved: boolean; closeError?: string } | undefined;
  for (let attempt = 0; attempt < RETRY_LIMITS.stopCommit + d.config.maxInFlight; attempt++) {
    const agent = attempt === 0 && known ? known : await d.agents.get(agentId);
    if (!agent || agent.status !== 'stopping' || agent.stop?.stopId !== stopId) return {};
    const now = d.now();
    const drained = liveLeaseIds(agent, deadHorizon(d, now)).length === 0;
    if (!drained && !agent.stop.forced && now < agent.stop.deadline) return {};
    const outcome: StopOutcome = agent.stop.forced ? 'forced' : drained ? 'drained' : 'timed_out';
    if (outcome === 'forced') {
      const committed = await commitStop(d, agent, agent.stop, outcome, now, { stateSaved: false });
      if (!committed) {
        await backoff(attempt);
        continue;
      }
      // Told after the commit (the agent is inactive whatever the runtime does): best effort.
      await configOf(d, agent)
        .then((config) => runtimeFor(d.runtimes, config).close(config, { stopId, outcome, interrupted: committed.interruptedIds }))
        .catch((err: Error) => d.log.warn('runtime not told of a force stop after its commit', { agentId, stopId, error: err }));
      return { stopped: committed.lastStop };
    }
    if (closed?.outcome !== outcome) {
      const claimHeld = agent.stop.closing?.token === token;
      if (!claimHeld && !(await d.agents.claimClose(agentId, stopId, { token, until: now + CLOSE_CLAIM_MS }, now))) {
        return { closingElsewhere: true };
      }
      const interrupted = outcome === 'drained' ? [] : liveLeaseIds(agent, deadHorizon(d, now));
      const config = await configOf(d, agent);
      try {
        const result = await runtimeFor(d.runtimes, config).close(config, { stopId, outcome, interrupted });
        closed = { outcome, stateSaved: result?.stateSaved ?? false };
      } catch (err) {
        await d.agents.releaseClose(agentId, stopId, token);
        const giveUpAt = agent.stop.deadline + d.config.closeGraceMs;
        if (now < giveUpAt) throw new RuntimeCloseFailed(err, giveUpAt);
        d.log.warn('runtime could not be told of the stop by its deadline and grace; stopping without it', { agentId, stopId, error: err as Error });
        closed = { outcome, stateSaved: false, closeError: closeErrorOf(err) };
      }
    }
    const committed = await commitStop(d, agent, agent.stop, outcome, now, closed);
    if (committed) return { stopped: committed.lastStop };
    await backoff(attempt);
  }
  throw retriesExhausted();
}

/** The configuration of the runtime to close (cached by version in a warm function). */
async function configOf(d: Deps, agent: AgentState): Promise<AgentConfig> {
  const config = await d.configs.get(agent.agentId, agent.configVersion);
  if (!config) throw new Error(`agent ${agent.agentId} has no configuration`);
  return config;
}

/**
 * The runtime could not be told to close (an http worker gone or failing); the stop stays
 * `stopping` and is tried again until `giveUpAt` (its deadline plus the close grace), when it
 * ends without it. The workflow waits on this error and loops (stop-workflow.asl.json).
 */
export class RuntimeCloseFailed extends Error {
  override readonly name = 'RuntimeCloseFailed';
  constructor(
    cause: unknown,
    readonly giveUpAt: number,
  ) {
    super(`The agent's runtime could not be told to stop (${closeErrorOf(cause)}); trying again until ${new Date(giveUpAt).toISOString()}`, { cause });
  }
}

const closeErrorOf = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 500);

/**
 * Force: close admission with one conditional write (active -> stopping, or a graceful stop in
 * progress forced), then commit against a lease set that can only shrink. It always succeeds
 * on a running agent, whatever the message traffic: the first write is conditioned on the status
 * alone, and the commit's retries converge because nothing can be added to what it commits.
 */
export async function forceStop(
  d: Deps,
  agentId: string,
  reason: StopReason = 'api',
  operationId?: string,
): Promise<Extract<StopView, { kind: 'stopped' }>> {
  const { stopId, agent } = await closeAdmission(d, agentId, reason, operationId);
  // No outcome from here means the stop's own workflow or a completion committed it first: its
  // outcome stands. Either way the stop has ended: a forced stop is never rolled back.
  const { stopped } = await finalizeStop(d, agentId, stopId, agent);
  if (stopped) return stoppedView(agentId, stopped);
  const view = await viewStop(d, agentId, stopId);
  if (view.kind !== 'stopped') throw new Error(`Force stop ${stopId} of agent ${agentId} did not end: ${view.kind}`);
  return view;
}

/** A force stop's first write; returns the stopId it governs (and the agent, when its write returned it). */
async function closeAdmission(d: Deps, agentId: string, reason: StopReason, operationId?: string): Promise<{ stopId: string; agent?: AgentState }> {
  for (let attempt = 0; ; attempt++) {
    const now = d.now();
    const stop: StopInfo = {
      stopId: newId(now),
      requestedAt: now,
      deadline: now,
      graceful: false,
      timeoutMs: 0,
      reason,
      ...(operationId && { operationId }),
      forced: true,
    };
    let current: AgentState | null;
    try {
      const agent = await d.agents.beginForcedStop(agentId, stop, now);
      await publish(d, { type: 'Agent Stopping', detail: { agentId, stopId: stop.stopId, reason } });
      return { stopId: stop.stopId, agent };
    } catch (err) {
      if (!(err instanceof AgentConditionFailed)) throw err;
      current = err.current;
    }
    if (!current) throw new AgentNotFound();
    // Our first write landed (its answer lost) and this stop has already ended: it stands.
    if (current.lastStop?.stopId === stop.stopId) return { stopId: stop.stopId };
    if (current.status === 'inactive') throw agentNotRunning();
    if (current.status === 'stopping' && current.stop) {
      const { stopId } = current.stop;
      if (current.stop.forced) return { stopId };
      try {
        await d.agents.forceStopInProgress(agentId, stopId, now);
        return { stopId };
      } catch (err) {
        if (!(err instanceof AgentConditionFailed)) throw err;
        // That stop ended between the two writes: look again.
        if (err.current?.status === 'inactive' && err.current.lastStop?.stopId === stopId) return { stopId };
      }
    }
    // Each retry follows a transition (active -> stopping -> ...), of which there are few.
    if (attempt >= RETRY_LIMITS.closeAdmission) throw retriesExhausted();
  }
}

/**
 * The commit point of every stop (the store's `commitStop`: one transaction, conditioned on the
 * state read), then its events. Of the leases it clears, the live ones' messages are interrupted
 * and the expired ones' (their worker died) failed with that reason; a lease whose record is
 * missing (its admission died between its writes) only goes, and an expired lease whose message
 * had ended before its worker died counts drained. Returns undefined when it must be re-evaluated.
 */
async function commitStop(
  d: Deps,
  agent: AgentState,
  stop: StopInfo,
  outcome: StopOutcome,
  now: number,
  close: { stateSaved: boolean; closeError?: string },
): Promise<{ lastStop: LastStop; interruptedIds: string[] } | undefined> {
  const leaseIds = Object.keys(agent.leases ?? {});
  const expired = new Map(expiredLeases(agent, deadHorizon(d, now)));
  // One clock decides: this commit's. A stop requested on a clock ahead of it still records no
  // negative duration (a timed-out one is committed only once its deadline passed on this clock).
  const stoppedAt = Math.max(now, stop.requestedAt);
  const missing = new Set<string>();
  // Expired leases whose message had ended before its worker died: drained, unless it completed
  // at or after a graceful deadline (then the stop cut it: interrupted, as any late completion).
  const ended = new Map<string, MessageRecord>();
  const lateAt = stop.forced ? Infinity : stop.deadline;
  const endedLate = (id: string) => (ended.get(id)?.completedAt ?? 0) >= lateAt && ended.get(id)?.status === 'completed';
  // Ended on its own (completed or failed), in time: drained. One an earlier stop interrupted only loses its lease.
  const endedInTimeId = (id: string) => ['completed', 'failed'].includes(ended.get(id)?.status ?? '') && !endedLate(id);
  // Each pass that is refused for a record learns why, so the passes are bounded by the leases.
  for (let pass = 0; pass <= 2 * leaseIds.length; pass++) {
    const interruptedIds = leaseIds.filter((id) => (!expired.has(id) || endedLate(id)) && !missing.has(id));
    const failedIds = leaseIds.filter((id) => expired.has(id) && !missing.has(id) && !ended.has(id));
    const drainedIds = [...Object.keys(agent.leasesAtStop ?? {}).filter((id) => !leaseIds.includes(id)), ...leaseIds.filter(endedInTimeId)];
    const failures = Object.fromEntries(failedIds.map((id) => [id, leaseExpiredError(expired.get(id)!)]));
    const lastStop: LastStop = {
      stopId: stop.stopId,
      outcome,
      reason: stop.reason,
      ...(stop.operationId && { operationId: stop.operationId }),
      requestedAt: stop.requestedAt,
      stoppedAt,
      interrupted: interruptedIds.length,
    };
    const record: StopRecord = {
      agentId: agent.agentId,
      stopId: stop.stopId,
      outcome,
      reason: stop.reason,
      ...(stop.operationId && { operationId: stop.operationId }),
      graceful: stop.graceful,
      timeoutMs: stop.timeoutMs,
      requestedAt: stop.requestedAt,
      deadline: stop.deadline,
      stoppedAt,
      durationMs: stoppedAt - stop.requestedAt,
      drained: drainedIds.length,
      drainedMessageIds: drainedIds,
      interrupted: interruptedIds.length,
      interruptedMessageIds: interruptedIds,
      failed: failedIds.length,
      failedMessageIds: failedIds,
      stateSaved: close.stateSaved,
      ...(close.closeError && { closeError: close.closeError }),
    };
    const result = await d.agents.commitStop(agent, stop.stopId, lastStop, record, stoppedAt, failures).catch(async (err: unknown) => {
      // No answer after the SDK's retries, though the commit may have landed: if it did, this
      // finalizer still announces it (no other one will: the stop is over for them).
      const now = await d.agents.get(agent.agentId).catch(() => undefined);
      if (now?.lastStop?.stopId === stop.stopId) return { committed: true as const };
      throw err;
    });
    if (!result.committed) {
      if (result.stale) return undefined;
      result.missing.forEach((id) => missing.add(id));
      result.ended.forEach(({ messageId, record: r }) => ended.set(messageId, r));
      continue;
    }
    const endedInTime = leaseIds.filter(endedInTimeId).map((messageId) => ({ messageId, record: ended.get(messageId)! }));
    if ('adopted' in result && result.adopted) {
      // An earlier attempt's record was there (it settled no message either): that was the decision, and it is what the agent now shows.
      return announce(d, agent.agentId, stop, lastStopOf(result.adopted), { interruptedIds: [], failedIds: [], failures: {}, endedInTime });
    }
    return announce(d, agent.agentId, stop, lastStop, { interruptedIds, failedIds, failures, endedInTime });
  }
  return undefined;
}

/** A stop committed: its waiters woken, its events published. */
async function announce(
  d: Deps,
  agentId: string,
  stop: StopInfo,
  lastStop: LastStop,
  settled: { interruptedIds: string[]; failedIds: string[]; failures: Record<string, string>; endedInTime: { messageId: string; record: MessageRecord }[] },
): Promise<{ lastStop: LastStop; interruptedIds: string[] }> {
  const { interruptedIds, failedIds, failures, endedInTime } = settled;
  const { outcome } = lastStop;
  d.signals.stopEnded(agentId, lastStop);
  d.log.info('agent stopped', { agentId, stopId: stop.stopId, outcome, interrupted: interruptedIds.length, failed: failedIds.length });
  await publish(d, { type: 'Agent Stopped', detail: { agentId, stopId: stop.stopId, outcome, reason: stop.reason, interrupted: interruptedIds.length } });
  await Promise.all([
    ...interruptedIds.map((messageId) => publish(d, { type: 'Message Interrupted', detail: { agentId, messageId, stopId: stop.stopId } })),
    ...failedIds.map((messageId) => publish(d, { type: 'Message Failed', detail: { agentId, messageId, error: failures[messageId] } })),
    // Ended before their worker died, and not announced by it: announced here.
    ...endedInTime.map(({ messageId, record }) => publish(d, endingEvent(agentId, messageId, record as { status: 'completed' | 'failed'; error?: string }))),
  ]);
  return { lastStop, interruptedIds };
}

/** The workflow's failure path: record it on the agent, which stays recoverable (force stop, reaper). */
export async function recordStopFailure(d: Deps, agentId: string, stopId: string, error: string, cause: string): Promise<void> {
  try {
    await d.agents.recordStopFailure(agentId, stopId, { error, cause: cause.slice(0, 1000), at: d.now() });
  } catch (err) {
    // Already finalized, forced or superseded: nothing to record.
    if (!(err instanceof AgentConditionFailed)) throw err;
  }
}

/** Where a stop stands, from the agent (read now, or as a write just returned it) and, once the agent moved on, from the stop record. */
export async function viewStop(d: Deps, agentId: string, stopId: string, known?: AgentState): Promise<StopView> {
  const agent = known ?? (await d.agents.get(agentId));
  if (agent?.status === 'stopping' && agent.stop?.stopId === stopId) {
    const { stop } = agent;
    if (stop.failure) return { kind: 'failed', agentId, stopId, error: stop.failure.error };
    return { kind: 'stopping', agentId, stopId, deadline: stop.deadline };
  }
  if (agent?.lastStop?.stopId === stopId) return stoppedView(agentId, agent.lastStop);
  const record = await d.records.getStop(agentId, stopId);
  if (record) return stoppedView(agentId, record);
  // The agent is gone, or the stop was rolled back: neither happens to a stop someone waits on
  // unless the agent was deleted meanwhile, which requires it to have stopped.
  if (!agent) throw new AgentNotFound();
  return { kind: 'failed', agentId, stopId, error: 'StopRolledBack' };
}

/**
 * Wait up to `windowMs` for the stop to end. While the work it drains runs in this same process,
 * the request sleeps until that work ends or the stop commits here (woken, no read); otherwise it
 * re-reads the agent every `stopPollMs`. Once the stop's deadline has passed, the waiting request
 * finalizes it itself (idempotent, conditioned on stopId), so a timed-out stop is answered within
 * one poll of its deadline, not at the workflow's next whole-second Wait.
 */
export async function awaitStop(d: Deps, agentId: string, stopId: string, windowMs: number, known?: AgentState): Promise<StopView> {
  const until = d.now() + windowMs;
  // Watching before the first look, so a commit between the look and the sleep is not missed.
  const watch = d.signals.watch(agentId, stopId);
  try {
    let agent = known;
    for (;;) {
      agent ??= await d.agents.get(agentId);
      let view = await viewStop(d, agentId, stopId, agent);
      if (view.kind === 'stopping' && d.now() >= view.deadline) {
        await finalizeStop(d, agentId, stopId).catch((err: Error) =>
          d.log.warn('finalize at the deadline failed in the stop request; the workflow retries it', { agentId, stopId, error: err }),
        );
        view = await viewStop(d, agentId, stopId);
      }
      const left = until - d.now();
      if (view.kind !== 'stopping' || left <= 0) return view;
      const toDeadline = Math.max(1, view.deadline - d.now());
      // Every lease it waits on is held by a run in this process: that run wakes this request.
      const here = agent !== undefined && d.signals.allRunningHere(agentId, liveLeaseIds(agent, deadHorizon(d, d.now())));
      const { ended } = await watch.sleep(Math.min(left, toDeadline, here ? Infinity : d.config.stopPollMs));
      if (ended) return stoppedView(agentId, ended);
      agent = undefined;
      d.metrics.stopPolls++;
    }
  } finally {
    watch.close();
  }
}
