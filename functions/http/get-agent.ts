import { deps } from '../adapters/deps.js';
import { getAgent } from '../agents/lifecycle.js';
import { toAgent } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({}, async ({ params }) => {
  const agent = await getAgent(deps(), params.agentId!);
  return ok(toAgent(agent, deps()), { headers: { ETag: `"${agent.version}"` } });
});
