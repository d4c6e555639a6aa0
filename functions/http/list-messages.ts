import { deps } from '../adapters/deps.js';
import { listMessages } from '../agents/message-queries.js';
import { pageQuerySchema } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({ query: pageQuerySchema }, async ({ params, query }) => {
  const page = await listMessages(deps(), params.agentId!, query);
  return ok(page.items, { nextCursor: page.nextCursor ?? null });
});
