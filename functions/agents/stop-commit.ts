/**
 * How every stop ends: finalize (close the runtime once, then commit), the commit point itself,
 * and a workflow's failure recorded on the agent.
 */
import { randomUUID } from 'node:crypto';
import { endingEvent, publish } from './events.js';
import { AgentConditionFailed, runtimeFor, type Deps } from './ports.js';
import { RETRY_LIMITS, backoff, retriesExhausted } from './retry.js';
import { type AgentConfig, type AgentState, type MessageRecord, deadHorizon, expiredLeases, leaseExpiredError, liveLeaseIds, type LastStop, type RuntimeClosed, type StopInfo, type StopOutcome, type StopRecord, lastStopOf, stopCorrelationId } from './model.js';

/** How long a finalizer's claim on closing the runtime holds: above the runtime's lifecycle call timeout. */
export const CLOSE_CLAIM_MS = 15_000;

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
  let closed: RuntimeClosed | undefined;
  let closedHere = false;
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
    // Another finalizer closed the runtime for this outcome and then could not commit: its close stands.
    const closedElsewhere = agent.stop.closing?.closed;
    if (closed?.outcome !== outcome && closedElsewhere?.outcome === outcome) closed = closedElsewhere;
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
        closedHere = true;
      } catch (err) {
        await d.agents.releaseClose(agentId, stopId, token);
        const giveUpAt = agent.stop.deadline + d.config.closeGraceMs;
        if (now < giveUpAt) throw new RuntimeCloseFailed(err, giveUpAt);
        d.log.warn('runtime could not be told of the stop by its deadline and grace; stopping without it', { agentId, stopId, error: err as Error });
        closed = { outcome, stateSaved: false, closeError: closeErrorOf(err) };
        closedHere = true;
      }
    }
    let committed: Awaited<ReturnType<typeof commitStop>>;
    try {
      committed = await commitStop(d, agent, agent.stop, outcome, now, closed);
    } catch (err) {
      // Race: a commit with no answer after our close vs the next finalizer. Held, our claim would
      // keep every other finalizer waiting CLOSE_CLAIM_MS and then have the runtime told again.
      if (closedHere) {
        await d.agents.recordClose(agentId, stopId, token, closed, d.now()).catch((recordErr: Error) =>
          d.log.warn('close not noted on its claim; the next finalizer waits the claim out', { agentId, stopId, error: recordErr }),
        );
      }
      throw err;
    }
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
    const result = await d.agents.commitStop({ agent, stopId: stop.stopId, lastStop, record, now: stoppedAt, failures });
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
  const correlationId = stopCorrelationId(stop);
  d.metrics.add('DrainDuration', lastStop.stoppedAt - stop.requestedAt, 'Milliseconds', { outcome });
  // How late past its deadline a timed-out stop was committed (the workflow's poll, clocks, retries).
  if (outcome === 'timed_out') d.metrics.add('DeadlineToCommit', Math.max(0, lastStop.stoppedAt - stop.deadline), 'Milliseconds');
  // Messages whose leases had expired (their workers died or froze) settled failed by the commit.
  if (failedIds.length > 0) d.metrics.add('HeartbeatsLost', failedIds.length, 'Count');
  d.log.info('agent stopped', { agentId, stopId: stop.stopId, outcome, interrupted: interruptedIds.length, failed: failedIds.length, stopCorrelationId: correlationId });
  await publish(d, { type: 'Agent Stopped', detail: { agentId, stopId: stop.stopId, outcome, reason: stop.reason, interrupted: interruptedIds.length, correlationId } });
  await Promise.all([
    ...interruptedIds.map((messageId) => publish(d, { type: 'Message Interrupted', detail: { agentId, messageId, stopId: stop.stopId, correlationId } })),
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
