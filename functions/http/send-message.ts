import { deps } from '../adapters/deps.js';
import { sendMessage } from '../agents/running.js';
import { sendMessageSchema } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';
import { parsePrefer } from './prefer.js';

/**
 * Without `Prefer`, the message runs inside this request (work that fits the API window). With
 * `Prefer: respond-async` it is handed to the worker and answered 202 at once; with `wait=N`, the
 * request waits up to N s for the worker's outcome and answers 202 if the message still runs.
 */
export const handler = httpRoute({ body: sendMessageSchema }, async ({ body, params, header }) => {
  const d = deps();
  const prefer = parsePrefer(header('prefer'), d.config.stopWaitWindowMs);
  const { message, duplicate } = await sendMessage(d, params.agentId!, body, prefer.async ? { mode: 'async', waitMs: prefer.ms } : { mode: 'sync' });
  const headers = prefer.applied ? { 'Preference-Applied': prefer.applied } : undefined;
  if (message.status === 'processing') {
    return ok(message, {
      statusCode: 202,
      message: duplicate ? 'Message already accepted' : 'Message accepted',
      headers: { ...headers, Location: `/agents/${message.agentId}/messages/${message.messageId}` },
    });
  }
  return ok(message, { message: duplicate ? 'Message already processed' : 'Message processed', headers });
});
