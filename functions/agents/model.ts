// The namespace import lets esbuild drop what is not used (zod's locales alone are 258 KiB).
import * as z from 'zod';

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

/** UUIDs are case-insensitive (RFC 9562): stored and compared in lower case, whatever the input. */
export const uuidSchema = z.uuid({ message: 'must be a UUID' }).overwrite((id) => id.toLowerCase());

export const echoRuntimeSchema = z.strictObject({
  type: z.literal('echo'),
  delayMs: z.int().min(0).max(MAX_ECHO_DELAY_MS).optional(),
});
/**
 * An agent that runs anywhere: the service POSTs each message (and the lifecycle calls `cancel`
 * and `stop`) to `url`, signed with the agent's signing secret (README: Bring your own agent).
 */
export const httpRuntimeSchema = z.strictObject({
  type: z.literal('http'),
  url: z
    .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
    .max(2048)
    .refine((u) => !new URL(u).username && !new URL(u).password, { message: 'must not carry credentials (the requests are signed instead)' }),
  timeoutMs: z.int().min(100).max(MAX_ECHO_DELAY_MS).optional(),
});
/**
 * An agent that thinks: any OpenAI-compatible chat-completions endpoint. Its conversation (the
 * last `memoryTurns` turns) is its state: read at each message, written at each reply, saved at
 * stop. The key is named, never given: an environment variable LLM_API_KEY[_NAME] of the service,
 * or a Secrets Manager secret named agents-llm/... (the only ones the stack lets it read).
 */
export const llmRuntimeSchema = z.strictObject({
  type: z.literal('llm'),
  baseUrl: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).max(2048),
  model: z.string().min(1).max(256),
  system: z.string().max(16_384).optional(),
  apiKey: z.union([
    z.strictObject({
      env: z.string().regex(/^LLM_API_KEY(_[A-Z0-9_]{1,64})?$/, { message: 'must name an environment variable LLM_API_KEY or LLM_API_KEY_<NAME>' }),
    }),
    z.strictObject({
      secretArn: z
        .string()
        .regex(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:agents-llm\/[A-Za-z0-9/_+=.@-]+$/, { message: 'must be the ARN of a Secrets Manager secret named agents-llm/...' }),
    }),
  ]),
  memoryTurns: z.int().min(0).max(100).optional(),
  timeoutMs: z.int().min(1000).max(MAX_ECHO_DELAY_MS).optional(),
});
export const runtimeSchema = z.discriminatedUnion('type', [echoRuntimeSchema, httpRuntimeSchema, llmRuntimeSchema]);
export type Runtime = z.infer<typeof runtimeSchema>;

const settingsSchema = z
  .record(z.string(), z.unknown())
  .refine((s) => JSON.stringify(s).length <= 16_384, { message: 'must be at most 16384 bytes of JSON' });

const nameSchema = z.string().trim().min(1, { message: 'must not be empty' }).max(128);
const descriptionSchema = z.string().max(1024);
const idleTimeoutSchema = z.int().min(1000).max(7 * 86_400_000).nullable();

export const createAgentSchema = z.strictObject({
  agentId: uuidSchema.optional(),
  name: nameSchema,
  description: descriptionSchema.optional(),
  settings: settingsSchema.optional(),
  runtime: runtimeSchema.optional(),
  idleTimeoutMs: idleTimeoutSchema.optional(),
});
export type CreateAgentInput = z.infer<typeof createAgentSchema>;

export const updateAgentSchema = z
  .strictObject({
    name: nameSchema.optional(),
    description: descriptionSchema.nullable().optional(),
    settings: settingsSchema.optional(),
    runtime: runtimeSchema.optional(),
    idleTimeoutMs: idleTimeoutSchema.optional(),
  })
  .refine((u) => Object.keys(u).length > 0, { message: 'must name at least one field to change' });
export type UpdateAgentInput = z.infer<typeof updateAgentSchema>;

export const stopAgentSchema = z.strictObject({
  graceful: z.boolean().default(true),
  timeout: z.int().min(0).max(MAX_STOP_TIMEOUT_MS).default(DEFAULT_STOP_TIMEOUT_MS),
});
export type StopAgentInput = z.infer<typeof stopAgentSchema>;

export const messageIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'must be 1 to 64 letters, digits, "_" or "-"' });

export const sendMessageSchema = z.strictObject({
  text: z.string().min(1, { message: 'must not be empty' }).max(65_536),
  messageId: messageIdSchema.optional(),
  metadata: z
    .record(z.string(), z.unknown())
    .refine((m) => JSON.stringify(m).length <= 8_192, { message: 'must be at most 8192 bytes of JSON' })
    .optional(),
});
export type SendMessageInput = z.infer<typeof sendMessageSchema>;

/** Agents per page: 100 by default (the most a page holds); the last page has `nextCursor: null`. */
export const listQuerySchema = z.strictObject({
  status: z.enum(AGENT_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(100),
  cursor: z.string().max(2048).optional(),
});
export const pageQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().max(2048).optional(),
});

export interface StopInfo {
  stopId: string;
  requestedAt: number;
  deadline: number;
  graceful: boolean;
  timeoutMs: number;
  reason: StopReason;
  /** The fleet stop this stop is part of. */
  operationId?: string;
  /** Set by a force stop: admission is closed and the deadline moved to the force stop's time. */
  forced?: boolean;
  /** Set when the drain workflow failed past its retries; the API answers 500 for this stop. */
  failure?: { error: string; cause: string; at: number };
  /** The finalizer closing the runtime now (one `stop` call per stop), until when. */
  closing?: { token: string; until: number };
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
}

/** Leases written before tokens existed held only the expiry; they still count and expire. */
export type StoredLease = Lease | number;
export const leaseExpiry = (lease: StoredLease): number => (typeof lease === 'number' ? lease : lease.expiresAt);

/** The agent item as stored. */
export interface AgentItem {
  agentId: string;
  name: string;
  description?: string;
  status: AgentStatus;
  settings: Record<string, unknown>;
  runtime: Runtime;
  idleTimeoutMs: number | null;
  /** messageId -> the lease of its admission. */
  leases: Record<string, StoredLease>;
  version: number;
  createdAt: number;
  updatedAt: number;
  startedAt?: number;
  stoppedAt?: number;
  lastActivityAt?: number;
  stop?: StopInfo;
  lastStop?: LastStop;
  /** While stopping: the leases in flight when the stop began (those gone at its commit drained). */
  leasesAtStop?: Record<string, StoredLease>;
  dueAt: number;
  /** Signs the `http` runtime's requests. Shown once (create, rotate); never in a response otherwise, a log line or an event. */
  signingSecret?: string;
}

/** The agent as the API returns it. */
export type Agent = Omit<AgentItem, 'leases' | 'dueAt' | 'signingSecret'> & { inFlight: number };

export const liveLeaseIds = (agent: Pick<AgentItem, 'leases'>, now: number): string[] =>
  Object.entries(agent.leases ?? {})
    .filter(([, lease]) => leaseExpiry(lease) > now)
    .map(([id]) => id);

/** Leases of crashed workers: past their expiry, to be settled (the message recorded failed). */
export const expiredLeases = (agent: Pick<AgentItem, 'leases'>, now: number): [string, StoredLease][] =>
  Object.entries(agent.leases ?? {}).filter(([, lease]) => leaseExpiry(lease) <= now);

/** The API view: a stable field order, leases reduced to the count of unexpired ones. */
export function toAgent(item: AgentItem, now = Date.now()): Agent {
  return {
    agentId: item.agentId,
    name: item.name,
    ...(item.description !== undefined && { description: item.description }),
    status: item.status,
    settings: item.settings,
    runtime: item.runtime,
    idleTimeoutMs: item.idleTimeoutMs,
    inFlight: liveLeaseIds(item, now).length,
    version: item.version,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
    ...(item.startedAt !== undefined && { startedAt: item.startedAt }),
    ...(item.stoppedAt !== undefined && { stoppedAt: item.stoppedAt }),
    ...(item.lastActivityAt !== undefined && { lastActivityAt: item.lastActivityAt }),
    ...(item.stop !== undefined && { stop: item.stop }),
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
  createdAt: number;
  completedAt?: number;
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
  /** The runtime saved the agent's state at this stop. */
  stateSaved: boolean;
}

/** Where an active agent sits in the byStatus index: its next idle check, or never. */
export const idleDueAt = (from: number, idleTimeoutMs: number | null) => (idleTimeoutMs === null ? NEVER : from + idleTimeoutMs);

/**
 * When the reaper should next look at an active agent: its idle deadline, or the expiry of a lease
 * in flight (a crashed worker's message to settle), whichever comes first.
 */
export function nextReaperCheck(agent: AgentItem): number {
  return Math.min(idleDueAt(lastActiveAt(agent), agent.idleTimeoutMs), ...Object.values(agent.leases ?? {}).map(leaseExpiry));
}

/** When the agent last did anything: its last message, else its start. */
export const lastActiveAt = (agent: AgentItem): number => agent.lastActivityAt ?? agent.startedAt ?? agent.updatedAt;

/**
 * The condition for moving an agent's next reaper check from what was read of it: the fields
 * given, and no message admitted since (admission sets `lastActivityAt`).
 */
export const sameActivity = (agent: AgentItem, match: Record<string, number>): Record<string, number> =>
  agent.lastActivityAt === undefined ? match : { ...match, lastActivityAt: agent.lastActivityAt };
