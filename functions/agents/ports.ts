/** Secondary ports: what the domain needs from the outside, with an AWS and a local adapter each. */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Config } from './config.js';
import type { FleetCounts, FleetMember, FleetOperation } from './fleet-model.js';
import type {
  AgentCardSummary,
  AgentConfig,
  AgentState,
  AgentStatus,
  ApiKeySource,
  LastStop,
  Lease,
  MessageOutcome,
  MessageRecord,
  Runtime,
  StopInfo,
  StopRecord,
  StoredAgent,
} from './model.js';

/** Everything the domain needs, wired once: from the environment in Lambda, by local/ on one machine. */
export interface Deps {
  config: Config;
  /** The agents' state (hot items): every transition, lease and stop commit, each with its race guard. */
  agents: AgentStore;
  /** The agents' configurations (cold items), cached by version. */
  configs: ConfigStore;
  /** Message and stop records. */
  records: RecordStore;
  /** Fleet stop operations. */
  fleet: FleetStore;
  workflow: StopWorkflow;
  /** Starts the fleet stop workflow of one operation. */
  fleetWorkflow: FleetWorkflow;
  events: EventPublisher;
  runtimes: RuntimeRegistry;
  /** The llm runtime's keys, each bound by the operator to the base URL it may be sent to. */
  modelKeys: ModelKeys;
  /** Hands jobs to the worker: asynchronous messages, forced stops' closes (SQS deployed; an in-process queue locally). */
  queue: MessageQueue;
  /**
   * Fires when this process is going away (locally: the server closing). Running work stops
   * heartbeating and writes nothing, as a crashed process would; its leases expire and are settled.
   */
  shutdown: AbortSignal;
  log: Logger;
  now: () => number;
  /** A new random signing secret for an agent's `http` runtime. */
  newSigningSecret: () => string;
  /** What the product promises, measured (EMF in Lambda; served at GET /metrics locally). */
  metrics: Metrics;
  /** The correlation id of the invocation running now (carried into workflows, jobs and events). */
  correlationId(): string | undefined;
}

/** A store's page key (DynamoDB's LastEvaluatedKey) and one page of items. */
export type Key = Record<string, unknown>;
export interface Page<T> {
  items: T[];
  lastKey?: Key;
}

/**
 * An agent's state store, in three parts along what it does: the catalog, the stops, the
 * leases. Every write that depends on state carries the condition that closes its race and,
 * refused, throws AgentConditionFailed with the state as it stands, so a caller tells why without
 * a second read. A write whose first attempt landed (its answer lost) and whose retry its own
 * condition refuses is answered as landed.
 */
export type AgentStore = AgentCatalogStore & AgentStopStore & AgentLeaseStore;

/** The agents as a catalog: read, list, count, create, change, delete, start, and the reaper's place in the index. */
export interface AgentCatalogStore {
  get(agentId: string): Promise<AgentState | undefined>;
  /** The state with the configuration it names. */
  getWhole(agentId: string): Promise<StoredAgent | undefined>;
  getMany(ids: string[]): Promise<AgentState[]>;
  list(status: AgentStatus | undefined, limit: number, startKey?: Key): Promise<Page<StoredAgent>>;
  /** How many agents have this status (the byStatus index, keys only). */
  count(status: AgentStatus): Promise<number>;
  /** By status, oldest due first; `dueBy`: only those due by then. */
  queryByStatus(status: AgentStatus, opts: { limit: number; startKey?: Key; dueBy?: number }): Promise<Page<{ agentId: string; dueAt: number }>>;
  create(state: AgentState, config: AgentConfig): Promise<void>;
  update(
    agentId: string,
    change: { set: Record<string, unknown>; remove: string[]; idleTimeoutMs?: number | null },
    opts: { ifVersion?: number; requireInactive: boolean; now: number },
  ): Promise<StoredAgent>;
  delete(agentId: string): Promise<void>;
  setSigningSecret(agentId: string, secret: string, now: number): Promise<void>;
  start(agentId: string, now: number, expectedVersion: number, dueAt: number): Promise<AgentState>;
  moveDueAt(agentId: string, status: AgentStatus, dueAt: number, match?: Record<string, number | undefined>): Promise<void>;
}

/** Stop transitions: begin, force, roll back, record a workflow's failure, commit. */
export interface AgentStopStore {
  beginStop(agentId: string, stop: StopInfo, now: number, opts?: { idle?: { admissions?: number } }): Promise<AgentState>;
  beginForcedStop(agentId: string, stop: StopInfo, now: number): Promise<AgentState>;
  forceStopInProgress(agentId: string, stopId: string, now: number): Promise<void>;
  rollbackStop(agentId: string, stopId: string, now: number, dueAt: number): Promise<void>;
  recordStopFailure(agentId: string, stopId: string, failure: NonNullable<StopInfo['failure']>): Promise<void>;
  /**
   * The commit point of every stop, on the state read; `failures`: why each failed message failed.
   * A commit that got no answer and landed (whatever the agent did since) answers committed.
   */
  commitStop(commit: StopCommit): Promise<StopCommitted>;
}

/** Message leases: admit, renew (heartbeat or a worker's claim), release, reclaim a dead worker's. */
export interface AgentLeaseStore {
  admitLease(a: { agentId: string; messageId: string; lease: Lease; maxInFlight: number; now: number; moveDueAt: boolean; configVersion: string; notStoppedAfter: number }): Promise<AgentState>;
  renewLease(a: { agentId: string; messageId: string; token: string; expiresAt: number; now: number; claim?: string }): Promise<void>;
  releaseLease(a: { agentId: string; messageId: string; token: string; now: number }): Promise<AgentState>;
  reclaimLease(agentId: string, messageId: string, lease: Lease, error: string, now: number): Promise<'failed' | { released: MessageOutcome['status'] | 'no record'; error?: string } | false>;
}

/** What a stop's commit writes: the agent as read, its `lastStop`, its record (at `now`). */
export interface StopCommit {
  agent: AgentState;
  stopId: string;
  lastStop: LastStop;
  record: StopRecord;
  now: number;
  failures: Record<string, string>;
}

/**
 * Committed (`adopted`: an earlier attempt's record was there, and stands), or refused: `stale`
 * (the agent moved on: read again), or the messages whose record cannot be written (`missing`:
 * no record; `ended`: it ended before, as its worker died).
 */
export type StopCommitted =
  | { committed: true; adopted?: StopRecord }
  | {
      committed: false;
      stale: boolean;
      missing: string[];
      ended: { messageId: string; record: MessageRecord }[];
      /** A record was created after the commit's time (on a clock ahead): the commit is stamped no earlier than this. */
      notBefore?: number;
    };

/** Agents' configurations, immutable under their version: kept by the process that read them. */
export interface ConfigStore {
  /** What this process last read of it (any version). */
  cached(agentId: string): AgentConfig | undefined;
  /** This version (or, when there is none of it, what there is). */
  get(agentId: string, configVersion: string): Promise<AgentConfig | undefined>;
  read(agentId: string, consistent: boolean): Promise<AgentConfig | undefined>;
}

/** Message and stop records under their agent, and their deletion with it. */
export type RecordStore = MessageRecordStore & StopRecordStore & { deleteAll(agentId: string, deletedAt: number): Promise<number> };

/** Message records: admission's first write, completion's, the settling of a record never admitted. */
export interface MessageRecordStore {
  getMessage(agentId: string, messageId: string): Promise<MessageRecord | undefined>;
  listMessages(agentId: string, limit: number, startKey?: Key): Promise<Page<MessageRecord>>;
  /** Admission's first write; a record already there is returned (a repeated messageId). */
  createMessageRecord(record: MessageRecord, token: string, now: number): Promise<MessageRecord | undefined>;
  /** A refused admission's record goes; false when it had ended instead. */
  discardMessageRecord(agentId: string, messageId: string, token: string): Promise<boolean>;
  settleUnleased(agentId: string, messageId: string, createdAt: number, error: string, now: number): Promise<boolean>;
  /** Completion's first write; false when refused (a stop or a reclaim ended the message). */
  recordOutcome(a: { agentId: string; messageId: string; token: string; outcome: Extract<MessageOutcome, { status: 'completed' | 'failed' }>; now: number }): Promise<boolean>;
}

/** Stop records (written by a stop's commit, through the agent store). */
export interface StopRecordStore {
  getStop(agentId: string, stopId: string): Promise<StopRecord | undefined>;
  listStops(agentId: string, limit: number, startKey?: Key): Promise<Page<StopRecord>>;
}

/** Fleet stop operations and their members. */
export interface FleetStore {
  create(op: FleetOperation, keyHash?: string): Promise<{ created: true } | { created: false; existing?: FleetOperation }>;
  remove(op: FleetOperation, keyHash?: string): Promise<boolean>;
  get(operationId: string): Promise<FleetOperation | undefined>;
  listRunning(): Promise<{ operationId: string; updatedAt: number }[]>;
  saveProgress(operationId: string, progress: Pick<FleetOperation, 'selection' | 'counts' | 'failures'>, now: number): Promise<void>;
  end(operationId: string, end: Pick<FleetOperation, 'counts' | 'failures'> & { status: 'completed' | 'failed'; failure?: FleetOperation['failure'] }, now: number): Promise<boolean>;
  addMembers(operationId: string, agentIds: string[], now: number): Promise<string[]>;
  putMembers(operationId: string, members: FleetMember[], now: number): Promise<void>;
  members(operationId: string): Promise<FleetMember[]>;
}

/** A conditional write on an agent failed; `current` is the state as it was (null: none). */
export class AgentConditionFailed extends Error {
  constructor(readonly current: AgentState | null) {
    super('agent condition failed');
  }
}

export interface RuntimeMessage {
  messageId: string;
  text: string;
  metadata?: Record<string, unknown>;
  /** When the work must be done by (epoch ms): its time limit; past it the signal fires. */
  deadline: number;
}

/** What `close` is told: the stop that ends the agent's run, and how it ended. */
export interface RuntimeStop {
  stopId: string;
  outcome: 'drained' | 'timed_out' | 'forced';
  /** The messages this stop cuts (still running at a timeout or a force): their work is cancelled before the runtime is closed. */
  interrupted: string[];
}

/**
 * What an agent runs on. `signal` fires when the message's lease is gone (force stop, graceful
 * timeout, the stop's deadline passed): the runtime should stop its work then; the worker stops
 * waiting on it either way. `close` is told at finalize, so the runtime can drop its connections.
 */
export interface AgentRuntime {
  process(agent: AgentConfig, message: RuntimeMessage, signal: AbortSignal): Promise<{ reply: string }>;
  /**
   * Save state and close connections. Idempotent by `stop.stopId`: it may be told more than once
   * for one stop (finalizers racing at a deadline, a queue's redelivery), and acts once. A failure
   * fails a graceful finalize (the workflow retries it).
   */
  close(agent: AgentConfig, stop: RuntimeStop): Promise<{ stateSaved: boolean } | void>;
  /**
   * Whether the agent can be reached as configured, asked at create, PATCH and start (an a2a
   * agent's Agent Card): what it learnt, or RuntimeRefused with the field and a sentence.
   */
  check?(runtime: Runtime): Promise<{ agentCard?: AgentCardSummary }>;
}

/** The runtime as configured cannot be used: which field, and why, in a sentence a person can act on. */
export class RuntimeRefused extends Error {
  constructor(
    readonly field: string,
    readonly why: string,
  ) {
    super(`Field "${field}" ${why}`);
  }
}

/** One admitted asynchronous message, as handed to a worker: its ids and its admission's token. */
export interface MessageJob {
  kind?: 'message';
  agentId: string;
  messageId: string;
  token: string;
  /** The sending request's, so the worker's logs follow it. */
  correlationId?: string;
}

/** A committed force stop's runtime to tell (its cut work's cancels, then `close`), on the configuration it ran. */
export interface CloseJob {
  kind: 'close';
  agentId: string;
  stopId: string;
  configVersion: string;
  interrupted: string[];
  correlationId?: string;
}

/** A durable hand-off to the message worker; delivery is at least once (a message's token fences repeats; a close is idempotent by stopId). */
export interface MessageQueue {
  send(job: MessageJob | CloseJob): Promise<void>;
}

/**
 * The model keys the operator bound, each to the one base URL it may be sent to. Checked when an
 * agent is created or changed, and again before each call that would send the key.
 */
export interface ModelKeys {
  /** The key to send to `baseUrl`, or null for a keyless endpoint; ModelKeyUnavailable when the named key may not go there. */
  keyFor(source: ApiKeySource | undefined, baseUrl: string): Promise<string | null>;
}

/** One sentence whether the key is unset, unbound or bound elsewhere: the answer is no oracle of the operator's key names. */
export class ModelKeyUnavailable extends Error {
  constructor() {
    super('the model key is not available for this base URL');
  }
}

export type RuntimeRegistry = Record<Runtime['type'], AgentRuntime>;
export const runtimeFor = (runtimes: RuntimeRegistry, agent: Pick<AgentConfig, 'runtime'>): AgentRuntime => runtimes[agent.runtime.type];

export interface StopWorkflowInput {
  agentId: string;
  stopId: string;
  /**
   * The stop's own (the request that began it; its stopId for a stop that has none): every start
   * of one stop's execution must carry the same input, or Step Functions refuses to join it.
   */
  correlationId: string;
}

/**
 * Starts the drain workflow of one stop, named by its stopId. Idempotent while it runs: starting
 * it again joins it. Once an execution of that name has ended, a start is refused with
 * WorkflowEnded (Step Functions keeps a closed execution's name for 90 days).
 */
export interface StopWorkflow {
  start(input: StopWorkflowInput): Promise<void>;
}

export interface FleetWorkflowInput {
  operationId: string;
  /** The operation's own, fixed for the same reason as a stop's. */
  correlationId: string;
  /** A resumed operation's execution: the operation's `updatedAt` when it was found stalled (so racing resumers join one). */
  resumedAt?: number;
}

/** An execution's name: the operationId, and for a resumed one the moment it was found stalled. */
export const fleetExecutionName = (i: FleetWorkflowInput) => (i.resumedAt === undefined ? i.operationId : `${i.operationId}-${i.resumedAt}`);

/** Starts the workflow of one fleet stop; the same rules as StopWorkflow, by execution name. */
export interface FleetWorkflow {
  start(input: FleetWorkflowInput): Promise<void>;
}

/** An execution of this name ran and ended: it cannot be started again (its name is spent). */
export class WorkflowEnded extends Error {
  constructor(readonly executionName: string) {
    super(`an execution named ${executionName} has already ended`);
  }
}

export type LifecycleEventType =
  | 'Agent Started'
  | 'Agent Stopping'
  | 'Agent Stopped'
  | 'Message Completed'
  | 'Message Failed'
  | 'Message Interrupted'
  | 'Fleet Stop Completed';

export interface LifecycleEvent {
  type: LifecycleEventType;
  detail: {
    /** Every event but a fleet's names its agent. */
    agentId?: string;
    operationId?: string;
    status?: string;
    counts?: FleetCounts;
    messageId?: string;
    error?: string;
    stopId?: string;
    outcome?: string;
    reason?: string;
    interrupted?: number;
    /** The request (or stop) that caused it, as its log lines carry it. */
    correlationId?: string;
  };
}

/**
 * The service's metrics: each name with its dimension set (`dims`), and optionally a finer set
 * for breakdowns (`finer`, e.g. stops by outcome, and by outcome and reason).
 */
export type MetricName =
  | 'StopsEnded'
  | 'DrainDuration'
  | 'DeadlineToCommit'
  | 'MessagesEnded'
  | 'HeartbeatsLost'
  | 'AdmissionsRefused'
  | 'RuntimeLatency'
  | 'RuntimeFailures'
  | 'FleetStopsEnded'
  | 'FleetStopAgents'
  | 'ReaperHeals'
  | 'StopRecoveries'
  | 'EventPublishFailures';

export type MetricUnit = 'Count' | 'Milliseconds';

export interface Metrics {
  add(name: MetricName, value: number, unit: MetricUnit, dims?: Record<string, string>, finer?: Record<string, string>): void;
}

/** Publishes lifecycle events; runtimes listen for `Agent Stopped` to close their connections. */
export interface EventPublisher {
  publish(event: LifecycleEvent): Promise<void>;
}
