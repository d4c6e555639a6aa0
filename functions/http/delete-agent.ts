import { deps } from '../adapters/deps.js';
import { deleteAgent } from '../agents/lifecycle.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({}, async ({ params }) => {
  await deleteAgent(deps(), params.agentId!);
  return ok({ agentId: params.agentId }, { message: 'Agent deleted' });
});
