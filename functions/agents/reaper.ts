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

/**
 * One run of the idle reaper and stuck-stop sweeper. It reads only agents that are due, through
 * the byStatus index (status, dueAt), so its cost follows the agents due, not the fleet. Every
 * change is a conditional write: two overlapping runs stop each agent once.
 */
export async function runReaper(d: Deps, opts: ReaperOptions): Promise<ReaperSummary> {
  const started = Date.now();
  const summary: ReaperSummary = { examined: 0, stopped: 0, reclaimed: 0, rescheduled: 0, healed: 0, stalledFleetStops: 0, resumedFleetStops: 0, endedFleetStops: 0, errors: 0, complete: true, durationMs: 0 };
  const outOfTime = () => Date.now() - started > opts.budgetMs;
  const now = d.now();

  const sweep = async (status: AgentStatus, dueBy: number, visit: (agentId: string, dueAt: number) => Promise<void>) => {
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
  };

  await sweep('active', now, async (agentId, dueAt) => {
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
  });

  await sweep('stopping', now - d.config.stuckStopGraceMs, async (agentId) => {
    const agent = await d.agents.get(agentId);
    if (agent?.status !== 'stopping' || !agent.stop) return;
    // A forced stop's grace counts from when it was forced (its dueAt), a graceful one's from its deadline.
    if ((agent.stop.forced ? agent.dueAt : agent.stop.deadline) > now - d.config.stuckStopGraceMs) return;
    const stopped = await finalizeStop(d, agentId, agent.stop.stopId);
    if (stopped) {
      summary.healed++;
      // A stop left past its deadline and grace: its workflow died or never started.
      d.metrics.add('ReaperHeals', 1, 'Count', { kind: 'stop' });
    }
  });

  // A fleet stop whose workflow never started (its request died between writing the operation and
  // starting it) or ended without ending it would stay `running`: see healFleetStop.
  for (const op of await d.fleet.listRunning()) {
    const { operationId, updatedAt } = op;
    if (updatedAt > now - d.config.stuckStopGraceMs) continue;
    try {
      const healed = await healFleetStop(d, op);
      d.metrics.add('ReaperHeals', 1, 'Count', { kind: 'fleet_stop' });
      if (healed === 'started') summary.stalledFleetStops++;
      else if (healed === 'resumed') summary.resumedFleetStops++;
      else summary.endedFleetStops++;
    } catch (err) {
      summary.errors++;
      d.log.error('reaper could not restart a stalled fleet stop', { operationId, error: err as Error });
    }
  }

  summary.durationMs = Date.now() - started;
  return summary;
}

function ignoreConditionFailed(err: unknown): void {
  if (!(err instanceof AgentConditionFailed)) throw err;
}
