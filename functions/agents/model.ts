// zod/mini: the same validation as zod, as functions instead of methods, so a function's cold
// start pays for the schemas it builds and not for every method of every schema (docs/ARCHITECTURE.md: Cold starts).
import * as z from 'zod/mini';
import { monotonicFactory } from 'ulid';

export const AGENT_STATUSES = ['inactive', 'active', 'stopping'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];
export type StopOutcome = 'drained' | 'timed_out' | 'forced';
/** Who asked: a user's stop, the idle reaper, or a fleet stop (`operationId` names it). */
export type StopReason = 'api' | 'idle' | 'fleet';
export type MessageStatus = 'processing' | 'completed' | 'failed' | 'interrupted';

/** dueAt for agents the reaper must never pick (idle timeout disabled). */
export const NEVER = Number.MAX_SAFE_INTEGER;

export const MAX_STOP_TIMEOUT_MS = 86_400_000;
export const DEFAULT_STOP_TIMEOUT_MS = 30_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
/** Echo's simulated work: up to the worker's 15 minutes for asynchronous messages. */
export const MAX_ECHO_DELAY_MS = 900_000;
/** What a synchronous message may take: it runs inside the API request (API Gateway allows 30 s). */
export const MAX_SYNC_WORK_MS = 25_000;
/**
 * The largest reply a message keeps: its record (text and metadata up to the request body's
 * 128 KiB, the reply, the ids) must stay under DynamoDB's 400 KB item size. A larger one fails the
 * message, saying so.
 */
export const MAX_REPLY_BYTES = 256 * 1024;

/**
 * Builds a schema, telling the bundler the call has no side effects: a function's bundle keeps
 * (and its cold start builds) only the schemas its own route uses, not every route's.
 */
/* @__NO_SIDE_EFFECTS__ */
export function schema<T>(build: () => T): T {
  return build();
}

/**
 * Agent ids are UUIDs in their 8-4-4-4-12 hexadecimal form, whatever their version and variant
 * digits (the document's `format: uuid`): one that names no agent is a 404, never a 400 over a
 * digit its holder cannot change. Case-insensitive: stored and compared in lower case.
 */
export const uuidSchema = schema(() => z.guid({ message: 'must be a UUID' }).check(z.overwrite((id) => id.toLowerCase())));

/** What is wrong with a string that is not a UUID. */
export const UUID_PROBLEM = 'must be a UUID (8-4-4-4-12 hexadecimal digits)';

export const echoRuntimeSchema = schema(() =>
  z.strictObject({
    type: z.literal('echo'),
    delayMs: z.optional(z.int().check(z.minimum(0), z.maximum(MAX_ECHO_DELAY_MS))),
  }),
);
/**
 * An agent that runs anywhere: the service POSTs each message (and the lifecycle calls `cancel`
 * and `stop`) to `url`, signed with the agent's signing secret (docs/RUNTIMES.md: Bring your own agent).
 */
export const httpRuntimeSchema = schema(() =>
  z.strictObject({
    type: z.literal('http'),
    url: z
      .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
      .check(
        z.maxLength(2048),
        z.refine((u) => !hasCredentials(u), { message: 'must not carry credentials (the requests are signed instead)' }),
      ),
    timeoutMs: z.optional(z.int().check(z.minimum(100), z.maximum(MAX_ECHO_DELAY_MS))),
  }),
);

/** A URL's user or password; false for a string that is not a URL (the URL check has said so already: refinements run on). */
function hasCredentials(u: string): boolean {
  const url = URL.parse(u);
  return url !== null && (url.username !== '' || url.password !== '');
}

/** A credential named, never given: an environment variable of the service, or a Secrets Manager secret under `prefix`. */
const namedCredentialSchema = (env: { pattern: RegExp; message: string }, prefix: string) =>
  schema(() =>
    z.union([
      z.strictObject({ env: z.string().check(z.regex(env.pattern, { message: env.message })) }),
      z.strictObject({
        secretArn: z
          .string()
          .check(z.regex(new RegExp(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\\d{12}:secret:${prefix}\\/[A-Za-z0-9/_+=.@-]+$`), { message: `must be the ARN of a Secrets Manager secret named ${prefix}/...` })),
      }),
    ]),
  );

/** Where an llm agent's key comes from: never given, only named. */
export const apiKeySourceSchema = namedCredentialSchema({ pattern: /^LLM_API_KEY(_[A-Z0-9_]{1,64})?$/, message: 'must name an environment variable LLM_API_KEY or LLM_API_KEY_<NAME>' }, 'agents-llm');
export type ApiKeySource = z.infer<typeof apiKeySourceSchema>;

/**
 * An agent that thinks: any OpenAI-compatible chat-completions endpoint. Its conversation (the
 * last `memoryTurns` turns) is its state: read at each message, written at each reply, saved at
 * stop. The key is named, never given (an environment variable LLM_API_KEY[_NAME] of the service,
 * or a Secrets Manager secret named agents-llm/...), and goes only to the base URL the operator
 * bound it to (functions/adapters/runtimes/model-keys.ts). A keyless endpoint names none.
 */
export const llmRuntimeSchema = schema(() =>
  z.strictObject({
    type: z.literal('llm'),
    baseUrl: z
      .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
      .check(z.maxLength(2048), z.refine((u) => !hasCredentials(u), { message: 'must not carry credentials (name a key in "apiKey" instead)' })),
    model: z.string().check(z.minLength(1), z.maxLength(256)),
    system: z.optional(z.string().check(z.maxLength(16_384))),
    apiKey: z.optional(apiKeySourceSchema),
    memoryTurns: z.optional(z.int().check(z.minimum(0), z.maximum(100))),
    timeoutMs: z.optional(z.int().check(z.minimum(1000), z.maximum(MAX_ECHO_DELAY_MS))),
  }),
);
/** Where an a2a agent's token comes from: named, never given, bound by the operator to the agent's URL. */
export const a2aTokenSourceSchema = namedCredentialSchema({ pattern: /^A2A_TOKEN_[A-Z0-9_]{1,64}$/, message: 'must name an environment variable A2A_TOKEN_<NAME>' }, 'agents-a2a');
export type A2ATokenSource = z.infer<typeof a2aTokenSourceSchema>;

/**
 * Any agent that speaks A2A 1.0 over JSON-RPC (docs/RUNTIMES.md): its Agent Card is read from
 * `url` at create, PATCH and start; each message is a task in the agent's one conversation. The
 * token, if the agent wants one, is named (`auth.token`) and sent only to the URL the operator
 * bound it to: as `Authorization: Bearer` or, with `auth.header`, in that header.
 */
export const a2aRuntimeSchema = schema(() =>
  z.strictObject({
    type: z.literal('a2a'),
    url: z
      .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
      .check(z.maxLength(2048), z.refine((u) => !hasCredentials(u), { message: 'must not carry credentials (name a token in "auth" instead)' })),
    auth: z.optional(
      z.strictObject({
        token: a2aTokenSourceSchema,
        header: z.optional(z.string().check(z.regex(/^[A-Za-z0-9-]{1,64}$/, { message: 'must be an HTTP header name' }))),
      }),
    ),
    timeoutMs: z.optional(z.int().check(z.minimum(1000), z.maximum(MAX_ECHO_DELAY_MS))),
  }),
);

export const runtimeSchema = schema(() => z.discriminatedUnion('type', [echoRuntimeSchema, httpRuntimeSchema, llmRuntimeSchema, a2aRuntimeSchema]));
export type Runtime = z.infer<typeof runtimeSchema>;

const settingsSchema = schema(() =>
  z
    .record(z.string(), z.unknown())
    .check(z.refine((s) => JSON.stringify(s).length <= 16_384, { message: 'must be at most 16384 bytes of JSON' })),
);

const nameSchema = schema(() => z.string().check(z.trim(), z.minLength(1, { message: 'must not be empty' }), z.maxLength(128)));
const descriptionSchema = schema(() => z.string().check(z.maxLength(1024)));
const idleTimeoutSchema = schema(() => z.nullable(z.int().check(z.minimum(1000), z.maximum(7 * 86_400_000))));

export const createAgentSchema = schema(() =>
  z.strictObject({
    agentId: z.optional(uuidSchema),
    name: nameSchema,
    description: z.optional(descriptionSchema),
    settings: z.optional(settingsSchema),
    runtime: z.optional(runtimeSchema),
    idleTimeoutMs: z.optional(idleTimeoutSchema),
  }),
);
export type CreateAgentInput = z.infer<typeof createAgentSchema>;

export const updateAgentSchema = schema(() =>
  z
    .strictObject({
      name: z.optional(nameSchema),
      description: z.optional(z.nullable(descriptionSchema)),
      settings: z.optional(settingsSchema),
      runtime: z.optional(runtimeSchema),
      idleTimeoutMs: z.optional(idleTimeoutSchema),
    })
    .check(z.refine((u) => Object.keys(u).length > 0, { message: 'must name at least one field to change' })),
);
export type UpdateAgentInput = z.infer<typeof updateAgentSchema>;

export const stopAgentSchema = schema(() =>
  z.strictObject({
    graceful: z._default(z.boolean(), true),
    timeout: z._default(z.int().check(z.minimum(0), z.maximum(MAX_STOP_TIMEOUT_MS)), DEFAULT_STOP_TIMEOUT_MS),
  }),
);
export type StopAgentInput = z.infer<typeof stopAgentSchema>;

export const messageIdSchema = schema(() => z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'must be 1 to 64 letters, digits, "_" or "-"' })));

export const sendMessageSchema = schema(() =>
  z.strictObject({
    text: z.string().check(z.minLength(1, { message: 'must not be empty' }), z.maxLength(65_536)),
    messageId: z.optional(messageIdSchema),
    metadata: z.optional(z.record(z.string(), z.unknown()).check(z.refine((m) => JSON.stringify(m).length <= 8_192, { message: 'must be at most 8192 bytes of JSON' }))),
  }),
);
export type SendMessageInput = z.infer<typeof sendMessageSchema>;

/** A page size from the query string: a whole number 1 to 100. */
const pageLimit = (fallback: number) => z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(100)), fallback);

/** A page cursor as handed out: base64url (decoded and checked against its query by cursor.ts). */
const cursorSchema = schema(() =>
  z.string().check(z.maxLength(2048), z.regex(/^[A-Za-z0-9_-]+$/, { message: 'is not valid: pass the nextCursor of a previous page unchanged' })),
);

/**
 * `If-Match` on PATCH: the ETag of the version the change is based on (`"3"`, `W/"3"`, `3`, or a
 * GET's `"3-<hash>"`: the version is what is compared), or `*`. Parsed by the handler; the
 * document states the same pattern.
 */
export const IF_MATCH_PATTERN = /^\s*(?:\*|(?:W\/)?"?(\d{1,15})(?:-[A-Za-z0-9_-]{1,64})?"?)\s*$/;

/** Agents per page: 100 by default (the most a page holds); the last page has `nextCursor: null`. */
export const listQuerySchema = schema(() =>
  z.strictObject({
    status: z.optional(z.enum(AGENT_STATUSES)),
    limit: pageLimit(100),
    cursor: z.optional(cursorSchema),
  }),
);
export const pageQuerySchema = schema(() =>
  z.strictObject({
    limit: pageLimit(25),
    cursor: z.optional(cursorSchema),
  }),
);

export interface StopInfo {
  stopId: string;
  requestedAt: number;
  deadline: number;
  graceful: boolean;
  timeoutMs: number;
  reason: StopReason;
  /** The fleet stop this stop is part of. */
  operationId?: string;
  /** The request that began it (its workflow's executions all carry it). */
  correlationId?: string;
  /** Set by a force stop: admission is closed and no completion or heartbeat lands any more. */
  forced?: boolean;
  /** Set when the drain workflow failed past its retries; the API answers 500 for this stop. */
  failure?: { error: string; cause: string; at: number };
}

/** The input of a stop's workflow: the same for every start of one stop (so Step Functions joins it). */
export const stopWorkflowInput = (agentId: string, stop: Pick<StopInfo, 'stopId' | 'correlationId'>) => ({
  agentId,
  stopId: stop.stopId,
  correlationId: stopCorrelationId(stop),
});

/** The id a stop's workflow, events and log lines are followed by: its request's (its stopId if it has none). */
export const stopCorrelationId = (stop: Pick<StopInfo, 'stopId' | 'correlationId'>): string => stop.correlationId ?? stop.stopId;

/** What closing the runtime for a stop came to: the outcome it was told, whether it saved state. */
export interface RuntimeClosed {
  outcome: StopOutcome;
  stateSaved: boolean;
  /** Set when the runtime could not be told by the deadline and grace; the stop ended without it. */
  closeError?: string;
}

export interface LastStop {
  stopId: string;
  outcome: StopOutcome;
  reason: StopReason;
  operationId?: string;
  requestedAt: number;
  stoppedAt: number;
  interrupted: number;
}

/**
 * A message's hold on its agent. The token is new for every admission, so a completion, a
 * heartbeat or a reclaim acts only on the admission that wrote it, never on a later admission that
 * reuses the messageId (a retry after a stop, or an agent re-created under the same id).
 */
export interface Lease {
  token: string;
  expiresAt: number;
  /** Set while an asynchronous message waits for a worker; the worker that claims it removes it. */
  queued?: true;
  /** The claiming delivery's id (deliveries of one job share its token; a retried claim knows its own). */
  claim?: string;
}

export const leaseExpiry = (lease: Lease): number => lease.expiresAt;

/**
 * The agent's hot item: what every message, heartbeat and stop conditions on and writes. It holds
 * no configuration, so its writes cost the same (one WCU) whatever the agent is configured with.
 */
export interface AgentState {
  agentId: string;
  status: AgentStatus;
  /** The agent's version (its ETag): every transition and every change counts. */
  version: number;
  /** The version of the agent's configuration (its cold item) that goes with this state: a cached one is used only while it matches. */
  configVersion: string;
  idleTimeoutMs: number | null;
  /** messageId -> the lease of its admission. */
  leases: Record<string, Lease>;
  createdAt: number;
  updatedAt: number;
  startedAt?: number;
  stoppedAt?: number;
  lastActivityAt?: number;
  /** How many messages were ever admitted: the fence of every decision taken on "no message since". */
  admissions?: number;
  stop?: StopInfo;
  lastStop?: LastStop;
  /** While stopping: the leases in flight when the stop began (those gone at its commit drained). */
  leasesAtStop?: Record<string, Lease>;
  dueAt: number;
  /** The id of the last write that must know itself again if its answer is lost (create, update, start, rollback). */
  writeId?: string;
}

/**
 * The agent's configuration, its cold item: read at admission (or found cached, for the
 * `configVersion` the hot item names) and by the views. Runtime and settings change only while
 * the agent is inactive; name and description at any time.
 */
export interface AgentConfig {
  agentId: string;
  name: string;
  description?: string;
  settings: Record<string, unknown>;
  runtime: Runtime;
  /** An a2a agent's Agent Card as read when its runtime was set (create or PATCH). */
  agentCard?: AgentCardSummary;
  /** Signs the `http` runtime's requests. Shown once (create, rotate); never in a response otherwise, a log line or an event. */
  signingSecret?: string;
  configVersion: string;
}

/** What the service shows of an a2a agent's Agent Card. */
export interface AgentCardSummary {
  name: string;
  version: string;
  description?: string;
  skills: { id: string; name: string; description?: string }[];
  /** The JSON-RPC endpoint the card names, where messages go. */
  endpoint: string;
  protocolVersion: string;
}

/** The whole agent: its state and its configuration. */
export type StoredAgent = AgentState & AgentConfig;

/** The fields of the configuration a change may set (and the view shows). */
export const CONFIG_FIELDS = ['name', 'description', 'settings', 'runtime'] as const;

/** A stop in progress as the API shows it: without the fencing flag (internal state). */
export type StopShown = Omit<StopInfo, 'forced'>;

/** The agent as the API returns it. */
export type Agent = Omit<StoredAgent, 'leases' | 'dueAt' | 'signingSecret' | 'stop' | 'writeId' | 'configVersion' | 'leasesAtStop' | 'admissions'> & {
  inFlight: number;
  stop?: StopShown;
};

const shownStop = ({ forced: _fence, ...shown }: StopInfo): StopShown => shown;

/** A new id that sorts by time (stops, messages, fleet stops), monotonic within a process. */
export const newId = monotonicFactory();

export const liveLeaseIds = (agent: Pick<AgentState, 'leases'>, now: number): string[] =>
  Object.entries(agent.leases ?? {})
    .filter(([, lease]) => leaseExpiry(lease) > now)
    .map(([id]) => id);

/**
 * Leases stamped before this are dead on any function's clock: `now` less the clock tolerance
 * (a lease's expiry was stamped by its worker's clock, which may run behind this one).
 */
export const deadHorizon = (d: { config: { clockToleranceMs: number } }, now: number) => now - d.config.clockToleranceMs;

/** Why a crashed worker's message failed. */
export const leaseExpiredError = (lease: Lease) =>
  `lease expired at ${new Date(leaseExpiry(lease)).toISOString()}: the worker processing it stopped responding`;

/** Leases of crashed workers: past their expiry, to be settled (the message recorded failed). */
export const expiredLeases = (agent: Pick<AgentState, 'leases'>, now: number): [string, Lease][] =>
  Object.entries(agent.leases ?? {}).filter(([, lease]) => leaseExpiry(lease) <= now);

/** A function's clock and how far it may be from others'. */
export interface Clock {
  now: () => number;
  config: { clockToleranceMs: number };
}

/** The API view: a stable field order, leases reduced to the count of those not dead (on any function's clock). */
export function toAgent(item: StoredAgent, clock: Clock): Agent {
  const now = deadHorizon(clock, clock.now());
  return {
    agentId: item.agentId,
    name: item.name,
    ...(item.description !== undefined && { description: item.description }),
    status: item.status,
    settings: item.settings,
    runtime: item.runtime,
    ...(item.agentCard !== undefined && { agentCard: item.agentCard }),
    idleTimeoutMs: item.idleTimeoutMs,
    inFlight: liveLeaseIds(item, now).length,
    version: item.version,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
    ...(item.startedAt !== undefined && { startedAt: item.startedAt }),
    ...(item.stoppedAt !== undefined && { stoppedAt: item.stoppedAt }),
    ...(item.lastActivityAt !== undefined && { lastActivityAt: item.lastActivityAt }),
    ...(item.stop !== undefined && { stop: shownStop(item.stop) }),
    ...(item.lastStop !== undefined && { lastStop: item.lastStop }),
  };
}

export interface MessageRecord {
  agentId: string;
  messageId: string;
  status: MessageStatus;
  text: string;
  metadata?: Record<string, unknown>;
  reply?: string;
  error?: string;
  /** The stop that interrupted it. */
  stopId?: string;
  /** An a2a agent's task for it: its id, its last known state, and what a stop's cancel came to. */
  task?: A2ATask;
  createdAt: number;
  completedAt?: number;
}

/** A message's A2A task as recorded: `state` in the protocol's words (`completed`, `input-required`...). */
export interface A2ATask {
  id: string;
  state: string;
  /** Set when a stop cut it: `canceled` (the agent confirmed), `not honoured`, `gone`, or the final state it had already reached. */
  cancel?: string;
}

/** How a message ended. */
export type MessageOutcome =
  | { status: 'completed'; reply: string }
  | { status: 'failed'; error: string }
  | { status: 'interrupted'; stopId: string };

export interface StopRecord {
  agentId: string;
  stopId: string;
  outcome: StopOutcome;
  reason: StopReason;
  operationId?: string;
  graceful: boolean;
  timeoutMs: number;
  requestedAt: number;
  deadline: number;
  stoppedAt: number;
  durationMs: number;
  drained: number;
  /** The messages in flight when the stop began that finished before its commit. */
  drainedMessageIds: string[];
  interrupted: number;
  interruptedMessageIds: string[];
  /** The messages in flight whose worker died (their leases expired): recorded failed with that reason, not cut by the stop. */
  failed: number;
  failedMessageIds: string[];
  /** The runtime saved the agent's state at this stop. */
  stateSaved: boolean;
  /** Why the runtime could not be told to stop (it was tried until the deadline plus the close grace). */
  closeError?: string;
}

/** The agent's `lastStop` that goes with a stop record. */
export const lastStopOf = (r: StopRecord): LastStop => ({
  stopId: r.stopId,
  outcome: r.outcome,
  reason: r.reason,
  ...(r.operationId && { operationId: r.operationId }),
  requestedAt: r.requestedAt,
  stoppedAt: r.stoppedAt,
  interrupted: r.interrupted,
});

/** Where an active agent sits in the byStatus index: its next idle check, or never. */
export const idleDueAt = (from: number, idleTimeoutMs: number | null) => (idleTimeoutMs === null ? NEVER : from + idleTimeoutMs);

/**
 * When the reaper should next look at an active agent: its idle deadline, or the expiry of a lease
 * in flight (a crashed worker's message to settle), whichever comes first.
 */
export function nextReaperCheck(agent: AgentState): number {
  return Math.min(idleDueAt(lastActiveAt(agent), agent.idleTimeoutMs), ...Object.values(agent.leases ?? {}).map(leaseExpiry));
}

/** When the agent last did anything: its last message, else its start. */
export const lastActiveAt = (agent: AgentState): number => agent.lastActivityAt ?? agent.startedAt ?? agent.updatedAt;

/**
 * The condition for moving an agent's next reaper check from what was read of it: the fields
 * given, and no message admitted since (every admission counts itself in `admissions`: a
 * timestamp could not tell two admissions in one millisecond, or on clocks that disagree).
 * Undefined: the field must still be absent.
 */
export const sameActivity = (agent: AgentState, match: Record<string, number>): Record<string, number | undefined> => ({
  ...match,
  admissions: agent.admissions,
});
