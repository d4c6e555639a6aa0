import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentRuntime } from '../../agents/ports.js';
import type { Runtime } from '../../agents/model.js';

/**
 * Replies with the text, after `delayMs` of simulated work (how drains are seen and tested). The
 * work honours the signal: a stop that takes the message's lease ends the wait at once.
 */
export const echoRuntime: AgentRuntime = {
  async process(agent, message, signal) {
    const runtime = agent.runtime as Extract<Runtime, { type: 'echo' }>;
    if (runtime.delayMs) await sleep(runtime.delayMs, undefined, { signal });
    return { reply: message.text };
  },
  async close() {
    // Echo holds no connections.
  },
};
