import { GetCommand, TransactWriteCommand, PutCommand, UpdateCommand, DeleteCommand, type DynamoDBDocumentClient, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { AgentConditionFailed } from '../../agents/ports.js';
import { TransactionConflict, cancellationReasons, conditionFailedItem } from './client.js';
import type { AgentConfigStore } from './agent-config-store.js';
import { type AgentState } from '../../agents/model.js';
import type { RecordsStore } from './records-store.js';

/**
 * When a lease may still be released by its completion or renewed by its heartbeat: while the
 * agent is active, or stopping gracefully before the stop's deadline. Never once a force stop's
 * write has landed (`forced`: a flag, so a completion whose clock read came before the force's
 * cannot slip in after it), nor past the deadline (the timeout is a promise).
 */
export const OPEN_TO_COMPLETIONS =
  '(#status = :active OR (#status = :stopping AND attribute_not_exists(#stop.forced) AND #stop.deadline > :now))';

/**
 * A stop's stopping write, sent again by the SDK after its first attempt landed, must not land a
 * second time: should that stop have ended and the agent been started again meanwhile, it would
 * put the agent back in a stop that is over. Its commit is the agent's `lastStop`.
 */
export const NOT_ENDED_ALREADY = '(attribute_not_exists(lastStop) OR lastStop.stopId <> :stopId)';

/** The token of a message's lease on the item (none: not leased). */
export function leaseToken(item: AgentState | null, messageId: string): string | undefined {
  return item?.leases?.[messageId]?.token;
}

/**
 * The Agents table (the agents' hot items) and what its stores share, given to each of them: the
 * clients, the consistent read, and the conditional write and transaction that answer a refusal
 * with the item as it is.
 */
export class AgentTable {
  constructor(
    readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    /** The records table: admission, completion and the stop commit write a record with the agent. */
    readonly records: RecordsStore,
    /** The agent's cold item: created, changed and deleted with the hot one, in one transaction. */
    readonly configs: AgentConfigStore,
  ) {}

  /** The agent's hot item, read consistently. */
  async get(agentId: string): Promise<AgentState | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.tableName, Key: { agentId }, ConsistentRead: true }));
    return out.Item as AgentState | undefined;
  }

  /**
   * One transaction; undefined when it committed, else why it was cancelled (one reason per item).
   * The SDK sends every attempt of one transaction with the same ClientRequestToken, so a first
   * attempt that landed (its answer lost) makes the retry a no-op that answers success: a
   * transaction needs no recognising of its own write.
   */
  async transact(items: NonNullable<TransactWriteCommandInput['TransactItems']>) {
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
  refused(reasons: NonNullable<Awaited<ReturnType<AgentTable['transact']>>>): never {
    const first = reasons[0];
    if (first?.code !== 'ConditionalCheckFailed') throw new TransactionConflict(reasons.map((r) => r.code).join(', '));
    throw new AgentConditionFailed((first.item as AgentState | undefined) ?? null);
  }

  /** A conditional write whose refusal is an answer: false. */
  async writeIfHeld(command: UpdateCommand): Promise<boolean> {
    try {
      await this.conditional(command);
      return true;
    } catch (err) {
      if (err instanceof AgentConditionFailed) return false;
      throw err;
    }
  }

  /**
   * A conditional write; a refusal is AgentConditionFailed with the item as it is. A write whose
   * first attempt landed and whose answer was lost is sent again by the SDK and refused by the
   * very condition it satisfied: `ours` recognises that from the item (our token, stopId or
   * write id in it), and the write is answered as landed, with the item as it now stands.
   */
  async conditional(
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
