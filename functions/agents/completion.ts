/** Ending a message: its outcome and its lease's release (finalizing a stop it drained), and the settling of dead workers' leases. */
import { endingEvent, publish } from './events.js';
import { AgentConditionFailed, type Deps } from './ports.js';
import { AgentConflict } from './errors.js';
import { type AgentState, type MessageOutcome, deadHorizon, expiredLeases, leaseExpiredError, liveLeaseIds } from './model.js';
import { cutByStop, finalizeStop } from './stop-commit.js';

export const messageInterrupted = (messageId: string) =>
  new AgentConflict('MESSAGE_INTERRUPTED', `Agent was stopped before message ${messageId} completed; the message is recorded as interrupted`);

/**
 * Complete, in two single-item writes (no transaction, so concurrent completions of one agent
 * never conflict): the record takes the outcome while the lease still holds the message, then the
 * lease is released. Both are fenced on the admission's token (race: late completion vs
 * re-admission of the same messageId) and the release, while the agent is stopping, on the stop's
 * deadline (race: completion vs graceful timeout: the deadline is a promise). A release refused
 * while the lease is held means a stop reached the message: its commit decides (interrupted, over
 * the outcome written first, or drained), and the caller is told what it recorded. The release returns the agent, so the completion that drained a stopping agent
 * finalizes the stop at once without a read (event-driven; the workflow's Wait loop is only the
 * guarantee). Finalizing never fails the (completed) message: the workflow retries it.
 */
export async function complete(
  d: Deps,
  agentId: string,
  messageId: string,
  token: string,
  outcome: Extract<MessageOutcome, { status: 'completed' | 'failed' }>,
): Promise<number> {
  const now = d.now();
  // Refused: a stop (or a reclaim) already ended the message, or the record is another admission's.
  if (!(await d.records.recordOutcome({ agentId, messageId, token, outcome, now }))) throw messageInterrupted(messageId);
  let agent: AgentState;
  let announced = false;
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
    ({ agent, announced } = await afterRefusedRelease(d, agentId, messageId, { status: outcome.status, completedAt: now }, err.current));
  }
  // Announced by the stop that reached it: its commit (or this completion's, for it) settled it.
  if (announced) return now;
  await publish(d, endingEvent(agentId, messageId, outcome));
  // The completion that drained a stopping agent ends its stop at once, on the agent its release returned.
  if (agent.status === 'stopping' && agent.stop && liveLeaseIds(agent, deadHorizon(d, d.now())).length === 0) {
    await finalizeStop(d, agentId, agent.stop.stopId, agent).catch((err: Error) =>
      d.log.warn('finalize after the last completion failed; the workflow will retry it', { agentId, stopId: agent.stop?.stopId, error: err }),
    );
  }
  return now;
}

/**
 * The release was refused. With the lease gone, the outcome stands when the record still holds
 * it (our release landed and its answer was lost, or a reclaim released the lease after the
 * outcome was recorded); otherwise a stop took the message. With the lease still held, a stop
 * reached the message (forced, or past its graceful deadline): how it ends is that stop's
 * commit's decision (interrupted, or drained when its lease had expired with the outcome recorded
 * in time). The caller is told that decision, never a guess the store then contradicts, and the
 * stop announces the ending. Returns the agent, and whether the stop announced the ending.
 */
async function afterRefusedRelease(
  d: Deps,
  agentId: string,
  messageId: string,
  ended: { status: 'completed' | 'failed'; completedAt: number },
  current: AgentState | null,
): Promise<{ agent: AgentState; announced: boolean }> {
  if (!current) throw messageInterrupted(messageId);
  if (current.leases?.[messageId] !== undefined) {
    if ((await stopThatReached(d, current, messageId, ended)) === 'cut') throw messageInterrupted(messageId);
    return { agent: current, announced: true };
  }
  if ((await d.records.getMessage(agentId, messageId))?.status === ended.status) return { agent: current, announced: false };
  throw messageInterrupted(messageId);
}

/**
 * The stop that refused a release while the lease was held: ended here (it is due), and what its
 * commit recorded for the message. Should it not end here (the store failing, a runtime that
 * cannot be told yet), the commit to come judges the message as it stands now (`cutByStop`), and
 * that is the answer; the record, which says the outcome until then, takes it at that commit.
 */
async function stopThatReached(d: Deps, agent: AgentState, messageId: string, ended: { status: 'completed' | 'failed'; completedAt: number }): Promise<'cut' | 'stands'> {
  const stopId = agent.status === 'stopping' ? agent.stop?.stopId : undefined;
  if (!stopId) return 'cut';
  // Read afresh (not the refused write's item): another finalizer may have ended it meanwhile, and the runtime is told once per end.
  const committed = await finalizeStop(d, agent.agentId, stopId).catch((err: Error) => {
    d.log.warn('could not end the stop that reached a completion; answering as its commit will judge', { agentId: agent.agentId, stopId, messageId, error: err });
    return undefined;
  });
  const now = committed ? undefined : await d.agents.get(agent.agentId).catch(() => agent);
  if (committed || !(now?.status === 'stopping' && now.stop?.stopId === stopId)) {
    // Committed (here or by another finalizer): the record says how.
    return (await d.records.getMessage(agent.agentId, messageId))?.status === ended.status ? 'stands' : 'cut';
  }
  return cutByStop(d, now, messageId, d.now(), ended) ? 'cut' : 'stands';
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
    d.metrics.add('HeartbeatsLost', 1, 'Count');
    // Every ending has its event, whoever settles it: a reply recorded before its worker died too.
    if (settled === 'failed') await publish(d, endingEvent(agent.agentId, messageId, { status: 'failed', error }));
    else if (settled.released === 'completed' || settled.released === 'failed') await publish(d, endingEvent(agent.agentId, messageId, { status: settled.released, error: settled.error }));
  }
  return reclaimed;
}
