import { createHmac, randomBytes } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import type { AgentRuntime, RuntimeStop } from '../../agents/ports.js';
import type { AgentItem, Runtime } from '../../agents/model.js';
import { logger } from '../logger.js';

/**
 * The `http` runtime: the agent runs anywhere; the control plane POSTs each message, and the
 * lifecycle calls `cancel` and `stop`, to the agent's URL as JSON, signed with the agent's
 * signing secret (README: Bring your own agent).
 */
export const SIGNATURE_HEADER = 'agent-signature';
export const generateSigningSecret = (): string => `whsec_${randomBytes(32).toString('base64url')}`;

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, as webhook signing schemes do. */
export function sign(secret: string, body: string, t = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** Answers larger than this are refused (a reply is stored with its message). */
export const MAX_ANSWER_BYTES = 256 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const LIFECYCLE_TIMEOUT_MS = 10_000;

/** Addresses that are not the public internet: loopback, private, link-local (metadata), CGNAT, multicast, reserved. */
const nonPublic = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24],
  ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) nonPublic.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['2001:db8::', 32]] as const) {
  nonPublic.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:127.0.0.1`, `::ffff:7f00:1`). */
function mappedIpv4(address: string): string | undefined {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (dotted) return dotted;
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return undefined;
  const [hi, lo] = [parseInt(hex[1]!, 16), parseInt(hex[2]!, 16)];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** Why an address may not be called under the `public` policy, or undefined when it may. */
export function refusalOf(address: string): string | undefined {
  const ip = mappedIpv4(address) ?? address;
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  if (!nonPublic.check(ip, family)) return undefined;
  if (ip.startsWith('169.254.')) return `${address} is a link-local address (the instance metadata service lives there)`;
  if (ip === '::1' || ip.startsWith('127.')) return `${address} is a loopback address`;
  return `${address} is not a public address`;
}

class Refused extends Error {}

/** DNS lookup that refuses non-public answers: checked on the address actually connected to (no rebinding window). */
function publicLookup(hostname: string, options: LookupOptions, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '');
    const refused = addresses.map((a) => refusalOf(a.address)).find(Boolean);
    if (refused) return callback(new Refused(`refused to call ${hostname}: ${refused} (RUNTIME_URLS=public)`), '');
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

export interface HttpRuntimeOptions {
  urls: 'public' | 'any';
}

interface Answer {
  status: number;
  body: string;
}

export class HttpRuntime implements AgentRuntime {
  constructor(private readonly opts: HttpRuntimeOptions) {}

  async process(agent: AgentItem, message: Parameters<AgentRuntime['process']>[1], signal: AbortSignal): Promise<{ reply: string }> {
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

  /** `stop` at finalize: the worker saves its state and closes its connections; a failure fails the finalize (retried). */
  async close(agent: AgentItem, stop: RuntimeStop): Promise<void> {
    const body = JSON.stringify({ type: 'stop', agentId: agent.agentId, stopId: stop.stopId, outcome: stop.outcome });
    const answer = await this.post(agent, body, { timeoutMs: LIFECYCLE_TIMEOUT_MS, idempotencyKey: stop.stopId });
    if (answer.status < 200 || answer.status > 299) throw new Error(`the agent's worker refused stop ${stop.stopId}: HTTP ${answer.status}`);
  }

  private async cancel(agent: AgentItem, messageId: string): Promise<void> {
    const body = JSON.stringify({ type: 'cancel', agentId: agent.agentId, messageId });
    try {
      await this.post(agent, body, { timeoutMs: LIFECYCLE_TIMEOUT_MS, idempotencyKey: `cancel-${messageId}` });
    } catch (err) {
      logger.warn('cancel not delivered to the agent\'s worker', { agentId: agent.agentId, messageId, error: (err as Error).message });
    }
  }

  /** One signed POST: bounded in time and size, refusing non-public addresses under the `public` policy. */
  private async post(agent: AgentItem, body: string, o: { signal?: AbortSignal; timeoutMs: number; idempotencyKey: string }): Promise<Answer> {
    const { url } = runtimeOf(agent);
    if (!agent.signingSecret) throw new Error('the agent has no signing secret: rotate it (POST /agents/{agentId}/signing-secret)');
    const target = new URL(url);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    if (this.opts.urls === 'public' && isIP(host)) {
      const refused = refusalOf(host);
      if (refused) throw new Error(`refused to call ${host}: ${refused} (RUNTIME_URLS=public)`);
    }
    const timeout = AbortSignal.timeout(o.timeoutMs);
    const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
    const options: RequestOptions = {
      method: 'POST',
      signal,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'idempotency-key': o.idempotencyKey,
        [SIGNATURE_HEADER]: sign(agent.signingSecret, body),
        'user-agent': 'agents-lifecycle',
      },
      ...(this.opts.urls === 'public' && { lookup: publicLookup as RequestOptions['lookup'] }),
    };
    try {
      return await new Promise<Answer>((resolve, reject) => {
        const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, options, (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`the agent's worker answered with more than ${MAX_ANSWER_BYTES} bytes`));
            else chunks.push(chunk);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason;
      if (timeout.aborted) throw new Error(`the agent's worker did not answer within ${o.timeoutMs} ms`, { cause: err });
      if (err instanceof Refused) throw new Error(err.message, { cause: err });
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(code ? `the agent's worker cannot be reached (${code})` : (err as Error).message, { cause: err });
    }
  }
}

const runtimeOf = (agent: AgentItem) => agent.runtime as Extract<Runtime, { type: 'http' }>;
