import type { ProcessSignals, StopWatch } from '../agents/ports.js';
import type { LastStop } from '../agents/model.js';

/**
 * What one process (a Lambda container, or the whole local stack) knows of its own work: the
 * leases its runs hold, and the stops it commits. A stop request waiting on work that runs in
 * this same process sleeps until that work ends or the stop commits, instead of polling; across
 * processes it polls.
 */
export class InProcessSignals implements ProcessSignals {
  /** agentId -> messageId -> how many runs of it hold a lease here. */
  private readonly runs = new Map<string, Map<string, number>>();
  /** agentId -> the wake-ups of stop requests waiting on that agent. */
  private readonly waiters = new Map<string, Set<(ended?: { stopId: string; lastStop: LastStop }) => void>>();

  running(agentId: string, messageId: string): () => void {
    const agent = this.runs.get(agentId) ?? new Map<string, number>();
    agent.set(messageId, (agent.get(messageId) ?? 0) + 1);
    this.runs.set(agentId, agent);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (agent.get(messageId) ?? 1) - 1;
      if (left > 0) agent.set(messageId, left);
      else agent.delete(messageId);
      if (agent.size === 0) this.runs.delete(agentId);
      for (const wake of this.waiters.get(agentId) ?? []) wake();
    };
  }

  allRunningHere(agentId: string, messageIds: string[]): boolean {
    const agent = this.runs.get(agentId);
    return messageIds.length > 0 && messageIds.every((id) => (agent?.get(id) ?? 0) > 0);
  }

  stopEnded(agentId: string, lastStop: LastStop): void {
    for (const wake of this.waiters.get(agentId) ?? []) wake({ stopId: lastStop.stopId, lastStop });
  }

  watch(agentId: string, stopId: string): StopWatch {
    let ended: LastStop | undefined;
    let woken = false;
    let wakeSleeper: (() => void) | undefined;
    const listener = (end?: { stopId: string; lastStop: LastStop }) => {
      if (end && end.stopId === stopId) ended = end.lastStop;
      woken = true;
      wakeSleeper?.();
    };
    const set = this.waiters.get(agentId) ?? new Set();
    set.add(listener);
    this.waiters.set(agentId, set);
    return {
      sleep: (ms) =>
        new Promise((resolve) => {
          const done = () => {
            clearTimeout(timer);
            wakeSleeper = undefined;
            const answer = { woken, ...(ended && { ended }) };
            woken = false;
            resolve(answer);
          };
          // Something happened since the last sleep: answer at once.
          const timer = setTimeout(done, woken || ended ? 0 : ms);
          wakeSleeper = done;
        }),
      close: () => {
        set.delete(listener);
        if (set.size === 0) this.waiters.delete(agentId);
      },
    };
  }
}
