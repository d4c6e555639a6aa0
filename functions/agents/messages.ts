import { randomUUID } from 'node:crypto';
import { runtimeFor, type Deps } from './ports.js';
import { RETRY_LIMITS, backoff, retriesExhausted } from './retry.js';
import { AgentConflict, AgentNotFound, MessageNotFound, RuntimeFailed, TooManyInFlight, agentNotRunning, agentStopping } from './errors.js';
import { cursorShapes, decodeCursor, encodeCursor } from './cursor.js';
import { type AgentItem, type MessageOutcome, type MessageRecord, type SendMessageInput, expiredLeases, leaseExpiry, liveLeaseIds } from './model.js';
import { finalizeStop, newId } from './stop.js';


/**
 * Admit, run through the agent's runtime, complete. Admission and completion are each one
 * transaction over the agent's lease map and the message record, so the record and the lease
 * never disagree: a message is `processing` exactly while it holds a lease.
 */
export async function sendMessage(d: Deps, agentId: string, input: SendMessageInput): Promise<{ message: MessageRecord; duplicate: boolean }> {
  const messageId = input.messageId ?? newId();
  const admitted = await admit(d, agentId, messageId, input);
  if ('duplicate' in admitted) return { message: admitted.duplicate, duplicate: true };
  const { agent, record, token } = admitted;

  let result: { status: 'completed'; reply: string } | { status: 'failed'; error: string };
  try {
    const { reply } = await runtimeFor(d.runtimes, agent).process(agent, { messageId, text: input.text, metadata: input.metadata });
    result = { status: 'completed', reply };
  } catch (err) {
    d.log.warn('runtime failed to process a message', { agentId, messageId, error: err as Error });
    result = { status: 'failed', error: err instanceof Error ? err.message : String(err) };
  }
  const completedAt = await complete(d, agentId, messageId, token, result);
  if (result.status === 'failed') {
    throw new RuntimeFailed(`Agent runtime failed to process message ${messageId}: ${result.error}`);
  }
  return { message: { ...record, status: 'completed', reply: result.reply, completedAt }, duplicate: false };
}

type Admitted = { agent: AgentItem; record: MessageRecord; token: string } | { duplicate: MessageRecord };

async function admit(d: Deps, agentId: string, messageId: string, input: SendMessageInput): Promise<Admitted> {
  // Read for the runtime's configuration and a precise error; the decision is the write's condition.
  let agent = await d.agents.get(agentId);
  let reclaimTried = false;
  for (let attempt = 0; ; attempt++) {
    if (!agent) throw new AgentNotFound();
    if (agent.status === 'inactive') throw agentNotRunning();
    if (agent.status === 'stopping') throw agentStopping();
    const now = d.now();
    // Crashed workers' messages are settled by the next admission (and by the reaper), so they
    // neither stay `processing` forever nor hold the in-flight cap.
    if (!reclaimTried && expiredLeases(agent, now).length > 0) {
      reclaimTried = true;
      await reclaimExpiredLeases(d, agent);
    }
    const lease = { token: randomUUID(), expiresAt: now + d.config.leaseTtlMs };
    const record: MessageRecord = {
      agentId,
      messageId,
      status: 'processing',
      text: input.text,
      ...(input.metadata && { metadata: input.metadata }),
      createdAt: now,
    };
    const result = await d.agents.admitMessage({
      agentId,
      record,
      lease,
      maxInFlight: d.config.maxInFlight,
      now,
      // The reaper must look at this agent by the time this lease could expire (a crashed
      // worker); the index moves only when its next look is later than that: about once per
      // lease TTL under steady traffic, not per message.
      moveDueAt: agent.dueAt > lease.expiresAt,
    });
    if (result.admitted) return { agent, record, token: lease.token };
    if (result.recordExists) {
      const existing = await d.records.getMessage(agentId, messageId);
      if (existing) return { duplicate: duplicateOutcome(existing) };
    }
    const current = result.current ?? (await d.agents.get(agentId));
    const atCap = result.conditionFailed && current?.status === 'active' && Object.keys(current.leases ?? {}).length >= d.config.maxInFlight;
    if (atCap && (reclaimTried || expiredLeases(current, d.now()).length === 0)) {
      throw new TooManyInFlight(d.config.maxInFlight, Math.max(1, Math.ceil(d.config.leaseTtlMs / 60_000)));
    }
    if (!atCap && attempt >= RETRY_LIMITS.admission) throw retriesExhausted();
    agent = current;
    await backoff(attempt);
  }
}

/** A repeated messageId: the stored outcome, never a second run. */
function duplicateOutcome(existing: MessageRecord): MessageRecord {
  switch (existing.status) {
    case 'completed':
      return existing;
    case 'processing':
      throw new AgentConflict('MESSAGE_IN_PROGRESS', `Message ${existing.messageId} is already being processed; get it later for its reply`);
    case 'interrupted':
      throw new AgentConflict('MESSAGE_INTERRUPTED', `Message ${existing.messageId} was interrupted by a stop; send it again with a new messageId`);
    case 'failed':
      throw new AgentConflict('MESSAGE_FAILED', `Message ${existing.messageId} failed (${existing.error ?? 'runtime error'}); send it again with a new messageId`);
  }
}

/**
 * Complete: release the lease and write the outcome, in one transaction fenced on the admission's
 * token (race: late completion vs re-admission of the same messageId) and, while the agent is
 * stopping, on the stop's deadline (race: completion vs graceful timeout: the deadline is a
 * promise, so a completion after it is refused and the message ends `interrupted`). A lease
 * cleared by a stop fences the completion too. Completing the last lease of a stopping agent
 * finalizes the stop at once (event-driven; the workflow's Wait loop is only the guarantee).
 */
async function complete(
  d: Deps,
  agentId: string,
  messageId: string,
  token: string,
  outcome: Extract<MessageOutcome, { status: 'completed' | 'failed' }>,
): Promise<number> {
  let expect: 'active' | 'stopping' = 'active';
  for (let attempt = 0; attempt < RETRY_LIMITS.completion; attempt++) {
    const now = d.now();
    const result = await d.agents.completeMessage({ agentId, messageId, token, outcome, now, expect });
    if (result.completed) {
      if (expect === 'stopping') await finalizeIfDrained(d, agentId);
      return now;
    }
    if (result.conditionFailed) {
      const current = result.current ?? (await d.agents.get(agentId));
      const lease = current?.leases?.[messageId];
      const ours = typeof lease === 'object' && lease.token === token;
      // Fenced: the lease was cleared by a stop or belongs to another admission, or the store
      // refused a completion shaped for `stopping` while our lease is still there, which only
      // the stop's deadline does. Past the deadline this request finalizes the stop itself.
      const pastDeadline = ours && current?.status === 'stopping' && expect === 'stopping';
      if (!current || !ours || pastDeadline) {
        if (pastDeadline && current?.stop) await finalizeStopQuietly(d, agentId, current.stop.stopId);
        throw new AgentConflict(
          'MESSAGE_INTERRUPTED',
          `Agent was stopped before message ${messageId} completed; the message is recorded as interrupted`,
        );
      }
      expect = current.status === 'stopping' ? 'stopping' : 'active';
    }
    await backoff(attempt);
  }
  throw retriesExhausted();
}

/** The event-driven fast path. Its failure never fails the (completed) message: the workflow retries. */
async function finalizeIfDrained(d: Deps, agentId: string): Promise<void> {
  const agent = await d.agents.get(agentId);
  if (agent?.status === 'stopping' && agent.stop && liveLeaseIds(agent, d.now()).length === 0) {
    await finalizeStopQuietly(d, agentId, agent.stop.stopId);
  }
}

async function finalizeStopQuietly(d: Deps, agentId: string, stopId: string): Promise<void> {
  await finalizeStop(d, agentId, stopId).catch((err: Error) =>
    d.log.warn('finalize from a message request failed; the workflow will retry it', { agentId, stopId, error: err }),
  );
}

/**
 * Settle the expired leases (crashed workers) of an active agent: each lease is released and its
 * message recorded `failed`, in one transaction fenced on that very lease (its token and expiry),
 * so a lease renewed or completed meanwhile is left alone.
 */
export async function reclaimExpiredLeases(d: Deps, agent: AgentItem): Promise<number> {
  const now = d.now();
  let reclaimed = 0;
  for (const [messageId, lease] of expiredLeases(agent, now)) {
    const error = `lease expired at ${new Date(leaseExpiry(lease)).toISOString()}: the worker processing it stopped responding`;
    if (await d.agents.reclaimLease(agent.agentId, messageId, lease, error, now)) reclaimed++;
  }
  return reclaimed;
}

export async function getMessage(d: Deps, agentId: string, messageId: string): Promise<MessageRecord> {
  const [agent, message] = await Promise.all([d.agents.get(agentId), d.records.getMessage(agentId, messageId)]);
  if (!agent) throw new AgentNotFound();
  if (!message) throw new MessageNotFound();
  return message;
}

export async function listMessages(d: Deps, agentId: string, q: { limit: number; cursor?: string }) {
  const startKey = decodeCursor(q.cursor, cursorShapes.messages(agentId));
  if (!(await d.agents.get(agentId))) throw new AgentNotFound();
  const page = await d.records.listMessages(agentId, q.limit, startKey);
  return { items: page.items, nextCursor: encodeCursor(page.lastKey) };
}

export async function listStops(d: Deps, agentId: string, q: { limit: number; cursor?: string }) {
  const startKey = decodeCursor(q.cursor, cursorShapes.stops(agentId));
  if (!(await d.agents.get(agentId))) throw new AgentNotFound();
  const page = await d.records.listStops(agentId, q.limit, startKey);
  return { items: page.items, nextCursor: encodeCursor(page.lastKey) };
}
