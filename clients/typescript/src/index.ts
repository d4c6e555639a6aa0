/**
 * A typed client for the agents lifecycle service: every route, typed from its OpenAPI document
 * (`client.api`, openapi-fetch over the types openapi-typescript generates), and the helpers where
 * the raw API is easy to get wrong: every agent across pages, stop and wait for the outcome, a
 * fleet stop followed to its end, a message sent asynchronously and waited for.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './openapi.js';
import { revalidating } from './revalidate.js';

export type { components, paths } from './openapi.js';
export { revalidating, type RevalidateOptions } from './revalidate.js';
type Schemas = components['schemas'];
export type Agent = Schemas['Agent'];
export type Message = Schemas['Message'];
export type StopRecord = Schemas['StopRecord'];
export type FleetStop = Schemas['FleetStop'];
export type AgentStatus = Agent['status'];
export type StopOutcome = StopRecord['outcome'];
type Body<P extends keyof paths, M extends 'post' | 'patch'> = NonNullable<paths[P][M]> extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
export type CreateAgent = Body<'/agents', 'post'>;
export type UpdateAgent = Body<'/agents/{agentId}', 'patch'>;
export type StopRequest = Body<'/agents/{agentId}/stop', 'post'>;
export type FleetStopRequest = Body<'/agents/stop', 'post'>;
export type SendMessage = Body<'/agents/{agentId}/messages', 'post'>;

/** An answer of the API that is not a success: its status, its code and the sentence it wrote. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | undefined,
    /** What the error carries (a 408's stopped agent, a 409's agent as it is). */
    readonly data?: unknown,
    /** Seconds to wait before trying again (503, 429), when the API said. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** The API's base URL (default: AGENTS_API_URL, else http://localhost:3000). */
  baseUrl?: string;
  /** An API key, sent as a bearer token (default: AGENTS_API_KEY; none when auth is off). */
  apiKey?: string;
  /** How often the waiting helpers poll (default 500 ms). */
  pollMs?: number;
  fetch?: typeof fetch;
}

/** How a stop ended, as its record says. */
export interface StopResult {
  agentId: string;
  stopId: string;
  outcome: StopOutcome;
  interrupted: number;
  stoppedAt: number;
  record?: StopRecord;
}

/** What a waiting stop sees at each poll: the agent while it drains. */
export interface StopProgress {
  agentId: string;
  stopId: string;
  status: AgentStatus;
  inFlight: number;
  deadline: number;
}

const env = (name: string) => (typeof process === 'undefined' ? undefined : process.env[name]) || undefined;
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const abort = () => (clearTimeout(timer), reject(signal!.reason));
    const timer = setTimeout(() => (signal?.removeEventListener('abort', abort), resolve()), ms);
    signal?.addEventListener('abort', abort, { once: true });
  });

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The envelope's data, or an ApiError with the API's own sentence. */
function unwrap<T extends { data: unknown }>(answer: Answer<T>): T['data'] {
  if (answer.data !== undefined) return answer.data.data;
  throw errorOf(answer.response, answer.error);
}

function errorOf(response: Response, body: unknown): ApiError {
  const e = (body ?? {}) as { error?: unknown; code?: unknown; data?: unknown };
  const retryAfter = Number(response.headers.get('retry-after') ?? NaN);
  const sentence = typeof e.error === 'string' ? e.error : `${response.status} ${response.statusText || 'error'} from ${new URL(response.url || 'http://unknown').pathname}`;
  return new ApiError(response.status, sentence, typeof e.code === 'string' ? e.code : undefined, e.data, Number.isFinite(retryAfter) ? retryAfter : undefined);
}

/** Every item of a listing, page after page until `nextCursor` is null. */
async function* pages<T>(page: (cursor?: string) => Promise<Answer<{ data: T[]; nextCursor: string | null }>>): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const answer = await page(cursor);
    if (!answer.data) throw errorOf(answer.response, answer.error);
    yield* answer.data.data;
    cursor = answer.data.nextCursor ?? undefined;
  } while (cursor);
}

export class AgentsClient {
  /** Every route, typed: `client.api.GET('/agents/{agentId}', { params: { path: { agentId } } })`. */
  readonly api: Client<paths>;
  readonly baseUrl: string;
  private readonly pollMs: number;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? env('AGENTS_API_URL') ?? 'http://localhost:3000').replace(/\/+$/, '');
    const apiKey = options.apiKey ?? env('AGENTS_API_KEY');
    this.pollMs = options.pollMs ?? 500;
    this.api = createClient<paths>({
      baseUrl: this.baseUrl,
      ...(options.fetch && { fetch: options.fetch }),
      ...(apiKey && { headers: { authorization: `Bearer ${apiKey}` } }),
    });
    // The waiting helpers poll: an unchanged answer comes back as a 304, without its body.
    this.api.use(revalidating());
  }

  // One method per route.

  async createAgent(body: CreateAgent): Promise<Agent> {
    return unwrap(await this.api.POST('/agents', { body }));
  }

  /** One page (follow `nextCursor` until it is null, or use `agents()`). */
  async listAgents(query: { status?: AgentStatus; limit?: number; cursor?: string } = {}) {
    const answer = await this.api.GET('/agents', { params: { query } });
    if (!answer.data) throw errorOf(answer.response, answer.error);
    return { agents: answer.data.data, nextCursor: answer.data.nextCursor };
  }

  /** Every agent (of a status), page after page until `nextCursor` is null. */
  agents(query: { status?: AgentStatus; pageSize?: number } = {}): AsyncGenerator<Agent> {
    const base = { ...(query.status && { status: query.status }), ...(query.pageSize && { limit: query.pageSize }) };
    return pages((cursor) => this.api.GET('/agents', { params: { query: { ...base, ...(cursor && { cursor }) } } }));
  }

  async getAgent(agentId: string): Promise<Agent> {
    return unwrap(await this.api.GET('/agents/{agentId}', { params: { path: { agentId } } }));
  }

  /** Update; with `ifMatch` (the version read), refused with 412 if it changed since. */
  async updateAgent(agentId: string, body: UpdateAgent, ifMatch?: number): Promise<Agent> {
    const header = ifMatch === undefined ? {} : { 'If-Match': `"${ifMatch}"` };
    return unwrap(await this.api.PATCH('/agents/{agentId}', { params: { path: { agentId }, header }, body }));
  }

  async deleteAgent(agentId: string) {
    return unwrap(await this.api.DELETE('/agents/{agentId}', { params: { path: { agentId } } }));
  }

  async startAgent(agentId: string): Promise<Agent> {
    return unwrap(await this.api.POST('/agents/{agentId}/start', { params: { path: { agentId } } }));
  }

  async rotateSigningSecret(agentId: string) {
    return unwrap(await this.api.POST('/agents/{agentId}/signing-secret', { params: { path: { agentId } } }));
  }

  /** Send a message and wait for its reply (200), or with `async`, queue it (202: see `sendAndWait`). */
  async sendMessage(agentId: string, body: SendMessage, opts: { async?: boolean } = {}): Promise<Message> {
    const header = opts.async ? { Prefer: 'respond-async' as const } : {};
    return unwrap(await this.api.POST('/agents/{agentId}/messages', { params: { path: { agentId }, header }, body })) as Message;
  }

  async getMessage(agentId: string, messageId: string): Promise<Message> {
    return unwrap(await this.api.GET('/agents/{agentId}/messages/{messageId}', { params: { path: { agentId, messageId } } }));
  }

  /** Message history, newest first, across pages. */
  messages(agentId: string): AsyncGenerator<Message> {
    return pages((cursor) => this.api.GET('/agents/{agentId}/messages', { params: { path: { agentId }, query: cursor ? { cursor } : {} } }));
  }

  /** Stop history, newest first, across pages. */
  stops(agentId: string): AsyncGenerator<StopRecord> {
    return pages((cursor) => this.api.GET('/agents/{agentId}/stops', { params: { path: { agentId }, query: cursor ? { cursor } : {} } }));
  }

  async getFleetStop(operationId: string): Promise<FleetStop> {
    return unwrap(await this.api.GET('/fleet-stops/{operationId}', { params: { path: { operationId } } }));
  }

  async health() {
    return unwrap(await this.api.GET('/health'));
  }

  // Helpers that wait.

  /**
   * Stop an agent and wait for the outcome, however the API answers: 200 (stopped), 408 (the
   * timeout cut messages short: stopped all the same, `timed_out`), or 202 (still draining:
   * followed by polling the agent, `onProgress` at each poll). A 409 (not running) is an ApiError.
   * `respondAsync` asks for the 202 at once (to watch the drain from the first moment).
   */
  async stop(agentId: string, request: StopRequest = {}, opts: { respondAsync?: boolean; onProgress?: (p: StopProgress) => void; signal?: AbortSignal } = {}): Promise<StopResult> {
    const header = opts.respondAsync ? { Prefer: 'respond-async' as const } : {};
    const answer = await this.api.POST('/agents/{agentId}/stop', { params: { path: { agentId }, header }, body: request });
    // Which stop this request made or joined: named by a 202 and a 408, known by its stoppedAt on a 200.
    let which: { stopId: string } | { stoppedAt: number };
    if (answer.response.status === 202 && answer.data) {
      const stopping = answer.data.data as Schemas['AgentStopping'];
      const { stopId } = stopping;
      which = { stopId };
      for (;;) {
        const agent = await this.retrying(() => this.getAgent(agentId), opts.signal);
        if (agent.status !== 'stopping' || agent.stop?.stopId !== stopId) break;
        opts.onProgress?.({ agentId, stopId, status: agent.status, inFlight: agent.inFlight, deadline: agent.stop.deadline });
        await sleep(this.pollMs, opts.signal);
      }
    } else if (answer.response.status === 408) {
      which = { stopId: (answer.error as { data: { stopId: string } }).data.stopId };
    } else if (answer.data) {
      which = { stoppedAt: (answer.data.data as Schemas['AgentStopped']).stoppedAt };
    } else {
      throw errorOf(answer.response, answer.error);
    }
    return this.stopResult(agentId, which);
  }

  /** How a stop ended: its record (newest first: a later stop of the agent is passed over). */
  private async stopResult(agentId: string, which: { stopId: string } | { stoppedAt: number }): Promise<StopResult> {
    for await (const record of this.stops(agentId)) {
      if ('stopId' in which ? record.stopId === which.stopId : record.stoppedAt === which.stoppedAt) {
        return { agentId, stopId: record.stopId, outcome: record.outcome, interrupted: record.interrupted, stoppedAt: record.stoppedAt, record };
      }
    }
    throw new ApiError(404, `The stop of agent ${agentId} has no record (it may have been deleted)`, 'NOT_FOUND');
  }

  /**
   * A fleet stop, followed until it is done (`onProgress` at each poll). Safe to repeat: the same
   * `idempotencyKey` follows the same operation instead of starting another (a fresh one is made
   * when none is given; pass it again after a crash or a lost answer).
   */
  async fleetStop(
    request: FleetStopRequest,
    opts: {
      idempotencyKey?: string;
      /** The operation as requested: `replayed` when the key had already started it (this follows that one). */
      onStart?: (op: FleetStop, answer: { message?: string; replayed: boolean; idempotencyKey: string }) => void;
      onProgress?: (op: FleetStop) => void;
      signal?: AbortSignal;
    } = {},
  ): Promise<FleetStop> {
    const idempotencyKey = opts.idempotencyKey ?? `fleet-${crypto.randomUUID()}`;
    const answer = await this.api.POST('/agents/stop', { params: { header: { 'Idempotency-Key': idempotencyKey } }, body: request });
    let op = unwrap(answer) as FleetStop;
    opts.onStart?.(op, { message: answer.data?.message, replayed: answer.response.headers.get('idempotent-replayed') === 'true', idempotencyKey });
    opts.onProgress?.(op);
    while (!op.done) {
      await sleep(this.pollMs, opts.signal);
      op = await this.retrying(() => this.getFleetStop(op.operationId), opts.signal);
      opts.onProgress?.(op);
    }
    return op;
  }

  /** Send a message to run on the worker (202) and wait until it ended: completed, failed or interrupted. */
  async sendAndWait(agentId: string, body: SendMessage, opts: { onProgress?: (m: Message) => void; signal?: AbortSignal } = {}): Promise<Message> {
    let message = await this.sendMessage(agentId, { ...body, messageId: body.messageId ?? crypto.randomUUID() }, { async: true });
    while (message.status === 'processing') {
      opts.onProgress?.(message);
      await sleep(this.pollMs, opts.signal);
      message = await this.retrying(() => this.getMessage(agentId, message.messageId), opts.signal);
    }
    return message;
  }

  /** A poll that meets a 503 or 429 waits as the API says (Retry-After) and asks again. */
  private async retrying<T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        if (!(err instanceof ApiError) || ![429, 503].includes(err.status) || attempt >= 10) throw err;
        await sleep(1000 * (err.retryAfter ?? 1), signal);
      }
    }
  }
}

export const createAgentsClient = (options?: ClientOptions) => new AgentsClient(options);
