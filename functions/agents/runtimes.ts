import type { AgentItem, Runtime } from './model.js';

export interface RuntimeMessage {
  messageId: string;
  text: string;
  metadata?: Record<string, unknown>;
}

/** What an agent runs on. `close` is told at finalize, so the runtime can drop its connections. */
export interface AgentRuntime {
  process(agent: AgentItem, message: RuntimeMessage): Promise<{ reply: string }>;
  close(agent: AgentItem): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Replies with the text, after `delayMs` of simulated work (how drains are seen and tested). */
export const echoRuntime: AgentRuntime = {
  async process(agent, message) {
    const runtime = agent.runtime as Extract<Runtime, { type: 'echo' }>;
    if (runtime.delayMs) await sleep(runtime.delayMs);
    return { reply: message.text };
  },
  async close() {
    // Echo holds no connections.
  },
};

export type RuntimeRegistry = Record<Runtime['type'], AgentRuntime>;
export const defaultRuntimes: RuntimeRegistry = { echo: echoRuntime };

export const runtimeFor = (runtimes: RuntimeRegistry, agent: AgentItem): AgentRuntime => runtimes[agent.runtime.type];
