import { deps } from '../adapters/deps.js';
import { StopFailed, StopTimedOut } from '../agents/errors.js';
import { stopAgentSchema } from '../agents/model.js';
import { awaitStop, endedAnswer, type StopAnswer } from '../agents/stop-view.js';
import { beginGracefulStop, forceStop } from '../agents/stop-begin.js';
import { httpRoute, ok, type Reply } from './middleware.js';
import { parsePrefer } from './prefer.js';

function reply(view: StopAnswer, applied?: string): Reply {
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
  const { stop, stopped, agent } = await beginGracefulStop(d, agentId, { timeoutMs: body.timeout, reason: 'api' });
  const window = parsePrefer(header('prefer'), d.config.stopWaitWindowMs);
  // Finalized in this request (nothing was in flight): answered from the commit, no re-read.
  if (stopped) return reply(endedAnswer(agentId, stopped), window.applied);
  return reply(await awaitStop(d, agentId, stop.stopId, window.ms, agent), window.applied);
});
