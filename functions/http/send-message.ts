import { deps } from '../adapters/deps.js';
import { sendMessage } from '../agents/messages.js';
import { sendMessageSchema } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({ body: sendMessageSchema }, async ({ body, params }) => {
  const { message, duplicate } = await sendMessage(deps(), params.agentId!, body);
  return ok(message, { message: duplicate ? 'Message already processed' : 'Message processed' });
});
