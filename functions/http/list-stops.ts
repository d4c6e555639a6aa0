import { deps } from '../adapters/deps.js';
import { listStops } from '../agents/message-queries.js';
import { pageQuerySchema } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({ query: pageQuerySchema }, async ({ params, query }) => {
  const page = await listStops(deps(), params.agentId!, query);
  return ok(page.items, { nextCursor: page.nextCursor ?? null });
});
