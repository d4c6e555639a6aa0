import { deps } from '../adapters/deps.js';
import { startAgent } from '../agents/lifecycle.js';
import { toAgent } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({}, async ({ params }) => {
  const agent = await startAgent(deps(), params.agentId!);
  return ok(toAgent(agent, deps()), { message: 'Agent started', headers: { ETag: `"${agent.version}"` } });
});
