import { deps } from '../adapters/deps.js';
import { StopFailed, StopTimedOut } from '../agents/errors.js';
import { stopAgentSchema } from '../agents/model.js';
import { awaitStop, beginGracefulStop, forceStop, type StopView } from '../agents/stop.js';
import { httpRoute, ok, type Reply } from './middleware.js';

/**
 * How long to wait for the outcome: the configured window, shortened by `Prefer: wait=N`, or none
 * with `Prefer: respond-async` (RFC 7240).
 */
export function waitWindowMs(prefer: string | undefined, windowMs: number): { ms: number; applied?: string } {
  if (!prefer) return { ms: windowMs };
  const prefs = prefer.toLowerCase().split(/\s*,\s*/);
  if (prefs.includes('respond-async')) return { ms: 0, applied: 'respond-async' };
  const wait = prefs.map((p) => /^wait\s*=\s*(\d{1,6})$/.exec(p)).find(Boolean);
  if (wait) {
    const ms = Math.min(Number(wait[1]) * 1000, windowMs);
    return { ms, applied: `wait=${ms / 1000}` };
  }
  return { ms: windowMs };
}

function reply(view: StopView, applied?: string): Reply {
  const headers = applied ? { 'Preference-Applied': applied } : undefined;
  switch (view.kind) {
    case 'stopped':
      if (view.outcome === 'timed_out') {
        throw new StopTimedOut({ agentId: view.agentId, status: 'inactive', stoppedAt: view.stoppedAt, stopId: view.stopId, interrupted: view.interrupted });
      }
      return ok({ agentId: view.agentId, status: 'inactive', stoppedAt: view.stoppedAt }, { message: 'Agent stopped successfully', headers });
    case 'stopping':
      return ok(
        { agentId: view.agentId, status: 'stopping', stopId: view.stopId, deadline: view.deadline },
        { statusCode: 202, message: 'Agent is stopping', headers: { ...headers, Location: `/agents/${view.agentId}` } },
      );
    case 'failed':
      throw new StopFailed({ agentId: view.agentId, status: 'stopping', stopId: view.stopId, cause: view.error });
  }
}

export const handler = httpRoute({ body: stopAgentSchema }, async ({ body, params, header }) => {
  const d = deps();
  const agentId = params.agentId!;
  if (!body.graceful) {
    // A force stop asked for the agent to be stopped at once, and it is: 200 whatever outcome the
    // stop it took over (a graceful one past its deadline) was recorded with.
    return reply({ ...(await forceStop(d, agentId)), outcome: 'forced' });
  }
  const { stop } = await beginGracefulStop(d, agentId, { timeoutMs: body.timeout, reason: 'api' });
  const window = waitWindowMs(header('prefer'), d.config.stopWaitWindowMs);
  return reply(await awaitStop(d, agentId, stop.stopId, window.ms), window.applied);
});
