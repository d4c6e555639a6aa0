import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Deps } from './deps.js';
import { backoff, cancellationReasons } from './dynamo.js';
import { AgentBusy, AgentConflict, AgentNotFound, MessageNotFound, RuntimeFailed, TooManyInFlight, agentNotRunning, agentStopping } from './errors.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { type AgentItem, type MessageRecord, type SendMessageInput, liveLeaseIds } from './model.js';
import { messageKey, type MessageOutcome } from './records-store.js';
import { runtimeFor } from './runtimes.js';
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
  const { agent, record } = admitted;

  let result: { status: 'completed'; reply: string } | { status: 'failed'; error: string };
  try {
    const { reply } = await runtimeFor(d.runtimes, agent).process(agent, { messageId, text: input.text, metadata: input.metadata });
    result = { status: 'completed', reply };
  } catch (err) {
    d.log.warn('runtime failed to process a message', { agentId, messageId, error: err as Error });
    result = { status: 'failed', error: err instanceof Error ? err.message : String(err) };
  }
  const completedAt = await complete(d, agentId, messageId, result);
  if (result.status === 'failed') {
    throw new RuntimeFailed(`Agent runtime failed to process message ${messageId}: ${result.error}`);
  }
  return { message: { ...record, status: 'completed', reply: result.reply, completedAt }, duplicate: false };
}

type Admitted = { agent: AgentItem; record: MessageRecord } | { duplicate: MessageRecord };

async function admit(d: Deps, agentId: string, messageId: string, input: SendMessageInput): Promise<Admitted> {
  // Read for the runtime's configuration and a precise error; the decision is the write's condition.
  let agent = await d.agents.get(agentId);
  let reclaimTried = false;
  for (let attempt = 0; ; attempt++) {
    if (!agent) throw new AgentNotFound();
    if (agent.status === 'inactive') throw agentNotRunning();
    if (agent.status === 'stopping') throw agentStopping();
    const now = d.now();
    const record: MessageRecord = {
      agentId,
      messageId,
      status: 'processing',
      text: input.text,
      ...(input.metadata && { metadata: input.metadata }),
      createdAt: now,
    };
    try {
      await d.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              // Only while active: once `stopping` is written no message is admitted, and every
              // admitted one is in the map the drain check reads.
              Update: {
                TableName: d.agents.tableName,
                Key: { agentId },
                UpdateExpression: 'SET #leases.#m = :expiresAt, lastActivityAt = :now',
                ConditionExpression: '#status = :active AND size(#leases) < :max AND attribute_not_exists(#leases.#m)',
                ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#m': messageId },
                ExpressionAttributeValues: {
                  ':active': 'active',
                  ':max': d.config.maxInFlight,
                  ':expiresAt': now + d.config.leaseTtlMs,
                  ':now': now,
                },
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
            {
              Put: {
                TableName: d.records.tableName,
                Item: { ...messageKey(agentId, messageId), ...record, expiresAt: d.records.expiresAt(now) },
                ConditionExpression: 'attribute_not_exists(sk)',
              },
            },
          ],
        }),
      );
      return { agent, record };
    } catch (err) {
      const reasons = cancellationReasons(err);
      if (!reasons) throw err;
      if (reasons[1]?.code === 'ConditionalCheckFailed') {
        const existing = await d.records.getMessage(agentId, messageId);
        if (existing) return { duplicate: duplicateOutcome(existing) };
      }
      const current = (reasons[0]?.item as AgentItem | undefined) ?? (await d.agents.get(agentId));
      const atCap =
        reasons[0]?.code === 'ConditionalCheckFailed' &&
        current?.status === 'active' &&
        Object.keys(current.leases ?? {}).length >= d.config.maxInFlight;
      if (atCap) {
        // Crashed workers' expired leases must not hold the cap forever: reclaim once, then retry.
        if (reclaimTried || (await reclaimExpiredLeases(d, current)) === 0) {
          throw new TooManyInFlight(d.config.maxInFlight, Math.max(1, Math.ceil(d.config.leaseTtlMs / 60_000)));
        }
        reclaimTried = true;
      } else if (attempt >= 15) {
        throw new AgentBusy();
      }
      agent = current;
      await backoff(attempt);
    }
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
 * Complete: release the lease and write the outcome, in one transaction conditioned on the lease
 * still being there. A lease cleared by a stop fences the completion: nothing changes and the
 * message stays `interrupted`. Completing the last lease of a stopping agent finalizes the stop at
 * once (event-driven; the workflow's Wait loop is only the guarantee).
 */
async function complete(
  d: Deps,
  agentId: string,
  messageId: string,
  result: Extract<MessageOutcome, { status: 'completed' | 'failed' }>,
): Promise<number> {
  let expectStatus: 'active' | 'stopping' = 'active';
  for (let attempt = 0; attempt < 30; attempt++) {
    const now = d.now();
    const stopping = expectStatus === 'stopping';
    try {
      await d.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: d.agents.tableName,
                Key: { agentId },
                UpdateExpression: stopping
                  ? 'REMOVE #leases.#m SET #stop.drained = if_not_exists(#stop.drained, :zero) + :one'
                  : 'REMOVE #leases.#m',
                ConditionExpression: 'attribute_exists(#leases.#m) AND #status = :expected',
                ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#m': messageId, ...(stopping && { '#stop': 'stop' }) },
                ExpressionAttributeValues: { ':expected': expectStatus, ...(stopping && { ':zero': 0, ':one': 1 }) },
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
            d.records.finishMessage(agentId, messageId, result, now, true),
          ],
        }),
      );
      if (stopping) await finalizeIfDrained(d, agentId);
      return now;
    } catch (err) {
      const reasons = cancellationReasons(err);
      if (!reasons) throw err;
      if (reasons[0]?.code === 'ConditionalCheckFailed') {
        const current = (reasons[0].item as AgentItem | undefined) ?? (await d.agents.get(agentId));
        if (!current?.leases?.[messageId]) {
          throw new AgentConflict(
            'MESSAGE_INTERRUPTED',
            `Agent was stopped before message ${messageId} completed; the message is recorded as interrupted`,
          );
        }
        expectStatus = current.status === 'stopping' ? 'stopping' : 'active';
      }
      await backoff(attempt);
    }
  }
  throw new Error(`Message ${messageId} of agent ${agentId} could not be completed: the agent kept changing`);
}

/** The event-driven fast path. Its failure never fails the (completed) message: the workflow retries. */
async function finalizeIfDrained(d: Deps, agentId: string): Promise<void> {
  const agent = await d.agents.get(agentId);
  if (agent?.status === 'stopping' && agent.stop && liveLeaseIds(agent, d.now()).length === 0) {
    await finalizeStop(d, agentId, agent.stop.stopId).catch((err: Error) =>
      d.log.warn('finalize after the last completion failed; the workflow will retry it', { agentId, error: err }),
    );
  }
}

/** Release expired leases (crashed workers) of an active agent; their messages are recorded failed. */
export async function reclaimExpiredLeases(d: Deps, agent: AgentItem): Promise<number> {
  const now = d.now();
  const expired = Object.entries(agent.leases ?? {}).filter(([, expiresAt]) => expiresAt <= now);
  let reclaimed = 0;
  for (const [messageId, expiresAt] of expired) {
    try {
      await d.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: d.agents.tableName,
                Key: { agentId: agent.agentId },
                UpdateExpression: 'REMOVE #leases.#m',
                ConditionExpression: '#leases.#m = :expiresAt',
                ExpressionAttributeNames: { '#leases': 'leases', '#m': messageId },
                ExpressionAttributeValues: { ':expiresAt': expiresAt },
              },
            },
            d.records.finishMessage(agent.agentId, messageId, { status: 'failed', error: 'lease expired: the worker processing it stopped responding' }, now, true),
          ],
        }),
      );
      reclaimed++;
    } catch (err) {
      if (!cancellationReasons(err)) throw err;
    }
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
  const startKey = decodeCursor(q.cursor, { agentId: 'string', sk: 'string' }, { agentId });
  if (!(await d.agents.get(agentId))) throw new AgentNotFound();
  const page = await d.records.listMessages(agentId, q.limit, startKey);
  return { items: page.items, nextCursor: encodeCursor(page.lastKey) };
}

export async function listStops(d: Deps, agentId: string, q: { limit: number; cursor?: string }) {
  const startKey = decodeCursor(q.cursor, { agentId: 'string', sk: 'string' }, { agentId });
  if (!(await d.agents.get(agentId))) throw new AgentNotFound();
  const page = await d.records.listStops(agentId, q.limit, startKey);
  return { items: page.items, nextCursor: encodeCursor(page.lastKey) };
}
