/** Where a stop stands: the workflow's drain check, the view a caller gets, and a stop request's wait for the outcome. */
import type { Deps } from './ports.js';
import { AgentNotFound } from './errors.js';
import { judgeStop } from './stop-commit.js';
import { type AgentState, deadHorizon, liveLeaseIds, type LastStop, type StopOutcome } from './model.js';
import { sleep } from './retry.js';

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
export type StopAnswer =
  | { kind: 'stopped'; agentId: string; stopId: string; outcome: StopOutcome; stoppedAt: number; interrupted: number }
  | { kind: 'stopping'; agentId: string; stopId: string; deadline: number }
  | { kind: 'failed'; agentId: string; stopId: string; error: string };

/** A stop that ended, as a caller learns it, from its commit (`lastStop`) or its stop record. */
export const endedAnswer = (agentId: string, s: Pick<LastStop, 'stopId' | 'outcome' | 'stoppedAt' | 'interrupted'>): Extract<StopAnswer, { kind: 'stopped' }> => ({
  kind: 'stopped',
  agentId,
  stopId: s.stopId,
  outcome: s.outcome,
  stoppedAt: s.stoppedAt,
  interrupted: s.interrupted,
});

/** The workflow's CheckDrain: is this stop ready to end (judged as `finalizeStop` judges it), still draining, or no longer ours? */
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
  if (judgeStop(d, agent, stopId, now)) return { state: 'ready', waitSeconds: 0, inFlight };
  return { state: 'draining', waitSeconds: nextPollSeconds(agent.stop.timeoutMs, agent.stop.deadline - now), inFlight };
}

/** Where a stop stands, from the agent (read now, or as a write just returned it) and, once the agent moved on, from the stop record. */
export async function answerOf(d: Deps, agentId: string, stopId: string, known?: AgentState): Promise<StopAnswer> {
  const agent = known ?? (await d.agents.get(agentId));
  if (agent?.status === 'stopping' && agent.stop?.stopId === stopId) {
    const { stop } = agent;
    if (stop.failure) return { kind: 'failed', agentId, stopId, error: stop.failure.error };
    return { kind: 'stopping', agentId, stopId, deadline: stop.deadline };
  }
  if (agent?.lastStop?.stopId === stopId) return endedAnswer(agentId, agent.lastStop);
  const record = await d.records.getStop(agentId, stopId);
  if (record) return endedAnswer(agentId, record);
  // The agent is gone, or the stop was rolled back: neither happens to a stop someone waits on
  // unless the agent was deleted meanwhile, which requires it to have stopped.
  if (!agent) throw new AgentNotFound();
  return { kind: 'failed', agentId, stopId, error: 'StopRolledBack' };
}

/**
 * Wait up to `windowMs` for the stop to end, re-reading the agent every `stopPollMs` (1 RCU a
 * read); a waiting request reads, it never ends the stop (the workflow does, its last Wait sized
 * to land on the deadline).
 */
export async function awaitStop(d: Deps, agentId: string, stopId: string, windowMs: number, known?: AgentState): Promise<StopAnswer> {
  const until = d.now() + windowMs;
  let agent = known;
  for (;;) {
    const answer = await answerOf(d, agentId, stopId, agent ?? (await d.agents.get(agentId)));
    const left = until - d.now();
    if (answer.kind !== 'stopping' || left <= 0) return answer;
    await sleep(Math.min(left, d.config.stopPollMs));
    agent = undefined;
  }
}
