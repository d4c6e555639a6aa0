import { randomUUID } from 'node:crypto';
import {
  BatchGetCommand,
  TransactWriteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { AgentConditionFailed, type AgentStore, type Key, type Page } from '../../agents/ports.js';
import { TransactionConflict, cancellationReasons, conditionFailedItem, leaseNames, untilProcessed } from './client.js';
import type { AgentConfigStore } from './agent-config-store.js';
import {
  type AgentConfig,
  type AgentState,
  type AgentStatus,
  type StoredAgent,
  lastStopOf,
  type LastStop,
  type Lease,
  type MessageRecord,
  type StopInfo,
  type StopRecord,
  type StoredLease,
  type MessageOutcome,
} from '../../agents/model.js';
import type { RecordsStore } from './records-store.js';
import { BY_STATUS_INDEX } from './tables.js';

/**
 * When a lease may still be released by its completion or renewed by its heartbeat: while the
 * agent is active, or stopping gracefully before the stop's deadline. Never once a force stop's
 * write has landed (`forced`: a flag, so a completion whose clock read came before the force's
 * cannot slip in after it), nor past the deadline (the timeout is a promise).
 */
const OPEN_TO_COMPLETIONS =
  '(#status = :active OR (#status = :stopping AND attribute_not_exists(#stop.forced) AND #stop.deadline > :now))';

/**
 * A stop's stopping write, sent again by the SDK after its first attempt landed, must not land a
 * second time: should that stop have ended and the agent been started again meanwhile, it would
 * put the agent back in a stop that is over. Its commit is the agent's `lastStop`.
 */
const NOT_ENDED_ALREADY = '(attribute_not_exists(lastStop) OR lastStop.stopId <> :stopId)';

/** The token of a message's lease on the item (none: not leased). */
function leaseToken(item: AgentState | null, messageId: string): string | undefined {
  const lease = item?.leases?.[messageId];
  return typeof lease === 'object' ? lease.token : undefined;
}

/**
 * The Agents table. Every write that depends on state carries its condition; a failed condition
 * comes back as AgentConditionFailed with the item as it was, so callers classify it without a
 * second read.
 */
export class AgentsStore implements AgentStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    /** The records table: admission, completion and the stop commit write a record with the agent. */
    private readonly records: RecordsStore,
    /** The agent's cold item: created, changed and deleted with the hot one, in one transaction. */
    readonly configs: AgentConfigStore,
  ) {}

  async get(agentId: string): Promise<AgentState | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.tableName, Key: { agentId }, ConsistentRead: true }));
    return out.Item as AgentState | undefined;
  }

  /** The whole agent: its state, and the configuration that state names (cached by version). */
  async getWhole(agentId: string): Promise<StoredAgent | undefined> {
    for (let attempt = 0; ; attempt++) {
      const state = await this.get(agentId);
      if (!state) return undefined;
      const config = await this.configs.get(agentId, state.configVersion);
      // Read between the two writes of a change (or the agent is going): read the state again.
      if (config?.configVersion === state.configVersion) return { ...config, ...state };
      if (attempt >= 2) throw new Error(`agent ${agentId}: its state and configuration disagree`);
    }
  }

  /** Both items of a new agent, in one transaction. */
  async create(state: AgentState, config: AgentConfig): Promise<void> {
    const reasons = await this.transact([
      {
        Put: {
          TableName: this.tableName,
          Item: state,
          ConditionExpression: 'attribute_not_exists(agentId)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      this.configs.put(config, state.createdAt),
    ]);
    if (reasons) this.refused(reasons);
    this.configs.keep(config);
  }

  /** Replace the agent's signing secret (any status): the `http` runtime signs with it from now on. */
  async setSigningSecret(agentId: string, secret: string, now: number): Promise<void> {
    const configVersion = randomUUID();
    const reasons = await this.transact([
      {
        Update: {
          TableName: this.tableName,
          Key: { agentId },
          UpdateExpression: 'SET configVersion = :cv, updatedAt = :now',
          ConditionExpression: 'attribute_exists(agentId)',
          ExpressionAttributeValues: { ':cv': configVersion, ':now': now },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      this.configs.update(agentId, configVersion, { signingSecret: secret }, []),
    ]);
    if (reasons) this.refused(reasons);
  }

  /** One page of agents: by status through the index (cost grows with the page), or all by Scan. */
  async list(status: AgentStatus | undefined, limit: number, startKey?: Key): Promise<Page<StoredAgent>> {
    let states: AgentState[];
    let lastKey: Key | undefined;
    if (!status) {
      const out = await this.db.send(new ScanCommand({ TableName: this.tableName, Limit: limit, ExclusiveStartKey: startKey }));
      states = (out.Items ?? []) as AgentState[];
      lastKey = out.LastEvaluatedKey;
    } else {
      const keys = await this.queryByStatus(status, { limit, startKey });
      states = (await this.getMany(keys.items.map((k) => k.agentId))).filter((a) => a.status === status);
      lastKey = keys.lastKey;
    }
    const configs = await this.configs.getMany(states.map(({ agentId, configVersion }) => ({ agentId, configVersion })));
    // An agent deleted between the two reads is not listed.
    const items = states.flatMap((state) => {
      const config = configs.get(state.agentId);
      return config ? [{ ...config, ...state }] : [];
    });
    return { items, lastKey };
  }

  /** Keys from the byStatus index, optionally only those due at or before `dueBy`. */
  async queryByStatus(
    status: AgentStatus,
    opts: { limit: number; startKey?: Key; dueBy?: number },
  ): Promise<Page<{ agentId: string; dueAt: number }>> {
    const due = opts.dueBy !== undefined;
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: BY_STATUS_INDEX,
        KeyConditionExpression: due ? '#status = :status AND dueAt <= :dueBy' : '#status = :status',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: due ? { ':status': status, ':dueBy': opts.dueBy } : { ':status': status },
        Limit: opts.limit,
        ExclusiveStartKey: opts.startKey,
      }),
    );
    return { items: (out.Items ?? []) as { agentId: string; dueAt: number }[], lastKey: out.LastEvaluatedKey };
  }

  /** Full items for ids, in the order given (BatchGet answers in any order and may leave keys unprocessed). */
  async getMany(ids: string[]): Promise<AgentState[]> {
    const found = new Map<string, AgentState>();
    await untilProcessed<Key>(
      ids.map((agentId) => ({ agentId })),
      async (pending) => {
        const out = await this.db.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: true } } }));
        for (const item of (out.Responses?.[this.tableName] ?? []) as AgentState[]) found.set(item.agentId, item);
        return (out.UnprocessedKeys?.[this.tableName]?.Keys ?? []) as Key[];
      },
    );
    return ids.flatMap((id) => found.get(id) ?? []);
  }

  /**
   * Change an agent: configuration fields (`set`, `remove`: names from the caller's allow-list,
   * the update schema, never raw client keys) with the hot item's version and `configVersion`, in
   * one transaction; the idle timeout is the hot item's own. `ifVersion` enforces If-Match;
   * `requireInactive` guards runtime and settings. Returns the agent as it now is.
   */
  async update(
    agentId: string,
    change: { set: Record<string, unknown>; remove: string[]; idleTimeoutMs?: number | null },
    opts: { ifVersion?: number; requireInactive: boolean; now: number },
  ): Promise<StoredAgent> {
    const writeId = randomUUID();
    const configChanges = Object.keys(change.set).length + change.remove.length > 0;
    const configVersion = randomUUID();
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':one': 1, ':now': opts.now, ':writeId': writeId };
    const sets = ['version = version + :one', 'updatedAt = :now', 'writeId = :writeId'];
    if (configChanges) {
      sets.push('configVersion = :cv');
      values[':cv'] = configVersion;
    }
    if (change.idleTimeoutMs !== undefined) {
      sets.push('idleTimeoutMs = :idle');
      values[':idle'] = change.idleTimeoutMs;
    }
    const conditions = ['attribute_exists(agentId)'];
    if (opts.ifVersion !== undefined) {
      conditions.push('version = :expected');
      values[':expected'] = opts.ifVersion;
    }
    if (opts.requireInactive) {
      conditions.push('#status = :inactive');
      names['#status'] = 'status';
      values[':inactive'] = 'inactive';
    }
    const hot = {
      TableName: this.tableName,
      Key: { agentId },
      UpdateExpression: `SET ${sets.join(', ')}`,
      ConditionExpression: conditions.join(' AND '),
      ...(Object.keys(names).length > 0 && { ExpressionAttributeNames: names }),
      ExpressionAttributeValues: values,
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    };
    const ours = (current: AgentState | null) => current?.writeId === writeId;
    if (!configChanges) {
      const out = await this.conditional(new UpdateCommand({ ...hot, ReturnValues: 'ALL_NEW' }), ours);
      const state = out.Attributes as AgentState;
      const config = await this.configs.get(agentId, state.configVersion);
      if (config) return { ...config, ...state };
    } else {
      const reasons = await this.transact([{ Update: hot }, this.configs.update(agentId, configVersion, change.set, change.remove)]);
      if (reasons) this.refused(reasons);
    }
    const agent = await this.getWhole(agentId);
    if (!agent) throw new AgentConditionFailed(null);
    return agent;
  }

  /** Delete both items, only while inactive (a running agent must be stopped first). */
  async delete(agentId: string): Promise<void> {
    const reasons = await this.transact([
      {
        Delete: {
          TableName: this.tableName,
          Key: { agentId },
          ConditionExpression: 'attribute_exists(agentId) AND #status = :inactive',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':inactive': 'inactive' },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      this.configs.delete(agentId),
    ]);
    this.configs.forget(agentId);
    if (reasons) this.refused(reasons);
  }

  /**
   * inactive -> active, in one conditional write. Conditioned on the version the caller read, so the
   * idle deadline it computed from that item's idleTimeoutMs is the one stored (a concurrent PATCH
   * makes this fail and the caller retries).
   */
  async start(agentId: string, now: number, expectedVersion: number, dueAt: number): Promise<AgentState> {
    const writeId = randomUUID();
    const out = await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { agentId },
        UpdateExpression:
          'SET #status = :active, startedAt = :now, lastActivityAt = :now, updatedAt = :now, #leases = :empty, ' +
          'version = version + :one, dueAt = :dueAt, writeId = :writeId REMOVE #stop',
        ConditionExpression: 'attribute_exists(agentId) AND #status = :inactive AND version = :expected',
        ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#stop': 'stop' },
        ExpressionAttributeValues: {
          ':active': 'active',
          ':inactive': 'inactive',
          ':now': now,
          ':empty': {},
          ':one': 1,
          ':dueAt': dueAt,
          ':expected': expectedVersion,
          ':writeId': writeId,
        },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      (current) => current?.writeId === writeId,
    );
    return out.Attributes as AgentState;
  }

  /** Move an agent's place in the byStatus index, only if it is still in `status` (and matches `match`; undefined: absent). */
  async moveDueAt(agentId: string, status: AgentStatus, dueAt: number, match: Record<string, number | undefined> = {}): Promise<void> {
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ':status': status, ':dueAt': dueAt };
    const conditions = ['#status = :status'];
    Object.entries(match).forEach(([field, value], i) => {
      names[`#c${i}`] = field;
      if (value === undefined) {
        conditions.push(`attribute_not_exists(#c${i})`);
        return;
      }
      values[`:c${i}`] = value;
      conditions.push(`#c${i} = :c${i}`);
    });
    await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { agentId },
        UpdateExpression: 'SET dueAt = :dueAt',
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  }

  /**
   * active -> stopping with a new stop, returning the new item; no admission succeeds after it.
   * The leases in flight at this moment are kept (`leasesAtStop`): those gone at the commit are
   * the messages the stop drained. `idle` (the reaper) also requires no message admitted since
   * it looked (its count of admissions; none: still absent); `ifNothingInFlight` requires an
   * empty lease map (the stop then carries its requester's close claim: see beginGracefulStop).
   */
  async beginStop(agentId: string, stop: StopInfo, now: number, opts: { idle?: { admissions?: number }; ifNothingInFlight?: boolean } = {}): Promise<AgentState> {
    const { ifNothingInFlight = false } = opts;
    const idle = opts.idle !== undefined;
    const seen = opts.idle?.admissions;
    const idleCondition = !idle ? '' : seen === undefined ? ' AND attribute_not_exists(admissions)' : ' AND admissions = :seen';
    const out = await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { agentId },
        UpdateExpression:
          'SET #status = :stopping, #stop = :stop, updatedAt = :now, dueAt = :deadline, version = version + :one, leasesAtStop = #leases',
        ConditionExpression:
          `attribute_exists(agentId) AND #status = :active AND ${NOT_ENDED_ALREADY}${idleCondition}` +
          (ifNothingInFlight ? ' AND size(#leases) = :none' : ''),
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
          ...(ifNothingInFlight && { ':none': 0 }),
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
    const out = await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
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
    await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
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
    await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
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
    await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { agentId },
        UpdateExpression: 'SET #stop.failure = :failure, updatedAt = :now',
        ConditionExpression: '#status = :stopping AND #stop.stopId = :stopId',
        ExpressionAttributeNames: { '#status': 'status', '#stop': 'stop' },
        ExpressionAttributeValues: { ':stopping': 'stopping', ':stopId': stopId, ':failure': failure, ':now': failure.at },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Message leases, records and the stop commit. Admission and completion are two single-item
  // writes each, ordered so that a message is `processing` only while it holds a lease (except
  // between admission's two writes); reclaims and the stop commit are one transaction each. Every
  // write carries the condition that closes its race.
  // ---------------------------------------------------------------------------------------------

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
    const out = await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
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
    const out = await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
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
   * Claim the closing of a stop (the runtime's `close`, i.e. the worker's `stop` call), so that
   * concurrent finalizers (the waiting request at the deadline, a refused heartbeat, the
   * workflow) make it once. Race finalize vs finalize: only for this stopId while stopping, and
   * only if no other claim is live (`until` passed: its holder died; the same token: ours).
   */
  async claimClose(agentId: string, stopId: string, claim: { token: string; until: number }, now: number): Promise<boolean> {
    try {
      await this.conditional(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { agentId },
          UpdateExpression: 'SET #stop.closing = :claim',
          ConditionExpression:
            '#status = :stopping AND #stop.stopId = :stopId AND ' +
            '(attribute_not_exists(#stop.closing) OR #stop.closing.#until < :now OR #stop.closing.#token = :token)',
          ExpressionAttributeNames: { '#status': 'status', '#stop': 'stop', '#until': 'until', '#token': 'token' },
          ExpressionAttributeValues: { ':claim': claim, ':stopping': 'stopping', ':stopId': stopId, ':now': now, ':token': claim.token },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof AgentConditionFailed) return false;
      throw err;
    }
  }

  /** Give a close claim back (the close failed): the next finalizer may try at once. */
  async releaseClose(agentId: string, stopId: string, token: string): Promise<void> {
    try {
      await this.conditional(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { agentId },
          UpdateExpression: 'REMOVE #stop.closing',
          ConditionExpression: '#status = :stopping AND #stop.stopId = :stopId AND #stop.closing.#token = :token',
          ExpressionAttributeNames: { '#status': 'status', '#stop': 'stop', '#token': 'token' },
          ExpressionAttributeValues: { ':stopping': 'stopping', ':stopId': stopId, ':token': token },
        }),
      );
    } catch (err) {
      if (!(err instanceof AgentConditionFailed)) throw err;
    }
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
    await this.conditional(
      new UpdateCommand({
        TableName: this.tableName,
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
      claim ? (current) => { const lease = current?.leases?.[a.messageId]; return typeof lease === 'object' && lease.claim === claim; } : undefined,
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
    lease: StoredLease,
    error: string,
    now: number,
  ): Promise<'failed' | { released: MessageOutcome['status'] | 'no record'; error?: string } | false> {
    const legacy = typeof lease === 'number';
    const release = {
      TableName: this.tableName,
      Key: { agentId },
      UpdateExpression: 'REMOVE #leases.#m',
      ConditionExpression: legacy
        ? '#status = :active AND #leases.#m = :expiresAt'
        : '#status = :active AND #leases.#m.#token = :token AND #leases.#m.expiresAt = :expiresAt',
      ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#m': messageId, ...(!legacy && { '#token': 'token' }) },
      ExpressionAttributeValues: legacy
        ? { ':active': 'active', ':expiresAt': lease }
        : { ':active': 'active', ':token': lease.token, ':expiresAt': lease.expiresAt },
    };
    const reasons = await this.transact([
      { Update: release },
      this.records.finishMessage(agentId, messageId, { status: 'failed', error }, now, { token: legacy ? undefined : lease.token }),
    ]);
    if (!reasons) return 'failed';
    // Only the record refused: it ended before its worker died (or there is none: an orphan lease).
    if (reasons[0]?.code !== 'None' || reasons[1]?.code !== 'ConditionalCheckFailed') return false;
    const ended = reasons[1].item as MessageRecord | undefined;
    if (ended?.status === 'processing') return false; // another admission's record
    try {
      await this.conditional(new UpdateCommand(release));
      return ended ? { released: ended.status, ...(ended.status === 'failed' && { error: ended.error }) } : { released: 'no record' };
    } catch (err) {
      if (err instanceof AgentConditionFailed) return false;
      throw err;
    }
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
   * Committed, or refused: `stale` (the agent moved on: re-read), or the messages whose record
   * write cannot be made (`missing`: no record; `ended`: it ended before, as its worker died).
   */
  async commitStop(
    agent: AgentState,
    stopId: string,
    lastStop: LastStop,
    record: StopRecord,
    now: number,
    /** Why each of `record.failedMessageIds` failed. */
    failures: Record<string, string>,
  ): Promise<{ committed: true; adopted?: StopRecord } | { committed: false; stale: boolean; missing: string[]; ended: { messageId: string; record: MessageRecord }[] }> {
    const leaseIds = Object.keys(agent.leases ?? {});
    const commitAgent = (committed: LastStop) => ({
      TableName: this.tableName,
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
      const adopted = await this.records.putStopRecord(record, now);
      try {
        await this.conditional(new UpdateCommand({ ...commitAgent(adopted ? lastStopOf(adopted) : lastStop), ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }), (current) => current?.lastStop?.stopId === stopId);
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
    const reasons = await this.transact([
      { Update: commitAgent(lastStop) },
      { Put: this.records.stopRecordPut(record, now) },
      ...settled.map(({ messageId, outcome }) => this.records.finishMessage(agent.agentId, messageId, outcome, now, { exists: true, processing: outcome.status === 'failed' })),
    ]);
    if (!reasons) return { committed: true };
    const refused = settled.flatMap(({ messageId }, i) => (reasons[i + 2]?.code === 'ConditionalCheckFailed' ? [{ messageId, item: reasons[i + 2]!.item }] : []));
    return {
      committed: false,
      stale: reasons[0]?.code !== 'None' || reasons[1]?.code !== 'None' || refused.length === 0,
      missing: refused.filter((r) => !r.item).map((r) => r.messageId),
      ended: refused.flatMap((r) => (r.item ? [{ messageId: r.messageId, record: r.item as unknown as MessageRecord }] : [])),
    };
  }

  /**
   * One transaction; undefined when it committed, else why it was cancelled (one reason per item).
   * The SDK sends every attempt of one transaction with the same ClientRequestToken, so a first
   * attempt that landed (its answer lost) makes the retry a no-op that answers success: a
   * transaction needs no recognising of its own write.
   */
  private async transact(items: NonNullable<TransactWriteCommandInput['TransactItems']>) {
    try {
      await this.db.send(new TransactWriteCommand({ TransactItems: items }));
      return undefined;
    } catch (err) {
      const reasons = cancellationReasons(err);
      if (!reasons) throw err;
      return reasons;
    }
  }

  /**
   * A cancelled transaction whose first item is the hot item: refused by its condition
   * (AgentConditionFailed with the item as it is), or by a concurrent transaction
   * (TransactionConflict: try again later).
   */
  private refused(reasons: NonNullable<Awaited<ReturnType<AgentsStore['transact']>>>): never {
    const first = reasons[0];
    if (first?.code !== 'ConditionalCheckFailed') throw new TransactionConflict(reasons.map((r) => r.code).join(', '));
    throw new AgentConditionFailed((first.item as AgentState | undefined) ?? null);
  }

  /**
   * A conditional write; a refusal is AgentConditionFailed with the item as it is. A write whose
   * first attempt landed and whose answer was lost is sent again by the SDK and refused by the
   * very condition it satisfied: `ours` recognises that from the item (our token, stopId or
   * write id in it), and the write is answered as landed, with the item as it now stands.
   */
  private async conditional(
    command: PutCommand | UpdateCommand | DeleteCommand,
    ours?: (current: AgentState | null, attempts: number) => boolean,
  ): Promise<{ Attributes?: unknown }> {
    try {
      // One union-typed send: the three commands share the document client's middleware stack.
      return await this.db.send(command as UpdateCommand);
    } catch (err) {
      const current = conditionFailedItem<AgentState>(err);
      if (current === undefined) throw err;
      const attempts = (err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
      if (ours?.(current, attempts)) return { Attributes: current ?? undefined };
      throw new AgentConditionFailed(current);
    }
  }
}
