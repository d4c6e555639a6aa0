import { deps } from '../adapters/deps.js';
import { getMessage } from '../agents/messages.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({}, async ({ params }) => {
  return ok(await getMessage(deps(), params.agentId!, params.messageId!));
});
