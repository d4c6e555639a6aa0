import { AgentConditionFailed, type Deps } from './ports.js';
import { AgentConflict } from './errors.js';
import { DEFAULT_STOP_TIMEOUT_MS, type AgentStatus, deadHorizon, expiredLeases, idleDueAt, lastActiveAt, liveLeaseIds, nextReaperCheck, sameActivity } from './model.js';
import { healFleetStop } from './fleet.js';
import { reclaimExpiredLeases } from './completion.js';
import { agentPages, mapBounded } from './selection.js';
import { NoLongerIdle, beginGracefulStop } from './stop-begin.js';
import { finalizeStop } from './stop-commit.js';

export interface ReaperSummary {
  examined: number;
  /** Idle agents whose graceful stop this run began. */
  stopped: number;
  /** Expired leases of crashed workers settled (their messages recorded failed). */
  reclaimed: number;
  /** Busy agents whose next idle check moved later. */
  rescheduled: number;
  /** Stuck `stopping` agents this run finalized (their workflow died or never started). */
  healed: number;
  /** Fleet stops not advanced for the grace period whose workflow was started again (a no-op if it runs). */
  stalledFleetStops: number;
  /** Of those, the ones whose execution had ended: resumed in a new execution, or ended failed after a second. */
  resumedFleetStops: number;
  endedFleetStops: number;
  errors: number;
  /** False when the time budget ran out first; the next run picks up the rest. */
  complete: boolean;
  durationMs: number;
}

export interface ReaperOptions {
  /** Stop starting new work after this long (below the function's timeout). */
  budgetMs: number;
  concurrency?: number;
  pageSize?: number;
}

/** One run's clock, budget and tally, shared by its sweeps. */
interface Run {
  d: Deps;
  opts: ReaperOptions;
  now: number;
  summary: ReaperSummary;
  outOfTime: () => boolean;
}

/**
 * One run of the idle reaper and stuck-stop sweeper. It reads only agents that are due, through
 * the byStatus index (status, dueAt), so its cost follows the agents due, not the fleet. Every
 * change is a conditional write: two overlapping runs stop each agent once.
 */
export async function runReaper(d: Deps, opts: ReaperOptions): Promise<ReaperSummary> {
  const started = Date.now();
  const summary: ReaperSummary = { examined: 0, stopped: 0, reclaimed: 0, rescheduled: 0, healed: 0, stalledFleetStops: 0, resumedFleetStops: 0, endedFleetStops: 0, errors: 0, complete: true, durationMs: 0 };
  const run: Run = { d, opts, now: d.now(), summary, outOfTime: () => Date.now() - started > opts.budgetMs };
  await sweep(run, 'active', run.now, (agentId, dueAt) => visitActive(run, agentId, dueAt));
  await sweep(run, 'stopping', run.now - d.config.stuckStopGraceMs, (agentId) => visitStopping(run, agentId));
  await healStalledFleetStops(run);
  summary.durationMs = Date.now() - started;
  return summary;
}

/** Visit the agents of a status due by then, page by page, a few at a time, within the run's budget. */
async function sweep({ d, opts, summary, outOfTime }: Run, status: AgentStatus, dueBy: number, visit: (agentId: string, dueAt: number) => Promise<void>): Promise<void> {
  for await (const page of agentPages(d, status, { pageSize: opts.pageSize, dueBy })) {
    if (outOfTime()) {
      summary.complete = false;
      return;
    }
    await mapBounded(page.agents, opts.concurrency ?? 8, async ({ agentId, dueAt }) => {
      if (outOfTime()) {
        summary.complete = false;
        return;
      }
      summary.examined++;
      try {
        await visit(agentId, dueAt);
      } catch (err) {
        summary.errors++;
        d.log.error('reaper could not handle an agent', { agentId, status, error: err as Error });
      }
    });
  }
}

/** An active agent due: settle its crashed workers' leases, then stop it if idle, or look again later. */
async function visitActive({ d, now, summary }: Run, agentId: string, dueAt: number): Promise<void> {
  let agent = await d.agents.get(agentId);
  if (agent?.status !== 'active') return;
  if (expiredLeases(agent, deadHorizon(d, now)).length > 0) {
    // Crashed workers: settle their messages (failed, with the reason) and free the leases.
    summary.reclaimed += await reclaimExpiredLeases(d, agent);
    agent = await d.agents.get(agentId);
    if (agent?.status !== 'active') return;
  }
  const idleDeadline = idleDueAt(lastActiveAt(agent), agent.idleTimeoutMs);
  // Work in flight (a long asynchronous message renewing its lease) is not idleness.
  if (idleDeadline > now || liveLeaseIds(agent, deadHorizon(d, now)).length > 0) {
    // Busy (or idle stop disabled): look again at its real idle deadline, or when a lease in
    // flight could expire, whichever is first. Only if no message was admitted since the read
    // (race reaper vs admit: a lease this read did not see must not lose its check).
    await d.agents.moveDueAt(agentId, 'active', nextReaperCheck(agent), sameActivity(agent, { dueAt })).catch(ignoreConditionFailed);
    summary.rescheduled++;
    return;
  }
  try {
    const { joined } = await beginGracefulStop(d, agentId, { timeoutMs: DEFAULT_STOP_TIMEOUT_MS, reason: 'idle', idle: { admissions: agent.admissions } });
    if (!joined) summary.stopped++;
  } catch (err) {
    // Another run, a user or a message got there first.
    if (err instanceof NoLongerIdle || err instanceof AgentConflict) return;
    throw err;
  }
}

/** A stop past its deadline and grace: its workflow died or never started; it is ended here. */
async function visitStopping({ d, now, summary }: Run, agentId: string): Promise<void> {
  const agent = await d.agents.get(agentId);
  if (agent?.status !== 'stopping' || !agent.stop) return;
  // A forced stop's grace counts from when it was forced (its dueAt), a graceful one's from its deadline.
  if ((agent.stop.forced ? agent.dueAt : agent.stop.deadline) > now - d.config.stuckStopGraceMs) return;
  if (await finalizeStop(d, agentId, agent.stop.stopId)) {
    summary.healed++;
    d.metrics.add('ReaperHeals', 1, 'Count', { kind: 'stop' });
  }
}

/**
 * A fleet stop whose workflow never started (its request died between writing the operation and
 * starting it) or ended without ending it would stay `running`: see healFleetStop.
 */
async function healStalledFleetStops({ d, now, summary }: Run): Promise<void> {
  for (const op of await d.fleet.listRunning()) {
    if (op.updatedAt > now - d.config.stuckStopGraceMs) continue;
    try {
      const healed = await healFleetStop(d, op);
      d.metrics.add('ReaperHeals', 1, 'Count', { kind: 'fleet_stop' });
      if (healed === 'started') summary.stalledFleetStops++;
      else if (healed === 'resumed') summary.resumedFleetStops++;
      else summary.endedFleetStops++;
    } catch (err) {
      summary.errors++;
      d.log.error('reaper could not restart a stalled fleet stop', { operationId: op.operationId, error: err as Error });
    }
  }
}

function ignoreConditionFailed(err: unknown): void {
  if (!(err instanceof AgentConditionFailed)) throw err;
}
