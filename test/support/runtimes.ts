import { patchAgentsStore, type Functions } from './patch.js';
import type { AgentRuntime, RuntimeRegistry } from '../../functions/agents/ports.js';
import { echoRuntime } from '../../functions/adapters/runtimes/echo.js';
import { HttpRuntime } from '../../functions/adapters/runtimes/http.js';
import { eventually } from './api.js';

/**
 * A stand-in for a user's agent whose work the test controls: agents created with
 * `settings: { gated: true }` hold each message until the test releases it (or never, to play a
 * crashed worker); every other agent runs the real echo runtime.
 */
export class GatedRuntime {
  private readonly gates = new Map<string, { agentId: string; open: (outcome: 'reply' | 'fail') => void }>();
  /** Agents whose runtime acted on a stop: once per stopId, as the contract's idempotent `close` does. */
  closed: string[] = [];
  /** Every `close` call, repeats included: the stop it named and how it ended. */
  readonly closeCalls: { agentId: string; stopId: string; outcome: string; configVersion: string }[] = [];
  /** Ids of the messages the runtime was asked to process, in order (a repeat shows twice). */
  readonly started: string[] = [];
  /** Messages whose work was told to stop (the runtime's signal fired), with when. */
  readonly aborted = new Map<string, number>();
  private readonly acted = new Set<string>();
  /** agentId -> a promise close() waits for (a runtime slow to close its connections). */
  readonly closeGates = new Map<string, Promise<void>>();
  /** agentId -> how many more times close() fails (a runtime that cannot be reached for a while). */
  readonly closeFailures = new Map<string, number>();

  readonly registry: RuntimeRegistry = {
    echo: {
      process: (agent, message, signal) => {
        this.started.push(message.messageId);
        signal.addEventListener('abort', () => this.aborted.set(message.messageId, Date.now()), { once: true });
        if (!agent.settings.gated) return echoRuntime.process(agent, message, signal);
        return new Promise((resolve, reject) => {
          signal.addEventListener('abort', () => this.gates.delete(message.messageId), { once: true });
          this.gates.set(message.messageId, {
            agentId: agent.agentId,
            open: (outcome) => (outcome === 'reply' ? resolve({ reply: `echo: ${message.text}` }) : reject(new Error('runtime crashed'))),
          });
        });
      },
      close: async (agent, stop) => {
        this.closeCalls.push({ agentId: agent.agentId, stopId: stop.stopId, outcome: stop.outcome, configVersion: agent.configVersion });
        await this.closeGates.get(agent.agentId);
        const failures = this.closeFailures.get(agent.agentId) ?? 0;
        if (failures > 0) {
          this.closeFailures.set(agent.agentId, failures - 1);
          throw new Error('runtime did not close its connections');
        }
        if (this.acted.has(stop.stopId)) return;
        this.acted.add(stop.stopId);
        this.closed.push(agent.agentId);
      },
    } satisfies AgentRuntime,
    http: new HttpRuntime({ urls: 'any', allowHttp: true }),
    llm: { process: () => Promise.reject(new Error('not in this registry')), close: async () => ({ stateSaved: false }) },
    a2a: { process: () => Promise.reject(new Error('not in this registry')), close: async () => ({ stateSaved: false }) },
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

/**
 * A worker that froze (a paused process, a hung connection): from now on the heartbeats of this
 * agent's running messages never reach the store, so their leases expire as a crashed worker's
 * do, while the work itself can still come back late (release its gate) and must be fenced.
 */
export function stallHeartbeats(app: Functions, agentId: string): void {
  patchAgentsStore(app, 'renewLease', (renew) => (a) => (a.agentId === agentId ? new Promise(() => {}) : renew(a)));
}
