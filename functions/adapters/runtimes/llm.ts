import type OpenAIClient from 'openai';
import { ConfigError } from '../../agents/config.js';
import type { AgentRuntime, ModelKeys, RuntimeMessage, RuntimeStop } from '../../agents/ports.js';
import type { AgentConfig, Runtime } from '../../agents/model.js';
import type { RecordsStore, Turn } from '../dynamodb/records-store.js';
import { Refused, outboundFetch } from './outbound.js';

/**
 * The `openai` client (about 420 KB) is installed, as one module, beside the bundles of the
 * functions that run messages (routes with `runsRuntimes`, and the worker), and imported here at
 * an llm agent's first message (infra/agent-function.ts: openAiBeside); the other functions only
 * ever `close` an llm agent and do not carry it. Reaching it there is a wiring bug, said plainly.
 */
async function loadOpenAi(): Promise<typeof import('openai')> {
  try {
    return await import('openai');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new ConfigError('The openai client is not bundled with this function: only functions that run messages (routes with runsRuntimes, the worker) carry it');
  }
}

type LlmRuntimeConfig = Extract<Runtime, { type: 'llm' }>;

export const DEFAULT_MEMORY_TURNS = 20;
/** The conversation kept is also bounded in size (it is one DynamoDB item). */
export const MAX_MEMORY_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_ANSWER_BYTES = 1024 * 1024;

export interface LlmRuntimeOptions {
  urls: 'public' | 'any';
  allowHttp: boolean;
  /** The operator's keys, each bound to the base URL it may be sent to. */
  keys: ModelKeys;
  /** The records table: the conversation lives beside the agent's messages. */
  records: () => RecordsStore;
}

/**
 * The `llm` runtime: an agent that thinks (any OpenAI-compatible chat-completions endpoint,
 * through the `openai` package, its AbortSignal passed through) and remembers: its conversation,
 * the last `memoryTurns` turns, is read at each message and written with each reply (a
 * conditional write on its version, so concurrent replies both land), and `close` records the
 * stop that saved it. The API key is resolved at call time from the variable or secret the
 * runtime names, only if the operator bound it to the agent's base URL, and goes nowhere but that
 * request's Authorization header; a keyless endpoint gets no Authorization header at all.
 */
export class LlmRuntime implements AgentRuntime {
  private readonly fetch: ReturnType<typeof outboundFetch>;

  constructor(private readonly opts: LlmRuntimeOptions) {
    this.fetch = outboundFetch({ urls: opts.urls, allowHttp: opts.allowHttp, maxBytes: MAX_ANSWER_BYTES });
  }

  async process(agent: AgentConfig, message: RuntimeMessage, signal: AbortSignal): Promise<{ reply: string }> {
    const runtime = agent.runtime as LlmRuntimeConfig;
    const records = this.opts.records();
    // Loaded on first use: the functions that never run an llm agent do not pay for it at cold start.
    // Checked again here, not only at create: the operator may have rebound or removed the key since.
    const apiKey = await this.opts.keys.keyFor(runtime.apiKey, runtime.baseUrl);
    // An agent that remembers nothing (memoryTurns 0) has no conversation to read or write.
    const remembers = (runtime.memoryTurns ?? DEFAULT_MEMORY_TURNS) > 0;
    const [{ default: OpenAI }, memory] = await Promise.all([loadOpenAi(), remembers ? records.getConversation(agent.agentId) : { turns: [], version: 0 }]);
    const client = new OpenAI({
      // The client insists on a credential; a keyless endpoint's Authorization header is then omitted (null).
      apiKey: apiKey ?? 'keyless',
      ...(apiKey === null && { defaultHeaders: { Authorization: null } }),
      baseURL: runtime.baseUrl,
      fetch: this.fetch,
      maxRetries: 0,
      timeout: Math.max(1, Math.min(runtime.timeoutMs ?? DEFAULT_TIMEOUT_MS, message.deadline - Date.now())),
    });
    const messages = [
      ...(runtime.system ? [{ role: 'system' as const, content: runtime.system }] : []),
      ...memory.turns,
      { role: 'user' as const, content: message.text },
    ];
    let reply: string | null | undefined;
    try {
      const completion = await client.chat.completions.create({ model: runtime.model, messages }, { signal });
      reply = completion.choices?.[0]?.message?.content;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new Error(describe(OpenAI, err), { cause: err });
    }
    if (typeof reply !== 'string') throw new Error('the model endpoint answered without a message');
    // A message cut by a stop meanwhile is not remembered (its lease is gone; it ends interrupted).
    if (signal.aborted) throw signal.reason;
    if (remembers) await this.remember(agent, [{ role: 'user', content: message.text }, { role: 'assistant', content: reply }], memory);
    return { reply };
  }

  /** The conversation is written with every reply; at stop, record that this stop saved it (an agent that remembers nothing has none). */
  async close(agent: AgentConfig, stop: RuntimeStop): Promise<{ stateSaved: boolean }> {
    if (((agent.runtime as LlmRuntimeConfig).memoryTurns ?? DEFAULT_MEMORY_TURNS) > 0) {
      await this.opts.records().markConversationSaved(agent.agentId, stop.stopId, Date.now());
    }
    return { stateSaved: true };
  }

  private async remember(agent: AgentConfig, exchange: Turn[], read: { turns: Turn[]; version: number }): Promise<void> {
    const records = this.opts.records();
    const limit = (agent.runtime as LlmRuntimeConfig).memoryTurns ?? DEFAULT_MEMORY_TURNS;
    let memory = read;
    for (let attempt = 0; attempt < 5; attempt++) {
      const turns = bounded([...memory.turns, ...exchange], limit);
      if (await records.saveConversation(agent.agentId, turns, memory.version, Date.now())) return;
      // Another reply of this agent landed first: add this exchange after it.
      memory = await records.getConversation(agent.agentId);
    }
    throw new Error('the conversation kept changing; the reply was not remembered');
  }
}

/** The last `limit` turns, fewer if they exceed MAX_MEMORY_BYTES; always whole exchanges from the end. */
export function bounded(turns: Turn[], limit: number): Turn[] {
  let kept = turns.slice(Math.max(0, turns.length - limit));
  while (kept.length > 0 && Buffer.byteLength(JSON.stringify(kept)) > MAX_MEMORY_BYTES) kept = kept.slice(2);
  return kept;
}

/** A model endpoint's failure in a sentence, without echoing what the endpoint said (it may quote the key). */
function describe(OpenAI: typeof OpenAIClient, err: unknown): string {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return 'the model endpoint did not answer in time';
  if (err instanceof OpenAI.APIError && typeof err.status === 'number') return `the model endpoint answered HTTP ${err.status}`;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Refused) return cause.message;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (err instanceof OpenAI.APIConnectionError) return `the model endpoint cannot be reached${code ? ` (${code})` : ''}`;
  return 'the model endpoint call failed';
}
