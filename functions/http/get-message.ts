import { deps } from '../adapters/deps.js';
import { getMessage } from '../agents/message-queries.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({}, async ({ params }) => {
  return ok(await getMessage(deps(), params.agentId!, params.messageId!));
});
