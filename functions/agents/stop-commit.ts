/**
 * How every stop ends: the one decision (`finalizeStop`: judge, tell the runtime, commit), the
 * commit point itself, and a workflow's failure recorded on the agent.
 */
import { endingEvent, publish } from './events.js';
import { AgentConditionFailed, runtimeFor, type CloseJob, type Deps } from './ports.js';
import { RETRY_LIMITS, backoff, retriesExhausted, sleep } from './retry.js';
import { nextPollSeconds } from './stop-view.js';
import { type AgentConfig, type AgentState, type MessageRecord, deadHorizon, expiredLeases, leaseExpiredError, liveLeaseIds, type LastStop, type RuntimeClosed, type StopInfo, type StopOutcome, type StopRecord, lastStopOf, stopCorrelationId } from './model.js';

/**
 * How a stop ends if it ends now, judged on the agent as read: `forced` once a force stop closed
 * it, `drained` when no live lease is left, `timed_out` once past its deadline; undefined while it
 * must wait, or when the agent is no longer in this stop (finalized, superseded, deleted).
 */
export function judgeStop(d: Pick<Deps, 'config'>, agent: AgentState | undefined, stopId: string, now: number): StopOutcome | undefined {
  if (!agent || agent.status !== 'stopping' || agent.stop?.stopId !== stopId) return undefined;
  if (agent.stop.forced) return 'forced';
  if (liveLeaseIds(agent, deadHorizon(d, judgedAt(agent.stop, now))).length === 0) return 'drained';
  return now >= agent.stop.deadline ? 'timed_out' : undefined;
}

/**
 * The moment a stop's leases are judged at: now, but never past a graceful stop's deadline. A
 * lease live at the deadline was cut by the stop (its message interrupted, the stop timed out),
 * however late the commit comes (a workflow retrying its close, a reaper's heal): it does not
 * turn into a dead worker's lease (failed, the stop drained) by expiring while the commit waits.
 */
const judgedAt = (stop: StopInfo, now: number) => (stop.forced ? now : Math.min(now, stop.deadline));

/**
 * Whether this stop's commit cuts a message whose outcome was recorded (`ended`) while its lease
 * still held it: as `commitOutcome` decides, a lease live at the moment the stop is judged at is
 * interrupted, and so is a reply recorded at or after a graceful deadline; otherwise the message
 * ended on its own and is drained.
 */
export function cutByStop(d: Pick<Deps, 'config'>, agent: AgentState, messageId: string, now: number, ended: { status: 'completed' | 'failed'; completedAt: number }): boolean {
  const stop = agent.stop;
  if (!stop) return true;
  if (liveLeaseIds(agent, deadHorizon(d, judgedAt(stop, now))).includes(messageId)) return true;
  return ended.status === 'completed' && !stop.forced && ended.completedAt >= stop.deadline;
}

/**
 * The one place a stop ends. Judged on the agent (read, or as the caller's conditional write just
 * returned it), then ended, conditioned on the stopId: a stop superseded or already ended is left
 * alone, and concurrent callers converge on one commit (the store's condition picks it).
 *
 * Graceful (drained or timed out): the runtime saves its state and closes (`close`, an http
 * worker's `stop`), then the commit marks the agent inactive, as the design orders it. `close` is
 * idempotent by stopId (RUNTIMES.md), so finalizers racing at the deadline may each tell it; the
 * runtime acts once. A runtime that cannot be reached fails the finalize (RuntimeCloseFailed: the
 * workflow waits and tries again) until the deadline plus the close grace; past it the stop
 * commits without it, the close recorded as failed.
 *
 * Forced: the commit first, waiting on nothing outside the store; the runtime is told after,
 * through the worker queue (`tellRuntimeOfForcedStop`), so the answer does not wait on it.
 *
 * Past the deadline (or once forced) no completion can land, so the lease set the commit is
 * conditioned on can only shrink, and the retries converge.
 */
export async function finalizeStop(d: Deps, agentId: string, stopId: string, known?: AgentState): Promise<LastStop | undefined> {
  let closed: RuntimeClosed | undefined;
  for (let attempt = 0; attempt < RETRY_LIMITS.stopCommit + d.config.maxInFlight; attempt++) {
    const agent = attempt === 0 && known ? known : await d.agents.get(agentId);
    const now = d.now();
    const outcome = judgeStop(d, agent, stopId, now);
    if (!agent || !outcome) return undefined;
    // Told once per finalizer (close is idempotent by stopId: the runtime keeps what it was told
    // first). Judged at the deadline, a graceful outcome cannot change between attempts.
    if (outcome !== 'forced') closed ??= await closeRuntime(d, agent, outcome, now);
    const committed = await commitOutcome(d, agent, agent.stop!, outcome, now, closed ?? { outcome, stateSaved: false });
    if (committed) {
      if (outcome === 'forced') await tellRuntimeOfForcedStop(d, agent, committed.interruptedIds);
      return committed.lastStop;
    }
    await backoff(attempt);
  }
  throw retriesExhausted();
}

/** A graceful stop's close: the runtime saves its state and closes; past the deadline and grace, the stop goes on without it. */
async function closeRuntime(d: Deps, agent: AgentState, outcome: Exclude<StopOutcome, 'forced'>, now: number): Promise<RuntimeClosed> {
  const stop = agent.stop!;
  const interrupted = outcome === 'drained' ? [] : liveLeaseIds(agent, deadHorizon(d, judgedAt(stop, now)));
  const config = await configOf(d, agent);
  try {
    const result = await runtimeFor(d.runtimes, config).close(config, { stopId: stop.stopId, outcome, interrupted });
    return { outcome, stateSaved: result?.stateSaved ?? false };
  } catch (err) {
    const giveUpAt = stop.deadline + d.config.closeGraceMs;
    if (now < giveUpAt) throw new RuntimeCloseFailed(err, giveUpAt);
    d.log.warn('runtime could not be told of the stop by its deadline and grace; stopping without it', { agentId: agent.agentId, stopId: stop.stopId, error: err as Error });
    return { outcome, stateSaved: false, closeError: closeErrorOf(err) };
  }
}

/**
 * A forced stop has committed: the runtime is told (the cut work's cancels, then `close`) by the
 * message worker, from the queue, with the queue's retries. A job that cannot be queued is logged:
 * the agent is inactive either way, and the work it cut hears of it from its own lost lease.
 */
async function tellRuntimeOfForcedStop(d: Deps, agent: AgentState, interrupted: string[]): Promise<void> {
  const stop = agent.stop!;
  const job = { kind: 'close' as const, agentId: agent.agentId, stopId: stop.stopId, configVersion: agent.configVersion, interrupted, correlationId: stopCorrelationId(stop) };
  await d.queue.send(job).catch((err: Error) => {
    d.log.error('runtime not told of a force stop: its close could not be queued', { agentId: agent.agentId, stopId: stop.stopId, error: err });
  });
}

/**
 * The worker's half of a forced stop: the runtime told (the cut work's cancels, then `close`) on
 * the configuration the stopped run used, tried a few times in this invocation before the queue's
 * own redelivery. Skipped when the agent has run again since (a `stop` now would end the new
 * run's state; a forced stop promises no saved state), when that configuration is no longer known
 * (reconfigured since, and not cached here: the new one may name another worker), or when the
 * agent is gone.
 */
export async function closeForcedStop(d: Deps, job: CloseJob): Promise<'closed' | 'skipped'> {
  const { agentId, stopId } = job;
  const [agent, config] = await Promise.all([d.agents.get(agentId), d.configs.get(agentId, job.configVersion)]);
  if (!agent || agent.status !== 'inactive' || agent.lastStop?.stopId !== stopId || config?.configVersion !== job.configVersion) {
    d.log.warn('runtime not told of a force stop: the agent has run again, been reconfigured or deleted since', { agentId, stopId });
    return 'skipped';
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await runtimeFor(d.runtimes, config).close(config, { stopId, outcome: 'forced', interrupted: job.interrupted });
      return 'closed';
    } catch (err) {
      if (attempt >= CLOSE_JOB_ATTEMPTS) throw err;
      d.log.warn('runtime not told of a force stop yet; trying again', { agentId, stopId, attempt, error: err as Error });
      await sleep(CLOSE_JOB_BACKOFF_MS * 4 ** (attempt - 1));
    }
  }
}

/** A force stop's close job tries this many times, 2 s then 8 s apart, before the queue redelivers it. */
const CLOSE_JOB_ATTEMPTS = 3;
const CLOSE_JOB_BACKOFF_MS = 2_000;

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
 * A judged outcome committed (the store's `commitStop`: one transaction, conditioned on the
 * state read), then its events. Of the leases it clears, the live ones' messages are interrupted
 * and the expired ones' (their worker died) failed with that reason; a lease whose record is
 * missing (its admission died between its writes) only goes, and an expired lease whose message
 * had ended before its worker died counts drained. Returns undefined when it must be re-evaluated.
 */
async function commitOutcome(
  d: Deps,
  agent: AgentState,
  stop: StopInfo,
  outcome: StopOutcome,
  now: number,
  close: { stateSaved: boolean; closeError?: string },
): Promise<{ lastStop: LastStop; interruptedIds: string[] } | undefined> {
  const leaseIds = Object.keys(agent.leases ?? {});
  const expired = new Map(expiredLeases(agent, deadHorizon(d, judgedAt(stop, now))));
  // One clock decides: this commit's. A stop requested on a clock ahead of it still records no
  // negative duration (a timed-out one is committed only once its deadline passed on this clock),
  // and a message admitted on a clock ahead never ends before it was created (the store refuses
  // it, with the record: the next pass is stamped at its creation).
  let stoppedAt = Math.max(now, stop.requestedAt);
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
    const { lastStop, record } = stopRecordOf(agent.agentId, stop, outcome, stoppedAt, { drainedIds, interruptedIds, failedIds }, close);
    const result = await d.agents.commitStop({ agent, stopId: stop.stopId, lastStop, record, now: stoppedAt, failures });
    if (!result.committed) {
      if (result.stale) return undefined;
      if (result.notBefore !== undefined) stoppedAt = Math.max(stoppedAt, result.notBefore);
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

/** What a stop's commit writes: the agent's `lastStop` and the stop record. */
function stopRecordOf(
  agentId: string,
  stop: StopInfo,
  outcome: StopOutcome,
  stoppedAt: number,
  ids: { drainedIds: string[]; interruptedIds: string[]; failedIds: string[] },
  close: { stateSaved: boolean; closeError?: string },
): { lastStop: LastStop; record: StopRecord } {
  const { drainedIds, interruptedIds, failedIds } = ids;
  const shared = { stopId: stop.stopId, outcome, reason: stop.reason, ...(stop.operationId && { operationId: stop.operationId }), requestedAt: stop.requestedAt, stoppedAt };
  return {
    lastStop: { ...shared, interrupted: interruptedIds.length },
    record: {
      agentId,
      ...shared,
      graceful: stop.graceful,
      timeoutMs: stop.timeoutMs,
      deadline: stop.deadline,
      durationMs: stoppedAt - stop.requestedAt,
      drained: drainedIds.length,
      drainedMessageIds: drainedIds,
      interrupted: interruptedIds.length,
      interruptedMessageIds: interruptedIds,
      failed: failedIds.length,
      failedMessageIds: failedIds,
      stateSaved: close.stateSaved,
      ...(close.closeError && { closeError: close.closeError }),
    },
  };
}

/** A stop committed: its metrics, its log line, its events. */
async function announce(
  d: Deps,
  agentId: string,
  stop: StopInfo,
  lastStop: LastStop,
  settled: { interruptedIds: string[]; failedIds: string[]; failures: Record<string, string>; endedInTime: { messageId: string; record: MessageRecord }[] },
): Promise<{ lastStop: LastStop; interruptedIds: string[] }> {
  const { interruptedIds, failedIds, failures, endedInTime } = settled;
  const { outcome } = lastStop;
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

/** How long a stop's workflow waits after a failure past its retries before it looks again. */
export const RECOVERY_WAIT_SECONDS = 5;

/**
 * The workflow's failure path, once a task failed past its retries: while the stop is within its
 * deadline (or its force) plus `stopRecoveryMs`, the workflow waits and goes back to its drain
 * check (an overloaded store recovers; a stop is not left `stopping` for the reaper's grace).
 * Past that, the failure is recorded on the agent, which stays recoverable (force stop, reaper).
 */
export async function afterStopWorkflowFailure(
  d: Deps,
  agentId: string,
  stopId: string,
  error: string,
  cause: string,
): Promise<{ recover: boolean; ended: boolean; waitSeconds: number }> {
  const agent = await d.agents.get(agentId);
  // Ended or superseded meanwhile: nothing to recover or record, and the workflow ends as superseded.
  if (!agent || agent.status !== 'stopping' || agent.stop?.stopId !== stopId) return { recover: false, ended: true, waitSeconds: 0 };
  const now = d.now();
  const due = agent.stop.forced ? agent.dueAt : agent.stop.deadline;
  if (now < due + d.config.stopRecoveryMs) {
    d.log.warn('stop workflow failed past its retries; looking again', { agentId, stopId, error, cause: cause.slice(0, 1000) });
    d.metrics.add('StopRecoveries', 1, 'Count');
    // Before the deadline, no sooner than the drain check would have looked.
    const waitSeconds = now < due ? nextPollSeconds(agent.stop.timeoutMs, due - now) : RECOVERY_WAIT_SECONDS;
    return { recover: true, ended: false, waitSeconds: Math.max(waitSeconds, RECOVERY_WAIT_SECONDS) };
  }
  d.log.error('stop workflow failed', { agentId, stopId, error, cause: cause.slice(0, 1000) });
  try {
    await d.agents.recordStopFailure(agentId, stopId, { error, cause: cause.slice(0, 1000), at: now });
  } catch (err) {
    // Already finalized, forced or superseded: nothing to record.
    if (!(err instanceof AgentConditionFailed)) throw err;
  }
  return { recover: false, ended: false, waitSeconds: 0 };
}
