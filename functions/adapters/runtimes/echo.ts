import type { AgentRuntime } from '../../agents/ports.js';
import type { Runtime } from '../../agents/model.js';

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
