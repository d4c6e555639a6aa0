import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type AgentState, type Lease, type MessageRecord, type MessageOutcome } from '../../agents/model.js';
import type { AgentLeaseStore } from '../../agents/ports.js';
import { type AgentTable, OPEN_TO_COMPLETIONS, leaseToken } from './agent-table.js';

/**
 * Message leases on the hot item: admit, renew (heartbeat, a worker's claim), release, reclaim a
 * dead worker's. Admission and completion are two single-item writes each (the record in the
 * records store, then the lease), ordered so that a message is `processing` only while it holds
 * a lease (but between admission's two writes); a reclaim is one transaction.
 */
export class AgentLeases implements AgentLeaseStore {
  constructor(private readonly table: AgentTable) {}

  /**
   * Admit a message, second write: its lease, returning the agent's state (ALL_NEW: any expired
   * leases to settle, without a read). Race admit vs stop: only while `active`; once
   * `stopping` is written no message is admitted, and every admitted one is in the lease map the
   * drain check reads. Race admit vs admit: the lease id must be free. Race admit vs reaper (a
   * crashed worker must be found): the agent's next reaper check must come by the time this lease
   * could expire; `moveDueAt` is the caller's guess that it is later (then it moves to the
   * expiry), and the condition holds the write to that guess, so a wrong one is refused with the
   * item and the caller tries the other. Race admission vs configuration change: only while the
   * agent runs the configuration the caller checked the message against (`configVersion`).
   * Race retried admission vs stop and restart: a first attempt that landed (its answer lost),
   * cut by a stop, must not land again from the SDK's retry once the agent runs again: no stop
   * may have committed after the admission's time (`notStoppedAfter`).
   */
  async admitLease(a: {
    agentId: string;
    messageId: string;
    lease: Lease;
    maxInFlight: number;
    now: number;
    moveDueAt: boolean;
    configVersion: string;
    /** No stop may have committed after this (the admission's time, or a later one it was refused for). */
    notStoppedAfter: number;
  }): Promise<AgentState> {
    const { lease, moveDueAt } = a;
    const out = await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId: a.agentId },
        UpdateExpression: `SET #leases.#m = :lease, lastActivityAt = :now, admissions = if_not_exists(admissions, :zero) + :one${moveDueAt ? ', dueAt = :expiresAt' : ''}`,
        ConditionExpression:
          '#status = :active AND size(#leases) < :max AND attribute_not_exists(#leases.#m) AND ' +
          '(attribute_not_exists(lastStop) OR lastStop.stoppedAt <= :notStoppedAfter) AND ' +
          (moveDueAt ? 'dueAt > :expiresAt' : 'dueAt <= :expiresAt') +
          ' AND configVersion = :cv',
        ExpressionAttributeNames: {
          '#status': 'status',
          '#leases': 'leases',
          '#m': a.messageId,
        },
        ExpressionAttributeValues: {
          ':active': 'active',
          ':max': a.maxInFlight,
          ':lease': lease,
          ':now': a.now,
          ':notStoppedAfter': a.notStoppedAfter,
          ':zero': 0,
          ':one': 1,
          ':expiresAt': lease.expiresAt,
          ':cv': a.configVersion,
        },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      (current) => leaseToken(current, a.messageId) === lease.token,
    );
    return out.Attributes as AgentState;
  }

  /**
   * Complete a message, second write: release its lease, counting the completion, and return the
   * agent as it is now (the caller finalizes a stop this drained, without a read).
   * Race late completion vs stop: only while the lease holds this admission's token (a stop that
   * cleared it has recorded the message `interrupted`, overwriting the outcome). Race completion
   * vs graceful timeout: while stopping, only before the stop's deadline (the timeout is a
   * promise: the stop's commit then records the message `interrupted`). Race completion vs force
   * stop: never once the force has landed. One shape whatever the status, so a completion never
   * guesses it.
   */
  async releaseLease(a: { agentId: string; messageId: string; token: string; now: number }): Promise<AgentState> {
    const out = await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId: a.agentId },
        UpdateExpression: 'REMOVE #leases.#m',
        ConditionExpression: `#leases.#m.#token = :token AND ${OPEN_TO_COMPLETIONS}`,
        ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#m': a.messageId, '#token': 'token', '#stop': 'stop' },
        ExpressionAttributeValues: { ':token': a.token, ':active': 'active', ':stopping': 'stopping', ':now': a.now },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return out.Attributes as AgentState;
  }

  /**
   * A heartbeat of running work: push its lease's expiry out. Race heartbeat vs stop: only while
   * the lease still holds this admission's token (a force stop, a timed-out commit or a reclaim
   * cleared it) and only while the agent is active or its graceful stop's deadline is ahead (past
   * it, or once forced, the work must end, not be kept alive). A refusal tells the worker to abort
   * its work.
   * With `claim`, it is also the worker's claim of a queued message (race duplicate delivery:
   * `queued` is removed by the first claim, so a second delivery of the same job never runs).
   */
  async renewLease(a: { agentId: string; messageId: string; token: string; expiresAt: number; now: number; claim?: string }): Promise<void> {
    const { claim } = a;
    await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId: a.agentId },
        UpdateExpression: `SET #leases.#m.expiresAt = :expiresAt${claim ? ', #leases.#m.claim = :claim REMOVE #leases.#m.queued' : ''}`,
        ConditionExpression:
          `#leases.#m.#token = :token AND ${OPEN_TO_COMPLETIONS}` +
          (claim ? ' AND attribute_exists(#leases.#m.queued)' : ''),
        ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#m': a.messageId, '#token': 'token', '#stop': 'stop' },
        ExpressionAttributeValues: {
          ':expiresAt': a.expiresAt,
          ':token': a.token,
          ':active': 'active',
          ':stopping': 'stopping',
          ':now': a.now,
          ...(claim && { ':claim': claim }),
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      // A claim that landed: this delivery's (a duplicate delivery carries the same token, not the same claim).
      claim ? (current) => current?.leases?.[a.messageId]?.claim === claim : undefined,
    );
  }

  /**
   * Settle the expired lease of a crashed worker on an active agent: the lease is released and
   * its message recorded `failed`. Race reclaim vs completion (or a renewed lease): only that
   * very lease, by its token and expiry. A worker that crashed between a completion's two writes
   * left its message already ended: then the lease alone is released (`released`, with how the
   * message ended, or 'no record' for a lease without one). False when it was no longer there to
   * reclaim.
   */
  async reclaimLease(
    agentId: string,
    messageId: string,
    lease: Lease,
    error: string,
    now: number,
  ): Promise<'failed' | { released: MessageOutcome['status'] | 'no record'; error?: string } | false> {
    const release = {
      TableName: this.table.tableName,
      Key: { agentId },
      UpdateExpression: 'REMOVE #leases.#m',
      ConditionExpression: '#status = :active AND #leases.#m.#token = :token AND #leases.#m.expiresAt = :expiresAt',
      ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#m': messageId, '#token': 'token' },
      ExpressionAttributeValues: { ':active': 'active', ':token': lease.token, ':expiresAt': lease.expiresAt },
    };
    const reasons = await this.table.transact([
      { Update: release },
      this.table.records.finishMessage(agentId, messageId, { status: 'failed', error }, now, { token: lease.token }),
    ]);
    if (!reasons) return 'failed';
    // Only the record refused: it ended before its worker died (or there is none: an orphan lease).
    if (reasons[0]?.code !== 'None' || reasons[1]?.code !== 'ConditionalCheckFailed') return false;
    const ended = reasons[1].item as MessageRecord | undefined;
    if (ended?.status === 'processing') return false; // another admission's record
    if (!(await this.table.writeIfHeld(new UpdateCommand(release)))) return false;
    return ended ? { released: ended.status, ...(ended.status === 'failed' && { error: ended.error }) } : { released: 'no record' };
  }
}
