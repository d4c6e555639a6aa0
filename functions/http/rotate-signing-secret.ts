import { deps } from '../adapters/deps.js';
import { rotateSigningSecret } from '../agents/lifecycle.js';
import { httpRoute, ok } from './middleware.js';

/** A new signing secret for the agent's `http` runtime, shown once; the old one stops working at once. */
export const handler = httpRoute({}, async ({ params }) => {
  return ok(await rotateSigningSecret(deps(), params.agentId!), { message: 'Signing secret rotated: store it now, it is not shown again' });
});
