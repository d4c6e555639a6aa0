import { deps } from '../adapters/deps.js';
import { listAgents } from '../agents/lifecycle.js';
import { listQuerySchema, toAgent } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({ query: listQuerySchema }, async ({ query }) => {
  const page = await listAgents(deps(), query);
  return ok(page.items.map((item) => toAgent(item, deps())), { nextCursor: page.nextCursor ?? null });
});
