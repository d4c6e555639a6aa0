import type { AgentRuntime, RuntimeRegistry } from '../../functions/agents/ports.js';
import { echoRuntime } from '../../functions/adapters/runtimes/echo.js';
import { eventually } from './api.js';

/**
 * A stand-in for a user's agent whose work the test controls: agents created with
 * `settings: { gated: true }` hold each message until the test releases it (or never, to play a
 * crashed worker); every other agent runs the real echo runtime.
 */
export class GatedRuntime {
  private readonly gates = new Map<string, { agentId: string; open: (outcome: 'reply' | 'fail') => void }>();
  closed: string[] = [];
  /** agentId -> a promise close() waits for (a runtime slow to close its connections). */
  readonly closeGates = new Map<string, Promise<void>>();
  /** agentId -> how many more times close() fails (a runtime that cannot be reached for a while). */
  readonly closeFailures = new Map<string, number>();

  readonly registry: RuntimeRegistry = {
    echo: {
      process: (agent, message) => {
        if (!agent.settings.gated) return echoRuntime.process(agent, message);
        return new Promise((resolve, reject) => {
          this.gates.set(message.messageId, {
            agentId: agent.agentId,
            open: (outcome) => (outcome === 'reply' ? resolve({ reply: `echo: ${message.text}` }) : reject(new Error('runtime crashed'))),
          });
        });
      },
      close: async (agent) => {
        await this.closeGates.get(agent.agentId);
        const failures = this.closeFailures.get(agent.agentId) ?? 0;
        if (failures > 0) {
          this.closeFailures.set(agent.agentId, failures - 1);
          throw new Error('runtime did not close its connections');
        }
        this.closed.push(agent.agentId);
      },
    } satisfies AgentRuntime,
  };

  /** Ids of the messages held now (of one agent, or of all). */
  held(agentId?: string): string[] {
    return [...this.gates].filter(([, g]) => !agentId || g.agentId === agentId).map(([id]) => id);
  }

  /** Wait until `n` messages of the agent are held inside the runtime (admitted and processing). */
  async waitForHeld(n: number, agentId: string): Promise<string[]> {
    return eventually(async () => {
      const held = this.held(agentId);
      return held.length >= n && held;
    }, 10_000, 5);
  }

  release(messageId: string, outcome: 'reply' | 'fail' = 'reply'): void {
    const gate = this.gates.get(messageId);
    if (!gate) throw new Error(`message ${messageId} is not held`);
    this.gates.delete(messageId);
    gate.open(outcome);
  }

  releaseAll(): void {
    for (const id of this.held()) this.release(id);
  }
}
