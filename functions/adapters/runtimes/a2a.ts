import * as z from 'zod/mini';
import type { Client } from '@a2a-js/sdk/client';
import type { Task } from '@a2a-js/sdk';
import { ModelKeyUnavailable, RuntimeRefused, type AgentRuntime, type ModelKeys, type RuntimeMessage, type RuntimeStop } from '../../agents/ports.js';
import type { AgentCardSummary, AgentConfig, Runtime } from '../../agents/model.js';
import type { RecordsStore } from '../dynamodb/records-store.js';
import { ConfigError } from '../../agents/config.js';
import { logger } from '../logger.js';
import { Refused, outboundFetch } from './outbound.js';

type A2ARuntimeConfig = Extract<Runtime, { type: 'a2a' }>;

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_ANSWER_BYTES = 1024 * 1024;
/** How long a stop waits for the agent to confirm one cancel (CancelTask, then GetTask until terminal). */
export const CANCEL_BOUND_MS = 3_000;
/** A card read for messages is read again after this long (create and start always read it). */
const CARD_CACHE_MS = 5 * 60_000;
/** GetTask polls while a task is active: from the first interval, growing, up to the last. */
const POLL_MS = { first: 100, growth: 1.5, max: 2_000 };

/** The protocol's task states (A2A 1.0, `TaskState`), as numbers on the SDK's objects; the SDK's enum is not imported (its module is large). */
const TaskState = {
  TASK_STATE_UNSPECIFIED: 0,
  TASK_STATE_SUBMITTED: 1,
  TASK_STATE_WORKING: 2,
  TASK_STATE_COMPLETED: 3,
  TASK_STATE_FAILED: 4,
  TASK_STATE_CANCELED: 5,
  TASK_STATE_INPUT_REQUIRED: 6,
  TASK_STATE_REJECTED: 7,
  TASK_STATE_AUTH_REQUIRED: 8,
} as const;
type TaskState = (typeof TaskState)[keyof typeof TaskState];
const STATE_NAMES = Object.fromEntries(Object.entries(TaskState).map(([name, n]) => [n, name.replace(/^TASK_STATE_/, '').toLowerCase().replace(/_/g, '-')]));

const ACTIVE = new Set<number>([TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING]);
const WAITING = new Set<number>([TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED]);
/** The protocol's state names, as recorded on the message (`input-required`, `completed`...). */
const stateName = (state: number | undefined) => STATE_NAMES[state ?? 0] ?? 'unspecified';

/** The part of an Agent Card the service relies on; the rest is the agent's own. */
const cardSchema = z.looseObject({
  name: z.string().check(z.minLength(1)),
  version: z.string().check(z.minLength(1)),
  description: z.optional(z.string()),
  supportedInterfaces: z.array(z.looseObject({ url: z.string(), protocolBinding: z.string(), protocolVersion: z.optional(z.string()) })).check(z.minLength(1)),
  skills: z.optional(z.array(z.looseObject({ id: z.string(), name: z.string(), description: z.optional(z.string()) }))),
});

export interface A2ARuntimeOptions {
  urls: 'public' | 'any';
  allowHttp: boolean;
  /** The operator's tokens, each bound to the URL it may be sent to (A2A_TOKEN_<NAME> / agents-a2a/...). */
  tokens: ModelKeys;
  /** The records table: a message's task, and the task the next message continues. */
  records: () => RecordsStore;
}

/**
 * The `a2a` runtime: any agent that speaks A2A 1.0 over JSON-RPC, through `@a2a-js/sdk`'s
 * client, every call through the runtimes' outbound fetch (address policy, bounded answers).
 * - The Agent Card is read at create, PATCH and start (`check`): it must name a JSON-RPC
 *   interface of protocol 1.x, and a token goes only where the operator bound it, the card's
 *   endpoint included.
 * - A message is a `SendMessage` in the agent's one conversation (`contextId` = the agentId,
 *   kept across stops: the agent's state lives with the agent), sent to return at once; its task
 *   id is recorded on the message, then `GetTask` follows it until it ends or waits on the user.
 * - A stop that cuts a message cancels its task (`CancelTask`, confirmed by `GetTask`, within
 *   CANCEL_BOUND_MS) and records what that came to; A2A has no close call.
 */
export class A2ARuntime implements AgentRuntime {
  private readonly fetch: ReturnType<typeof outboundFetch>;
  /** By agentId: a client for the card read, the endpoint it names, until when, for which runtime configuration. */
  private readonly clients = new Map<string, { client: Client; endpoint: string; until: number; key: string }>();

  constructor(private readonly opts: A2ARuntimeOptions) {
    this.fetch = outboundFetch({ urls: opts.urls, allowHttp: opts.allowHttp, maxBytes: MAX_ANSWER_BYTES });
  }

  async check(runtime: Runtime): Promise<{ agentCard: AgentCardSummary }> {
    const a2a = runtime as A2ARuntimeConfig;
    const { summary } = await this.readCard(a2a);
    await this.headersFor(a2a, summary.endpoint);
    return { agentCard: summary };
  }

  async process(agent: AgentConfig, message: RuntimeMessage, signal: AbortSignal): Promise<{ reply: string }> {
    const runtime = agent.runtime as A2ARuntimeConfig;
    const records = this.opts.records();
    const timeout = Math.max(1, Math.min(runtime.timeoutMs ?? DEFAULT_TIMEOUT_MS, message.deadline - Date.now()));
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(timeout)]);
    const [{ client, serviceParameters }, state] = await Promise.all([this.clientFor(agent), records.getA2AState(agent.agentId)]);
    const options = { signal: bounded, serviceParameters };
    // The agent's words are stored, answered and logged: never with the credential this call sent.
    const clean = redactor(serviceParameters);
    let task: Task;
    const continues = state.waitingTaskId;
    try {
      // A message that continues a task waiting on the user names it, recorded first (a stop may
      // cancel it meanwhile), and is answered when the agent has acted on it: the task as it was,
      // still waiting on the earlier question, would otherwise be the answer.
      if (continues) await records.recordTask(agent.agentId, message.messageId, { id: continues, state: 'input-required' });
      const sent = await client.sendMessage(sendMessageRequest(agent, message, state.waitingTaskId), options);
      // A plain message is the whole answer: no task to follow.
      if (!('status' in sent)) return { reply: clean(textOf(sent.parts)) };
      task = sent;
      if (!continues) await records.recordTask(agent.agentId, message.messageId, { id: task.id, state: stateName(task.status?.state) });
      for (let wait = POLL_MS.first; ACTIVE.has(task.status?.state ?? TaskState.TASK_STATE_UNSPECIFIED); wait = Math.min(POLL_MS.max, wait * POLL_MS.growth)) {
        await sleep(wait, bounded);
        task = await client.getTask({ tenant: '', id: task.id }, options);
      }
    } catch (err) {
      if (bounded.aborted) {
        // Cut by a stop (which cancels the task itself) or past the message's time limit: cancel it here.
        if (!signal.aborted) await this.cancel(agent, message.messageId).catch(() => undefined);
        throw signal.aborted ? signal.reason : new Error(`the agent did not finish within ${timeout} ms`);
      }
      // Without the SDK's error as its cause: it may quote the request, headers included.
      // eslint-disable-next-line preserve-caught-error -- the cause would carry the credential into the logs
      throw new Error(clean(describe(err)).slice(0, 500));
    }
    const ended: number = task.status?.state ?? TaskState.TASK_STATE_UNSPECIFIED;
    await records.recordTask(agent.agentId, message.messageId, { state: stateName(ended) });
    const waiting = WAITING.has(ended);
    if (waiting) await records.setA2AWaiting(agent.agentId, task.id, Date.now());
    else if (continues) await records.clearA2AWaiting(agent.agentId, continues, Date.now());
    const said = clean(textOf(task.status?.message?.parts));
    if (ended === TaskState.TASK_STATE_COMPLETED) {
      const artifacts = (task.artifacts ?? []).map((a) => textOf(a.parts)).filter(Boolean).join('\n');
      return { reply: clean(artifacts) || said };
    }
    // Waiting on the user: the message is answered with the agent's question; the next one continues the task.
    if (waiting) return { reply: said };
    throw new Error(`the agent's task ended ${stateName(ended)}${said ? `: ${said}` : ''}`);
  }

  /**
   * A2A has no close: the conversation stays with the agent. The tasks of the messages this stop
   * cuts are cancelled first, each within CANCEL_BOUND_MS, and what came of it is recorded.
   */
  async close(agent: AgentConfig, stop: RuntimeStop): Promise<{ stateSaved: boolean }> {
    await Promise.all(stop.interrupted.map((messageId) => this.cancel(agent, messageId)));
    return { stateSaved: false };
  }

  /** Cancel a message's task and record the answer: canceled, not honoured, gone, or the final state it had reached. */
  private async cancel(agent: AgentConfig, messageId: string): Promise<void> {
    const records = this.opts.records();
    const taskId = (await records.getMessage(agent.agentId, messageId))?.task?.id;
    if (!taskId) return;
    const { client, serviceParameters } = await this.clientFor(agent);
    const signal = AbortSignal.timeout(CANCEL_BOUND_MS);
    let cancel: string;
    try {
      let task = await client.cancelTask({ tenant: '', id: taskId, metadata: {} }, { signal, serviceParameters });
      for (let wait = POLL_MS.first; !isTerminal(task); wait = Math.min(POLL_MS.max, wait * POLL_MS.growth)) {
        await sleep(wait, signal);
        task = await client.getTask({ tenant: '', id: taskId }, { signal, serviceParameters });
      }
      cancel = stateName(task.status?.state);
    } catch (err) {
      const name = (err as Error).name;
      if (name.endsWith('TaskNotFoundError')) cancel = 'gone';
      else if (name.endsWith('TaskNotCancelableError')) {
        const task = await client.getTask({ tenant: '', id: taskId }, { signal: AbortSignal.timeout(CANCEL_BOUND_MS), serviceParameters }).catch(() => undefined);
        cancel = task ? stateName(task.status?.state) : 'gone';
      } else {
        cancel = 'not honoured';
        logger.warn('a2a task not cancelled within its bound', { agentId: agent.agentId, messageId, taskId, error: redactor(serviceParameters)(describe(err)).slice(0, 500) });
      }
    }
    await records.recordTask(agent.agentId, messageId, { cancel });
  }

  /** A client for the agent's card (read once per CARD_CACHE_MS per process), with the headers its token needs. */
  private async clientFor(agent: AgentConfig): Promise<{ client: Client; serviceParameters: Record<string, string> }> {
    const runtime = agent.runtime as A2ARuntimeConfig;
    const key = JSON.stringify(runtime);
    let entry = this.clients.get(agent.agentId);
    if (!entry || entry.key !== key || entry.until <= Date.now()) {
      const { card, summary } = await this.readCard(runtime);
      const { ClientFactory, JsonRpcTransportFactory } = await loadA2AClient();
      const factory = new ClientFactory({ transports: [new JsonRpcTransportFactory({ fetchImpl: this.fetch as typeof fetch })], preferredTransports: ['JSONRPC'] });
      // Only the interface checked: the factory picks from the card it is given.
      const client = await factory.createFromAgentCard({ ...card, supportedInterfaces: [{ url: summary.endpoint, protocolBinding: 'JSONRPC', protocolVersion: summary.protocolVersion, tenant: '' }] } as never);
      entry = { client, endpoint: summary.endpoint, until: Date.now() + CARD_CACHE_MS, key };
      this.clients.set(agent.agentId, entry);
    }
    return { client: entry.client, serviceParameters: await this.headersFor(runtime, entry.endpoint) };
  }

  /** The card at the agent's URL, checked: JSON, named and versioned, with a JSON-RPC interface of protocol 1.x. */
  private async readCard(runtime: A2ARuntimeConfig): Promise<{ card: Record<string, unknown>; summary: AgentCardSummary }> {
    const cardUrl = /\.json$/i.test(new URL(runtime.url).pathname) ? runtime.url : `${runtime.url.replace(/\/+$/, '')}/.well-known/agent-card.json`;
    const refuse = (why: string): never => {
      throw new RuntimeRefused('runtime.url', `has no usable A2A Agent Card at ${cardUrl}: ${why}`);
    };
    let res: Response;
    try {
      res = await this.fetch(cardUrl, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      return refuse(err instanceof Refused ? err.message : `it cannot be reached (${describe(err)})`);
    }
    if (res.status !== 200) return refuse(`it answered HTTP ${res.status}`);
    let raw: unknown;
    try {
      raw = JSON.parse(await res.text());
    } catch {
      return refuse('it is not JSON');
    }
    const parsed = cardSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return refuse(`its "${issue.path.join('.') || '(card)'}" ${issue.message.toLowerCase()}`);
    }
    const card = parsed.data;
    const rpc = card.supportedInterfaces.find((i) => i.protocolBinding.toUpperCase() === 'JSONRPC' && /^1\./.test(i.protocolVersion ?? '') && URL.canParse(i.url));
    if (!rpc) {
      const offered = card.supportedInterfaces.map((i) => `${i.protocolBinding} ${i.protocolVersion ?? '(no version)'}`).join(', ');
      return refuse(`it serves no JSON-RPC interface of A2A 1.x (it offers ${offered})`);
    }
    const endpoint = new URL(rpc.url);
    if (!['http:', 'https:'].includes(endpoint.protocol)) return refuse(`its JSON-RPC interface ${rpc.url} is not an http(s) URL`);
    if (endpoint.protocol !== 'https:' && !this.opts.allowHttp) return refuse(`its JSON-RPC interface ${rpc.url} is plain http, refused here (the operator allows it with RUNTIME_ALLOW_HTTP=1)`);
    const summary: AgentCardSummary = {
      name: card.name.slice(0, 256),
      version: card.version.slice(0, 64),
      ...(card.description && { description: card.description.slice(0, 1024) }),
      skills: (card.skills ?? []).slice(0, 50).map((s) => ({ id: s.id.slice(0, 128), name: s.name.slice(0, 256), ...(s.description && { description: s.description.slice(0, 512) }) })),
      endpoint: rpc.url,
      protocolVersion: rpc.protocolVersion!,
    };
    return { card: card as Record<string, unknown>, summary };
  }

  /** The token's header, only if the operator bound it to both the agent's URL and the endpoint its card names. */
  private async headersFor(runtime: A2ARuntimeConfig, endpoint: string): Promise<Record<string, string>> {
    if (!runtime.auth) return {};
    let token: string | null;
    try {
      token = await this.opts.tokens.keyFor(runtime.auth.token, runtime.url);
      // The card may send the calls elsewhere: the token goes there only if that is bound too.
      if (token !== null) await this.opts.tokens.keyFor(runtime.auth.token, endpoint);
    } catch (err) {
      if (!(err instanceof ModelKeyUnavailable)) throw err;
      throw new RuntimeRefused('runtime.auth.token', `cannot be used: the token is not available for this URL and the endpoint its card names (${endpoint}); the operator binds each token to one URL`);
    }
    if (token === null) return {};
    return runtime.auth.header ? { [runtime.auth.header]: token } : { Authorization: `Bearer ${token}` };
  }
}

/**
 * The SDK's client is installed beside the bundles of the functions that call a2a agents
 * (infra/agent-function.ts: `callsA2A`) and imported at first use; reaching it elsewhere is a
 * wiring bug, said plainly.
 */
async function loadA2AClient(): Promise<typeof import('@a2a-js/sdk/client')> {
  try {
    return await import('@a2a-js/sdk/client');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new ConfigError('The A2A client is not bundled with this function: only functions that call a2a agents or end stops (callsA2A) carry it');
  }
}

const isTerminal = (task: Task) => {
  const state = task.status?.state ?? TaskState.TASK_STATE_UNSPECIFIED;
  return !ACTIVE.has(state) && !WAITING.has(state);
};

/** The text of a message's or an artifact's parts. */
function textOf(parts: { content?: { $case: string; value?: unknown } }[] | undefined): string {
  return (parts ?? [])
    .map((p) => (p.content?.$case === 'text' ? String(p.content.value) : p.content?.$case === 'data' ? JSON.stringify(p.content.value) : ''))
    .filter(Boolean)
    .join('\n');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Removes the credential a call sent (each header value, and a bearer's token alone) from text the
 * agent returned: an endpoint may quote the request's headers in an error, a failed task or a
 * reply, and what it says is stored, answered and logged.
 */
export function redactor(headers: Record<string, string>): (text: string) => string {
  const secrets = Object.values(headers)
    .flatMap((value) => [value, value.replace(/^Bearer\s+/i, '')])
    .filter((secret) => secret.length >= 4)
    .sort((a, b) => b.length - a.length);
  return (text) => secrets.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}

/** An A2A call's failure in a sentence (the agent's own words only as its error's message), whole: cut it only after redacting it. */
function describe(err: unknown): string {
  if (err instanceof Refused) return err.message;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Refused) return cause.message;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? (err as NodeJS.ErrnoException).code;
  if (code) return `the agent cannot be reached (${code})`;
  return `the agent's call failed: ${(err as Error).message ?? String(err)}`;
}

/** One A2A `SendMessage` in the agent's one conversation; continuing the task waiting on the user, if one is. */
function sendMessageRequest(agent: AgentConfig, message: RuntimeMessage, waitingTaskId: string | undefined) {
  return {
    tenant: '',
    metadata: {},
    message: {
      // Our id: a retry of the same message is the same A2A message.
      messageId: message.messageId,
      role: 1, // ROLE_USER
      parts: [{ content: { $case: 'text' as const, value: message.text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
      contextId: agent.agentId,
      taskId: waitingTaskId ?? '',
      extensions: [],
      metadata: message.metadata ?? {},
      referenceTaskIds: [],
    },
    // A new task is followed by polling (answered at once); a continued one is answered when the agent has acted on it.
    configuration: { acceptedOutputModes: ['text/plain', 'text'], taskPushNotificationConfig: undefined, returnImmediately: !waitingTaskId },
  };
}
