import { randomUUID } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { AgentConditionFailed, type AgentStopStore, type StopCommit, type StopCommitted } from '../../agents/ports.js';
import { leaseNames } from './client.js';
import { type AgentState, lastStopOf, type LastStop, type MessageRecord, type StopInfo } from '../../agents/model.js';
import { type AgentTable, NOT_ENDED_ALREADY } from './agent-table.js';

/**
 * Stop transitions, each one conditional write with the race it closes: begin (graceful, forced,
 * a graceful one forced), roll back, record a workflow's failure, and the commit point of every
 * stop.
 */
export class AgentStops implements AgentStopStore {
  constructor(private readonly table: AgentTable) {}

  /**
   * active -> stopping with a new stop, returning the new item; no admission succeeds after it.
   * The leases in flight at this moment are kept (`leasesAtStop`): those gone at the commit are
   * the messages the stop drained. `idle` (the reaper) also requires no message admitted since
   * it looked (its count of admissions; none: still absent).
   */
  async beginStop(agentId: string, stop: StopInfo, now: number, opts: { idle?: { admissions?: number } } = {}): Promise<AgentState> {
    const idle = opts.idle !== undefined;
    const seen = opts.idle?.admissions;
    const idleCondition = !idle ? '' : seen === undefined ? ' AND attribute_not_exists(admissions)' : ' AND admissions = :seen';
    const out = await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId },
        UpdateExpression:
          'SET #status = :stopping, #stop = :stop, updatedAt = :now, dueAt = :deadline, version = version + :one, leasesAtStop = #leases',
        ConditionExpression:
          `attribute_exists(agentId) AND #status = :active AND ${NOT_ENDED_ALREADY}${idleCondition}`,
        ExpressionAttributeNames: { '#status': 'status', '#stop': 'stop', '#leases': 'leases' },
        ExpressionAttributeValues: {
          ':stopping': 'stopping',
          ':active': 'active',
          ':stop': stop,
          ':now': now,
          ':deadline': stop.deadline,
          ':one': 1,
          ':stopId': stop.stopId,
          ...(seen !== undefined && { ':seen': seen }),
        },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      (current) => current?.stop?.stopId === stop.stopId,
    );
    return out.Attributes as AgentState;
  }

  /**
   * A force stop's first write: close admission at once. active -> stopping with a stop marked
   * `forced`, so from here on no message is admitted (race: force vs admit) and no completion or
   * heartbeat lands (race: force vs late completion; they are fenced on the flag, not on a time):
   * the lease set is frozen for the commit.
   * Conditioned only on the status, never on the leases, so message traffic cannot make it fail.
   */
  async beginForcedStop(agentId: string, stop: StopInfo, now: number): Promise<AgentState> {
    const out = await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId },
        UpdateExpression: 'SET #status = :stopping, #stop = :stop, updatedAt = :now, dueAt = :now, version = version + :one, leasesAtStop = #leases',
        ConditionExpression: `attribute_exists(agentId) AND #status = :active AND ${NOT_ENDED_ALREADY}`,
        ExpressionAttributeNames: { '#status': 'status', '#stop': 'stop', '#leases': 'leases' },
        ExpressionAttributeValues: { ':stopping': 'stopping', ':active': 'active', ':stop': stop, ':now': now, ':one': 1, ':stopId': stop.stopId },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      (current) => current?.stop?.stopId === stop.stopId,
    );
    return out.Attributes as AgentState;
  }

  /**
   * Force a graceful stop in progress: marked `forced`, which fences every later completion and
   * heartbeat from the moment this write lands, whatever their clocks say. Its deadline stays the
   * graceful one: a completion that landed before this write was within it, and is drained (moving
   * the deadline to this request's `now`, read before the write landed, could put it before a
   * completion the stop counts drained). Only for this stopId.
   */
  async forceStopInProgress(agentId: string, stopId: string, now: number): Promise<void> {
    await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId },
        UpdateExpression: 'SET #stop.forced = :true, dueAt = :now, updatedAt = :now',
        ConditionExpression: '#status = :stopping AND #stop.stopId = :stopId',
        ExpressionAttributeNames: { '#status': 'status', '#stop': 'stop' },
        ExpressionAttributeValues: { ':stopping': 'stopping', ':stopId': stopId, ':now': now, ':true': true },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  }

  /**
   * stopping -> active, only for this stop: its workflow could not be started. Race rollback vs
   * force stop: never a stop a force stop has taken over (its commit must find it `stopping`).
   */
  async rollbackStop(agentId: string, stopId: string, now: number, dueAt: number): Promise<void> {
    const writeId = randomUUID();
    await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId },
        UpdateExpression: 'SET #status = :active, updatedAt = :now, dueAt = :dueAt, version = version + :one, writeId = :writeId REMOVE #stop, leasesAtStop',
        ConditionExpression: '#status = :stopping AND #stop.stopId = :stopId AND attribute_not_exists(#stop.forced)',
        ExpressionAttributeNames: { '#status': 'status', '#stop': 'stop' },
        ExpressionAttributeValues: {
          ':active': 'active',
          ':stopping': 'stopping',
          ':stopId': stopId,
          ':now': now,
          ':dueAt': dueAt,
          ':one': 1,
          ':writeId': writeId,
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      (current) => current?.writeId === writeId,
    );
  }

  /** Record that this stop's workflow failed past its retries (the agent stays recoverable). */
  async recordStopFailure(agentId: string, stopId: string, failure: NonNullable<StopInfo['failure']>): Promise<void> {
    await this.table.conditional(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: { agentId },
        UpdateExpression: 'SET #stop.failure = :failure, updatedAt = :now',
        ConditionExpression: '#status = :stopping AND #stop.stopId = :stopId',
        ExpressionAttributeNames: { '#status': 'status', '#stop': 'stop' },
        ExpressionAttributeValues: { ':stopping': 'stopping', ':stopId': stopId, ':failure': failure, ':now': failure.at },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  }

  /**
   * The commit point of every stop: the agent `inactive` with its leases cleared (fencing every
   * late completion) and `lastStop`, the stop record, and the messages of the cleared leases
   * ended: `interrupted` (cut by the stop: any reply or error written first goes, a message is
   * never both completed and interrupted) or `failed` (their worker died: its lease expired),
   * each only onto a record that exists (an orphan lease has none, and gets none) and a failed
   * one only while still `processing`. Race stop vs stop: only for this stopId, while still
   * `stopping`. Race commit vs completion: on the exact lease set read (`size` plus each id); past
   * the deadline no completion can land, so a retry converges.
   */
  async commitStop(commit: StopCommit): Promise<StopCommitted> {
    const commitId = randomUUID();
    try {
      return await this.commitOnce(commit, commitId);
    } catch (err) {
      // No answer past the SDK's retries, though the commit may have landed, and the agent may
      // since have been started and stopped again: what it shows now proves nothing. The stop
      // record does: only a commit writes it, and it carries that commit's id.
      const landed = await this.commitLanded(commit, commitId).catch(() => undefined);
      if (landed) return landed;
      throw err;
    }
  }

  /** Whether a commit that got no answer landed (undefined: it did not, or it cannot be told). */
  private async commitLanded({ agent, stopId, record }: StopCommit, commitId: string): Promise<StopCommitted | undefined> {
    const stored = await this.table.records.storedStop(agent.agentId, stopId);
    if (!stored) return undefined;
    if (record.interruptedMessageIds.length + record.failedMessageIds.length > 0) {
      // One transaction wrote the record with the agent and the messages. Another finalizer's
      // (it announces its own): this one reads the agent again.
      return stored.commitId === commitId ? { committed: true } : { committed: false, stale: true, missing: [], ended: [] };
    }
    // The record, then the agent: landed once the agent has left this stop (only a commit ends one).
    const current = await this.table.get(agent.agentId);
    if (current?.status === 'stopping' && current.stop?.stopId === stopId) return undefined;
    return { committed: true, ...(stored.commitId !== commitId && { adopted: stored.record }) };
  }

  private async commitOnce({ agent, stopId, lastStop, record, now, failures }: StopCommit, commitId: string): Promise<StopCommitted> {
    const leaseIds = Object.keys(agent.leases ?? {});
    const commitAgent = (committed: LastStop) => ({
      TableName: this.table.tableName,
      Key: { agentId: agent.agentId },
      UpdateExpression:
        'SET #status = :inactive, #leases = :empty, stoppedAt = :now, updatedAt = :now, lastStop = :lastStop, ' +
        'dueAt = :now, version = version + :one REMOVE #stop, leasesAtStop',
      ConditionExpression: [
        '#status = :stopping AND #stop.stopId = :stopId AND size(#leases) = :n',
        ...leaseIds.map((_, i) => `attribute_exists(#leases.#m${i})`),
      ].join(' AND '),
      ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#stop': 'stop', ...leaseNames(leaseIds) },
      ExpressionAttributeValues: {
        ':inactive': 'inactive',
        ':stopping': 'stopping',
        ':stopId': stopId,
        ':empty': {},
        ':now': committed.stoppedAt,
        ':lastStop': committed,
        ':one': 1,
        ':n': leaseIds.length,
      },
    });
    if (record.interruptedMessageIds.length + record.failedMessageIds.length === 0) {
      // No message to settle: two single-item writes instead of a transaction (half the units).
      // The record first: it is the decision, and a commit that finds one there (an earlier
      // attempt's, or a finalizer that died before its second write) adopts it. Then the agent,
      // on the same conditions as the transaction's.
      const adopted = await this.table.records.putStopRecord(record, now, commitId);
      try {
        await this.table.conditional(new UpdateCommand({ ...commitAgent(adopted ? lastStopOf(adopted) : lastStop), ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }), (current) => current?.lastStop?.stopId === stopId);
      } catch (err) {
        if (err instanceof AgentConditionFailed) return { committed: false, stale: true, missing: [], ended: [] };
        throw err;
      }
      return { committed: true, ...(adopted && { adopted }) };
    }
    const settled = [
      ...record.interruptedMessageIds.map((messageId) => ({ messageId, outcome: { status: 'interrupted', stopId } as const })),
      ...record.failedMessageIds.map((messageId) => ({ messageId, outcome: { status: 'failed', error: failures[messageId] ?? 'lease expired' } as const })),
    ];
    const reasons = await this.table.transact([
      { Update: commitAgent(lastStop) },
      { Put: this.table.records.stopRecordPut(record, now, commitId) },
      ...settled.map(({ messageId, outcome }) => this.table.records.finishMessage(agent.agentId, messageId, outcome, now, { exists: true, processing: outcome.status === 'failed' })),
    ]);
    if (!reasons) return { committed: true };
    const refused = settled.flatMap(({ messageId }, i) => (reasons[i + 2]?.code === 'ConditionalCheckFailed' ? [{ messageId, item: reasons[i + 2]!.item as unknown as MessageRecord | undefined }] : []));
    // Created after this commit's time (admitted on a clock ahead): the next attempt is stamped at its creation.
    const early = refused.flatMap((r) => (r.item && r.item.createdAt > now ? [r.item.createdAt] : []));
    return {
      committed: false,
      stale: reasons[0]?.code !== 'None' || reasons[1]?.code !== 'None' || refused.length === 0,
      missing: refused.filter((r) => !r.item).map((r) => r.messageId),
      ended: refused.flatMap((r) => (r.item && r.item.createdAt <= now ? [{ messageId: r.messageId, record: r.item }] : [])),
      ...(early.length > 0 && { notBefore: Math.max(...early) }),
    };
  }
}
