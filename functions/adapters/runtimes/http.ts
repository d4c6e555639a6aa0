import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AgentRuntime, RuntimeStop } from '../../agents/ports.js';
import type { AgentConfig, Runtime } from '../../agents/model.js';
import { logger } from '../logger.js';
import { Refused, outboundFetch } from './outbound.js';

/**
 * The `http` runtime: the agent runs anywhere; the control plane POSTs each message, and the
 * lifecycle calls `cancel` and `stop`, to the agent's URL as JSON, signed with the agent's
 * signing secret; the worker signs its answer with the same secret (docs/ARCHITECTURE.md: Security).
 */
export const SIGNATURE_HEADER = 'agent-signature';
export const generateSigningSecret = (): string => `whsec_${randomBytes(32).toString('base64url')}`;

const hmac = (secret: string, text: string) => createHmac('sha256', secret).update(text).digest('hex');

/** What a request's signature covers: all of what the worker acts on. */
export interface SignedRequest {
  method: string;
  /** The URL's path and query, as sent. */
  path: string;
  idempotencyKey: string;
  body: string;
}

/**
 * `Agent-Signature: t=<unix seconds>,n=<nonce>,v1=<hex HMAC-SHA256(secret, "<t>.<n>.<METHOD>.<path>.<Idempotency-Key>.<body>")>`.
 * The worker refuses a signature older than its tolerance (5 minutes) and one it has seen before;
 * the nonce makes every request's signature new, so two legitimate sends of the same call in the
 * same second (concurrent finalizers, a retry) are never taken for a replay.
 */
export function signRequest(secret: string, r: SignedRequest, t = Math.floor(Date.now() / 1000), n = randomBytes(12).toString('base64url')): string {
  return `t=${t},n=${n},v1=${hmac(secret, `${t}.${n}.${r.method}.${r.path}.${r.idempotencyKey}.${r.body}`)}`;
}

/**
 * The worker's answer: `Agent-Signature: v1=<hex HMAC-SHA256(secret, "<request's v1>.<status>.<body>")>`.
 * Bound to the one request it answers (its signature), so no answer can be replayed onto another.
 */
export function signReply(secret: string, requestSignature: string, status: number, body: string): string {
  return `v1=${hmac(secret, `${v1Of(requestSignature)}.${status}.${body}`)}`;
}

const v1Of = (header: string | null | undefined) => /(?:^|,)\s*v1=([0-9a-f]{64})\s*(?:,|$)/.exec(header ?? '')?.[1] ?? '';

/** The answer carries the worker's signature over this request, its status and its body. */
export function replySigned(secret: string, requestSignature: string, answer: { status: number; body: string; signature: string | null }): boolean {
  const given = Buffer.from(v1Of(answer.signature), 'hex');
  const expected = Buffer.from(v1Of(signReply(secret, requestSignature, answer.status, answer.body)), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Answers larger than this are refused (a reply is stored with its message). */
export const MAX_ANSWER_BYTES = 256 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const LIFECYCLE_TIMEOUT_MS = 10_000;

export { refusalOf } from './outbound.js';

export interface HttpRuntimeOptions {
  urls: 'public' | 'any';
  allowHttp: boolean;
}

interface Answer {
  status: number;
  body: string;
}

/** A 2xx answer without the worker's valid signature: read or forged on the way, it is not believed. */
export const UNSIGNED_ANSWER = "the agent's worker answered without a valid signature (Agent-Signature over this request, its status and body); the answer is refused";

export class HttpRuntime implements AgentRuntime {
  private readonly fetch: ReturnType<typeof outboundFetch>;

  constructor(opts: HttpRuntimeOptions) {
    this.fetch = outboundFetch({ urls: opts.urls, allowHttp: opts.allowHttp, maxBytes: MAX_ANSWER_BYTES });
  }

  async process(agent: AgentConfig, message: Parameters<AgentRuntime['process']>[1], signal: AbortSignal): Promise<{ reply: string }> {
    const runtime = runtimeOf(agent);
    const body = JSON.stringify({
      type: 'message',
      agentId: agent.agentId,
      messageId: message.messageId,
      text: message.text,
      metadata: message.metadata ?? {},
      deadline: message.deadline,
    });
    // The work was told to stop (its lease is gone, or its time is up): abort the request and tell
    // the worker, best effort.
    let answered = false;
    signal.addEventListener(
      'abort',
      () => {
        if (!answered) void this.cancel(agent, message.messageId);
      },
      { once: true },
    );
    const timeoutMs = Math.max(1, Math.min(runtime.timeoutMs ?? DEFAULT_TIMEOUT_MS, message.deadline - Date.now()));
    const answer = await this.post(agent, body, { signal, timeoutMs, idempotencyKey: message.messageId });
    answered = true;
    if (answer.status < 200 || answer.status > 299) throw new Error(`the agent's worker answered HTTP ${answer.status}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      throw new Error("the agent's worker answered with a body that is not JSON");
    }
    const reply = (parsed as { reply?: unknown } | null)?.reply;
    if (typeof reply !== 'string') throw new Error('the agent\'s worker answered without a "reply" string');
    return { reply };
  }

  /**
   * `stop` at finalize: the worker saves its state and closes its connections; a failure fails the
   * finalize (retried). The messages the stop cuts are cancelled first, so the worker never saves a
   * state that work still running is about to change (their own cancel, when their lease is found
   * gone, may follow: a cancel is idempotent).
   */
  async close(agent: AgentConfig, stop: RuntimeStop): Promise<{ stateSaved: boolean }> {
    await Promise.all(stop.interrupted.map((messageId) => this.cancel(agent, messageId)));
    const body = JSON.stringify({ type: 'stop', agentId: agent.agentId, stopId: stop.stopId, outcome: stop.outcome, interruptedMessageIds: stop.interrupted });
    const answer = await this.post(agent, body, { timeoutMs: LIFECYCLE_TIMEOUT_MS, idempotencyKey: stop.stopId });
    if (answer.status < 200 || answer.status > 299) throw new Error(`the agent's worker refused stop ${stop.stopId}: HTTP ${answer.status}`);
    return { stateSaved: true };
  }

  private async cancel(agent: AgentConfig, messageId: string): Promise<void> {
    const body = JSON.stringify({ type: 'cancel', agentId: agent.agentId, messageId });
    try {
      await this.post(agent, body, { timeoutMs: LIFECYCLE_TIMEOUT_MS, idempotencyKey: `cancel-${messageId}` });
    } catch (err) {
      logger.warn('cancel not delivered to the agent\'s worker', { agentId: agent.agentId, messageId, error: (err as Error).message });
    }
  }

  /**
   * One signed POST: bounded in time and size, refusing non-public addresses under the `public`
   * policy. A 2xx answer must carry the worker's signature; any other status only fails the call.
   */
  private async post(agent: AgentConfig, body: string, o: { signal?: AbortSignal; timeoutMs: number; idempotencyKey: string }): Promise<Answer> {
    const { url } = runtimeOf(agent);
    const secret = agent.signingSecret;
    if (!secret) throw new Error('the agent has no signing secret: rotate it (POST /agents/{agentId}/signing-secret)');
    const timeout = AbortSignal.timeout(o.timeoutMs);
    const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
    const target = new URL(url);
    const signature = signRequest(secret, { method: 'POST', path: `${target.pathname}${target.search}`, idempotencyKey: o.idempotencyKey, body });
    let answer: Answer & { signature: string | null };
    try {
      const res = await this.fetch(url, {
        method: 'POST',
        signal,
        body,
        headers: {
          'content-type': 'application/json',
          'idempotency-key': o.idempotencyKey,
          [SIGNATURE_HEADER]: signature,
          'user-agent': 'agents-lifecycle',
        },
      });
      answer = { status: res.status, body: await res.text(), signature: res.headers.get(SIGNATURE_HEADER) };
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason;
      if (timeout.aborted) throw new Error(`the agent's worker did not answer within ${o.timeoutMs} ms`, { cause: err });
      if (err instanceof Refused) throw new Error(err.message, { cause: err });
      const code = (err as NodeJS.ErrnoException).code;
      const message = (err as Error).message.replace(/^the answer/, "the agent's worker's answer");
      throw new Error(code ? `the agent's worker cannot be reached (${code})` : message, { cause: err });
    }
    if (answer.status >= 200 && answer.status <= 299 && !replySigned(secret, signature, answer)) throw new Error(UNSIGNED_ANSWER);
    return { status: answer.status, body: answer.body };
  }
}

const runtimeOf = (agent: AgentConfig) => agent.runtime as Extract<Runtime, { type: 'http' }>;
