/** How a stop begins: a graceful stop's stopping write (idle: finalized at once; else its workflow), and a force stop. */
import { publish } from './events.js';
import { AgentConditionFailed, type Deps, WorkflowEnded } from './ports.js';
import { RETRY_LIMITS, retriesExhausted } from './retry.js';
import { AgentNotFound, agentNotRunning, StopFailed } from './errors.js';
import { type AgentState, deadHorizon, liveLeaseIds, type LastStop, newId, type StopInfo, type StopReason, nextReaperCheck, stopCorrelationId, stopWorkflowInput } from './model.js';
import { finalizeStop } from './stop-commit.js';
import { type StopAnswer, endedAnswer, answerOf } from './stop-view.js';

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
    ...(d.correlationId() && { correlationId: d.correlationId() }),
  };
  let agent: AgentState;
  let joined = false;
  try {
    agent = await d.agents.beginStop(agentId, proposed, now, { idle: opts.idle });
  } catch (err) {
    if (!(err instanceof AgentConditionFailed)) throw err;
    const current = err.current;
    if (!current) throw new AgentNotFound();
    // Our stopping write landed (its answer lost), the stop ran to its end, and its retry was
    // refused: that stop is the answer.
    if (current.lastStop?.stopId === proposed.stopId) return { stop: proposed, joined: false, stopped: current.lastStop };
    if (current.status === 'active' && opts.idle !== undefined) throw new NoLongerIdle();
    if (current.status !== 'stopping') throw agentNotRunning();
    agent = current;
    joined = true;
  }
  const stop = agent.stop as StopInfo;
  if (!joined) {
    await publish(d, { type: 'Agent Stopping', detail: { agentId, stopId: stop.stopId, reason: stop.reason, correlationId: stopCorrelationId(stop) } });
  }
  if (liveLeaseIds(agent, deadHorizon(d, now)).length === 0) {
    // Fast path: nothing in flight, no workflow. Should finalizing fail here (the runtime did not
    // close), the workflow below takes over and retries it with backoff.
    try {
      // The item the conditional write returned serves as the finalizer's first read: the commit
      // is conditioned on it, so a stale one only costs a retry.
      const stopped = await finalizeStop(d, agentId, stop.stopId, agent);
      return { stop, joined, stopped };
    } catch (err) {
      d.log.warn('finalize in the stop request failed; handing over to the workflow', { agentId, stopId: stop.stopId, error: err as Error });
    }
  }
  return startDrain(d, agentId, stop, joined, agent);
}

/**
 * Start the stop's drain workflow, named by its stopId (a joined request re-starting it is a
 * no-op, and heals a lost start); if it cannot start, roll the stop back to active (500).
 */
async function startDrain(d: Deps, agentId: string, stop: StopInfo, joined: boolean, agent: AgentState): Promise<{ stop: StopInfo; joined: boolean; agent?: AgentState }> {
  try {
    await d.workflow.start(stopWorkflowInput(agentId, stop));
  } catch (err) {
    // Its execution has already ended: the stop it ran is over (or, if its workflow died, the
    // reaper ends it after the grace). Wait for its outcome.
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
): Promise<Extract<StopAnswer, { kind: 'stopped' }>> {
  const { stopId, agent } = await closeAdmission(d, agentId, reason, operationId);
  // No outcome from here means the stop's own workflow or a completion committed it first: its
  // outcome stands. Either way the stop has ended: a forced stop is never rolled back.
  const stopped = await finalizeStop(d, agentId, stopId, agent);
  if (stopped) return endedAnswer(agentId, stopped);
  const view = await answerOf(d, agentId, stopId);
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
      ...(d.correlationId() && { correlationId: d.correlationId() }),
      forced: true,
    };
    let current: AgentState | null;
    try {
      const agent = await d.agents.beginForcedStop(agentId, stop, now);
      await publish(d, { type: 'Agent Stopping', detail: { agentId, stopId: stop.stopId, reason, correlationId: stopCorrelationId(stop) } });
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
